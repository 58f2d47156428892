"""Explain, score and flag: the stage after ingest.

`score_days` reads the stores (any `scan` function: a generation or a transaction's staging
folder), explains the accesses of the target days, computes their indicators against the look-back
history, and returns the four outputs as DataFrames — I/O stays with the caller, which replaces the
target days' partitions in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from access_audit.score.anchors import Models, anchor_of, anchored_models, fit_models, reach_days
from access_audit.score.explain import EXPLANATION_SCHEMA, Inputs, explain
from access_audit.score.fit_cache import FITS, GROUP_FITS, FitCache
from access_audit.score.flags import FLAG_EVENT_SCHEMA, FLAG_SCHEMA, episodes
from access_audit.score.indicators import INDICATOR_SCHEMA, indicators
from access_audit.score.lookback import Lookback, read_lookback, user_day_hits
from access_audit.score.mined import WEAK_SCHEMA, mine_day, reads_accesses, weakened
from access_audit.score.patterns import pattern_lookups, patterns_from
from access_audit.score.peers import peer_weighted_from
from access_audit.score.rules import Rules, load_rules

Scan = Callable[[str], pl.LazyFrame]
EVENT_COLUMNS = [
    "system",
    "event_id",
    "user_id",
    "occurred_at",
    "action",
    "record_type",
    "record_id",
    "justification",
    "reason_code",
    "day",
]


@dataclass
class Scored:
    days: list[date]
    explanations: pl.DataFrame
    indicators: pl.DataFrame
    flags: pl.DataFrame
    flag_events: pl.DataFrame
    coverage: pl.DataFrame
    weak_explanations: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=WEAK_SCHEMA)
    )
    """Mined explanations of the days' unexplained accesses (score/mined.py)."""
    events: int = 0
    seconds: float = 0.0
    cleared: list[str] = field(default_factory=list)
    lookback: Lookback = field(default_factory=Lookback.empty)
    """The look-back aggregates of `lookback_days`, to store beside the outputs."""
    lookback_days: list[date] = field(default_factory=list)
    fits: pl.DataFrame | None = None
    """The MinCovDet fits of the models fitted on the scored days' own look-backs, to store
    (score/fit_cache.py); None when the engine keeps none (the stored ones are left as they are)."""
    group_fits: pl.DataFrame | None = None
    """Their collaborative groups, likewise."""


def _inputs(scan: Scan, events: pl.LazyFrame) -> Inputs:
    return Inputs(
        events=events,
        staff=scan("staff"),
        persons=scan("persons"),
        incidents=scan("incidents"),
        incident_persons=scan("incident_persons"),
        assignments=scan("assignments"),
        calls=scan("calls"),
        shifts=scan("shifts"),
        associations=scan("associations"),
        training=scan("training"),
    )


def _in_memory(inputs: Inputs) -> Inputs:
    """The reference tables read once, since every scored day joins them again."""
    tables = pl.collect_all(
        [
            inputs.staff,
            inputs.persons,
            inputs.incidents,
            inputs.incident_persons,
            inputs.assignments,
            inputs.calls,
            inputs.shifts,
            inputs.associations,
            inputs.training,
        ]
    )
    staff, persons, incidents, links, assignments, calls, shifts, associations, training = (
        t.lazy() for t in tables
    )
    return Inputs(
        inputs.events,
        staff,
        persons,
        incidents,
        links,
        assignments,
        calls,
        shifts,
        associations,
        training,
    )


def with_explained(events: pl.DataFrame, explained: pl.DataFrame) -> pl.DataFrame:
    """`events` with an `explained` column: whether `explained` (system, event_id) holds it.
    Only the flag is new: the event columns are shared, not copied, and the join carries row
    numbers, not the events."""
    rows = (
        events.select("system", "event_id")
        .with_row_index("row")
        .join(explained.select("system", "event_id"), on=["system", "event_id"], how="semi")
        .get_column("row")
    )
    flag = pl.zeros(events.height, pl.Boolean, eager=True).alias("explained")
    if len(rows):
        flag = flag.scatter(rows, True)
    return events.with_columns(flag)


def coverage(
    targets: pl.DataFrame,
    earlier: pl.LazyFrame,
    staff: pl.LazyFrame,
    weak: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Share of one day's accesses explained: overall, for first accesses (a user's first access
    to a subject in the look-back: none in `earlier`, the look-back's lookups before the day, and
    the first that day), and by role; `with_mined` counts those explained or weakly explained by a
    mined kind (`weak`, the day's weak explanations)."""
    pair = ["user_id", "record_type", "record_id"]
    opened = targets.filter(pl.col("record_id").is_not_null())
    seen = (
        earlier.select(pair)
        .join(opened.lazy().select(pair), on=pair, how="semi")
        .unique()
        .with_columns(seen=pl.lit(True))
        .collect()
    )
    weakly = (
        (weak if weak is not None else pl.DataFrame(schema=WEAK_SCHEMA))
        .select("system", "event_id")
        .unique()
        .with_columns(weakly=pl.lit(True))
    )
    with_first = (
        opened.sort("occurred_at", "system", "event_id")
        .with_columns(first=pl.int_range(pl.len()).over(pair) == 0)
        .join(seen, on=pair, how="left")
        .with_columns(first=pl.col("first") & pl.col("seen").is_null())
        .join(staff.select("user_id", "role").collect(), on="user_id", how="left")
        .join(weakly, on=["system", "event_id"], how="left")
        .with_columns(mined=pl.col("explained") | pl.col("weakly").fill_null(False))
    )
    shares = {
        "accesses": pl.len(),
        "explained": pl.col("explained").sum(),
        "share": pl.col("explained").mean(),
        "with_mined": pl.col("mined").sum(),
        "share_with_mined": pl.col("mined").mean(),
    }

    def share(frame: pl.DataFrame, scope: str, group: str) -> pl.DataFrame:
        return frame.select(scope=pl.lit(scope), group=pl.lit(group), **shares)

    by_role = (
        with_first.group_by("role")
        .agg(**shares)
        .select(
            *shares,
            scope=pl.lit("role"),
            group=pl.col("role").fill_null("(unknown)"),
        )
        .select("scope", "group", *shares)
        .sort("group")
    )
    return pl.concat(
        [
            share(with_first, "overall", "all accesses"),
            share(with_first.filter("first"), "first", "first accesses"),
            by_role,
        ],
        how="vertical_relaxed",
    )


def merge_coverage(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Coverage of several days (or chunks) from each one's counts."""
    if not parts:
        return pl.DataFrame()
    return (
        pl.concat(parts, how="diagonal_relaxed")
        .group_by("scope", "group", maintain_order=True)
        .agg(pl.col("accesses", "explained", "with_mined").sum())
        .select(
            "scope",
            "group",
            "accesses",
            "explained",
            # no access in a group is no share at all (null), never 0/0 = NaN
            share=pl.when(pl.col("accesses") > 0).then(pl.col("explained") / pl.col("accesses")),
            with_mined="with_mined",
            share_with_mined=pl.when(pl.col("accesses") > 0).then(
                pl.col("with_mined") / pl.col("accesses")
            ),
        )
    )


def _empty_scored() -> Scored:
    return Scored(
        [],
        pl.DataFrame(schema=EXPLANATION_SCHEMA),
        pl.DataFrame(schema=INDICATOR_SCHEMA),
        pl.DataFrame(schema=FLAG_SCHEMA),
        pl.DataFrame(schema=FLAG_EVENT_SCHEMA),
        pl.DataFrame(),
    )


MINING_COLUMNS = [
    "system",
    "event_id",
    "user_id",
    "occurred_at",
    "record_type",
    "record_id",
    "reason_code",
    "day",
    "explained",
]
"""What the mined kinds (score/mined.py) read of the look-back's accesses."""


def mining_history(scan: Scan, days: Sequence[date]) -> pl.DataFrame:
    """The accesses of `days` (scored before) that opened a record, with `explained` from their
    stored explanations: what the mined kinds learn from."""
    return _stored_accesses(scan, days).select(MINING_COLUMNS)


def _stored_accesses(scan: Scan, days: Sequence[date]) -> pl.DataFrame:
    """The stored accesses of `days` that opened a record, `explained` from their explanations."""
    in_days = pl.col("day").is_in(list(days))
    events = (
        scan("access_events")
        .filter(in_days & pl.col("record_id").is_not_null())
        .select(EVENT_COLUMNS)
        .collect()
    )
    explained = scan("explanations").filter(in_days).select("system", "event_id").collect()
    return with_explained(events, explained)


def rebuild_lookback(scan: Scan, days: Sequence[date]) -> Lookback:
    """The look-back aggregates of `days` from their stored accesses, explanations and
    indicators: for days scored before the aggregates existed, or whose accesses changed."""
    if not days:
        return Lookback.empty()
    found = scan("indicators").filter(pl.col("day").is_in(list(days)))
    return Lookback.of(_stored_accesses(scan, days), found.select("system", "event_id", "code"))


def score_days(
    scan: Scan,
    days: Sequence[date],
    rules: Rules | None = None,
    sources: dict[date, str] | None = None,
) -> Scored:
    """Explain and score the accesses of `days` against the stores `scan` reads.

    Each day is scored against its own look-back: the `lookback_days` before it and the day
    itself, as it stands once the days before it are scored (never a later day), so the result
    does not depend on which days are scored together. The look-back comes from the stored
    aggregates (score/lookback.py) of the days whose access-event files are those `sources`
    names; the others' are rebuilt from their accesses (all of them when `sources` is None).
    `Scored.lookback` holds the aggregates to store: the scored days' and the rebuilt ones'."""
    started = time.perf_counter()
    rules = rules or load_rules()
    days = sorted(set(days))
    if not days:
        return _empty_scored()
    in_targets = pl.col("day").is_in(days)
    # Searches that opened no record have no subject: nothing to explain or score.
    events = (
        scan("access_events")
        .filter(in_targets & pl.col("record_id").is_not_null())
        .select(EVENT_COLUMNS)
        .collect()
    )
    target_count = scan("access_events").filter(in_targets).select(pl.len()).collect().item()
    # the days in some target's look-back, or its anchor's (score/anchors.py), that are not
    # targets themselves
    before = sorted(
        {d - timedelta(days=n) for d in days for n in range(1, reach_days(rules) + 1)} - set(days)
    )
    # an incident created in the look-back explains a later access to it (created_incident)
    created = (
        scan("access_events")
        .filter(
            pl.col("day").is_in(before)
            & (pl.col("action") == "create")
            & (pl.col("record_type") == "incident")
        )
        .select(EVENT_COLUMNS)
    )
    inputs = day_inputs(scan, pl.concat([created, events.lazy()]), days)
    new_explanations = explain(inputs, rules, events.lazy()).collect()
    events = with_explained(events, new_explanations)
    if sources is None:
        stored, rebuilt = rebuild_lookback(scan, before), list(before)
    else:
        known = [d for d in before if d in sources]
        stored, rebuilt = read_lookback(
            scan, known, sources, lambda stale: rebuild_lookback(scan, stale)
        )
    # the mined kinds learn from the look-back's lookups (its aggregates); only some read its
    # accesses themselves
    history = (
        pl.concat([mining_history(scan, before), events.select(MINING_COLUMNS)])
        if reads_accesses(rules)
        else pl.DataFrame(schema=events.select(MINING_COLUMNS).schema)
    )
    reach = pl.col("day").is_between(days[0] - timedelta(days=reach_days(rules)), days[-1])
    fits = FitCache(
        *pl.collect_all([scan(FITS.name).filter(reach), scan(GROUP_FITS.name).filter(reach)])
    )
    parts = score_chunk(days, events, stored, inputs, rules, history, fits=fits)
    day_of = events.select("system", "event_id", "day")
    flags = pl.concat([p.flags for p in parts])
    return Scored(
        days=days,
        explanations=new_explanations.join(day_of, on=["system", "event_id"]),
        indicators=pl.concat([p.indicators for p in parts]),
        flags=flags.sort("day", "score", "flag_id", descending=[False, True, False]),
        flag_events=pl.concat([p.flag_events for p in parts]),
        weak_explanations=pl.concat([p.weak_explanations for p in parts]),
        coverage=merge_coverage([p.coverage for p in parts]),
        events=target_count,
        seconds=time.perf_counter() - started,
        lookback=stored.only(rebuilt).plus(
            Lookback(
                pl.concat([p.lookback.lookups for p in parts]),
                pl.concat([p.lookback.users for p in parts]),
                pl.concat([p.lookback.hits for p in parts]),
            )
        ),
        lookback_days=sorted({*days, *rebuilt}),
        fits=pl.concat(
            [
                fits.rows(part.fits).with_columns(day=pl.lit(day))
                for day, part in zip(days, parts, strict=True)
            ]
        ),
        group_fits=pl.concat(
            [
                fits.group_rows(part.fits).with_columns(day=pl.lit(day))
                for day, part in zip(days, parts, strict=True)
            ]
        ),
    )


def day_inputs(scan: Scan, events: pl.LazyFrame, days: Sequence[date]) -> Inputs:
    """The reference tables, read once, and as `events` what explaining `days` reads: their
    accesses and the incidents created in the look-back before them (`events` may hold any other
    accesses of the look-back; only its incident creations are kept)."""
    in_days = pl.col("day").is_in(list(days))
    created = (pl.col("action") == "create") & (pl.col("record_type") == "incident")
    kept = pl.concat([events.filter(~in_days & created), events.filter(in_days)])
    return _in_memory(_inputs(scan, kept))


def score_chunk(
    days: Sequence[date],
    events: pl.DataFrame,
    lookback: Lookback,
    inputs: Inputs,
    rules: Rules,
    history: pl.DataFrame,
    *,
    fits: FitCache | None = None,
) -> list[DayScore]:
    """Score `days` one after another with `score_day`, each against the look-back aggregates
    of the days before it: `lookback`'s, then those of the days scored here, and the models fitted
    at its anchor (score/anchors.py: `lookback` and `history` must reach back to the first day's
    anchor's look-back). `events` holds the days' explained accesses (and may hold others);
    `history` what the mined kinds read; `fits` the MinCovDet fits already made (kept across
    chunks and runs: score/fit_cache.py)."""
    parts: list[DayScore] = []
    fitted: dict[date, Models] = {}
    for day in sorted(days):
        models = anchored_models(day, lookback, inputs, rules, fitted, fits)
        part = score_day(
            day,
            events.filter(pl.col("day") == day),
            lookback,
            inputs,
            rules,
            history=history,
            models=models,
            fits=fits,
        )
        if anchor_of(day, rules.refit_days) == day and not part.lookback.lookups.is_empty():
            fitted[day] = part.models
        lookback = lookback.plus(part.lookback)
        parts.append(part)
    return parts


def day_aggregates(
    day: date, targets: pl.DataFrame, earlier: Lookback, inputs: Inputs, rules: Rules
) -> tuple[Lookback, pl.DataFrame]:
    """A day's own look-back aggregates (its lookups, users and indicator hits) and its raw
    indicators, found against `earlier`'s lookups of the `lookback_days` before it. They depend
    only on explained accesses, never on another day's indicators."""
    today = Lookback.of(targets)
    window = earlier.window(day - timedelta(days=1), rules.lookback_days - 1).plus(today)
    raw = indicators(inputs, rules, targets.lazy(), window.lookups.lazy()).collect()
    today.hits = user_day_hits(raw.lazy(), targets.lazy()).collect().select(today.hits.columns)
    return today, raw


@dataclass
class DayScore:
    """One day's outputs, and its look-back aggregates."""

    indicators: pl.DataFrame
    flags: pl.DataFrame
    flag_events: pl.DataFrame
    coverage: pl.DataFrame
    lookback: Lookback
    weak_explanations: pl.DataFrame
    models: Models
    """The models the day was scored against (its anchor's, or its own)."""
    fits: list[str] = field(default_factory=list)
    """The keys of the fits of the models fitted on the day's own look-back (score/fit_cache.py);
    none when it was scored against its anchor's."""


def score_day(
    day: date,
    targets: pl.DataFrame,
    lookback: Lookback,
    inputs: Inputs,
    rules: Rules,
    *,
    history: pl.DataFrame,
    models: Models | None = None,
    fits: FitCache | None = None,
) -> DayScore:
    """Score one day's explained accesses against the look-back aggregates of the days before it
    (`lookback` may hold more days: only the window is read), the mined kinds learned from
    `history`, the accesses (MINING_COLUMNS) of the days before it (only the look-back's are read,
    never the day's or a later day's; it may be empty when no mined kind is enabled), and
    `models`, the peers' pattern model and collaborative groups fitted at the day's anchor
    (score/anchors.py; fitted on the day's own look-back when None, with the fits already made
    in `fits`: score/fit_cache.py). A pure function of frames."""
    earlier = lookback.window(day - timedelta(days=1), rules.lookback_days - 1)
    before = history.lazy().filter(
        pl.col("day").is_between(day - timedelta(days=rules.lookback_days), day, closed="left")
    )
    today, raw = day_aggregates(day, targets, earlier, inputs, rules)
    window = earlier.plus(today)
    lookups = pattern_lookups(window.lookups.lazy(), inputs.persons, rules).collect().lazy()
    own = models is None
    models = models or fit_models(lookups, earlier.lookups.lazy(), inputs, rules, fits)
    weak = mine_day(
        inputs, rules, before, targets.lazy(), day, models.groups, earlier.lookups.lazy()
    ).collect()
    found = weakened(
        peer_weighted_from(
            raw.lazy(),
            targets.lazy(),
            window.users.lazy(),
            window.hits.lazy(),
            inputs.staff,
            rules,
        ),
        weak.lazy(),
        rules,
    ).collect()
    flag_frame, flag_events = episodes(targets.lazy(), found.lazy(), rules)
    pattern_flags, pattern_events = patterns_from(
        targets.lazy(), lookups, inputs.persons, inputs.staff, rules, models.patterns
    )
    flags = pl.concat([flag_frame.collect().cast(FLAG_SCHEMA), pattern_flags])
    events = pl.concat([flag_events.collect().cast(FLAG_EVENT_SCHEMA), pattern_events])
    day_of = targets.select("system", "event_id", "day")
    return DayScore(
        indicators=found.select(INDICATOR_SCHEMA.names()).join(day_of, on=["system", "event_id"]),
        flags=flags,
        flag_events=events,
        coverage=coverage(targets, earlier.lookups.lazy(), inputs.staff, weak),
        lookback=today,
        weak_explanations=weak.join(day_of, on=["system", "event_id"]),
        models=models,
        fits=models.fits() if own else [],
    )


__all__ = [
    "EVENT_COLUMNS",
    "MINING_COLUMNS",
    "DayScore",
    "Models",
    "Scored",
    "day_aggregates",
    "day_inputs",
    "load_rules",
    "merge_coverage",
    "score_chunk",
    "score_day",
    "score_days",
    "with_explained",
]
