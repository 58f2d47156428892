"""`access-audit evaluate --truth truth.csv`: how well the flags find planted misuse.

Flags are ranked per day by score (the review queue an analyst works through). A flag *holds* an
episode when it contains any of the episode's events; an episode is *caught* when a flag within the
day's budget of K holds it. An access counts as flagged when it is in an alert flag (the rule
score at or above the alert threshold). R-precision for a day is the precision of its top R flags,
R being the number of planted episodes with accesses that day.

Audit gaps (kind `audit_gap`) hold no accesses, so they are left out of that ranking and judged
on their own against `gaps_truth.csv` beside truth.csv: a planted gap is caught when an audit_gap
flag on the same system (and, for a user's gap, the same user) overlaps its window; an audit_gap
flag that overlaps no planted gap is a false one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from access_audit.errors import AccessAuditError, redact_quoted

TRUTH_COLUMNS = ("episode_id", "scenario", "user_id", "person_id", "system", "event_id")
GAP_TRUTH_COLUMNS = ("gap_id", "scenario", "system", "user_id", "starts_at", "ends_at")
GAP_KIND = "audit_gap"


@dataclass(frozen=True)
class Evaluation:
    budget: int
    threshold: float
    per_day: pl.DataFrame
    per_scenario: pl.DataFrame
    pc_b: pl.DataFrame
    overall: dict[str, float | int | None]
    false_positives: pl.DataFrame
    """Legitimate flags within the daily budget, by the user's role and the flag's reason codes."""
    gaps: dict[str, float | int | None] | None = None


def read_truth(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise AccessAuditError(f"{path}: no such truth file")
    try:
        truth = pl.read_csv(path, infer_schema=False, glob=False)
    except pl.exceptions.PolarsError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AccessAuditError(
            f"{path}: cannot be read as CSV ({redact_quoted(first_line)})"
        ) from None
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise AccessAuditError(f"{path}: truth file lacks column(s) {', '.join(missing)}")
    return truth.select(TRUTH_COLUMNS)


def read_gap_truth(path: Path) -> pl.DataFrame:
    """A generator's gaps_truth.csv: planted audit gaps as windows (UTC)."""
    truth = pl.read_csv(path, infer_schema=False)
    missing = [c for c in GAP_TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise AccessAuditError(f"{path}: gap truth file lacks column(s) {', '.join(missing)}")
    instant = pl.Datetime("us", "UTC")
    return truth.select(GAP_TRUTH_COLUMNS).with_columns(
        pl.col("starts_at", "ends_at").str.to_datetime(time_zone="UTC").cast(instant)
    )


def evaluate_gaps(
    flags: pl.DataFrame, gaps: pl.DataFrame, days: pl.Series
) -> dict[str, float | int | None]:
    """Planted audit gaps caught (by any audit_gap flag, and by an alert), and false gap flags
    over the evaluated `days`."""
    day_list = days.implode()
    found = flags.filter((pl.col("kind") == GAP_KIND) & pl.col("day").is_in(day_list))
    planted = gaps.filter(pl.col("starts_at").dt.date().is_in(day_list))
    matches = (
        found.select(
            "flag_id",
            "alert",
            "user_id",
            system="subject_id",
            f_from="first_access_at",
            f_to="last_access_at",
        )
        .join(
            planted.select(
                "gap_id", "system", gap_user="user_id", g_from="starts_at", g_to="ends_at"
            ),
            on="system",
        )
        .filter(
            (pl.col("f_from") < pl.col("g_to"))
            & (pl.col("f_to") > pl.col("g_from"))
            & (pl.col("gap_user").is_null() | (pl.col("gap_user") == pl.col("user_id")))
        )
    )
    false_flags = found.join(matches.select("flag_id"), on="flag_id", how="anti")
    n_days = days.n_unique()
    return {
        "planted_gaps": planted.height,
        "gaps_caught": matches["gap_id"].n_unique(),
        "gaps_caught_as_alerts": matches.filter("alert")["gap_id"].n_unique(),
        "gap_flags": found.height,
        "false_gap_flags": false_flags.height,
        "false_gap_flags_per_day": false_flags.height / n_days if n_days else None,
    }


def _auc(labels: pl.Series, scores: pl.Series) -> float | None:
    if labels.n_unique() < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels.to_numpy(), scores.to_numpy()))


def evaluate(
    flags: pl.DataFrame,
    flag_events: pl.DataFrame,
    events: pl.DataFrame,
    truth: pl.DataFrame,
    budget: int = 20,
    threshold: float = 60.0,
    score_column: str = "score",
    gaps: pl.DataFrame | None = None,
    roles: pl.DataFrame | None = None,
    grouped: bool = False,
) -> Evaluation:
    """Compare ranked daily flags with the planted truth. `events` is (system, event_id, day) of
    every access in the evaluated days; `gaps` the planted audit gaps, if any; `roles` (user_id,
    role) names the false positives' roles. `grouped` ranks the budget queue's entries
    (review.grouping), not single flags."""
    days = events.select(pl.col("day").unique()).to_series()
    gap_result = evaluate_gaps(flags, gaps, days) if gaps is not None else None
    truth = truth.join(events.select("system", "event_id", "day"), on=["system", "event_id"])
    flags = flags.filter(pl.col("day").is_in(days.implode()) & (pl.col("kind") != GAP_KIND))
    if grouped:
        flags, flag_events = as_entries(flags, flag_events, score_column)
    ranked = flags.sort(
        ["day", score_column, "rule_score", "flag_id"], descending=[False, True, True, False]
    ).with_columns(rank=pl.int_range(1, pl.len() + 1).over("day"))
    holds = (
        flag_events.join(
            truth.select("system", "event_id", "episode_id", "scenario"), on=["system", "event_id"]
        )
        .select("flag_id", "episode_id", "scenario")
        .unique()
    )
    positive = holds.select("flag_id").unique().with_columns(positive=pl.lit(True))
    ranked = ranked.join(positive, on="flag_id", how="left").with_columns(
        pl.col("positive").fill_null(False)
    )
    active = truth.group_by("day").agg(r=pl.col("episode_id").n_unique())
    per_day = (
        ranked.group_by("day")
        .agg(
            flags=pl.len(),
            alerts=pl.col("alert").sum(),
            top_k_positive=pl.col("positive").filter(pl.col("rank") <= budget).sum(),
            top_k=pl.col("rank").le(budget).sum(),
        )
        .join(active, on="day", how="full", coalesce=True)
        .with_columns(pl.col("r").fill_null(0), pl.col("flags").fill_null(0))
        .with_columns(
            precision_at_k=pl.when(pl.col("top_k") > 0).then(
                pl.col("top_k_positive") / pl.col("top_k")
            ),
        )
    )
    # R-precision needs each day's own R: count positives with rank <= R.
    r_precision = (
        ranked.join(active, on="day", how="inner")
        .group_by("day")
        .agg(
            hits=(pl.col("positive") & (pl.col("rank") <= pl.col("r"))).sum(), r=pl.col("r").first()
        )
        .select("day", r_precision=pl.col("hits") / pl.col("r"))
    )
    per_day = (
        per_day.join(r_precision, on="day", how="left")
        .with_columns(
            pl.when(pl.col("r") > 0).then(pl.col("r_precision").fill_null(0.0)).alias("r_precision")
        )
        .sort("day")
    )
    caught_ranks = (
        holds.join(ranked.select("flag_id", "day", "rank", score_column), on="flag_id")
        .group_by("episode_id", "scenario")
        .agg(best_rank=pl.col("rank").min(), best_score=pl.col(score_column).max())
    )
    episodes = (
        truth.select("episode_id", "scenario")
        .unique()
        .join(caught_ranks, on=["episode_id", "scenario"], how="left")
        .with_columns(caught=pl.col("best_rank").le(budget).fill_null(False))
    )
    per_scenario = (
        episodes.group_by("scenario")
        .agg(
            episodes=pl.len(),
            caught=pl.col("caught").sum(),
            median_best_rank=pl.col("best_rank").median(),
        )
        .with_columns(share_caught=pl.col("caught") / pl.col("episodes"))
        .sort("scenario")
    )
    pc_b = (
        truth.filter(pl.col("scenario") == "pc_b")
        .select("episode_id")
        .unique()
        .join(holds.select("flag_id", "episode_id"), on="episode_id")
        .join(ranked.select("flag_id", "day", "rank", score_column), on="flag_id")
        .group_by("episode_id")
        .agg(pl.all().sort_by("rank").first())
        .select("episode_id", "day", "rank", score_column, "flag_id")
        .sort("episode_id")
    )
    pc_b = (
        truth.filter(pl.col("scenario") == "pc_b")
        .select("episode_id")
        .unique()
        .join(pc_b, on="episode_id", how="left")
        .sort("episode_id")
    )
    alert_events = (
        flag_events.join(flags.filter("alert").select("flag_id"), on="flag_id")
        .select("system", "event_id")
        .unique()
    )
    legit = events.join(truth.select("system", "event_id"), on=["system", "event_id"], how="anti")
    legit_flagged = legit.join(alert_events, on=["system", "event_id"], how="semi").height
    with_truth_days = per_day.filter(pl.col("r") > 0)
    top_k = ranked.filter(pl.col("rank") <= budget)
    top_k_legitimate = int((~top_k["positive"]).sum())
    overall: dict[str, float | int | None] = {
        "days": per_day.height,
        "flags": flags.height,
        "alerts": int(flags["alert"].sum()),
        "episodes": episodes.height,
        "caught_within_budget": int(episodes["caught"].sum()),
        "share_caught_within_budget": _mean(episodes["caught"].cast(pl.Float64)),
        "mean_precision_at_k": _mean(per_day["precision_at_k"]),
        "mean_r_precision": _mean(with_truth_days["r_precision"]),
        "episode_roc_auc": _auc(ranked["positive"], ranked[score_column]),
        "legitimate_accesses": legit.height,
        "legitimate_accesses_flagged": legit_flagged,
        "share_legitimate_flagged": legit_flagged / legit.height if legit.height else None,
        "pc_b_episodes": pc_b.height,
        "pc_b_worst_rank": _worst(pc_b["rank"]),
        "flags_per_day": flags.height / per_day.height if per_day.height else None,
        "top_k_flags": top_k.height,
        "top_k_legitimate": top_k_legitimate,
        "share_top_k_legitimate": top_k_legitimate / top_k.height if top_k.height else None,
    }
    false_positives = false_positive_families(top_k.filter(~pl.col("positive")), roles)
    return Evaluation(
        budget, threshold, per_day, per_scenario, pc_b, overall, false_positives, gap_result
    )


def as_entries(
    flags: pl.DataFrame, flag_events: pl.DataFrame, score_column: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The budget queue's entries as if each were one flag (named by its strongest flag's id),
    holding every event of its flags."""
    from access_audit.review.grouping import budget_queue

    queue = budget_queue(flags.lazy(), score_column).collect()
    entries = (
        queue.group_by("day", "entry_id")
        .agg(pl.all().sort_by("rank_in_entry").first(), alert_any=pl.col("alert").any())
        .with_columns(flag_id="entry_id", alert="alert_any")
        .select(flags.columns)
    )
    events = (
        flag_events.join(queue.select("flag_id", "entry_id"), on="flag_id")
        .select("system", "event_id", flag_id="entry_id")
        .unique()
    )
    return entries, events


def false_positive_families(legitimate: pl.DataFrame, roles: pl.DataFrame | None) -> pl.DataFrame:
    """Legitimate flags grouped by the user's role and the flag's reason codes, largest first."""
    if roles is None:
        roles = pl.DataFrame(schema={"user_id": pl.String, "role": pl.String})
    return (
        legitimate.join(roles.select("user_id", "role").unique("user_id"), on="user_id", how="left")
        .with_columns(
            role=pl.col("role").fill_null("(unknown)"),
            reasons=pl.col("reasons")
            .list.eval(pl.element().struct.field("code"))
            .list.sort()
            .list.join("+"),
        )
        .group_by("role", "reasons")
        .agg(flags=pl.len())
        .sort(["flags", "role", "reasons"], descending=[True, False, False])
    )


def _mean(series: pl.Series) -> float | None:
    values = series.drop_nulls()
    return float(values.mean()) if len(values) else None  # type: ignore[arg-type]


def _worst(ranks: pl.Series) -> int | None:
    """The worst rank, or None when there is none or some episode was never flagged."""
    if ranks.is_empty() or ranks.null_count():
        return None
    return int(ranks.cast(pl.Int64).max())  # type: ignore[arg-type]
