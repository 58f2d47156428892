"""The detail of one flag or one access: what `access-audit explain ID` shows. Pure frame functions
over the stores; the caller decides what to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from access_audit.review.queue import current_reviews

EVENT_FIELDS = [
    "system",
    "event_id",
    "occurred_at",
    "user_id",
    "action",
    "record_type",
    "record_id",
    "reason_code",
    "justification",
    "day",
]


@dataclass(frozen=True)
class FlagDetail:
    flag: dict[str, Any]
    events: pl.DataFrame
    """Each access with its explanations and indicators."""
    training: pl.DataFrame
    reviews: pl.DataFrame


@dataclass(frozen=True)
class EventDetail:
    event: dict[str, Any]
    explanations: pl.DataFrame
    indicators: pl.DataFrame
    flags: pl.DataFrame
    weak_explanations: pl.DataFrame = field(default_factory=pl.DataFrame)
    """Mined explanations (weaker than any recorded one): kind, detail, strength, support."""


def _no_weak() -> pl.LazyFrame:
    from access_audit.tables import WEAK_EXPLANATIONS

    return pl.LazyFrame(schema=WEAK_EXPLANATIONS.full_schema())


def _annotated(
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    indicators: pl.LazyFrame,
    weak: pl.LazyFrame,
) -> pl.LazyFrame:
    keys = ["system", "event_id"]
    why = explanations.group_by(keys).agg(explanations=pl.col("detail").sort())
    weakly = weak.group_by(keys).agg(
        weak_explanations=pl.struct("kind", "detail", "strength", "support").sort_by(
            ["strength", "kind"], descending=[True, False]
        )
    )
    risk = indicators.group_by(keys).agg(
        indicators=pl.struct("code", "points", "evidence").sort_by("points", descending=True)
    )
    return (
        events.join(why, on=keys, how="left")
        .join(weakly, on=keys, how="left")
        .join(risk, on=keys, how="left")
    )


def flag_detail(
    flag_id: str,
    flags: pl.LazyFrame,
    flag_events: pl.LazyFrame,
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    indicators: pl.LazyFrame,
    training: pl.LazyFrame,
    reviews: pl.LazyFrame,
    weak: pl.LazyFrame | None = None,
) -> FlagDetail | None:
    flag = flags.filter(pl.col("flag_id") == flag_id).collect()
    if flag.is_empty():
        return None
    record = flag.join(current_reviews(reviews).collect(), on="flag_id", how="left").to_dicts()[0]
    record["status"] = record.get("status") or "open"
    held = flag_events.filter(pl.col("flag_id") == flag_id).select("system", "event_id", "day")
    days = held.select("day").unique()
    accesses = (
        events.join(days, on="day", how="semi")
        .join(held.drop("day"), on=["system", "event_id"], how="semi")
        .select(EVENT_FIELDS)
    )
    annotated = (
        _annotated(
            accesses,
            explanations.join(days, on="day", how="semi"),
            indicators.join(days, on="day", how="semi"),
            (weak if weak is not None else _no_weak()).join(days, on="day", how="semi"),
        )
        .sort("occurred_at")
        .collect()
    )
    user = record["user_id"]
    return FlagDetail(
        flag=record,
        events=annotated,
        # a system's audit gap has no user, so no training (a typed null matches nothing)
        training=training.filter(pl.col("user_id") == pl.lit(user, dtype=pl.String))
        .select("course", "completed_at")
        .sort("completed_at", descending=True)
        .collect(),
        reviews=reviews.filter(pl.col("flag_id") == flag_id)
        .sort("reviewed_at")
        .select("review_id", "reviewed_at", "reviewer", "status", "outcome", "purpose", "note")
        .collect(),
    )


def event_detail(
    identifier: str,
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    indicators: pl.LazyFrame,
    flags: pl.LazyFrame,
    flag_events: pl.LazyFrame,
    weak: pl.LazyFrame | None = None,
) -> EventDetail | None:
    """An access by `event_id`, or `SYSTEM:event_id` when ids repeat across systems."""
    system, _, event_id = identifier.rpartition(":")
    match = pl.col("event_id") == event_id
    if system:
        match &= pl.col("system") == system
    found = events.filter(match).select(EVENT_FIELDS).collect()
    if found.is_empty():
        return None
    row = found.row(0, named=True)
    key = (pl.col("system") == row["system"]) & (pl.col("event_id") == row["event_id"])
    holding = flag_events.filter(key).select("flag_id")
    return EventDetail(
        event=row,
        explanations=explanations.filter(key)
        .select("kind", "via", "detail", "valid_from", "valid_to")
        .collect(),
        indicators=indicators.filter(key)
        .select("code", "points", "evidence")
        .sort("points", descending=True)
        .collect(),
        flags=flags.join(holding, on="flag_id", how="semi")
        .select("flag_id", "score", "alert", "day")
        .collect(),
        weak_explanations=(weak if weak is not None else _no_weak())
        .filter(key)
        .select("kind", "via", "detail", "strength", "support", "confidence")
        .sort(["strength", "kind"], descending=[True, False])
        .collect(),
    )
