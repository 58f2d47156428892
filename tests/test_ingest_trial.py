"""Ingest defects found by a second adversarial trial: drops dated in the future, line endings,
JSON Lines numbers, failure lines naming their drop, file names, and settings out of range."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.config import IngestConfig
from access_audit.ingest import time_rules
from access_audit.ingest.lines import split_lines
from access_audit.render import _percent
from access_audit.schema import table_for_file
from access_audit.workspace import Workspace
from conftest import event, write_table
from test_score import reference

runner = CliRunner()


# -- 1: a drop dated in the future -------------------------------------------------------------


def _flagged_then_assigned(make_drop) -> tuple[Path, Path]:
    """A night whose lookup is an alert, and the next night's late assignment that explains it."""
    first = make_drop(
        "2026-11-20",
        {
            **reference(),
            "access_log": [
                event("E1", "2026-11-20T09:00:00Z", user_id="U2", record_id="P2"),
                event(
                    "E2",
                    "2026-11-20T09:05:00Z",
                    user_id="U2",
                    record_id="P2",
                    justification="enquiries re CR/2099/000001",
                ),
            ],
        },
    )
    late = make_drop(
        "2026-11-21",
        {
            "assignments": [
                {
                    "incident_id": "CR/2026/000900",
                    "user_id": "U2",
                    "team_id": None,
                    "role": "officer_in_charge",
                    "assigned_from": "2026-11-21T15:00:00Z",
                    "assigned_to": None,
                }
            ],
            "access_log": [event("E9", "2026-11-21T16:00:00Z", user_id="U2", record_id="P2")],
        },
    )
    return first, late


def test_a_drop_from_the_future_is_refused_and_late_assignments_still_clear_flags(
    workspace: Workspace, make_drop
) -> None:
    first, late = _flagged_then_assigned(make_drop)
    assert workspace.nightly([first]).ok
    assert workspace.flags(min_score=0)["alert"].to_list() == [True]
    future = make_drop(
        "2100-01-01",
        {
            "access_log": [event("X1", "2099-12-31T10:00:00Z")],
            "staff": [{"user_id": "U2", "surname": "Okafor", "role": "analyst"}],
        },
    )
    report = workspace.nightly([future])
    assert [f.drop for f in report.ingest.failed] == ["2100-01-01"]
    assert "dated 2100-01-01, later than today" in report.ingest.failed[0].error
    assert "max_days_after_drop" in report.ingest.failed[0].error
    assert workspace.scan("access_events").collect()["event_id"].sort().to_list() == ["E1", "E2"]
    report = workspace.nightly([late])
    assert report.score is not None and report.score.cleared == ["F20261120-U2-P2"]
    assert report.score.days[-1].isoformat() == "2026-11-21"
    # the refused drop's reference rows did not win over the later, real ones
    assert workspace.scan("staff").filter(user_id="U2").collect()["role"].to_list() == ["detective"]


def test_a_drop_dated_before_the_earliest_timestamp_is_refused_whole(
    workspace: Workspace, make_drop
) -> None:
    drop = make_drop("1980-01-01", {"access_log": [event("E1", "1980-01-01T10:00:00Z")]})
    report = workspace.ingest([drop])
    assert [f.drop for f in report.failed] == ["1980-01-01"]
    assert "before [ingest] earliest_timestamp (1990-01-01)" in report.failed[0].error
    assert workspace.scan("access_events").collect().height == 0


def test_a_drop_dated_9999_12_31_is_a_one_line_refusal(workspace: Workspace, make_drop) -> None:
    (workspace.home / "access-audit.toml").write_text(
        "[ingest]\ntimestamp_window = false\n", encoding="utf-8"
    )
    workspace = Workspace.open(workspace.home)
    drop = make_drop("9999-12-31", {"access_log": [event("E1")]})
    report = workspace.nightly([drop])
    assert "dated 9999-12-31, later than today" in report.ingest.failed[0].error
    assert "bug" not in report.ingest.failed[0].error


def test_the_timestamp_window_ends_a_few_days_after_today_whatever_the_drops_date() -> None:
    config = IngestConfig()
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    in_a_week = datetime(2026, 11, 29, 12, tzinfo=UTC)
    assert time_rules(config, datetime(2026, 11, 28, tzinfo=UTC), now).latest == in_a_week
    assert time_rules(config, datetime(2026, 11, 20, tzinfo=UTC), now).latest == datetime(
        2026, 11, 27, tzinfo=UTC
    )


def test_a_share_of_nothing_is_shown_as_not_applicable_never_nan() -> None:
    assert _percent(float("nan")) == "n/a"
    assert _percent(None) == "n/a"
    assert _percent(0.5) == "50.0%"


def test_generate_refuses_drops_dated_in_the_future(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["generate", str(tmp_path / "f"), "--start", "2100-01-01", "--no-progress"]
    )
    assert result.exit_code == 2
    assert "ingest refuses drops from the future" in result.output
    assert not (tmp_path / "f").exists()


# -- 2: line endings decided by the header, mixed endings quarantined --------------------------

HEADER = "event_id,occurred_at,user_id,system,action,record_type,record_id,justification"


def _row(event_id: str, justification: str = "") -> str:
    return f"{event_id},2026-11-21T10:00:00Z,U1,RMS,view,person,P1,{justification}"


def _ingest_csv(workspace: Workspace, tmp_path: Path, data: str) -> tuple[int, int, int]:
    folder = tmp_path / "drops" / "2026-11-21"
    folder.mkdir(parents=True)
    (folder / "access_log.csv").write_bytes(data.encode())
    report = workspace.ingest([folder])
    assert report.ok, report.failed
    load = report.loaded[0].tables["access_log"]
    return load.rows_read, load.loaded, load.rejected_rows


def test_a_cr_only_file_whose_last_line_ends_crlf_loads(workspace, tmp_path) -> None:
    data = f"{HEADER}\r{_row('X1')}\r\n"
    assert _ingest_csv(workspace, tmp_path, data) == (1, 1, 0)


def test_a_cr_only_file_with_a_line_break_inside_a_quoted_value_loads(workspace, tmp_path) -> None:
    quoted = '"two\nlines"'
    data = f"{HEADER}\r{_row('X1', quoted)}\r{_row('X2')}\r"
    assert _ingest_csv(workspace, tmp_path, data) == (2, 2, 0)
    stored = workspace.scan("access_events").sort("event_id").collect()
    assert stored["justification"].to_list() == ["two\nlines", None]


def test_a_bare_lf_in_a_cr_only_file_quarantines_its_line(workspace, tmp_path) -> None:
    data = f"{HEADER}\r{_row('X1')}\n{_row('X2')}\r{_row('X3')}\r"
    assert _ingest_csv(workspace, tmp_path, data) == (2, 1, 1)
    assert _reasons(workspace) == [(2, "mixed_line_endings")]
    assert workspace.scan("access_events").collect()["event_id"].to_list() == ["X3"]


def test_a_bare_cr_in_an_lf_file_quarantines_its_line(workspace, tmp_path) -> None:
    quoted = '"a\rb"'
    data = f"{HEADER}\n{_row('X1')}\r{_row('X2')}\n{_row('X3')}\r\n{_row('X4', quoted)}\n"
    assert _ingest_csv(workspace, tmp_path, data) == (3, 2, 1)
    assert _reasons(workspace) == [(2, "mixed_line_endings")]


def test_the_header_s_line_ending_is_the_first_outside_quotes() -> None:
    lines = split_lines(b'a,"b\nc"\rx,y\r', csv_quotes=True)
    assert lines.frame["text"].to_list() == ['a,"b\nc"', "x,y", ""]
    assert split_lines(b"a,b\r\nx,y\rz\n", csv_quotes=True).frame["text"].to_list() == [
        "a,b",
        "x,y\rz",
        "",
    ]


def _reasons(workspace: Workspace) -> list[tuple[int, str]]:
    return workspace.rejected_rows().select("source_line", "reason").rows()


# -- 3: JSON Lines values are their exact source text ------------------------------------------


def _jsonl_drop(tmp_path: Path, name: str, objects: list[str]) -> Path:
    folder = tmp_path / "drops" / "2026-11-21"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(o + "\n" for o in objects), encoding="utf-8")
    return folder


def test_jsonl_ids_written_as_numbers_keep_their_source_text(workspace, tmp_path) -> None:
    rest = (
        '"occurred_at": "2026-11-21T10:00:00Z", "user_id": "U1", "system": "RMS", '
        '"action": "view", "record_type": "person", "record_id": "P1"'
    )
    ids = ["10", "1e1", '"1.5"', "1.50", '"007"', "true", "9007199254740993", "-0", "1E+1"]
    drop = _jsonl_drop(tmp_path, "access_log.jsonl", [f'{{"event_id": {i}, {rest}}}' for i in ids])
    report = workspace.ingest([drop])
    load = report.loaded[0].tables["access_log"]
    assert (load.rows_read, load.loaded, load.duplicates) == (9, 9, 0)
    stored = workspace.scan("access_events").collect()["event_id"].to_list()
    assert sorted(stored) == sorted(i.strip('"') for i in ids)


def test_jsonl_reference_rows_keep_numbers_booleans_and_nested_values_as_written(
    workspace, tmp_path
) -> None:
    drop = _jsonl_drop(
        tmp_path,
        "persons.jsonl",
        [
            '{"person_id": 10, "surname": "A", "postcode": 1.50}',
            '{"person_id": 1e1, "surname": "B", "extra": {"n": 1.50, "b": false}}',
            '{"person_id": 1.0, "surname": "C", "x": [1e1, true]}',
        ],
    )
    write_table(drop, "access_log", [event("E1")])
    report = workspace.ingest([drop])
    assert report.ok, report.failed
    assert report.loaded[0].tables["persons"].loaded == 3
    persons = workspace.scan("persons").sort("person_id").collect()
    assert persons["person_id"].to_list() == ["1.0", "10", "1e1"]
    assert persons.filter(person_id="10")["postcode"].to_list() == ["1.50"]
    extra = dict(zip(persons["person_id"], persons["extra"], strict=True))
    assert json.loads(extra["1e1"]) == {"extra": '{"n": 1.50, "b": false}', "x": None}
    assert json.loads(extra["1.0"])["x"] == "[1e1, true]"


def test_jsonl_lines_python_would_read_but_json_does_not_are_refused(workspace, tmp_path) -> None:
    rest = (
        '"occurred_at": "2026-11-21T10:00:00Z", "user_id": "U1", "system": "RMS", '
        '"action": "view", "record_type": "person", "record_id": "P1"'
    )
    lines = [f'{{"event_id": "E1", {rest}}}', f'{{"event_id": NaN, {rest}}}']
    report = workspace.ingest([_jsonl_drop(tmp_path, "access_log.jsonl", lines)])
    load = report.loaded[0].tables["access_log"]
    assert (load.rows_read, load.loaded, load.rejected_rows) == (2, 1, 1)
    assert _reasons(workspace) == [(2, "not_json_object")]


# -- 4: a failed drop is named in its failure line ---------------------------------------------


def test_the_failure_line_names_the_drop_escaped(tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    (drops / "2026-11-17[bold]x").mkdir(parents=True)
    (drops / "2026-11-17[bold]x" / "access_log.csv").write_text(
        "event_id,occurred_at,user_id,system,action,record_id\n"
        "E0,2026-11-17T10:00:00Z,U1,RMS,view,P1\n",
        encoding="utf-8",
    )
    write_table(drops / "2026-11-18", "access_log", [event("E1")])
    result = runner.invoke(
        app,
        [
            "nightly",
            str(drops / "2026-11-17[bold]x"),
            str(drops / "2026-11-18"),
            str(drops / "missing"),
            "--home",
            str(tmp_path / "home"),
            "--no-progress",
        ],
    )
    lines = sorted(line for line in result.output.splitlines() if line.startswith("failed:"))
    assert len(lines) == 2
    assert lines[0].startswith(f"failed: {drops / 'missing'}: not a folder")
    assert lines[1].startswith(
        "failed: 2026-11-17[bold]x: access_log.csv: required column 'record_type'"
    )
    assert "1 drop(s) loaded, 2 failed" in result.output


# -- 5: every file whose name starts with a table's name belongs to it ------------------------


@pytest.mark.parametrize(
    ("file_name", "table"),
    [
        ("access_log.csv", "access_log"),
        ("access_log (1).csv", "access_log"),
        ("access_log copy.csv", "access_log"),
        ("Access_Log2.jsonl", "access_log"),
        ("access_log_2026-11-21_part2.csv", "access_log"),
        ("incident_persons.csv", "incident_persons"),
        ("incident_persons (2).parquet", "incident_persons"),
        ("incidents_persons.csv", "incidents"),
        ("incidentsx.csv", "incidents"),
        ("staffing.csv", "staff"),
        ("assignments-old.csv", "assignments"),
        ("associations.csv", "associations"),
        ("notes.txt", None),
        ("incident.csv", None),
        ("my access_log.csv", None),
    ],
)
def test_a_file_belongs_to_the_longest_table_name_it_starts_with(
    file_name: str, table: str | None
) -> None:
    spec = table_for_file(file_name)
    assert (spec.name if spec else None) == table


def test_copies_of_a_table_file_are_loaded_not_ignored(workspace, tmp_path) -> None:
    folder = tmp_path / "drops" / "2026-11-21"
    write_table(folder, "access_log", [event("E1")])
    write_table(folder, "access_log (1)", [event("E2")])
    write_table(folder, "access_log copy", [event("E3")])
    report = workspace.ingest([folder])
    assert report.ok, report.failed
    loaded = report.loaded[0]
    assert loaded.unrecognised_files == []
    assert (loaded.tables["access_log"].files, loaded.tables["access_log"].loaded) == (3, 3)


# -- 6: out-of-range settings, times and drop dates are one-line user errors -------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "[scoring]\nreexplain_days = 100000000",
            r"[scoring] reexplain_days: must be at most 36600, got 100000000",
        ),
        (
            "[explanations.assigned]\ngrace_before_hours = 1e12",
            r"[explanations.assigned] grace_before_hours: must be at most 878400",
        ),
        (
            "[explanations.assigned]\ngrace_after_hours = inf",
            r"[explanations.assigned] grace_after_hours: input should be a finite number",
        ),
        ("[indicators.unexplained]\nweight = nan", "[indicators.unexplained] weight: input should"),
        ("[indicators.off_shift]\ngrace_hours = 1e300", "[indicators.off_shift] grace_hours: must"),
        ("[store]\nkeep_hours = 1e300", "[store] keep_hours: must be at most"),
        ("[cases]\nspan_days = 99999999", "[cases] span_days: must be at most 36600"),
        ("[reviews]\nsuppress_days = 99999999", "[reviews] suppress_days: must be at most"),
    ],
)
def test_out_of_range_settings_are_a_one_line_error(
    tmp_path: Path, setting: str, message: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text(setting + "\n", encoding="utf-8")
    result = runner.invoke(app, ["score", "--home", str(home), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "internal error" not in result.output


def test_the_largest_settings_allowed_still_score(workspace: Workspace, make_drop) -> None:
    (workspace.home / "access-audit.toml").write_text(
        "[scoring]\nreexplain_days = 36600\nlookback_days = 36600\n"
        "[explanations.assigned]\ngrace_before_hours = 878400\ngrace_after_hours = 878400\n"
        "[indicators.off_shift]\ngrace_hours = 878400\n[reviews]\nsuppress_days = 36600\n",
        encoding="utf-8",
    )
    workspace = Workspace.open(workspace.home)
    first, late = _flagged_then_assigned(make_drop)
    report = workspace.nightly([first, late])
    assert report.ok and report.score is not None and report.score.events == 3


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--since", "10000000000000h"),
        ("--since", "99999999999999999999999d"),
        ("--until", "9999-12-31T23:59:59-05:00"),
    ],
)
def test_a_time_out_of_range_is_a_one_line_error(
    workspace: Workspace, make_drop, option: str, value: str
) -> None:
    assert workspace.nightly([make_drop("2026-11-21", {"access_log": [event("E1")]})]).ok
    result = runner.invoke(app, ["flag", option, value, "--home", str(workspace.home)])
    assert result.exit_code == 2, result.output
    assert f"{option}: '{value}' is out of range" in result.output


@pytest.mark.parametrize("command", ["ingest", "nightly"])
def test_no_drop_that_is_a_folder_is_refused_before_a_home_is_made(
    tmp_path: Path, command: str
) -> None:
    """`nightly drops/*/` where the pattern matched nothing used to make an empty home and print
    an empty table; it is one line, exit 2, and nothing is made."""
    home = tmp_path / "home"
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [command, str(tmp_path / "drops" / "*"), str(tmp_path / "a-file"), "--home", str(home)],
    )
    assert result.exit_code == 2
    assert "not a folder, and neither is any other drop given" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not home.exists()
