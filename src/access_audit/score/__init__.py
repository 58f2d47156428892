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

from access_audit.score.explain import EXPLANATION_SCHEMA, Inputs, explain
from access_audit.score.flags import FLAG_EVENT_SCHEMA, FLAG_SCHEMA, episodes
from access_audit.score.indicators import INDICATOR_SCHEMA, indicators
from access_audit.score.mined import WEAK_SCHEMA, mine, weakened
from access_audit.score.patterns import patterns
from access_audit.score.peers import peer_weighted
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


def coverage(
    context: pl.DataFrame,
    days: Sequence[date],
    staff: pl.LazyFrame,
    weak: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Share of accesses explained: overall, for first accesses (a user's first access to a
    subject in the look-back), and by role; `with_mined` counts those explained or weakly
    explained by a mined kind (`weak`)."""
    weakly = (
        (weak if weak is not None else pl.DataFrame(schema=WEAK_SCHEMA))
        .select("system", "event_id")
        .unique()
        .with_columns(weakly=pl.lit(True))
    )
    with_first = (
        context.filter(pl.col("record_id").is_not_null())
        .sort("occurred_at")
        .with_columns(first=pl.int_range(pl.len()).over("user_id", "record_type", "record_id") == 0)
        .filter(pl.col("day").is_in(list(days)))
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


def score_days(
    scan: Scan,
    days: Sequence[date],
    rules: Rules | None = None,
) -> Scored:
    """Explain and score the accesses of `days` against the stores `scan` reads."""
    started = time.perf_counter()
    rules = rules or load_rules()
    days = sorted(set(days))
    if not days:
        empty = Scored(
            [],
            pl.DataFrame(schema=EXPLANATION_SCHEMA),
            pl.DataFrame(schema=INDICATOR_SCHEMA),
            pl.DataFrame(schema=FLAG_SCHEMA),
            pl.DataFrame(schema=FLAG_EVENT_SCHEMA),
            pl.DataFrame(),
        )
        return empty
    first_context = days[0] - timedelta(days=rules.lookback_days)
    in_range = pl.col("day").is_between(first_context, days[-1])
    in_targets = pl.col("day").is_in(days)
    # Searches that opened no record have no subject: nothing to explain or score.
    context_events = (
        scan("access_events")
        .filter(in_range & pl.col("record_id").is_not_null())
        .select(EVENT_COLUMNS)
        .collect()
    )
    target_count = scan("access_events").filter(in_targets).select(pl.len()).collect().item()
    inputs = _inputs(scan, context_events.lazy())
    new_explanations = explain(inputs, rules, context_events.lazy().filter(in_targets)).collect()
    prior = scan("explanations").filter(in_range & ~in_targets).select("system", "event_id")
    explained_keys = (
        pl.concat([new_explanations.lazy().select("system", "event_id"), prior])
        .unique()
        .with_columns(explained=pl.lit(True))
    )
    # Only the flag column is new: the event columns are shared, not copied.
    explained = (
        context_events.lazy()
        .select("system", "event_id")
        .join(explained_keys, on=["system", "event_id"], how="left", maintain_order="left")
        .select(pl.col("explained").fill_null(False))
        .collect()
        .to_series()
    )
    context = context_events.with_columns(explained)
    del context_events, explained
    inputs = _inputs(scan, context.lazy())
    targets = context.lazy().filter(in_targets)
    raw = indicators(inputs, rules, targets, context.lazy()).collect()
    history = pl.concat(
        [
            raw.lazy().select("system", "event_id", "code"),
            scan("indicators").filter(in_range & ~in_targets).select("system", "event_id", "code"),
        ]
    )
    weak = mine(inputs, rules, context.lazy(), days).collect()
    found = weakened(
        peer_weighted(raw.lazy(), history, context.lazy(), targets, inputs.staff, rules),
        weak.lazy(),
        rules,
    ).collect()
    flag_frame, flag_events = episodes(targets, found.lazy(), rules)
    pattern_flags, pattern_events = patterns(
        targets, context.lazy(), inputs.persons, inputs.staff, rules
    )
    flags = pl.concat([flag_frame.collect().cast(FLAG_SCHEMA), pattern_flags])
    events = pl.concat([flag_events.collect().cast(FLAG_EVENT_SCHEMA), pattern_events])
    day_of = context.select("system", "event_id", "day")
    return Scored(
        days=days,
        explanations=new_explanations.join(day_of, on=["system", "event_id"]),
        indicators=found.select(INDICATOR_SCHEMA.names()).join(day_of, on=["system", "event_id"]),
        flags=flags.sort("day", "score", "flag_id", descending=[False, True, False]),
        flag_events=events,
        weak_explanations=weak.join(day_of, on=["system", "event_id"]),
        coverage=coverage(context, days, inputs.staff, weak),
        events=target_count,
        seconds=time.perf_counter() - started,
    )


__all__ = ["Scored", "load_rules", "score_days"]
