"""Ingest against real forces' exports (issue 7): repeated rows, implausible timestamps, odd
files and lines, what a drop folder holds, and personal values kept out of messages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.workspace import Workspace
from conftest import FORMATS, event, write_table

runner = CliRunner()

PERSON_REPEATED = b"person_id,surname,markers\nP1,Smith,victim\nP1,Smith,victim\nP2,Khan,\n"
PERSON_CONFLICT = b"person_id,surname,markers\nP1,Smith,victim\nP1,Smith-Jones,victim\n"


def _drop(folder: Path, files: dict[str, bytes], events: list[dict[str, str | None]]) -> Path:
    """A drop with a good access_log plus the given files written byte for byte."""
    write_table(folder, "access_log", events)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _one_drop(tmp_path: Path, files: dict[str, bytes], name: str = "2026-11-21") -> Path:
    return _drop(tmp_path / "drops" / name, files, [event(f"{name}-E1")])


def _reasons(workspace: Workspace) -> list[tuple[str, int, str, str]]:
    return workspace.rejected_rows().select("source_file", "source_line", "column", "reason").rows()


# -- finding 1: repeated rows ---------------------------------------------------------------


def test_exact_repeated_reference_rows_are_counted_duplicates_not_rejections(
    workspace, tmp_path
) -> None:
    report = workspace.ingest([_one_drop(tmp_path, {"persons.csv": PERSON_REPEATED})])
    assert report.ok, report.failed
    load = report.loaded[0].tables["persons"]
    assert (load.rows_read, load.loaded, load.duplicates, load.rejected_rows) == (3, 2, 1, 0)
    assert workspace.rejected_rows().height == 0
    assert workspace.runs()[-1]["tables"]["persons"]["duplicates"] == 1


@pytest.mark.parametrize("file_format", FORMATS)
def test_conflicting_persons_rows_are_rejected_with_their_raw_text(
    workspace, make_drop, file_format
) -> None:
    rows = [
        {"person_id": "P1", "surname": "Smith", "markers": "victim;child"},
        {"person_id": "P1", "surname": "Smith-Jones", "markers": "victim;child"},
    ]
    drop = make_drop("2026-11-21", {"access_log": [event("E1")], "persons": rows}, file_format)
    report = workspace.ingest([drop])
    assert report.ok, report.failed
    rejected = workspace.rejected_rows().row(0, named=True)
    assert (rejected["reason"], rejected["column"], rejected["raw_value"]) == (
        "superseded_in_drop",
        "person_id",
        "P1",
    )
    assert json.loads(rejected["raw_row"])["markers"] == "victim;child"
    assert workspace.scan("persons").collect()["surname"].to_list() == ["Smith-Jones"]


def test_nightly_with_a_repeating_force_loads_every_drop(workspace, tmp_path) -> None:
    drops = [
        _one_drop(tmp_path, {"persons.csv": PERSON_REPEATED}, "2026-11-12"),
        _one_drop(tmp_path, {"persons.csv": PERSON_CONFLICT}, "2026-11-13"),
        _one_drop(tmp_path, {"persons.csv": PERSON_REPEATED}, "2026-11-14"),
    ]
    report = workspace.nightly(drops)
    assert report.ok, report.ingest.failed
    assert [d.drop_id for d in report.ingest.loaded] == ["2026-11-12", "2026-11-13", "2026-11-14"]
    run = workspace.runs()[-1]
    assert run["duplicates"] == 2
    last = run["tables"]["2026-11-14"]["persons"]  # P1 changes back to Smith; P2 is as stored
    assert (last["loaded"], last["unchanged"], last["duplicates"]) == (1, 1, 1)


@pytest.mark.parametrize("command", ["ingest", "nightly"])
def test_an_unexpected_failure_in_one_drop_does_not_stop_the_next(
    workspace, tmp_path, monkeypatch, command
) -> None:
    from access_audit import ingest

    real = ingest._load_table

    def crash_on_13(txn, spec, raws, drop, result, rules):  # type: ignore[no-untyped-def]
        if drop.drop_id == "2026-11-13":
            raise pl.exceptions.InvalidOperationError("cannot cast O'Brien 07700 900123")
        return real(txn, spec, raws, drop, result, rules)

    monkeypatch.setattr(ingest, "_load_table", crash_on_13)
    drops = [_one_drop(tmp_path, {}, name) for name in ("2026-11-12", "2026-11-13", "2026-11-14")]
    outcome = getattr(workspace, command)(drops)
    report = outcome if command == "ingest" else outcome.ingest
    assert [d.drop_id for d in report.loaded] == ["2026-11-12", "2026-11-14"]
    assert [f.drop for f in report.failed] == ["2026-11-13"]
    assert report.failed[0].error.startswith("unexpected InvalidOperationError in")
    log_text = "".join(p.read_text() for p in workspace.runs_dir.glob("*.json"))
    assert "O'Brien" not in log_text and "07700" not in log_text


# -- finding 2: implausible timestamps ----------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        ("0001-01-01T00:00:00+01:00", "implausible_timestamp"),  # year 0 in UTC
        ("9999-12-31T23:00:00-02:00", "implausible_timestamp"),  # year 10000 in UTC
        ("2100-01-01T00:00:00Z", "implausible_timestamp"),
        ("1989-12-31T23:59:59Z", "implausible_timestamp"),
        ("2026-11-28T00:00:01Z", "implausible_timestamp"),  # the drop's date + 7 days
        ("2026-11-21T10:00:00+99:00", "bad_timestamp"),
        ("2026-11-21T10:00:00+05:75", "bad_timestamp"),
        ("2026-11-21T10:00:00-14:01", "bad_timestamp"),
    ],
)
def test_implausible_timestamps_are_rejected_not_loaded(
    workspace, make_drop, occurred_at, reason
) -> None:
    drop = make_drop("2026-11-21", {"access_log": [event("E1"), event("E2", occurred_at)]})
    report = workspace.ingest([drop])
    assert report.ok, report.failed
    assert report.loaded[0].rejections == {f"access_log: {reason}": 1}
    assert workspace.scan("access_events").collect()["event_id"].to_list() == ["E1"]


def test_timestamps_inside_the_window_load(workspace, make_drop) -> None:
    rows = [
        event("E1", "1990-01-01T00:00:00Z"),
        event("E2", "2026-11-27T23:59:59Z"),
        event("E3", "2026-11-21T10:00:00+14:00"),
        event("E4", "2026-11-21T10:00:00-12:00"),
    ]
    report = workspace.ingest([make_drop("2026-11-21", {"access_log": rows})])
    assert report.loaded[0].rejections == {}
    assert workspace.scan("access_events").collect().height == 4


def test_timestamp_window_is_configurable(workspace, make_drop) -> None:
    (workspace.home / "access-audit.toml").write_text(
        "[ingest]\nearliest_timestamp = 2020-01-01\nmax_days_after_drop = 0\n", encoding="utf-8"
    )
    workspace = Workspace.open(workspace.home)
    rows = [
        event("E1", "2019-12-31T10:00:00Z"),
        event("E2", "2026-11-21T10:00:00Z"),
        event("E3", "2026-11-21T00:00:00Z"),
    ]
    report = workspace.ingest([make_drop("2026-11-21", {"access_log": rows})])
    assert report.loaded[0].rejections == {"access_log: implausible_timestamp": 2}


def test_timestamp_window_off_still_refuses_years_outside_1_to_9999(workspace, make_drop) -> None:
    (workspace.home / "access-audit.toml").write_text(
        "[ingest]\ntimestamp_window = false\n", encoding="utf-8"
    )
    workspace = Workspace.open(workspace.home)
    rows = [event("E1", "2100-01-01T00:00:00Z"), event("E2", "0001-01-01T00:00:00+01:00")]
    report = workspace.ingest([make_drop("2026-11-21", {"access_log": rows})])
    assert report.loaded[0].rejections == {"access_log: implausible_timestamp": 1}
    assert workspace.scan("access_events").collect()["event_id"].to_list() == ["E1"]


# -- finding 3: files and lines ---------------------------------------------------------------

ACCESS_HEADER = b"event_id,occurred_at,user_id,system,action,record_type,record_id\n"


def _access_line(event_id: str) -> bytes:
    return f"{event_id},2026-11-21T10:00:00Z,U1,RMS,view,person,P1\n".encode()


def _access_log_drop(tmp_path: Path, data: bytes, name: str = "access_log.csv") -> Path:
    folder = tmp_path / "drops" / "2026-11-21"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    return folder


def test_cr_only_line_endings_load_every_row(workspace, tmp_path) -> None:
    data = (ACCESS_HEADER + _access_line("E1") + _access_line("E2")).replace(b"\n", b"\r")
    report = workspace.ingest([_access_log_drop(tmp_path, data)])
    load = report.loaded[0].tables["access_log"]
    assert (load.rows_read, load.loaded, load.rejected_rows) == (2, 2, 0)


def test_blank_lines_are_skipped_not_counted(workspace, tmp_path) -> None:
    data = ACCESS_HEADER + b"\n" + _access_line("E1") + b"\r\n  \n" + _access_line("E2") + b"\n"
    report = workspace.ingest([_access_log_drop(tmp_path, data)])
    load = report.loaded[0].tables["access_log"]
    assert (load.rows_read, load.loaded, load.rejected_rows) == (2, 2, 0)
    lines = workspace.scan("access_events").sort("event_id").collect()["source_line"].to_list()
    assert lines == [3, 6]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b"E2,2026-11-21T10:00:00Z,U1,RMS,view,person,P1,surplus\n", "wrong_field_count"),
        (b"E2,2026-11-21T10:00:00Z,U1,RMS,view,person\n", "wrong_field_count"),
        (b'E2,2026-11-21T10:00:00Z,U1,RMS,view,person,"P1\n', "malformed_quotes"),
        (b'E2,2026-11-21T10:00:00Z,U1,RMS,view,person,P"1\n', "malformed_quotes"),
        (b"E2,2026-11-21T10:00:00Z,U1,RMS,view,person,P\xe91\n", "not_utf8"),
    ],
)
def test_one_bad_line_is_quarantined_and_the_rest_loads(
    workspace, tmp_path, bad_line, reason
) -> None:
    data = ACCESS_HEADER + _access_line("E1") + bad_line + _access_line("E3")
    report = workspace.ingest([_access_log_drop(tmp_path, data)])
    assert report.ok, report.failed
    assert _reasons(workspace) == [("access_log.csv", 3, "(line)", reason)]
    assert sorted(workspace.scan("access_events").collect()["event_id"]) == ["E1", "E3"]
    assert report.loaded[0].tables["access_log"].rows_read == 3


def test_a_quoted_value_over_several_lines_is_one_row(workspace, tmp_path) -> None:
    header = ACCESS_HEADER.rstrip(b"\n") + b",justification\n"
    data = header + b'E1,2026-11-21T10:00:00Z,U1,RMS,view,person,P1,"two\nlines"\n'
    data += b'E2,2026-11-21T10:00:00Z,U1,RMS,view,person,P1,"say ""hi"""\n'
    workspace.ingest([_access_log_drop(tmp_path, data)])
    events = workspace.scan("access_events").sort("event_id").collect()
    assert events.select("justification", "source_line").rows() == [
        ("two\nlines", 2),
        ('say "hi"', 4),
    ]


def test_a_stray_quote_costs_its_own_line_not_a_later_multi_line_row(workspace, tmp_path) -> None:
    header = ACCESS_HEADER.rstrip(b"\n") + b",justification\n"
    row = b"2026-11-21T10:00:00Z,U1,RMS,view,person,P1,"
    data = header + b"E1," + row + b"5'10\"\n"  # a stray quote, as a height is written
    data += b"E2," + row + b"plain\n"
    data += b"E3," + row + b'"two\nlines"\n'
    data += b"E4," + row + b"plain\n"
    workspace.ingest([_access_log_drop(tmp_path, data)])
    assert _reasons(workspace) == [("access_log.csv", 2, "(line)", "malformed_quotes")]
    events = workspace.scan("access_events").sort("event_id").collect()
    assert events["event_id"].to_list() == ["E2", "E3", "E4"]
    assert events["justification"].to_list() == ["plain", "two\nlines", "plain"]


@pytest.mark.parametrize(
    ("header", "config", "expected"),
    [
        (
            b"event_id,occurred_at,user_id,USER_ID,system,action,record_type,record_id\n",
            "",
            "access_log.csv: columns 'user_id' and 'USER_ID' both name column 'user_id'",
        ),
        (
            b"event_id,occurred_at,user_id,Officer,system,action,record_type,record_id\n",
            '[columns.access_log]\nuser_id = "Officer"\n',
            "access_log.csv: columns 'user_id' and 'Officer' both name column 'user_id'",
        ),
        (
            b"event_id,occurred_at,user_id,system,action,record_type,record_id,note,note\n",
            "",
            "access_log.csv: header columns 8 and 9 have the same name",
        ),
    ],
)
def test_two_columns_with_one_name_are_a_one_line_error(
    workspace, tmp_path, header, config, expected
) -> None:
    if config:
        (workspace.home / "access-audit.toml").write_text(config, encoding="utf-8")
        workspace = Workspace.open(workspace.home)
    report = workspace.ingest([_access_log_drop(tmp_path, header)])
    assert [f.error for f in report.failed] == [expected]


@pytest.mark.parametrize("suffix", FORMATS)
def test_an_empty_file_beside_a_good_one_is_reported_and_the_drop_loads(
    workspace, make_drop, suffix
) -> None:
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    (drop / f"access_log_part2.{suffix}").write_bytes(b"")
    report = workspace.ingest([drop])
    assert report.ok, report.failed
    assert report.loaded[0].ignored_files == {
        f"access_log_part2.{suffix}": "empty file: no header, no rows"
    }
    assert workspace.scan("access_events").collect().height == 1


def test_jsonl_ids_are_read_as_exact_text(workspace, tmp_path) -> None:
    lines = [
        {**event("x"), "event_id": 9007199254740993},
        {**event("x"), "event_id": 9007199254740992},
        {**event("x"), "event_id": 1.5},
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    data += b"not json\n\n"
    report = workspace.ingest([_access_log_drop(tmp_path, data, "access_log.jsonl")])
    ids = sorted(workspace.scan("access_events").collect()["event_id"].to_list())
    assert ids == ["1.5", "9007199254740992", "9007199254740993"]
    assert report.loaded[0].tables["access_log"].duplicates == 0
    assert _reasons(workspace) == [("access_log.jsonl", 4, "(line)", "not_json_object")]


# -- finding 4: what is in a drop ---------------------------------------------------------------


def test_links_out_of_the_drop_dot_files_and_folders_are_ignored_and_reported(
    workspace, tmp_path
) -> None:
    outside = tmp_path / "elsewhere"
    write_table(outside, "staff", [{"user_id": "U9", "surname": "Smith", "role": "pcso"}])
    drop = _one_drop(tmp_path, {".access_log_hidden.csv": ACCESS_HEADER + _access_line("H1")})
    os.symlink(outside / "staff.csv", drop / "staff.csv")
    os.symlink(drop / "access_log.csv", drop / "access_log_again.csv")  # inside: read
    (drop / "access_log_archive").mkdir()
    os.symlink(drop / "access_log_loop.csv", drop / "access_log_loop.csv")
    home = workspace.home
    result = runner.invoke(app, ["--home", str(home), "ingest", str(drop)])
    assert result.exit_code == 0, result.output
    run = Workspace.open(home).runs()[-1]
    assert run["ignored_files"] == {
        ".access_log_hidden.csv": "hidden file",
        "access_log_archive": "subfolder: a drop is one folder, subfolders are not read",
        "access_log_loop.csv": "symbolic link that leads nowhere (or round in a loop)",
        "staff.csv": "symbolic link leading out of the drop: refused",
    }
    assert "staff.csv: symbolic link leading out of the drop: refused; ignored" in result.output
    assert "access_log_archive: subfolder" in result.output
    assert Workspace.open(home).scan("staff").collect().height == 0


# -- finding 11a: personal values stay out of messages and run records ---------------------------


def test_an_unbalanced_quote_in_persons_is_masked_everywhere_but_rejected_rows(
    workspace, tmp_path
) -> None:
    persons = b"person_id,surname,forenames\nP1,Adams,Ann\nP2,\"O'Brien,Mary-Jane 07700 900123\n"
    drop = _one_drop(tmp_path, {"persons.csv": persons})
    home = str(workspace.home)
    result = runner.invoke(app, ["--home", home, "nightly", "--no-progress", str(drop)])
    assert result.exit_code == 0, result.output
    assert "O'Brien" not in result.output and "07700" not in result.output
    log_text = "".join(p.read_text() for p in workspace.runs_dir.glob("*.json"))
    assert "O'Brien" not in log_text and "07700" not in log_text
    listed = runner.invoke(app, ["--home", home, "rejected"])
    assert "O'Brien" not in listed.output and "personal data" in listed.output
    shown = runner.invoke(app, ["--home", home, "rejected", "--show-values"])
    assert "O'Brien" in shown.output
    stored = Workspace.open(workspace.home).rejected_rows().row(0, named=True)
    assert stored["raw_value"] == "P2,\"O'Brien,Mary-Jane 07700 900123"
    assert (stored["source_line"], stored["reason"]) == (3, "malformed_quotes")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("timestamp_window = 1", r"\[ingest\] timestamp_window: expected true or false"),
        ('earliest_timestamp = "last year"', r"\[ingest\] earliest_timestamp: expected a date"),
        ("max_days_after_drop = -1", r"\[ingest\] max_days_after_drop: must be at least 0"),
        ("max_days_after_drop = 99999", r"\[ingest\] max_days_after_drop: must be at most 3660"),
    ],
)
def test_a_bad_timestamp_window_setting_is_a_clear_error(tmp_path, setting, message) -> None:
    import tomllib

    from access_audit.config import parse_config
    from access_audit.errors import AccessAuditError

    with pytest.raises(AccessAuditError, match=message):
        parse_config(tomllib.loads(f"[ingest]\n{setting}\n"))


def test_a_jsonl_file_of_only_bad_lines_refuses_each_line(workspace, tmp_path) -> None:
    drop = _one_drop(tmp_path, {"persons.jsonl": b'not json\n{"a": \n\n[1, 2]\n'})
    report = workspace.ingest([drop])
    assert report.ok, report.failed
    assert report.loaded[0].tables["persons"].rows_read == 3
    assert [r[1:] for r in _reasons(workspace)] == [
        (1, "(line)", "not_json_object"),
        (2, "(line)", "not_json_object"),
        (4, "(line)", "not_json_object"),
    ]


def test_an_unreadable_file_fails_its_drop_only(workspace, tmp_path, monkeypatch) -> None:
    from access_audit import ingest

    real = ingest.file_checksum

    def denied_in_13(path: Path) -> str:
        if "2026-11-13" in str(path):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(ingest, "file_checksum", denied_in_13)
    drops = [_one_drop(tmp_path, {}, name) for name in ("2026-11-12", "2026-11-13", "2026-11-14")]
    report = workspace.ingest(drops)
    assert [d.drop_id for d in report.loaded] == ["2026-11-12", "2026-11-14"]
    assert report.failed[0].error.endswith("access_log.csv: cannot be read (Permission denied)")
