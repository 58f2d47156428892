"""What a pattern flag's figure counted: the window it counted over.

A pattern flag stores ``pattern_lookback_days``, the look-back its figure was scored with (the
window is those days before the flag's day, and the day itself). A flag stored before the
column existed reads it as null (the store inserts missing columns): its window falls back to
today's ``[scoring] lookback_days`` (``window_stored`` says so, and the pack's scope sentence
says so in words).
"""

from __future__ import annotations

import polars as pl


def pattern_windows(flags: pl.LazyFrame, lookback_days: int) -> pl.LazyFrame:
    """(flag_id, user_id, window_from, window_to, window_days, window_stored): for each pattern
    flag, the days its figure counted over; ``window_stored`` false when the flag predates the
    stored look-back and ``lookback_days`` (today's setting) stands in."""
    stored = pl.col("pattern_lookback_days")
    return (
        flags.filter(pl.col("kind") == "pattern")
        .select(
            "flag_id",
            "user_id",
            window_days=stored.fill_null(lookback_days).cast(pl.Int64),
            window_stored=stored.is_not_null(),
            window_to=pl.col("day"),
        )
        .with_columns(window_from=pl.col("window_to") - pl.duration(days=pl.col("window_days")))
    )
