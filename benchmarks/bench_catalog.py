"""Benchmark: ways for the analysts' views to name a generation's many Parquet files.

Not a test: it prints timings. The home path (here holding ``*`` and ``[``) must never be read as a
glob, nor its ``name=value`` folders as partitions. Compared, on one table of many files:

- pattern: what ``build_catalog`` writes: the home's path escaped, then ``**/*.parquet``, the day
  read from each file's own folder (``filename``), no hive partitioning;
- file list: every file named in the view, escaped, hive partitioning (the other fix considered);
- hive pattern: the escaped pattern with DuckDB's hive partitioning (the old view, escaped).

    .venv/bin/python benchmarks/bench_catalog.py --days 1500 --parts 4 --rows 500
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from access_audit.catalog import build_catalog, sql_string_literal
from access_audit.escape import glob_literal
from access_audit.store import Generation
from access_audit.tables import stored_table

DAY_QUERY = "SELECT count(*) FROM access_events WHERE day = DATE '2021-06-01'"
ALL_QUERY = "SELECT count(*), count(DISTINCT user_id) FROM access_events"


def _write_access_events(generation: Path, days: int, parts: int, rows: int) -> int:
    table = stored_table("access_events")
    empty = pl.DataFrame(schema=table.schema())
    frame = pl.concat(
        [empty, pl.DataFrame({"user_id": [f"U{i % 300:05d}" for i in range(rows)]})],
        how="diagonal_relaxed",
    )
    files = 0
    for offset in range(days):
        folder = generation / "access_events" / f"day={date(2020, 1, 1) + timedelta(offset)}"
        folder.mkdir(parents=True)
        for part in range(parts):
            frame.write_parquet(folder / f"part-{part}.parquet")
            files += 1
    return files


def _timed(connection: duckdb.DuckDBPyConnection, query: str) -> float:
    started = time.perf_counter()
    connection.execute(query).fetchall()
    return time.perf_counter() - started


def _compare(label: str, source: str) -> None:
    connection = duckdb.connect()
    started = time.perf_counter()
    connection.execute(f"CREATE VIEW access_events AS {source}")
    created = time.perf_counter() - started
    day, full = _timed(connection, DAY_QUERY), _timed(connection, ALL_QUERY)
    print(
        f"{label:12} create view {created:.2f}s, day query {day:.2f}s, full scan {full:.2f}s, "
        f"view SQL {len(source) / 1e3:.0f} kB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=1500)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--rows", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "star*[1]" / "home"
        generation = Generation(1, home / "store" / "g000001")
        files = _write_access_events(generation.path, args.days, args.parts, args.rows)
        started = time.perf_counter()
        database = build_catalog(home, generation, home / "runs")
        built = time.perf_counter() - started
        with duckdb.connect(str(database), read_only=True) as connection:
            view = connection.execute(
                "SELECT sql FROM duckdb_views() WHERE view_name = 'access_events'"
            ).fetchall()[0][0]
        print(f"{files} files; build_catalog (every view) {built:.2f}s")
        _compare("pattern", view.split(" AS ", 1)[1])
        folder = generation.table_path("access_events")
        listed = ", ".join(
            sql_string_literal(glob_literal(f)) for f in generation.table_files("access_events")
        )
        _compare(
            "file list",
            f"SELECT * FROM read_parquet([{listed}], hive_partitioning = true, "
            "union_by_name = true)",
        )
        pattern = sql_string_literal(glob_literal(folder) + "/**/*.parquet")
        _compare(
            "hive pattern",
            f"SELECT * FROM read_parquet({pattern}, hive_partitioning = true, "
            "union_by_name = true)",
        )


if __name__ == "__main__":
    main()
