"""benchmarks/replay.py: a generated force's drops replayed into a longer history (the backfill and
big-night benchmarks' input) load whole, with no row rejected, lost or merged into another copy."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from access_audit.generate import generate_force
from access_audit.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from replay import _shifted, replay_drops


def _shift(values: list[str | None], days: int) -> list[str | None]:
    instant, written = _shifted("t", days)
    frame = pl.DataFrame({"t": values}, schema={"t": pl.String})
    return frame.with_columns(instant).with_columns(written)["t"].to_list()


def test_a_shifted_timestamp_keeps_its_form_and_its_wall_clock_time() -> None:
    assert _shift(
        [
            "2026-10-25T01:30:00+01:00",  # the repeated autumn hour, first time round
            "2026-10-25T01:30:00+00:00",  # and the second
            "2026-11-20T23:30:00",  # local, after the clocks went back
            "2026-12-01T23:30:00Z",  # CAD and telephony: UTC
            None,
        ],
        -70,
    ) == [
        "2026-08-16T01:30:00",
        "2026-08-16T01:30:00",
        "2026-09-11T23:30:00",  # the same local time, so the same local day (and drop)
        "2026-09-22T23:30:00Z",
        None,
    ]
    # Into the spring gap (01:00-02:00 on 29 March 2026 does not exist): an hour later.
    assert _shift(["2026-04-05T01:30:00"], -7) == ["2026-03-29T02:30:00"]
    # Onto the repeated autumn hour: the offset is written, as the export does.
    assert _shift(["2026-11-01T01:30:00"], -7) == ["2026-10-25T01:30:00+01:00"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    generate_force(
        root / "drops", staff=40, days=4, seed=5, start=date(2026, 10, 23), file_format="parquet"
    )
    return root / "drops"


def _access(folder: Path) -> pl.DataFrame:
    return pl.read_parquet(folder / "*" / "access_log_*.parquet")


def test_replayed_drops_load_whole_and_the_newest_copy_is_the_original(
    generated: Path, tmp_path: Path
) -> None:
    drops = replay_drops(generated, tmp_path / "replayed", 3)
    assert [d.name for d in drops] == [
        date.fromordinal(date(2026, 10, 15).toordinal() + i).isoformat() for i in range(12)
    ]
    for original in sorted(generated.iterdir()):
        if original.is_dir():
            for path in original.iterdir():
                assert (tmp_path / "replayed" / original.name / path.name).read_bytes() == (
                    path.read_bytes()
                )
    original, replayed = _access(generated), _access(tmp_path / "replayed")
    assert replayed.height == 3 * original.height
    assert replayed.select(pl.struct("system", "event_id").n_unique()).item() == replayed.height
    incidents = pl.read_parquet(tmp_path / "replayed" / "*" / "incidents.parquet")
    assert (
        incidents["incident_id"].n_unique()
        == 3 * pl.read_parquet(generated / "*" / "incidents.parquet")["incident_id"].n_unique()
    )

    workspace = Workspace.open(tmp_path / "home")
    report = workspace.ingest(drops)
    assert report.ok
    assert not any(load.rejected_rows for drop in report.loaded for load in drop.tables.values())
    assert workspace.scan("access_events").select(pl.len()).collect().item() == replayed.height


def test_replaying_again_writes_the_same_bytes(generated: Path, tmp_path: Path) -> None:
    replay_drops(generated, tmp_path / "a", 2)
    replay_drops(generated, tmp_path / "b", 2)
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.*")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.*")}
    assert first == second
    assert all(
        p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "a").rglob("*")
    )  # owner-only, like the generator's drops
