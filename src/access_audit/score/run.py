"""The scoring stage's edge: which days to (re)score, and writing a run's outputs to a transaction.

Re-scoring a day replaces that day's explanations, indicators, flags and flag events. An alert that
a re-score no longer raises — typically because an assignment recorded late now explains the
accesses — is kept, marked cleared, with a note naming what explains them now; it is never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from access_audit.review import apply_suppressions
from access_audit.review.learn import LearnedModel, apply_model
from access_audit.score import Scored, score_days
from access_audit.score.audit_gaps import KIND as AUDIT_GAP
from access_audit.score.audit_gaps import find_audit_gaps
from access_audit.score.fit_cache import FITS, GROUP_FITS
from access_audit.score.lookback import SOURCES, scored_under_other_rules, source_rows
from access_audit.score.rules import Rules, fmt
from access_audit.store import Transaction
from access_audit.tables import REVIEWS, scan_stored

OUTPUT_TABLES = ("explanations", "weak_explanations", "indicators", "flags", "flag_events")
GAP_CLEARED = "no longer a gap (the missing audit rows arrived late, or the settings changed)"

ChunkScorer = Callable[[Transaction, Sequence[Sequence[date]], Rules], Iterator[Scored]]
"""An engine: scores each chunk of days from the transaction's stores, yielding one `Scored` per
chunk in order (each yielded chunk is written before the next is asked for)."""


@dataclass
class ScoreReport:
    """What a scoring run did (the CLI prints it; the run log keeps it)."""

    days: list[date] = field(default_factory=list)
    events: int = 0
    explained: float | None = None
    first_explained: float | None = None
    explained_with_mined: float | None = None
    """Explained or weakly explained by a mined kind (score/mined.py)."""
    first_explained_with_mined: float | None = None
    flags: int = 0
    alerts: int = 0
    audit_gaps: int = 0
    """Audit-gap alerts among them: hours or shifts whose audit rows went missing."""
    cleared: list[str] = field(default_factory=list)
    earlier_rules: list[date] = field(default_factory=list)
    """Days scored again first because other rules had scored them (with_earlier_rules)."""
    seconds: float = 0.0
    coverage: list[dict[str, Any]] = field(default_factory=list)


def stored_days(txn: Transaction) -> list[date]:
    """The days (UTC) the transaction's stores hold accesses for."""
    days = scan_stored(txn.path, "access_events").select(pl.col("day").unique()).collect()
    return sorted(days["day"].to_list())


def with_earlier_rules(
    txn: Transaction, days: Sequence[date], rules: Rules, stored: Sequence[date]
) -> list[date]:
    """`days` and the `stored` days in their look-back that other rules scored (after a change of
    rules or of version): those are scored first, in the same run, so `days` are weighed against
    a look-back of the rules that score them, as in a home scored by them from the start."""
    extra = scored_under_other_rules(
        lambda name: scan_stored(txn.path, name),
        days,
        stored,
        rules.version,
        rules.lookback_days,
    )
    return sorted({*days, *extra})


def days_to_rescore(
    all_days: Sequence[date], touched: Iterable[date], reexplain_days: int
) -> list[date]:
    """The days a run touched, plus the re-explain window ending on the latest stored day."""
    if not all_days:
        return []
    latest = max(all_days)
    window = {latest - timedelta(days=n) for n in range(reexplain_days)}
    wanted = set(touched) | window
    return sorted(d for d in wanted if d in set(all_days))


def _cleared(
    previous: pl.DataFrame,
    previous_events: pl.DataFrame,
    scored: Scored,
    now: datetime,
    rules_version: str,
    was_unexplained: pl.LazyFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Earlier alerts (or earlier cleared flags) the new scores do not raise: kept, marked
    cleared (`cleared_at`, the first time), with a note saying why: what explains them now, when
    some of their accesses were unexplained and are explained now; else that the risk no longer
    reaches the threshold, and whether the rules changed (an alert on explained accesses, such as
    `explained_excess`, is never "now explained"). `was_unexplained` is (system, event_id) of the
    accesses that were unexplained before this run (the stored `unexplained` indicators); a
    re-scored flag that carries a note of its own (a suppression's) keeps it."""
    was_alert = previous.filter(pl.col("alert") | pl.col("cleared_at").is_not_null())
    still = scored.flags.filter(pl.col("alert")).select("flag_id")
    gone = was_alert.join(still, on="flag_id", how="anti")
    if gone.is_empty():
        return previous.clear(), previous_events.clear()
    before = (
        was_unexplained.select("system", "event_id")
        .unique()
        .with_columns(before=pl.lit(True))
        .collect()
        if was_unexplained is not None
        else pl.DataFrame(schema={"system": pl.String, "event_id": pl.String, "before": pl.Boolean})
    )
    now_explained = pl.col("detail").is_not_null()
    newly = now_explained & pl.col("before").fill_null(False)
    why = (
        previous_events.join(gone.select("flag_id"), on="flag_id")
        .join(
            scored.explanations.select("system", "event_id", "detail"),
            on=["system", "event_id"],
            how="left",
        )
        .join(before, on=["system", "event_id"], how="left")
        .group_by("flag_id")
        .agg(
            events=pl.col("event_id").n_unique(),
            explained=pl.col("event_id").filter(now_explained).n_unique(),
            newly=pl.col("event_id").filter(newly).n_unique(),
            details=pl.col("detail").filter(now_explained).unique().sort().str.join("; "),
            new_details=pl.col("detail").filter(newly).unique().sort().str.join("; "),
        )
    )
    rescored = scored.flags.select("flag_id", new_score="score", new_note="note")
    explained = fmt(
        "; {} of {} accesses explained ({})",
        pl.col("explained").fill_null(0),
        pl.col("events").fill_null(0),
        pl.col("details"),
    )
    no_longer = pl.concat_str(
        pl.when(pl.col("rules_version") != rules_version)
        .then(
            fmt(
                "the rules changed ({} to {}) and its risk no longer reaches the threshold",
                "rules_version",
                pl.lit(rules_version),
            )
        )
        .otherwise(pl.lit("its risk no longer reaches the threshold")),
        pl.when(pl.col("explained").fill_null(0) > 0).then(explained).otherwise(pl.lit("")),
    )
    note = (
        pl.when(pl.col("cleared_at").is_not_null())
        .then(pl.col("note"))
        .when(pl.col("kind") == AUDIT_GAP)
        .then(pl.lit(GAP_CLEARED))
        .when(pl.col("new_note").is_not_null())
        .then(pl.col("new_note"))
        .when(pl.col("newly").fill_null(0) > 0)
        .then(
            fmt(
                "{} of {} accesses now explained ({})",
                pl.col("newly").fill_null(0),
                pl.col("events").fill_null(0),
                "new_details",
            )
        )
        .otherwise(no_longer)
    )
    carried = (
        gone.join(why, on="flag_id", how="left")
        .join(rescored, on="flag_id", how="left")
        .with_columns(
            note=note,
            alert=pl.lit(False),
            score=pl.col("new_score").fill_null(0.0),
            cleared_at=pl.col("cleared_at").fill_null(pl.lit(now).dt.convert_time_zone("UTC")),
        )
        .select(previous.columns)
    )
    events = previous_events.join(carried.select("flag_id"), on="flag_id", how="semi")
    return carried, events


def _add_audit_gaps(
    scored: Scored, scan: Callable[[str], pl.LazyFrame], rules: Rules, timezone: str
) -> None:
    """Audit gaps (issue 7) come from the volume of the whole log, not from scored accesses: they
    join the day's flags, with no flag events (see score/audit_gaps.py)."""
    gaps = find_audit_gaps(scan, scored.days, rules, timezone)
    scored.flags = pl.concat([scored.flags, gaps]).sort(
        "day", "score", "flag_id", descending=[False, True, False]
    )


def access_sources(root: Path) -> dict[date, str]:
    """Each stored day's access-event files, named: what its look-back aggregates were built
    from. Files are written once under new names, so a changed day has a different list."""
    folder = root / "access_events"
    if not folder.is_dir():
        return {}
    sources: dict[date, str] = {}
    for partition in folder.glob("day=*"):
        files = sorted(p.relative_to(partition).as_posix() for p in partition.rglob("*.parquet"))
        if files:
            sources[date.fromisoformat(partition.name.removeprefix("day="))] = "\n".join(files)
    return sources


def _write_lookback(txn: Transaction, scored: Scored, rules: Rules) -> None:
    """The look-back aggregates of the scored (and rebuilt) days, and what they were built from,
    and the scored days' model fits (score/fit_cache.py), in the same transaction as the flags."""
    days = scored.lookback_days
    tables = scored.lookback.tables()
    versions = dict.fromkeys(scored.days, rules.version)
    tables[SOURCES.name] = source_rows(days, access_sources(txn.path), versions)
    for table, frame in tables.items():
        txn.replace_partitions(table, frame, "day", days)
    if scored.fits is not None:
        txn.replace_partitions(FITS.name, scored.fits, "day", scored.days)
    if scored.group_fits is not None:
        txn.replace_partitions(GROUP_FITS.name, scored.group_fits, "day", scored.days)


def write_scored(
    txn: Transaction,
    days: Sequence[date],
    rules: Rules,
    now: datetime,
    model: LearnedModel | None = None,
    reviews: pl.LazyFrame | None = None,
    timezone: str = "UTC",
    progress: Callable[[str, int, int], None] | None = None,
    scorer: ChunkScorer | None = None,
) -> ScoreReport:
    """Score `days` from the transaction's stores and replace those days' outputs in it, a few
    days at a time ([scoring] chunk_days) so memory stays bounded however many days are asked.
    Each chunk reads the explanations the previous ones wrote. `reviews` (the review history,
    kept outside the stores) decides suppressions; none if not given. `timezone` is the force's
    local time, whose hours and weekdays the audit-gap baselines follow. `progress(what, days
    done, days)` is called after each chunk. `scorer` is the engine (`score_locally` by default;
    score/spark.py for Spark); whatever scores, the outputs are written here, the same way."""
    if reviews is None:
        reviews = pl.LazyFrame(schema=REVIEWS.schema())
    ordered = sorted(set(days))
    size = max(1, rules.chunk_days)
    chunks = [ordered[start : start + size] for start in range(0, len(ordered), size)]
    total = ScoreReport()
    coverage: list[pl.DataFrame] = []
    done = 0
    for chunk, scored in zip(chunks, (scorer or score_locally)(txn, chunks, rules), strict=True):
        part = _write_chunk(txn, scored, rules, now, model, reviews, timezone)
        done += len(chunk)
        if progress is not None:
            progress("scoring days", done, len(ordered))
        total.days += part.days
        total.events += part.events
        total.flags += part.flags
        total.alerts += part.alerts
        total.audit_gaps += part.audit_gaps
        total.cleared += part.cleared
        total.seconds += part.seconds
        if part.coverage:
            coverage.append(pl.DataFrame(part.coverage))
    if coverage:
        merged = (
            pl.concat(coverage)
            .group_by("scope", "group", maintain_order=True)
            .agg(pl.col("accesses", "explained", "with_mined").sum())
            # No access in a group is no share at all (null, shown "n/a"), never 0/0 = NaN.
            .with_columns(
                share=pl.when(pl.col("accesses") > 0).then(
                    pl.col("explained") / pl.col("accesses")
                ),
                share_with_mined=pl.when(pl.col("accesses") > 0).then(
                    pl.col("with_mined") / pl.col("accesses")
                ),
            )
        )
        total.coverage = merged.to_dicts()
        shares = dict(zip(merged["scope"], merged["share"], strict=True))
        total.explained = shares.get("overall")
        total.first_explained = shares.get("first")
        mined = dict(zip(merged["scope"], merged["share_with_mined"], strict=True))
        total.explained_with_mined = mined.get("overall")
        total.first_explained_with_mined = mined.get("first")
    return total


def score_locally(
    txn: Transaction, chunks: Sequence[Sequence[date]], rules: Rules
) -> Iterator[Scored]:
    """The local (Polars) engine: one chunk at a time, each reading what the previous wrote."""

    def scan(name: str) -> pl.LazyFrame:
        return scan_stored(txn.path, name)

    for chunk in chunks:
        yield score_days(scan, chunk, rules, access_sources(txn.path))


def _write_chunk(
    txn: Transaction,
    scored: Scored,
    rules: Rules,
    now: datetime,
    model: LearnedModel | None,
    reviews: pl.LazyFrame,
    timezone: str,
) -> ScoreReport:

    def scan(name: str) -> pl.LazyFrame:
        return scan_stored(txn.path, name)

    report = ScoreReport(days=list(scored.days), events=scored.events, seconds=scored.seconds)
    if not scored.days:
        return report
    _add_audit_gaps(scored, scan, rules, timezone)
    in_days = pl.col("day").is_in(scored.days)
    previous = scan("flags").filter(in_days).collect()
    previous_events = scan("flag_events").filter(in_days).collect()
    scored.flags = apply_suppressions(
        scored.flags, reviews, scan("flags"), rules.reviews["not_new_risk"]
    )
    if model is not None:
        scored.flags = apply_model(scored.flags, model)
    # read only when an earlier alert is gone (most runs clear none)
    was_unexplained = (
        scan("indicators")
        .filter(in_days & (pl.col("code") == "unexplained"))
        .select("system", "event_id")
    )
    carried, carried_events = _cleared(
        previous, previous_events, scored, now, rules.version, was_unexplained
    )
    new_ids = scored.flags.select("flag_id")
    flags = pl.concat(
        [
            scored.flags.join(carried.select("flag_id"), on="flag_id", how="anti"),
            carried.select(scored.flags.columns).cast(scored.flags.schema),
        ]
    )
    flag_events = pl.concat(
        [
            scored.flag_events,
            carried_events.join(new_ids, on="flag_id", how="anti").select(
                scored.flag_events.columns
            ),
        ]
    ).unique()
    outputs = {
        "explanations": scored.explanations,
        "weak_explanations": scored.weak_explanations,
        "indicators": scored.indicators,
        "flags": flags,
        "flag_events": flag_events,
    }
    for table, frame in outputs.items():
        txn.replace_partitions(table, frame, "day", scored.days)
    _write_lookback(txn, scored, rules)
    report.flags = flags.height
    report.alerts = int(flags["alert"].sum())
    report.audit_gaps = flags.filter(pl.col("alert") & (pl.col("kind") == AUDIT_GAP)).height
    # the alerts this run cleared, not those an earlier run did (carried as they were)
    already = previous.filter(pl.col("cleared_at").is_not_null()).select("flag_id")
    report.cleared = carried.join(already, on="flag_id", how="anti")["flag_id"].to_list()
    report.coverage = scored.coverage.to_dicts()
    return report
