"""The detail of one flag or one access: what `access-audit explain ID` shows. Pure frame functions
over the stores; the caller decides what to print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from access_audit.errors import AccessAuditError
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


def _annotated(
    events: pl.LazyFrame, explanations: pl.LazyFrame, indicators: pl.LazyFrame
) -> pl.LazyFrame:
    keys = ["system", "event_id"]
    why = explanations.group_by(keys).agg(explanations=pl.col("detail").sort())
    risk = indicators.group_by(keys).agg(
        indicators=pl.struct("code", "points", "evidence").sort_by("points", descending=True)
    )
    return events.join(why, on=keys, how="left").join(risk, on=keys, how="left")


def flag_detail(
    flag_id: str,
    flags: pl.LazyFrame,
    flag_events: pl.LazyFrame,
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    indicators: pl.LazyFrame,
    training: pl.LazyFrame,
    reviews: pl.LazyFrame,
) -> FlagDetail | None:
    flag = flags.filter(pl.col("flag_id") == flag_id).collect()
    if flag.is_empty():
        return None
    record = flag.join(current_reviews(reviews).collect(), on="flag_id", how="left").to_dicts()[0]
    record["status"] = record.get("status") or "open"
    annotated = held_accesses([flag_id], flag_events, events, explanations, indicators)
    user = record["user_id"]
    return FlagDetail(
        flag=record,
        events=annotated.drop("flag_ids"),
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


def held_accesses(
    flag_ids: Sequence[str],
    flag_events: pl.LazyFrame,
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    indicators: pl.LazyFrame,
) -> pl.DataFrame:
    """The accesses the flags hold, oldest first, each once with its explanations, indicators
    and the ``flag_ids`` (of those given) that hold it: a flag's or a case's evidence."""
    keys = ["system", "event_id"]
    held = flag_events.filter(pl.col("flag_id").is_in(list(flag_ids)))
    days = held.select("day").unique()
    holding = held.group_by(keys).agg(flag_ids=pl.col("flag_id").unique().sort())
    accesses = (
        events.join(days, on="day", how="semi")
        .select(EVENT_FIELDS)
        .join(holding, on=keys, how="inner")
    )
    return (
        _annotated(
            accesses,
            explanations.join(days, on="day", how="semi"),
            indicators.join(days, on="day", how="semi"),
        )
        .sort("occurred_at", "system", "event_id")
        .collect()
    )


def event_detail(
    identifier: str,
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    indicators: pl.LazyFrame,
    flags: pl.LazyFrame,
    flag_events: pl.LazyFrame,
    system: str | None = None,
) -> EventDetail | None:
    """An access by `event_id`, or `SYSTEM:event_id` when ids repeat across systems, or by
    `event_id` with ``system`` given apart (ids may hold ``:`` themselves).

    Without ``system`` every reading of the identifier is tried (the whole of it as an event id,
    and each ``:`` as the separator); more than one access matching is an error, never a guess."""
    if system is not None:
        match = (pl.col("system") == system) & (pl.col("event_id") == identifier)
    else:
        match = pl.col("event_id") == identifier
        for cut in (i for i, character in enumerate(identifier) if character == ":"):
            match |= (pl.col("system") == identifier[:cut]) & (
                pl.col("event_id") == identifier[cut + 1 :]
            )
    found = events.filter(match).select(EVENT_FIELDS).sort("system", "event_id").collect()
    if found.is_empty():
        return None
    if found.height > 1:
        raise AccessAuditError(
            f"{found.height} accesses match {identifier} (in systems "
            f"{', '.join(found['system'].unique(maintain_order=True).to_list())}): "
            "name one with --system SYSTEM and its event id"
        )
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
    )
