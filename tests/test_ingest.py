"""The ingest stage through the Workspace: every format, rejection, idempotency and atomicity."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from access_audit.errors import AccessAuditError
from access_audit.workspace import Workspace
from conftest import FORMATS, STAFF_ROWS, event, store_snapshot


def _counts(workspace: Workspace) -> dict[str, int]:
    return {t.table: t.rows for t in workspace.status().tables}


@pytest.mark.parametrize("file_format", FORMATS)
def test_every_table_loads_typed_from_each_format(workspace, make_drop, file_format) -> None:
    drop = make_drop(
        "2026-11-21",
        {
            "access_log": [event("E1"), event("E2", "2026-11-21T23:30:00", action="view_contact")],
            "staff": STAFF_ROWS,
            "persons": [
                {
                    "person_id": "P0000001",
                    "surname": "Adams",
                    "sex": "F",
                    "date_of_birth": "1991-05-06",
                    "markers": "domestic_abuse_victim",
                }
            ],
            "incidents": [
                {
                    "incident_id": "CR/2018/004512",
                    "category": "domestic_abuse",
                    "opened_at": "2018-03-01T20:00:00",
                    "closed_at": "2018-06-01T12:00:00",
                }
            ],
            "incident_persons": [
                {"incident_id": "CR/2018/004512", "person_id": "P0000001", "role": "victim"}
            ],
            "assignments": [
                {
                    "incident_id": "CR/2018/004512",
                    "user_id": "U00001",
                    "team_id": "",
                    "role": "officer_in_charge",
                    "assigned_from": "2018-03-01T21:00:00",
                    "assigned_to": "",
                }
            ],
            "calls": [
                {
                    "call_id": "C1",
                    "user_id": "U00002",
                    "started_at": "2026-11-21T10:00:00",
                    "ended_at": "2026-11-21T10:12:00",
                    "direction": "inbound",
                    "person_id": "P0000001",
                    "incident_id": "CR/2018/004512",
                }
            ],
            "shifts": [
                {
                    "user_id": "U00001",
                    "starts_at": "2026-11-21T07:00:00",
                    "ends_at": "2026-11-21T17:00:00",
                }
            ],
            "associations": [
                {
                    "user_id": "U00001",
                    "person_id": "P0000009",
                    "relationship": "Family",
                    "declared_at": "2025-01-02",
                }
            ],
            "training": [{"user_id": "U00001", "course": "APSP", "completed_at": "2025-06-30"}],
        },
        file_format,
    )
    report = workspace.ingest([drop])
    assert report.ok, report.failed
    counts = _counts(workspace)
    assert counts["access_events"] == 2
    for table in (
        "persons",
        "incidents",
        "incident_persons",
        "assignments",
        "calls",
        "shifts",
        "associations",
        "training",
    ):
        assert counts[table] == 1, table
    assert counts["staff"] == 2
    assert counts["rejected_rows"] == 0
    events = workspace.scan("access_events").sort("event_id").collect()
    assert events["occurred_at"].to_list() == [
        datetime(2026, 11, 21, 10, tzinfo=UTC),
        datetime(2026, 11, 21, 23, 30, tzinfo=UTC),
    ]
    assert events["day"].to_list() == [date(2026, 11, 21), date(2026, 11, 21)]
    incident = workspace.scan("incidents").collect().row(0, named=True)
    assert incident["opened_at"] == datetime(2018, 3, 1, 20, tzinfo=UTC)
    assert workspace.scan("persons").collect()["markers"][0].to_list() == ["domestic_abuse_victim"]
    assert workspace.scan("associations").collect()["relationship"][0] == "family"


def test_bad_rows_are_rejected_with_file_line_column_and_reason(workspace, make_drop) -> None:
    drop = make_drop(
        "2026-11-21",
        {
            "access_log": [
                event("E1"),
                event("E2", "yesterday"),
                event("E3", action="peek"),
                event("E4"),
            ]
        },
    )
    report = workspace.ingest([drop])
    assert report.ok
    assert report.loaded[0].rejections == {
        "access_log: bad_timestamp": 1,
        "access_log: invalid_choice": 1,
    }
    rejected = workspace.rejected_rows().select(
        "drop_id", "table_name", "source_file", "source_line", "column", "reason", "raw_value"
    )
    assert rejected.rows() == [
        (
            "2026-11-21",
            "access_log",
            "access_log.csv",
            3,
            "occurred_at",
            "bad_timestamp",
            "yesterday",
        ),
        ("2026-11-21", "access_log", "access_log.csv", 4, "action", "invalid_choice", "peek"),
    ]
    assert sorted(workspace.scan("access_events").collect()["event_id"]) == ["E1", "E4"]


def test_missing_required_column_fails_the_whole_drop(workspace, make_drop) -> None:
    good = make_drop("2026-11-20", {"access_log": [event("E0")]})
    workspace.ingest([good])
    before = store_snapshot(workspace)
    bad = make_drop(
        "2026-11-21",
        {
            "access_log": [event("E1")],
            "staff": [{"user_id": "U1", "role": "pcso"}],  # no surname
        },
    )
    report = workspace.ingest([bad])
    assert not report.ok
    assert report.failed[0].error == (
        "staff.csv: required column 'surname' of table 'staff' is missing"
    )
    assert store_snapshot(workspace) == before
    assert workspace.runs()[-1]["outcome"] == "failed"


def test_same_drop_twice_adds_nothing(workspace, make_drop) -> None:
    drop = make_drop(
        "2026-11-21",
        {"access_log": [event("E1"), event("E2", "bad")], "staff": STAFF_ROWS},
    )
    workspace.ingest([drop])
    first = _counts(workspace)
    generation = workspace.generation()
    report = workspace.ingest([drop])
    assert report.ok
    assert report.loaded[0].skipped_files == ["access_log.csv", "staff.csv"]
    assert _counts(workspace) == first
    assert workspace.generation() == generation


def test_file_delivered_again_in_another_drop_counts_as_duplicates(workspace, make_drop) -> None:
    rows = [event("E1"), event("E2")]
    workspace.ingest([make_drop("2026-11-21", {"access_log": rows})])
    report = workspace.ingest(
        [make_drop("2026-11-22", {"access_log": [*rows, event("E3", "2026-11-22T09:00:00Z")]})]
    )
    load = report.loaded[0].tables["access_log"]
    assert (load.loaded, load.duplicates) == (1, 2)
    assert workspace.scan("access_events").collect().height == 3


def test_same_event_id_with_other_values_is_rejected_as_conflict(workspace, make_drop) -> None:
    workspace.ingest([make_drop("2026-11-21", {"access_log": [event("E1")]})])
    workspace.ingest([make_drop("2026-11-22", {"access_log": [event("E1", user_id="U00099")]})])
    rejected = workspace.rejected_rows()
    assert rejected.select("reason", "raw_value").rows() == [("conflicting_duplicate", "E1")]
    assert workspace.scan("access_events").collect()["user_id"].to_list() == ["U00001"]


def test_same_event_id_in_another_system_is_another_event(workspace, make_drop) -> None:
    drop = make_drop("2026-11-21", {"access_log": [event("E1"), event("E1", system="PNC")]})
    workspace.ingest([drop])
    assert workspace.scan("access_events").collect().height == 2


def test_late_rows_for_earlier_days_land_in_their_day(workspace, make_drop) -> None:
    workspace.ingest([make_drop("2026-11-21", {"access_log": [event("E1")]})])
    report = workspace.ingest(
        [
            make_drop(
                "2026-11-23",
                {
                    "access_log": [
                        event("E2", "2026-11-21T11:00:00Z"),
                        event("E3", "2026-11-23T08:00:00Z"),
                    ]
                },
            )
        ]
    )
    assert report.loaded[0].days_touched == [date(2026, 11, 21), date(2026, 11, 23)]
    by_day = workspace.scan("access_events").group_by("day").len().sort("day").collect().rows()
    assert by_day == [(date(2026, 11, 21), 2), (date(2026, 11, 23), 1)]


def test_upsert_newest_drop_wins_even_when_loaded_out_of_order(workspace, make_drop) -> None:
    older = make_drop(
        "2026-11-20",
        {
            "access_log": [event("E1")],
            "staff": [{"user_id": "U1", "surname": "Smith", "role": "pcso", "team_id": "T1"}],
        },
    )
    newer = make_drop(
        "2026-11-22",
        {
            "access_log": [event("E2")],
            "staff": [
                {"user_id": "U1", "surname": "Smith", "role": "response_officer", "team_id": "T2"}
            ],
        },
    )
    workspace.ingest([newer])
    report = workspace.ingest([older])
    assert report.loaded[0].tables["staff"].stale == 1
    staff = workspace.scan("staff").collect()
    assert staff.select("role", "team_id", "drop_id").rows() == [
        ("response_officer", "T2", "2026-11-22")
    ]


def test_upsert_replaces_changed_rows_and_keeps_the_rest(workspace, make_drop) -> None:
    workspace.ingest([make_drop("2026-11-20", {"access_log": [event("E1")], "staff": STAFF_ROWS})])
    changed = [{**STAFF_ROWS[0], "team_id": "T009"}, STAFF_ROWS[1]]
    report = workspace.ingest(
        [make_drop("2026-11-21", {"access_log": [event("E2")], "staff": changed})]
    )
    load = report.loaded[0].tables["staff"]
    assert (load.loaded, load.unchanged) == (1, 1)
    teams = dict(workspace.scan("staff").select("user_id", "team_id").collect().rows())
    assert teams == {"U00001": "T009", "U00002": "T002"}


def test_later_row_in_the_same_drop_wins_and_earlier_is_recorded(workspace, make_drop) -> None:
    staff = [
        {"user_id": "U1", "surname": "Smith", "role": "pcso"},
        {"user_id": "U1", "surname": "Smith", "role": "detective"},
    ]
    workspace.ingest([make_drop("2026-11-21", {"access_log": [event("E1")], "staff": staff})])
    assert workspace.scan("staff").collect()["role"].to_list() == ["detective"]
    assert workspace.rejected_rows().select("source_line", "reason").rows() == [
        (2, "superseded_in_drop")
    ]


def test_table_split_over_several_files(workspace, make_drop) -> None:
    drop = make_drop(
        "2026-11-21",
        {
            "access_log_2026-11-21_part1": [event("E1")],
            "access_log_2026-11-21_part2": [event("E2")],
            "incident_persons_extra": [{"incident_id": "I1", "person_id": "P1", "role": "victim"}],
        },
    )
    report = workspace.ingest([drop])
    assert report.loaded[0].tables["access_log"].files == 2
    assert workspace.scan("incident_persons").collect().height == 1
    assert workspace.scan("incidents").collect().height == 0


def test_unknown_columns_are_kept_aside_and_unknown_files_reported(workspace, make_drop) -> None:
    drop = make_drop("2026-11-21", {"access_log": [event("E1", terminal_room="B12")]})
    (drop / "notes.txt").write_text("not an export", encoding="utf-8")
    report = workspace.ingest([drop])
    assert report.loaded[0].unrecognised_files == ["notes.txt"]
    extra = workspace.scan("access_events").collect()["extra"][0]
    assert extra == '{"terminal_room":"B12"}'


def test_column_mapping_from_the_home_configuration(workspace, make_drop) -> None:
    (workspace.home / "access-audit.toml").write_text(
        '[columns.access_log]\noccurred_at = "EventTime"\nuser_id = "Officer"\n',
        encoding="utf-8",
    )
    workspace = Workspace.open(workspace.home)
    row = event("E1")
    row["EventTime"] = row.pop("occurred_at")
    row["Officer"] = row.pop("user_id")
    workspace.ingest([make_drop("2026-11-21", {"access_log": [row]})])
    assert workspace.scan("access_events").collect()["user_id"].to_list() == ["U00001"]


def test_drop_without_access_log_is_refused(workspace, make_drop) -> None:
    report = workspace.ingest([make_drop("2026-11-21", {"staff": STAFF_ROWS})])
    assert "no access_log file" in report.failed[0].error
    assert workspace.generation() is None


def test_injected_failure_mid_run_leaves_every_store_as_it_was(
    workspace, make_drop, monkeypatch
) -> None:
    workspace.ingest([make_drop("2026-11-20", {"access_log": [event("E0")], "staff": STAFF_ROWS})])
    before = store_snapshot(workspace)
    generation = workspace.generation()

    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full")

    # Fails after the events and staff were written into the transaction's staging folder.
    monkeypatch.setattr("access_audit.ingest._record_loaded_files", fail)
    drop = make_drop(
        "2026-11-21",
        {"access_log": [event("E1")], "staff": [{**STAFF_ROWS[0], "role": "detective"}]},
    )
    report = workspace.ingest([drop])
    assert report.failed[0].error.startswith("unexpected RuntimeError in __init__.py:")
    assert "disk full" not in report.failed[0].error  # the message may quote the data
    assert store_snapshot(workspace) == before
    assert workspace.generation() == generation
    assert not list((workspace.home / "store").glob(".staging-*"))


def test_a_killed_run_leaves_the_stores_and_the_next_run_recovers(workspace, make_drop) -> None:
    workspace.ingest([make_drop("2026-11-20", {"access_log": [event("E0")]})])
    before = store_snapshot(workspace)
    drop = make_drop("2026-11-21", {"access_log": [event("E1")], "staff": STAFF_ROWS})
    script = textwrap.dedent(
        f"""
        import os
        import access_audit.ingest as ingest
        from access_audit.workspace import Workspace
        ingest._record_loaded_files = lambda *a, **k: os._exit(9)
        Workspace.open({str(workspace.home)!r}).ingest([{str(drop)!r}])
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], check=False)
    assert killed.returncode == 9
    current = {k: v for k, v in store_snapshot(workspace).items() if not k.startswith(".")}
    assert current == {k: v for k, v in before.items() if not k.startswith(".")}
    report = workspace.ingest([drop])
    assert report.ok
    assert sorted(workspace.scan("access_events").collect()["event_id"]) == ["E0", "E1"]
    assert not list((workspace.home / "store").glob(".staging-*"))


def test_drops_are_loaded_oldest_first_and_failures_do_not_stop_the_rest(
    workspace, make_drop
) -> None:
    first = make_drop("2026-11-20", {"access_log": [event("E1")]})
    broken = make_drop("2026-11-21", {"access_log": [{"event_id": "E2"}]})
    last = make_drop("2026-11-22", {"access_log": [event("E3")]})
    report = workspace.ingest([last, broken, first])
    assert [d.drop_id for d in report.loaded] == ["2026-11-20", "2026-11-22"]
    assert [f.drop for f in report.failed] == ["2026-11-21"]
    assert "required column 'occurred_at'" in report.failed[0].error


def test_home_files_are_owner_only(workspace, make_drop) -> None:
    workspace.ingest([make_drop("2026-11-21", {"access_log": [event("E1")]})])
    modes = {p.stat().st_mode & 0o077 for p in workspace.home.rglob("*")}
    assert modes == {0}
    assert workspace.home.stat().st_mode & 0o077 == 0


def test_run_log_records_checksums_and_counts_without_personal_data(workspace, make_drop) -> None:
    drop = make_drop(
        "2026-11-21", {"access_log": [event("E1", justification="Miss Adams")], "staff": STAFF_ROWS}
    )
    workspace.ingest([drop])
    run = workspace.runs()[-1]
    assert run["outcome"] == "loaded"
    assert {f["file"]: f["rows"] for f in run["files"]} == {"access_log.csv": 1, "staff.csv": 2}
    assert all(len(f["sha256"]) == 64 for f in run["files"])
    log_text = "".join(p.read_text() for p in (workspace.home / "runs").glob("*.json"))
    assert "Adams" not in log_text
    assert "Smith" not in log_text


def test_status_on_an_empty_home_shows_typed_empty_tables(workspace) -> None:
    status = workspace.status()
    assert status.generation is None
    assert {t.rows for t in status.tables} == {0}
    assert workspace.scan("access_events").collect_schema()["occurred_at"] == pl.Datetime(
        "us", "UTC"
    )


def test_unreadable_drop_path_is_a_clear_error(workspace, tmp_path: Path) -> None:
    report = workspace.ingest([tmp_path / "nowhere"])
    assert report.failed[0].error.endswith("not a folder (a drop is a folder of export files)")


def test_workspace_refuses_a_file_as_home(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(AccessAuditError, match="must be a folder"):
        Workspace.open(tmp_path / "file")
