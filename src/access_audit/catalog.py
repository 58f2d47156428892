"""The analysts' DuckDB database: views over one committed generation, rebuilt and swapped in whole.

An analyst may hold ``access-audit.duckdb`` open (DuckDB then refuses any writer), so the job never
writes into it: it builds a new database file beside it and renames it into place. An open session
keeps the file it opened, whose views name the generation it was built on, so it never sees half a
run. Views over the stores are generated here; the analysts' own views live in ``sql/*.sql``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import polars as pl
from polars._typing import PolarsDataType

from access_audit.errors import AccessAuditError
from access_audit.escape import glob_literal
from access_audit.store import Generation
from access_audit.tables import REVIEWS, StoredTable, stored_tables

DATABASE_NAME = "access-audit.duckdb"
# The home the database's views were built for: its views hold absolute paths, so a home that is
# moved or restored elsewhere must rebuild them (see Workspace.open) before anyone reads them.
BUILT_FOR_NAME = f"{DATABASE_NAME}.home"
TEMPORARY_DATABASE = re.compile(rf"^\.{re.escape(DATABASE_NAME)}\.(?P<pid>\d+)\.tmp(\.wal)?$")
"""A database being built by process ``pid``, and DuckDB's write-ahead log beside it."""
# The oldest DuckDB storage format the analysts' clients must open: the DuckDB shell on PyPI
# (duckdb-cli 1.4.4 to 1.5.x) reads formats up to 1.4's, not the 2.x default.
STORAGE_COMPATIBILITY = "v1.4.0"


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


def _files_under(folder: Path, pattern: str) -> str:
    """A DuckDB file pattern for the files under ``folder``: the folder's own path is escaped, so
    it matches this home's files and never another's (``--home '/x/star*'``)."""
    return sql_string_literal(glob_literal(folder) + "/" + pattern)


def _partition_column_sql(table: StoredTable) -> str:
    """The partition column, read from the innermost ``name=value`` folder of each file.

    DuckDB's own hive partitioning parses every ``name=value`` folder of the whole path, so a home
    under ``/data/day=x/`` would add (or overwrite) columns; only the file's own folder counts."""
    name = table.partition_by
    assert name is not None and table.partition_dtype is not None
    pattern = "/" + re.escape(name) + "=([^/]*)/[^/]*$"
    return (
        f"CAST(regexp_extract(filename, {sql_string_literal(pattern)}, 1) AS "
        f"{duckdb_type(table.partition_dtype)}) AS {quote_identifier(name)}"
    )


def _table_view_sql(table: StoredTable, generation: Generation | None) -> str:
    """A view over the table's files in one generation (typed and empty if it has none)."""
    name = quote_identifier(table.name)
    if generation is None or not generation.table_files(table.name):
        columns = ", ".join(
            f"CAST(NULL AS {duckdb_type(dtype)}) AS {quote_identifier(column)}"
            for column, dtype in table.full_schema().items()
        )
        return f"CREATE VIEW {name} AS SELECT {columns} WHERE false"
    files = _files_under(generation.table_path(table.name), "**/*.parquet")
    if table.partition_by is None:
        return f"CREATE VIEW {name} AS SELECT * FROM read_parquet({files}, union_by_name = true)"
    return (
        f"CREATE VIEW {name} AS SELECT * EXCLUDE (filename), {_partition_column_sql(table)} "
        f"FROM read_parquet({files}, union_by_name = true, filename = true, "
        "hive_partitioning = false)"
    )


def _runs_view_sql(runs_dir: Path) -> str:
    if any(runs_dir.glob("*.json")):
        return (
            f"CREATE VIEW runs AS SELECT * FROM read_json({_files_under(runs_dir, '*.json')}, "
            "format = 'auto', union_by_name = true) ORDER BY started_at"
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


def _case_log_sql(home: Path) -> str:
    """The case log (``review/case_log.py``): assignments and decisions on cases."""
    from access_audit.review.case_log import CASE_LOG_SCHEMA, CASES_LOG

    columns = {name: duckdb_type(dtype) for name, dtype in CASE_LOG_SCHEMA.items()}
    raw = {
        **{name: kind for name, kind in columns.items() if not kind.endswith("[]")},
        "flag_ids": "VARCHAR[]",
        "review_ids": "VARCHAR[]",
        "recorded_at": "VARCHAR",
        "due": "VARCHAR",
    }
    select = ", ".join(
        f"CAST({quote_identifier(c)} AS {kind}) AS {quote_identifier(c)}"
        for c, kind in columns.items()
    )
    return _ledger_view_sql("case_log", home / "audit" / CASES_LOG, raw, select, "case_id")


def analyst_view_files() -> list[tuple[str, str]]:
    """(file name, SQL) of the analysts' views, in the order their names sort."""
    folder = resources.files("access_audit") / "sql"
    found = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def check_home_path(home: Path) -> None:
    """Refuse a home DuckDB cannot keep a database in, before anything is written there.

    DuckDB opens a path holding a backslash as if it were a folder separator."""
    if "\\" in str(home):
        raise AccessAuditError(
            f"{home}: DuckDB cannot open files under a path holding a backslash; "
            "choose another folder for the home"
        )


def build_catalog(
    home: Path, generation: Generation | None, runs_dir: Path, *, case_span_days: int = 30
) -> Path:
    """Write a fresh database of views, copy it beside the old one, then rename it into place.

    It is written in a private scratch folder first: DuckDB cannot write a database (its WAL)
    under a path holding ``?``, though it reads one there. A failed build (a full disk) leaves
    no temporary file behind."""
    target = home / DATABASE_NAME
    temporary = home / f".{DATABASE_NAME}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="access-audit-catalog-") as scratch:
            built = Path(scratch) / DATABASE_NAME
            _write_views(built, home, generation, runs_dir, case_span_days)
            shutil.copyfile(built, temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    from access_audit.private_files import write_private_text

    write_private_text(home / BUILT_FOR_NAME, str(home))
    return target


def built_for(home: Path) -> str | None:
    """The home path the database in ``home`` was built for; ``None`` if it does not say."""
    try:
        return (home / BUILT_FOR_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _write_views(
    path: Path, home: Path, generation: Generation | None, runs_dir: Path, case_span_days: int
) -> None:
    import duckdb

    connection = duckdb.connect(
        str(path), config={"storage_compatibility_version": STORAGE_COMPATIBILITY}
    )
    try:
        for table in stored_tables():
            connection.execute(_table_view_sql(table, generation))
        connection.execute(_runs_view_sql(runs_dir))
        connection.execute(_reviews_sql(home))
        connection.execute(_flag_views_sql(home))
        connection.execute(_case_log_sql(home))
        # the settings the case views group by (sql/40_cases.sql), as the home had them
        connection.execute(
            "CREATE TABLE case_settings AS SELECT CAST($span AS INTEGER) AS span_days",
            {"span": case_span_days},
        )
        number = generation.number if generation is not None else 0
        connection.execute(
            "CREATE TABLE catalog_info AS SELECT CAST($number AS INTEGER) AS generation, "
            "CAST($path AS VARCHAR) AS generation_path, CAST($home AS VARCHAR) AS home, "
            "now() AS built_at",
            {
                "number": number,
                "home": str(home),
                "path": str(generation.path) if generation is not None else None,
            },
        )
        for _name, sql in analyst_view_files():
            connection.execute(sql)
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
