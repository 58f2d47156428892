"""The synthetic force: deterministic, loadable without rejections, every scenario planted."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from access_audit.errors import AccessAuditError
from access_audit.generate import generate_force
from access_audit.generate.scenarios import SCENARIOS
from access_audit.workspace import Workspace


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def force(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("force") / "drops"
    # spans the autumn clock change (25 October 2026)
    return generate_force(out, staff=80, days=6, seed=3, start=date(2026, 10, 22))


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, force) -> None:
    again = generate_force(tmp_path / "a", staff=80, days=6, seed=3, start=date(2026, 10, 22))
    other = generate_force(tmp_path / "b", staff=80, days=6, seed=4, start=date(2026, 10, 22))
    assert _digest(again.out) == _digest(force.out)
    assert _digest(other.out) != _digest(force.out)


def test_one_drop_per_day_with_split_access_log(force) -> None:
    assert [d.name for d in force.drops] == [f"2026-10-{d}" for d in range(22, 28)]
    first = force.drops[0]
    assert {p.name for p in first.glob("*.csv")} >= {
        "staff.csv",
        "persons.csv",
        "incidents.csv",
        "incident_persons.csv",
        "assignments.csv",
        "calls.csv",
        "shifts.csv",
        "training.csv",
        "access_log_2026-10-22_part1.csv",
        "access_log_2026-10-22_part2.csv",
    }


def test_every_scenario_is_in_truth_and_truth_events_exist(force) -> None:
    truth = pl.read_csv(force.truth_path, infer_schema=False)
    assert set(truth["scenario"]) == {s.name for s in SCENARIOS}
    assert truth["episode_id"].n_unique() == force.episodes
    log = pl.concat(
        [pl.read_csv(p, infer_schema=False) for p in force.out.glob("*/access_log_*.csv")]
    )
    joined = truth.join(log, on=["system", "event_id"], how="left")
    assert joined["occurred_at"].null_count() == 0
    assert (joined["user_id"] == joined["user_id_right"]).all()
    person_rows = joined.filter(pl.col("person_id").is_not_null())
    assert (person_rows["person_id"] == person_rows["record_id"]).all()


def test_pc_b_follows_a_call_from_a_domestic_abuse_victim(force) -> None:
    truth = pl.read_csv(force.truth_path, infer_schema=False).filter(pl.col("scenario") == "pc_b")
    calls = pl.concat([pl.read_csv(p, infer_schema=False) for p in force.out.glob("*/calls.csv")])
    persons = pl.read_csv(force.drops[0] / "persons.csv", infer_schema=False)
    staff = pl.read_csv(force.drops[0] / "staff.csv", infer_schema=False)
    row = truth.row(0, named=True)
    assert staff.filter(pl.col("user_id") == row["user_id"])["role"].item() == "victim_enquiry_desk"
    assert (
        "domestic_abuse_victim"
        in persons.filter(pl.col("person_id") == row["person_id"])["markers"].item()
    )
    assert not calls.filter(
        (pl.col("user_id") == row["user_id"]) & (pl.col("person_id") == row["person_id"])
    ).is_empty()


def test_repeated_autumn_hour_is_written_with_offsets(force) -> None:
    text = "".join(p.read_text() for p in (force.out / "2026-10-25").glob("access_log_*.csv"))
    assert "T01:" in text and "+01:00" in text and "+00:00" in text


def test_ingests_without_rejections_twice_with_identical_counts(tmp_path: Path, force) -> None:
    workspace = Workspace.open(tmp_path / "home")
    first = workspace.ingest(force.drops)
    assert first.ok
    counts = {t.table: t.rows for t in workspace.status().tables}
    assert counts["rejected_rows"] == 0
    assert counts["access_events"] == force.rows["access_log"]
    second = workspace.ingest(force.drops)
    assert second.ok
    assert {t.table: t.rows for t in workspace.status().tables} == counts


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("keep me")
    with pytest.raises(AccessAuditError, match="not empty"):
        generate_force(tmp_path, staff=80, days=5, seed=1)
    assert (tmp_path / "x.txt").read_text() == "keep me"


def test_too_small_a_force_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AccessAuditError, match="--staff"):
        generate_force(tmp_path / "f", staff=5, days=5, seed=1)


@pytest.mark.parametrize(
    ("staff", "days", "seed"), [(60, 3, 3), (60, 4, 3), (40, 3, 2), (40, 4, 5)]
)
def test_a_small_force_plants_what_it_can_and_never_crashes(
    tmp_path: Path, staff: int, days: int, seed: int
) -> None:
    """Regression: `generate --staff 60 --days 3 --seed 3` crashed (ValueError: high <= 0) when a
    scenario found no candidate (no young woman met on an incident, no handled call). A scenario
    the force cannot hold is skipped; the count says how many episodes were planted."""
    made = generate_force(tmp_path / "drops", staff=staff, days=days, seed=seed)
    truth = pl.read_csv(made.truth_path)
    assert made.episodes == truth["episode_id"].n_unique() > 0
