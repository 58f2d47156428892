"""What a pattern flag's figure counted: the window it counted over and the subjects it counted.

A pattern flag stores both: ``pattern_lookback_days`` (the look-back its figure was scored
with: the window is those days before the flag's day, and the day itself) and
``pattern_subjects``. A flag stored before either column existed reads it as null (the store
inserts missing columns):

- its window falls back to today's ``[scoring] lookback_days`` (``window_stored`` says so, and
  the pack's scope sentence says so in words);
- its subjects are read back from the list its reason ends with (``SUBJECTS_MARKER``, ids
  joined by ", "), which cannot be split on ", " (an id may hold one). Instead the ids of the
  persons the user looked up in the window that appear in the list as whole items are taken,
  and the list is read back only when those ids, sorted and joined as the scorer joined them,
  are the list exactly: then they are the subjects the figure counted, and no others. Otherwise
  (``exact`` false) the list is ambiguous or names a person the window does not hold.
"""

from __future__ import annotations

import polars as pl

from access_audit.score.patterns import SUBJECTS_MARKER

SEPARATOR = ", "


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


def pattern_subjects(flags: pl.LazyFrame, events: pl.LazyFrame, lookback_days: int) -> pl.LazyFrame:
    """(flag_id, subject_id, exact): the subjects each pattern flag's figure counts. From the
    typed ``pattern_subjects`` column (exact); for a flag stored before it, the persons the user
    looked up in the flag's window whose ids are whole items of its reason's list (exact when
    they make up the list exactly; see the module's docstring)."""
    patterned = flags.filter(pl.col("kind") == "pattern")
    stored = (
        patterned.filter(pl.col("pattern_subjects").is_not_null())
        .select("flag_id", subject_id="pattern_subjects")
        .explode("subject_id")
        .filter(pl.col("subject_id").is_not_null() & (pl.col("subject_id") != ""))
        .unique()
        .with_columns(exact=pl.lit(True))
    )
    texts = pl.col("reasons").list.eval(pl.element().struct.field("text"))
    listed = (
        patterned.filter(pl.col("pattern_subjects").is_null())
        .select("flag_id", text=texts)
        .explode("text")
        .filter(pl.col("text").str.contains(SUBJECTS_MARKER, literal=True))
        .select(
            "flag_id",
            listed=pl.col("text").str.splitn(SUBJECTS_MARKER, 2).struct.field("field_1"),
        )
        .unique("flag_id", keep="first")
    )
    windows = pattern_windows(flags, lookback_days).join(listed, on="flag_id")
    looked_up = (
        events.filter((pl.col("record_type") == "person") & pl.col("record_id").is_not_null())
        .select("user_id", "day", subject_id="record_id")
        .join(windows, on="user_id")
        .filter(pl.col("day").is_between("window_from", "window_to"))
        .select("flag_id", "listed", "subject_id")
        .unique()
    )
    item = pl.col("subject_id")
    whole_item = (
        (pl.col("listed") == item)
        | pl.col("listed").str.starts_with(item + SEPARATOR)
        | pl.col("listed").str.ends_with(SEPARATOR + item)
        | pl.col("listed").str.contains(SEPARATOR + item + SEPARATOR, literal=True)
    )
    named = looked_up.filter(whole_item)
    exact = (
        named.group_by("flag_id", "listed")
        .agg(joined=pl.col("subject_id").sort().str.join(SEPARATOR))
        .select("flag_id", exact=pl.col("joined") == pl.col("listed"))
    )
    legacy = named.join(exact, on="flag_id").select("flag_id", "subject_id", "exact")
    return pl.concat([stored, legacy]).sort("flag_id", "subject_id")


def unreadable_subjects(flags: pl.LazyFrame, events: pl.LazyFrame, lookback_days: int) -> list[str]:
    """The pattern flags, stored before ``pattern_subjects``, whose reason's list of subjects
    cannot be read back exactly (an id holding ", " makes it ambiguous, or the list names a
    person the user did not look up in the window)."""
    listed = (
        flags.filter(
            (pl.col("kind") == "pattern")
            & pl.col("pattern_subjects").is_null()
            & pl.col("reasons")
            .list.eval(
                pl.element().struct.field("text").str.contains(SUBJECTS_MARKER, literal=True)
            )
            .list.any()
        )
        .select("flag_id")
        .collect()["flag_id"]
    )
    read = pattern_subjects(flags, events, lookback_days).filter("exact").select("flag_id")
    readable = set(read.collect()["flag_id"].to_list())
    return sorted(set(listed.to_list()) - readable)
