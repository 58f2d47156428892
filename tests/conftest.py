"""Shared test helpers: tiny drops written in any of the three export formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from access_audit.workspace import Workspace

FORMATS = ("csv", "parquet", "jsonl")

Rows = list[dict[str, str | None]]


def write_table(folder: Path, file_stem: str, rows: Rows, file_format: str = "csv") -> Path:
    """Write rows (all text, as an export would) as CSV, Parquet or JSON Lines."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]})
    path = folder / f"{file_stem}.{file_format}"
    if file_format == "csv":
        frame.write_csv(path)
    elif file_format == "parquet":
        frame.write_parquet(path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dicts()), encoding="utf-8")
    return path


def event(event_id: str, occurred_at: str = "2026-11-21T10:00:00Z", **overrides: str | None):
    row: dict[str, str | None] = {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "user_id": "U00001",
        "system": "RMS",
        "action": "view",
        "record_type": "person",
        "record_id": "P0000001",
        "justification": None,
    }
    row.update(overrides)
    return row


STAFF_ROWS: Rows = [
    {"user_id": "U00001", "surname": "Smith", "role": "response_officer", "team_id": "T001"},
    {"user_id": "U00002", "surname": "Khan", "role": "victim_enquiry_desk", "team_id": "T002"},
]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "home")


@pytest.fixture
def make_drop(tmp_path: Path) -> Callable[..., Path]:
    """make_drop(name, {table_file_stem: rows}, file_format) -> the drop folder."""

    def build(name: str, tables: dict[str, Rows], file_format: str = "csv") -> Path:
        folder = tmp_path / "drops" / name
        for stem, rows in tables.items():
            write_table(folder, stem, rows, file_format)
        return folder

    return build


def store_snapshot(workspace: Workspace) -> dict[str, int]:
    """Every stored file under the home's store and its size: what a failed run must not change
    (not the lock, nor ``.verified``: a cache of which files the next check need not re-read)."""
    root = workspace.home / "store"
    return {
        str(p.relative_to(root)): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in (".lock", ".verified")
    }
