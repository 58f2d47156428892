"""Pure merge rules: how validated rows join what is stored (append for events, upsert otherwise).

Frames in, frames out; the caller reads the stored rows and writes the result.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from access_audit.schema import TableSpec

_ORDER = ("source_file", "source_line")


@dataclass(frozen=True)
class EventMerge:
    """What appending a drop's access events does."""

    new_rows: pl.DataFrame
    duplicates: int
    """Rows already loaded (or repeated within the drop) with the same values: not new events."""
    conflicts: pl.DataFrame
    """Rows whose (system, event_id) is already known with other values: rejected."""


@dataclass(frozen=True)
class UpsertMerge:
    """What upserting a drop's rows of a reference table does."""

    table: pl.DataFrame | None
    """The whole table after the merge; None when nothing changed."""
    changed: int
    unchanged: int
    stale: int
    """Rows older (by their drop's as_of) than the stored row with the same key: kept out."""
    superseded: pl.DataFrame
    """Rows of this drop overtaken by a later row of the same drop with the same key and
    other values."""
    duplicates: int = 0
    """Rows repeating, value for value, the row of the same drop that is kept for their key
    (an export query's join often repeats rows): no-ops."""


def merge_events(incoming: pl.DataFrame, stored: pl.LazyFrame, spec: TableSpec) -> EventMerge:
    """Append semantics: a known (system, event_id) is a duplicate, never a second event.

    A key stored with other values makes the incoming row a conflict. Only the key columns of the
    stored events are scanned in full; their other columns only for keys seen again.
    """
    key = list(spec.key)
    data = spec.column_names
    ordered = incoming.sort(_ORDER)
    first = ordered.unique(subset=key, keep="first", maintain_order=True)
    repeats = ordered.join(first.select(*key, *_ORDER), on=[*key, *_ORDER], how="anti")
    same_in_drop = repeats.join(first.select(data), on=data, how="semi", nulls_equal=True)
    conflicts_in_drop = repeats.join(first.select(data), on=data, how="anti", nulls_equal=True)

    incoming_keys = first.lazy().select(key)
    known_keys = stored.select(key).join(incoming_keys, on=key, how="semi").collect()
    known = (
        stored.select(data).join(known_keys.lazy(), on=key, how="semi").collect()
        if known_keys.height
        else first.clear().select(data)
    )
    already = first.join(known.select(key), on=key, how="semi")
    same_as_stored = already.join(known.select(data), on=data, how="semi", nulls_equal=True)
    conflicts_with_store = already.join(known.select(data), on=data, how="anti", nulls_equal=True)
    new_rows = first.join(known.select(key), on=key, how="anti")
    return EventMerge(
        new_rows=new_rows,
        duplicates=same_in_drop.height + same_as_stored.height,
        conflicts=pl.concat([conflicts_in_drop, conflicts_with_store], how="vertical_relaxed"),
    )


def merge_upsert(incoming: pl.DataFrame, stored: pl.DataFrame, spec: TableSpec) -> UpsertMerge:
    """Upsert on the table's key: the newest drop (``as_of``) wins; equal rows change nothing."""
    key = list(spec.key)
    data = spec.column_names
    ordered = incoming.sort(_ORDER)
    last = ordered.unique(subset=key, keep="last", maintain_order=True)
    repeats = ordered.join(
        last.select(*key, *_ORDER), on=[*key, *_ORDER], how="anti", nulls_equal=True
    )
    superseded = repeats.join(last.select(data), on=data, how="anti", nulls_equal=True)
    duplicates = repeats.height - superseded.height
    unchanged = last.join(stored.select(data), on=data, how="semi", nulls_equal=True)
    candidates = last.join(stored.select(data), on=data, how="anti", nulls_equal=True)
    newer_stored = stored.join(
        candidates.select(*key, pl.col("as_of").alias("incoming_as_of")),
        on=key,
        how="inner",
        nulls_equal=True,
    ).filter(pl.col("as_of") > pl.col("incoming_as_of"))
    winners = candidates.join(newer_stored.select(key), on=key, how="anti", nulls_equal=True)
    stale = candidates.height - winners.height
    if winners.height == 0:
        return UpsertMerge(None, 0, unchanged.height, stale, superseded, duplicates)
    kept = stored.join(winners.select(key), on=key, how="anti", nulls_equal=True)
    table = pl.concat([kept, winners.select(stored.columns)], how="vertical_relaxed")
    return UpsertMerge(table, winners.height, unchanged.height, stale, superseded, duplicates)
