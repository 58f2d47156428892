"""The analysts' DuckDB database: views over one committed generation, rebuilt and swapped in whole.

An analyst may hold ``access-audit.duckdb`` open (DuckDB then refuses any writer), so the job never
writes into it: it builds a new database file beside it and renames it into place. An open session
keeps the file it opened, whose views name the generation it was built on, so it never sees half a
run. Views over the stores are generated here; the analysts' own views live in ``sql/*.sql``.
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import polars as pl
from polars._typing import PolarsDataType

from access_audit.store import Generation
from access_audit.tables import REVIEWS, StoredTable, stored_tables

DATABASE_NAME = "access-audit.duckdb"
TEMPORARY_DATABASE = re.compile(rf"^\.{re.escape(DATABASE_NAME)}\.(?P<pid>\d+)\.tmp(\.wal)?$")
"""A database being built by process ``pid``, and DuckDB's write-ahead log beside it."""


def sql_string_literal(text: str) -> str:
    """A SQL string literal. Only for DDL, which DuckDB cannot parameterise (views, table
    functions' paths); values in queries are always bound as parameters."""
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_type(dtype: PolarsDataType) -> str:
    """The DuckDB type of a Polars dtype, for typed empty views."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.List):
        return duckdb_type(dtype.inner) + "[]"
    if isinstance(dtype, pl.Struct):
        fields = ", ".join(
            f"{quote_identifier(f.name)} {duckdb_type(f.dtype)}" for f in dtype.fields
        )
        return f"STRUCT({fields})"
    simple = {
        pl.String: "VARCHAR",
        pl.Int64: "BIGINT",
        pl.Int32: "INTEGER",
        pl.UInt32: "UINTEGER",
        pl.UInt64: "UBIGINT",
        pl.Float64: "DOUBLE",
        pl.Float32: "FLOAT",
        pl.Boolean: "BOOLEAN",
        pl.Date: "DATE",
    }
    for polars_type, name in simple.items():
        if dtype == polars_type:
            return name
    raise TypeError(f"no DuckDB type for {dtype}")


def _table_view_sql(table: StoredTable, generation: Generation | None) -> str:
    name = quote_identifier(table.name)
    files = generation.table_files(table.name) if generation is not None else []
    if files:
        pattern = str(generation.table_path(table.name) / "**" / "*.parquet")  # type: ignore[union-attr]
        hive = "true" if table.partition_by else "false"
        return (
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet("
            f"{sql_string_literal(pattern)}, hive_partitioning = {hive}, union_by_name = true)"
        )
    columns = ", ".join(
        f"CAST(NULL AS {duckdb_type(dtype)}) AS {quote_identifier(column)}"
        for column, dtype in table.full_schema().items()
    )
    return f"CREATE VIEW {name} AS SELECT {columns} WHERE false"


def _runs_view_sql(runs_dir: Path) -> str:
    if any(runs_dir.glob("*.json")):
        pattern = sql_string_literal(str(runs_dir / "*.json"))
        return (
            "CREATE VIEW runs AS SELECT * FROM read_json("
            f"{pattern}, format = 'auto', union_by_name = true) ORDER BY started_at"
        )
    return (
        "CREATE VIEW runs AS SELECT CAST(NULL AS VARCHAR) AS run_id, CAST(NULL AS VARCHAR) AS "
        "command, CAST(NULL AS VARCHAR) AS drop_id, CAST(NULL AS TIMESTAMPTZ) AS started_at, "
        "CAST(NULL AS TIMESTAMPTZ) AS finished_at, CAST(NULL AS VARCHAR) AS outcome, "
        "CAST(NULL AS VARCHAR) AS error WHERE false"
    )


def _ledger_view_sql(
    name: str, log: Path, columns: dict[str, str], select: str, present: str
) -> str:
    """A view straight over a hash-chained log (``access_audit.ledger``), so a new line shows at
    once without rebuilding the database. ``ignore_errors`` turns a torn (unterminated) last line
    into a row of nulls, which ``present`` (a column every real line has) filters out."""
    if log.exists():
        spec = ", ".join(
            f"{quote_identifier(c)}: {sql_string_literal(t)}" for c, t in columns.items()
        )
        return (
            f"CREATE VIEW {quote_identifier(name)} AS SELECT {select} FROM read_json("
            f"{sql_string_literal(str(log))}, format = 'newline_delimited', "
            f"ignore_errors = true, columns = {{{spec}}}) WHERE {present} IS NOT NULL"
        )
    empty = ", ".join(
        f"CAST(NULL AS {kind}) AS {quote_identifier(column)}" for column, kind in columns.items()
    )
    return (
        f"CREATE VIEW {quote_identifier(name)} AS SELECT {select} FROM (SELECT {empty}) WHERE false"
    )


REVIEW_LOG_COLUMNS = {
    **{column: "VARCHAR" for column in REVIEWS.schema().names()},
    "recorded_uid": "BIGINT",
    "recorded_login": "VARCHAR",
}
VIEW_LOG_COLUMNS = {
    "viewed_at": "VARCHAR",
    "viewer": "VARCHAR",
    "uid": "BIGINT",
    "login": "VARCHAR",
    "command": "VARCHAR",
    "flag_ids": "VARCHAR[]",
    "subject_ids": "VARCHAR[]",
}


def _reviews_sql(home: Path) -> str:
    """Every decision (``tables.REVIEWS`` columns), then the uid and login that recorded it."""
    columns = [
        f"CAST({c} AS TIMESTAMPTZ) AS {c}" if c in ("reviewed_at", "suppress_until") else c
        for c in REVIEW_LOG_COLUMNS
    ]
    return _ledger_view_sql(
        "reviews",
        home / "audit" / "reviews.jsonl",
        REVIEW_LOG_COLUMNS,
        ", ".join(columns),
        "review_id",
    )


def _flag_views_sql(home: Path) -> str:
    select = (
        "CAST(viewed_at AS TIMESTAMPTZ) AS viewed_at, viewer, uid, login, command, flag_ids, "
        "subject_ids"
    )
    return _ledger_view_sql(
        "flag_views", home / "audit" / "flag_views.jsonl", VIEW_LOG_COLUMNS, select, "viewed_at"
    )


def analyst_view_files() -> list[tuple[str, str]]:
    """(file name, SQL) of the analysts' views, in the order their names sort."""
    folder = resources.files("access_audit") / "sql"
    found = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def build_catalog(home: Path, generation: Generation | None, runs_dir: Path) -> Path:
    """Write a fresh database of views beside the old one, then rename it into place. A failed
    build (a full disk) leaves neither the file nor DuckDB's write-ahead log behind."""
    target = home / DATABASE_NAME
    temporary = home / f".{DATABASE_NAME}.{os.getpid()}.tmp"
    write_ahead_log = temporary.with_name(temporary.name + ".wal")
    temporary.unlink(missing_ok=True)
    write_ahead_log.unlink(missing_ok=True)
    try:
        _write_views(temporary, home, generation, runs_dir)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
        write_ahead_log.unlink(missing_ok=True)
    return target


def _write_views(
    temporary: Path, home: Path, generation: Generation | None, runs_dir: Path
) -> None:
    import duckdb

    connection = duckdb.connect(str(temporary))
    try:
        for table in stored_tables():
            connection.execute(_table_view_sql(table, generation))
        connection.execute(_runs_view_sql(runs_dir))
        connection.execute(_reviews_sql(home))
        connection.execute(_flag_views_sql(home))
        number = generation.number if generation is not None else 0
        connection.execute(
            "CREATE TABLE catalog_info AS SELECT CAST($number AS INTEGER) AS generation, "
            "CAST($path AS VARCHAR) AS generation_path, now() AS built_at",
            {
                "number": number,
                "path": str(generation.path) if generation is not None else None,
            },
        )
        for _name, sql in analyst_view_files():
            connection.execute(sql)
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
