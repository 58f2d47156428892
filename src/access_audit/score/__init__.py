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
        # ties broken by the event's key: the same first access whatever order the rows came in
        .sort("occurred_at", "system", "event_id")
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


def context_events(scan: Scan, days: Sequence[date], rules: Rules) -> pl.DataFrame:
    """The accesses a chunk of target `days` is scored against: its look-back and the days
    themselves. Searches that opened no record have no subject: nothing to explain or score."""
    first_context = days[0] - timedelta(days=rules.lookback_days)
    in_range = pl.col("day").is_between(first_context, days[-1])
    return (
        scan("access_events")
        .filter(in_range & pl.col("record_id").is_not_null())
        .select(EVENT_COLUMNS)
        .collect()
    )


def explain_targets(
    scan: Scan, events: pl.DataFrame, days: Sequence[date], rules: Rules
) -> pl.DataFrame:
    """Step 1 of a chunk: the explanations of the target days' accesses (`events` is the
    chunk's `context_events`)."""
    inputs = _inputs(scan, events.lazy())
    return explain(inputs, rules, events.lazy().filter(pl.col("day").is_in(days))).collect()


def mark_explained(events: pl.DataFrame, explained_keys: pl.LazyFrame) -> pl.DataFrame:
    """`events` with an `explained` column: whether (system, event_id) is among the keys."""
    keys = explained_keys.select("system", "event_id").unique().with_columns(explained=pl.lit(True))
    # Only the flag column is new: the event columns are shared, not copied.
    explained = (
        events.lazy()
        .select("system", "event_id")
        .join(keys, on=["system", "event_id"], how="left", maintain_order="left")
        .select(pl.col("explained").fill_null(False))
        .collect()
        .to_series()
    )
    return events.with_columns(explained)


def raw_indicators(
    scan: Scan, context: pl.DataFrame, days: Sequence[date], rules: Rules
) -> pl.DataFrame:
    """Step 2 of a chunk: the target days' indicators at their prior weights (`context` is
    the chunk's events with `explained`)."""
    targets = context.lazy().filter(pl.col("day").is_in(days))
    return indicators(_inputs(scan, context.lazy()), rules, targets, context.lazy()).collect()


def finish_scoring(
    scan: Scan,
    context: pl.DataFrame,
    days: Sequence[date],
    rules: Rules,
    raw: pl.DataFrame,
    history: pl.LazyFrame,
    explanations: pl.DataFrame,
) -> Scored:
    """Step 3 of a chunk: mined (weak) explanations, peer weights, episodes, pattern flags and
    coverage. `history` is
    (system, event_id, code) of every indicator over the look-back, the targets' included;
    `explanations` (the targets', with their day) are passed through to the result."""
    inputs = _inputs(scan, context.lazy())
    targets = context.lazy().filter(pl.col("day").is_in(days))
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
        days=list(days),
        explanations=explanations,
        indicators=found.select(INDICATOR_SCHEMA.names()).join(day_of, on=["system", "event_id"]),
        flags=flags.sort("day", "score", "flag_id", descending=[False, True, False]),
        flag_events=events,
        weak_explanations=weak.join(day_of, on=["system", "event_id"]),
        coverage=coverage(context, days, inputs.staff, weak),
    )


def with_day(explanations: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Explanations with the day of the access each explains (their partition)."""
    return explanations.join(events.select("system", "event_id", "day"), on=["system", "event_id"])


def score_days(
    scan: Scan,
    days: Sequence[date],
    rules: Rules | None = None,
) -> Scored:
    """Explain and score the accesses of `days` against the stores `scan` reads.

    The three steps are pure functions of Polars frames, shared with the Spark engine
    (score/spark.py): explain the targets; mark the look-back explained (the targets' new
    explanations, the earlier days' stored ones) and find the raw indicators; weigh them against
    the look-back's indicators (the targets' new ones, the earlier days' stored ones) and flag."""
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
    earlier = pl.col("day").is_between(first_context, days[-1]) & ~pl.col("day").is_in(days)
    events = context_events(scan, days, rules)
    target_count = (
        scan("access_events").filter(pl.col("day").is_in(days)).select(pl.len()).collect().item()
    )
    new_explanations = explain_targets(scan, events, days, rules)
    prior = scan("explanations").filter(earlier).select("system", "event_id")
    context = mark_explained(
        events, pl.concat([new_explanations.lazy().select("system", "event_id"), prior])
    )
    del events
    raw = raw_indicators(scan, context, days, rules)
    history = pl.concat(
        [
            raw.lazy().select("system", "event_id", "code"),
            scan("indicators").filter(earlier).select("system", "event_id", "code"),
        ]
    )
    scored = finish_scoring(
        scan, context, days, rules, raw, history, with_day(new_explanations, context)
    )
    scored.events = target_count
    scored.seconds = time.perf_counter() - started
    return scored


__all__ = [
    "Scored",
    "context_events",
    "explain_targets",
    "finish_scoring",
    "load_rules",
    "mark_explained",
    "raw_indicators",
    "score_days",
    "with_day",
]
