"""Every stored table's name, Polars schema and partitioning: one registry for scans and views.

Later stages register their own outputs here (``register``), so the workspace can scan, and the
DuckDB catalog can expose, any stored table, empty or not, with its proper types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from access_audit.schema import TABLES, Column, TableSpec

UTC_DATETIME = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class StoredTable:
    name: str
    schema: Callable[[], pl.Schema]
    """Columns in the Parquet files (a hive partition column is not among them)."""
    partition_by: str | None = None
    partition_dtype: pl.DataType | None = None
    description: str = ""

    def full_schema(self) -> pl.Schema:
        """What a scan returns: the file columns plus the partition column."""
        schema = dict(self.schema())
        if self.partition_by is not None and self.partition_dtype is not None:
            schema[self.partition_by] = self.partition_dtype
        return pl.Schema(schema)


def _dtype(column: Column) -> pl.DataType:
    if column.kind == "timestamp":
        return UTC_DATETIME
    if column.kind == "date":
        return pl.Date()
    if column.kind == "markers":
        return pl.List(pl.String)
    return pl.String()


def _provenance() -> dict[str, pl.DataType]:
    return {
        "extra": pl.String(),
        "drop_id": pl.String(),
        "source_file": pl.String(),
        "source_line": pl.Int64(),
        "run_id": pl.String(),
        "as_of": UTC_DATETIME,
    }


def export_table_schema(spec: TableSpec) -> pl.Schema:
    """A loaded export table: its typed spec columns, then where each row came from."""
    return pl.Schema({**{c.name: _dtype(c) for c in spec.columns}, **_provenance()})


def _export_table(spec: TableSpec) -> StoredTable:
    if spec.mode == "append":
        return StoredTable(
            spec.store,
            lambda: export_table_schema(spec),
            partition_by="day",
            partition_dtype=pl.Date(),
            description=spec.description,
        )
    return StoredTable(spec.store, lambda: export_table_schema(spec), description=spec.description)


LOADED_FILES = StoredTable(
    "loaded_files",
    lambda: pl.Schema(
        {
            "drop_id": pl.String(),
            "file": pl.String(),
            "table_name": pl.String(),
            "sha256": pl.String(),
            "bytes": pl.Int64(),
            "rows": pl.Int64(),
            "run_id": pl.String(),
            "loaded_at": UTC_DATETIME,
        }
    ),
    description="Every file loaded, with its checksum: a file seen again is skipped.",
)

REJECTED_ROWS = StoredTable(
    "rejected_rows",
    lambda: pl.Schema(
        {
            "run_id": pl.String(),
            "drop_id": pl.String(),
            "table_name": pl.String(),
            "source_file": pl.String(),
            "source_line": pl.Int64(),
            "column": pl.String(),
            "reason": pl.String(),
            "raw_value": pl.String(),
            "raw_row": pl.String(),
            "rejected_at": UTC_DATETIME,
        }
    ),
    description="Rows that could not be used: file, line, column, reason and the raw values.",
)

REASON = pl.Struct({"code": pl.String(), "text": pl.String(), "weight": pl.Float64()})

EXPLANATIONS = StoredTable(
    "explanations",
    lambda: pl.Schema(
        {
            "system": pl.String(),
            "event_id": pl.String(),
            "kind": pl.String(),
            "via": pl.String(),
            "detail": pl.String(),
            "valid_from": UTC_DATETIME,
            "valid_to": UTC_DATETIME,
        }
    ),
    partition_by="day",
    partition_dtype=pl.Date(),
    description="Every path that makes an access legitimate: kind, via what, and its window.",
)

WEAK_EXPLANATIONS = StoredTable(
    "weak_explanations",
    lambda: pl.Schema(
        {
            "system": pl.String(),
            "event_id": pl.String(),
            "kind": pl.String(),
            "via": pl.String(),
            "detail": pl.String(),
            "strength": pl.Float64(),
            "support": pl.Int64(),
            "confidence": pl.Float64(),
        }
    ),
    partition_by="day",
    partition_dtype=pl.Date(),
    description="Mined explanations of accesses nothing recorded explains: weaker than an "
    "explanation, they lower a score and never make an access explained.",
)

INDICATORS = StoredTable(
    "indicators",
    lambda: pl.Schema(
        {
            "system": pl.String(),
            "event_id": pl.String(),
            "code": pl.String(),
            "points": pl.Float64(),
            "evidence": pl.String(),
        }
    ),
    partition_by="day",
    partition_dtype=pl.Date(),
    description="Risk indicators on each access, explained or not, with their evidence.",
)

FLAGS = StoredTable(
    "flags",
    lambda: pl.Schema(
        {
            "flag_id": pl.String(),
            "kind": pl.String(),
            "user_id": pl.String(),
            "subject_type": pl.String(),
            "subject_id": pl.String(),
            "person_id": pl.String(),
            "first_access_at": UTC_DATETIME,
            "last_access_at": UTC_DATETIME,
            "score": pl.Float64(),
            "rule_score": pl.Float64(),
            "points": pl.Float64(),
            "alert": pl.Boolean(),
            "reasons": pl.List(REASON),
            "event_count": pl.Int64(),
            "unexplained_count": pl.Int64(),
            "model_version": pl.String(),
            "note": pl.String(),
            "rules_version": pl.String(),
            "cleared_at": UTC_DATETIME,
            # a pattern flag's subjects, those its figure counts (null for other kinds, and
            # for pattern flags stored before this column: score.pattern_scope.pattern_subjects)
            "pattern_subjects": pl.List(pl.String()),
            # a pattern flag's look-back: its figure counted the subjects over these many days
            # before its day, and the day (null for other kinds, and for pattern flags stored
            # before this column: score.pattern_scope.pattern_windows)
            "pattern_lookback_days": pl.Int32(),
        }
    ),
    partition_by="day",
    partition_dtype=pl.Date(),
    description="Scored episodes (a user and a subject on a day) and user-level pattern flags.",
)

FLAG_EVENTS = StoredTable(
    "flag_events",
    lambda: pl.Schema({"flag_id": pl.String(), "system": pl.String(), "event_id": pl.String()}),
    partition_by="day",
    partition_dtype=pl.Date(),
    description="The accesses each flag holds.",
)

REVIEWS = StoredTable(
    "reviews",
    lambda: pl.Schema(
        {
            "review_id": pl.String(),
            "flag_id": pl.String(),
            "user_id": pl.String(),
            "subject_id": pl.String(),
            "status": pl.String(),
            "outcome": pl.String(),
            "purpose": pl.String(),
            "note": pl.String(),
            "reviewer": pl.String(),
            "reviewed_at": UTC_DATETIME,
            "suppress_until": UTC_DATETIME,
        }
    ),
    description="Analysts' decisions on flags: append-only history, latest wins.",
)
"""The review history's schema. Not a stored table: decisions live in the review ledger
(``audit/reviews.jsonl``, see ``access_audit.review.log``), outside the generations."""

_REGISTRY: dict[str, StoredTable] = {}


def register(table: StoredTable) -> StoredTable:
    _REGISTRY[table.name] = table
    return table


for _spec in TABLES:
    register(_export_table(_spec))
register(LOADED_FILES)
register(REJECTED_ROWS)
for _table in (EXPLANATIONS, WEAK_EXPLANATIONS, INDICATORS, FLAGS, FLAG_EVENTS):
    register(_table)


def stored_table(name: str) -> StoredTable:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no stored table named {name!r}") from None


def stored_tables() -> list[StoredTable]:
    return list(_REGISTRY.values())


def scan_stored(generation_path: Path, name: str) -> pl.LazyFrame:
    """A stored table of one generation (or staging folder) as a LazyFrame; typed even if empty."""
    table = stored_table(name)
    folder = generation_path / name
    _refuse_strays(generation_path, name)
    if not folder.exists() or next(folder.glob("**/*.parquet"), None) is None:
        return pl.LazyFrame(schema=table.full_schema())
    hive = table.partition_by is not None and table.partition_dtype is not None
    return pl.scan_parquet(
        folder,
        hive_partitioning=hive,
        hive_schema={table.partition_by: table.partition_dtype} if hive else None,  # type: ignore[dict-item]
        schema=table.schema(),
        # files written before a column was added read it as null, not as an error
        missing_columns="insert",
    )


def _refuse_strays(generation_path: Path, name: str) -> None:
    """Never read through a symbolic link (or a FIFO) inside the store: Polars would follow a
    symlinked folder that the manifest check cannot see. StoreDamagedError naming the entry."""
    from access_audit.manifest import stray_problem
    from access_audit.store import StoreDamagedError

    folder = generation_path / name
    if folder.is_symlink():
        problem: str | None = f"{generation_path.name}/{name}: a symbolic link, not in the manifest"
    elif folder.is_dir():
        problem = stray_problem(folder, f"{generation_path.name}/{name}")
    else:
        problem = None
    if problem is not None:
        raise StoreDamagedError(
            f"the store is damaged, so it was not read: {problem} (`access-audit verify` "
            "checks every generation)"
        )
