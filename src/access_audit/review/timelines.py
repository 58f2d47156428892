"""A flag's two timelines: everything its user opened around the flag, and everyone who opened its
subject. What the review page (``access-audit serve``) draws beside the evidence. Pure frame
functions over the stores; the caller decides what to show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

DAYS_BEFORE = 7
"""How far before the flag's first access each timeline reaches."""
DAYS_AFTER = 7
"""… and after its last access."""

USER_COLUMNS = ["occurred_at", "system", "event_id", "action", "record_type", "record_id"]
SUBJECT_COLUMNS = ["occurred_at", "system", "event_id", "user_id", "action"]


@dataclass(frozen=True)
class Timelines:
    """Both timelines of one flag over [start, end], oldest first, each access marked `explained`
    (some path justifies it) and `in_flag` (it is one of the flag's own accesses)."""

    start: datetime | None
    end: datetime | None
    """None when the flag has no access times."""
    user: pl.DataFrame
    """The flag's user's accesses (empty for a system's audit gap, which has no user)."""
    subject: pl.DataFrame
    """Every user's accesses to the flag's subject record (empty when the subject is not a
    record: a pattern flag, an audit gap)."""


def flag_timelines(
    flag: dict[str, Any],
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    flag_events: pl.LazyFrame,
    *,
    days_before: int = DAYS_BEFORE,
    days_after: int = DAYS_AFTER,
    flag_ids: Sequence[str] | None = None,
) -> Timelines:
    """The timelines of ``flag`` (a row of the ``flags`` table), reading only the days they span.
    A flag without access times has empty timelines. ``flag_ids`` (default: the flag's own id)
    are the flags whose accesses are marked ``in_flag``: a case's flags, when ``flag`` spans a
    case (its user, subject, first and last access)."""
    first, last = flag.get("first_access_at"), flag.get("last_access_at")
    start = first - timedelta(days=days_before) if first is not None else None
    end = last + timedelta(days=days_after) if last is not None else None
    days, window = pl.lit(False), pl.lit(False)
    if start is not None and end is not None:
        days = pl.col("day").is_between(start.date(), end.date())
        window = days & pl.col("occurred_at").is_between(start, end)
    keys = ["system", "event_id"]
    nearby = events.filter(window)
    explained = explanations.filter(days).select(keys).unique().with_columns(explained=pl.lit(True))
    held = (
        flag_events.filter(pl.col("flag_id").is_in(list(flag_ids or [flag["flag_id"]])))
        .select(keys)
        .unique()
        .with_columns(in_flag=pl.lit(True))
    )
    # typed nulls: a missing user or subject matches nothing
    user = pl.lit(flag.get("user_id"), dtype=pl.String)
    subject = (pl.col("record_type") == pl.lit(flag.get("subject_type"), dtype=pl.String)) & (
        pl.col("record_id") == pl.lit(flag.get("subject_id"), dtype=pl.String)
    )
    return Timelines(
        start=start,
        end=end,
        user=_annotated(nearby.filter(pl.col("user_id") == user), explained, held, USER_COLUMNS),
        subject=_annotated(nearby.filter(subject), explained, held, SUBJECT_COLUMNS),
    )


def _annotated(
    accesses: pl.LazyFrame, explained: pl.LazyFrame, held: pl.LazyFrame, columns: list[str]
) -> pl.DataFrame:
    keys = ["system", "event_id"]
    return (
        accesses.select(columns)
        .join(explained, on=keys, how="left")
        .join(held, on=keys, how="left")
        .with_columns(pl.col("explained", "in_flag").fill_null(False))
        .sort("occurred_at", "system", "event_id")
        .collect()
    )
