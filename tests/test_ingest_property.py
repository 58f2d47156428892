"""Property: whatever a force sends, every delivered row is accounted for and nothing crashes.

For every table of the export bundle, in CSV, JSON Lines and Parquet, hostile rows (exact and
conflicting duplicates, implausible and malformed timestamps, huge integers, unicode, markup,
quotes, line breaks) and hostile lines (blank, a field too many or too few, a stray quote, bytes
that are not UTF-8, JSON that is not an object) must give

    delivered rows = loaded + unchanged + stale + duplicates + rejected

with no traceback: only an AccessAuditError for a whole-file problem.

60 examples by default; ``ACCESS_AUDIT_HYPOTHESIS=thorough`` runs 500.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_case
from hypothesis import strategies as st

from access_audit.schema import ACCESS_LOG, KNOWN_MARKERS, TABLES, Column, TableSpec
from access_audit.workspace import Workspace
from conftest import event, write_table

settings.register_profile(
    "ingest-fast",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ingest-thorough", parent=settings.get_profile("ingest-fast"), max_examples=500
)
PROFILE = (
    "ingest-thorough" if os.environ.get("ACCESS_AUDIT_HYPOTHESIS") == "thorough" else "ingest-fast"
)

DROP = "2026-11-21"
HOSTILE_VALUES = (
    "",
    "   ",
    "  padded  ",
    "[bold red]boom[/]",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://x")',
    '"quoted"',
    "a,b",
    "line\nbreak",
    "cr\rinside",
    "O'Brien",
    "9007199254740993",
    "9007199254740992",
    "123456789012345678901234567890",
    "-0",
    "1e400",
    "NULL",
    "\u202eevil",
    "😀 ünïcödé",
    "tab\there",
)
TIMESTAMPS = (
    "2026-11-21T10:00:00Z",
    "2026-11-21T10:00:00+01:00",
    "2026-11-21 10:00",
    "2026-11-21T10:00:00.123456-05:30",
    "0001-01-01T00:00:00+01:00",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:00:00-02:00",
    "2100-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2026-11-21T10:00:00+99:00",
    "2026-11-21T10:00:00-1401",
    "2026-10-25T01:30:00",
    "2026-03-29T01:30:00",
    "2026-02-30T10:00:00",
    "2026-11-21T24:00:00",
    "yesterday",
)


def _column_values(column: Column) -> st.SearchStrategy[str | None]:
    hostile = st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=8), st.none())
    if column.kind == "timestamp":
        plain = st.sampled_from(TIMESTAMPS)
    elif column.kind == "date":
        plain = st.one_of(
            st.dates().map(lambda d: d.isoformat()),
            st.sampled_from(["2026-02-30", "1/2/2026", "0000-01-01", "+10000-01-01"]),
        )
    elif column.kind == "enum":
        plain = st.sampled_from([*column.choices, *(c.upper() for c in column.choices), "bogus"])
    elif column.kind == "markers":
        plain = st.lists(st.sampled_from([*KNOWN_MARKERS, "other", " "]), max_size=3).map(";".join)
    else:
        plain = st.sampled_from(["K1", "K2", " k1 ", "U00001", "P0000001", "search"])
    return st.one_of(plain, plain, hostile)


def _clean_values(column: Column) -> st.SearchStrategy[str | None]:
    """Values a careful export would hold, so repeats are loadable duplicates, not rejections."""
    if column.kind == "timestamp":
        return st.sampled_from(TIMESTAMPS[:4])
    if column.kind == "date":
        return st.sampled_from(["2026-11-20", "1990-02-03"])
    if column.kind == "enum":
        return st.sampled_from(column.choices)
    if column.kind == "markers":
        return st.sampled_from(["", "child", "vulnerable_adult;child"])
    if column.name == "team_id":  # assignments: exactly one of user_id and team_id
        return st.none()
    if column.name == "action":
        return st.just("view")
    return st.sampled_from(["K1", "K2", "P0000001"])


@st.composite
def _rows(draw: st.DrawFn, spec: TableSpec) -> list[dict[str, str | None]]:
    """Rows whose keys collide often (conflicting duplicates), plus exact repeats."""
    hostile = st.fixed_dictionaries({c.name: _column_values(c) for c in spec.columns})
    clean = st.fixed_dictionaries({c.name: _clean_values(c) for c in spec.columns})
    base = draw(st.lists(st.one_of(clean, hostile), min_size=0, max_size=8))
    if not base:
        return base
    repeats = draw(st.lists(st.integers(0, len(base) - 1), max_size=4))
    rows = list(base)
    for index in repeats:
        rows.insert(draw(st.integers(0, len(rows))), dict(base[index]))
    return rows


@dataclass(frozen=True)
class Delivery:
    data: bytes
    delivered: int


def _hostile_csv_lines(spec: TableSpec) -> list[tuple[bytes, int]]:
    """(line, rows it delivers): blank lines deliver none; every other line one."""
    fields = len(spec.columns)
    safe = ",".join(["x"] * fields).encode()
    return [
        (b"", 0),
        (b"   ", 0),
        (safe + b",surplus", 1),
        (b",".join([b"x"] * max(fields - 1, 1)), 1),
        (b'x"y' + safe[1:], 1),
        (b'"unclosed' + safe[1:], 1),
        (b"\xff\xfe" + safe, 1),
    ]


def _csv(rows: list[dict[str, Any]], spec: TableSpec, draw: st.DrawFn) -> Delivery:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(spec.column_names)
    lines = [buffer.getvalue().encode()]
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([row[c] for c in spec.column_names])
        lines.append(buffer.getvalue().encode())
    hostile = draw(st.lists(st.sampled_from(_hostile_csv_lines(spec)), max_size=4))
    for line, _ in hostile:
        lines.insert(draw(st.integers(1, len(lines))), line + b"\n")
    data = b"".join(lines)
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    elif b"\r" not in data and data.count(b"\n") == len(lines) and draw(st.booleans()):
        data = data.replace(b"\n", b"\r")  # old Mac line endings, when no value breaks a line
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return Delivery(data, len(rows) + sum(n for _, n in hostile))


def _jsonl(rows: list[dict[str, Any]], draw: st.DrawFn) -> Delivery:
    lines = []
    for row in rows:
        # ASCII digits only: str.isdigit() is true of '¹', which int() cannot read
        as_json = {
            k: int(v)
            if isinstance(v, str) and v.isascii() and v.isdigit() and draw(st.booleans())
            else v
            for k, v in row.items()
        }
        lines.append(json.dumps(as_json, ensure_ascii=draw(st.booleans())).encode())
    hostile = draw(
        st.lists(
            st.sampled_from(
                [(b"", 0), (b"not json", 1), (b"[1, 2]", 1), (b'{"a": ', 1), (b'{"\xff": 1}', 1)]
            ),
            max_size=4,
        )
    )
    for line, _ in hostile:
        lines.insert(draw(st.integers(0, len(lines))), line)
    return Delivery(
        b"".join(line + b"\n" for line in lines), len(rows) + sum(n for _, n in hostile)
    )


def _parquet(rows: list[dict[str, Any]], spec: TableSpec) -> Delivery:
    buffer = io.BytesIO()
    frame = pl.DataFrame(rows, schema={c: pl.String for c in spec.column_names}, orient="row")
    frame.write_parquet(buffer)
    return Delivery(buffer.getvalue(), len(rows))


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[TableSpec, str, Delivery]:
    spec = draw(st.sampled_from(TABLES))
    file_format = draw(st.sampled_from(["csv", "jsonl", "parquet"]))
    rows = draw(_rows(spec))
    if file_format == "csv":
        delivery = _csv(rows, spec, draw)
    elif file_format == "jsonl":
        delivery = _jsonl(rows, draw)
    else:
        delivery = _parquet(rows, spec)
    return spec, file_format, delivery


@settings(parent=settings.get_profile(PROFILE))
@given(_deliveries())
def test_every_delivered_row_is_loaded_a_duplicate_or_rejected(
    case: tuple[TableSpec, str, Delivery],
) -> None:
    spec, file_format, delivery = case
    with tempfile.TemporaryDirectory() as folder:
        drop = Path(folder) / "drops" / DROP
        drop.mkdir(parents=True)
        if spec is not ACCESS_LOG:
            write_table(drop, "access_log", [event("E-good")])
        file_name = f"{spec.name}_hostile.{file_format}"
        (drop / file_name).write_bytes(delivery.data)
        workspace = Workspace.open(Path(folder) / "home")
        # The analysts' DuckDB file is not what this property is about, and building it per
        # example would be most of the test's time.
        with mock.patch.object(Workspace, "refresh_catalog"):
            report = workspace.ingest([drop])
        note_case(f"{file_format}: {'whole file refused' if report.failed else 'loaded'}")
        if report.failed:
            # A whole-file problem: one line naming the file, never a bug's traceback.
            assert [f.error.startswith(f"{file_name}: ") for f in report.failed] == [True]
            assert workspace.generation() is None
            return
        load = report.loaded[0].tables.get(spec.name)
        read = load.rows_read if load else 0
        assert read == delivery.delivered
        if load is None:
            return
        note_case("some rows rejected" if load.rejected_rows else "no row rejected")
        note_case("some duplicates" if load.duplicates else "no duplicate")
        accounted = load.loaded + load.unchanged + load.stale + load.duplicates
        assert read == accounted + load.rejected_rows
        rejected = workspace.rejected_rows().filter(pl.col("table_name") == spec.name)
        assert rejected.select("source_file", "source_line").unique().height == load.rejected_rows
        stored = workspace.scan(spec.store).filter(pl.col("source_file") == file_name)
        assert stored.collect().height == load.loaded
