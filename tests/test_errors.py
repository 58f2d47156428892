"""Every failure is one line on stderr, a non-zero exit and a run record saying "failed"; a full
disk leaves every store as it was and no temporary files behind the next run."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from access_audit import workspace as workspace_module
from access_audit.cli import app
from access_audit.errors import mask_value, redact_quoted, storage_problem
from access_audit.workspace import Workspace
from conftest import STAFF_ROWS, event, store_snapshot

runner = CliRunner()
# What polars 2.1 and DuckDB 2.0 raise when the disk fills (measured on a 1 MB tmpfs).
POLARS_FULL = "parquet: File out of specification: underlying IO error: No space left on device"
DUCKDB_FULL = 'IO Error: Could not write file "{path}": No space left on device'


def _polars_disk_full(*_args: Any, **_kwargs: Any) -> None:
    raise pl.exceptions.ComputeError(POLARS_FULL + " (os error 28)")


def _os_disk_full(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _home_with_one_run(tmp_path: Path, make_drop) -> Path:
    home = tmp_path / "home"
    first = make_drop("2026-11-20", {"access_log": [event("E0")], "staff": STAFF_ROWS})
    assert runner.invoke(app, ["--home", str(home), "nightly", str(first)]).exit_code == 0
    return home


def _command(name: str, drop: Path) -> list[str]:
    """The command line, and for ``score`` the drop loaded first, so that it has new days to
    score (re-scoring unchanged data writes nothing)."""
    if name == "score":
        home = drop.parent.parent / "home"
        assert runner.invoke(app, ["--home", str(home), "ingest", str(drop)]).exit_code == 0
    return {"ingest": ["ingest", str(drop)], "nightly": ["nightly", str(drop)], "score": ["score"]}[
        name
    ]


def _last_run(home: Path) -> dict[str, Any]:
    return Workspace.open(home, create=False).runs()[-1]


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("command", ["ingest", "nightly", "score"])
@pytest.mark.parametrize("failure", [_polars_disk_full, _os_disk_full], ids=["polars", "os"])
def test_a_full_disk_while_writing_the_stores_changes_nothing(
    tmp_path: Path, make_drop, monkeypatch, command: str, failure: Any
) -> None:
    home = _home_with_one_run(tmp_path, make_drop)
    workspace = Workspace.open(home)
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    arguments = _command(command, drop)
    before, generation = store_snapshot(workspace), workspace.generation()
    monkeypatch.setattr(pl.DataFrame, "write_parquet", failure)

    result = runner.invoke(app, ["--home", str(home), *arguments])

    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert line == f"error: no space left on device while writing the stores in {home / 'store'}"
    assert store_snapshot(workspace) == before
    assert workspace.generation() == generation
    assert not list((home / "store").glob(".staging-*"))
    record = _last_run(home)
    assert record["command"] == command
    assert record["outcome"] == "failed"
    assert record["error"].startswith("no space left on device while writing the stores")


def _catalog_disk_full(temporary: Path, *_args: Any) -> None:
    temporary.write_bytes(b"half a database")
    temporary.with_name(temporary.name + ".wal").write_bytes(b"half a log")
    raise duckdb.IOException(DUCKDB_FULL.format(path=temporary))


@pytest.mark.parametrize("command", ["ingest", "nightly", "score"])
def test_a_full_disk_while_building_the_database_says_the_stores_were_committed(
    tmp_path: Path, make_drop, monkeypatch, command: str
) -> None:
    """Regressions: the run record said "completed" (written before the database was rebuilt)
    while the command ended in a traceback, and the half-built database and its .wal stayed;
    then (issue 7, trust trial) the line and the record said "failed" although the stores had
    been committed, and every retry committed another generation."""
    home = _home_with_one_run(tmp_path, make_drop)
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    arguments = _command(command, drop)
    database = (home / "access-audit.duckdb").read_bytes()
    generation = Workspace.open(home).store.current()
    assert generation is not None
    committed = generation.number + 1
    monkeypatch.setattr("access_audit.catalog._write_views", _catalog_disk_full)

    result = runner.invoke(app, ["--home", str(home), *arguments])

    assert result.exit_code == 1
    assert _one_line(result.stderr) == (
        f"error: stores committed as generation {committed}; the analysts' database could not "
        "be rebuilt (no space left on device while writing the analysts' database "
        f"{home / 'access-audit.duckdb'}) and is rebuilt by the next run or "
        "`access-audit database`"
    )
    assert Workspace.open(home).store.current() == Workspace.open(home).store.generations()[-1]
    assert sorted(p.name for p in home.glob(".access-audit.duckdb*")) == []
    assert (home / "access-audit.duckdb").read_bytes() == database  # analysts keep the old one
    record = _last_run(home)
    assert record["outcome"] == "committed_database_stale"
    assert record["generation"] == committed
    assert record["error"].startswith(f"stores committed as generation {committed};")

    monkeypatch.undo()
    retry = runner.invoke(app, ["--home", str(home), *_retry(command, drop)])
    assert retry.exit_code == 0, retry.stderr
    current = Workspace.open(home).store.current()
    assert current is not None and current.number == committed  # nothing committed again
    assert not Workspace.open(home)._catalog_is_stale()
    assert _last_run(home)["outcome"] in ("completed", "nothing_new")


def _retry(command: str, drop: Path) -> list[str]:
    return {"ingest": ["ingest", str(drop)], "nightly": ["nightly", str(drop)], "score": ["score"]}[
        command
    ]


def test_re_running_a_nightly_commits_nothing_new(tmp_path: Path, make_drop) -> None:
    """Re-running a drop changes nothing: the re-scored days are identical, so no generation is
    committed (every re-run used to commit one, as float sums came out in another order)."""
    home = tmp_path / "home"
    first = make_drop(
        "2026-11-20",
        {
            "access_log": [
                event("E0"),
                event("E1", "2026-11-20T11:00:00Z", user_id="U00002", record_id="P0000002"),
            ],
            "staff": STAFF_ROWS,
        },
    )
    assert runner.invoke(app, ["--home", str(home), "nightly", str(first)]).exit_code == 0
    before = store_snapshot(Workspace.open(home))
    for arguments in (["nightly", str(first)], ["score"], ["nightly", str(first)]):
        assert runner.invoke(app, ["--home", str(home), *arguments]).exit_code == 0
        assert store_snapshot(Workspace.open(home)) == before


def test_a_full_disk_while_writing_the_run_record_is_still_one_line(
    tmp_path: Path, make_drop, monkeypatch
) -> None:
    """No record can be written on a full disk: the failure must still reach the terminal."""
    home = _home_with_one_run(tmp_path, make_drop)
    records = sorted((home / "runs").iterdir())
    monkeypatch.setattr(workspace_module, "_replace_owner_only", _os_disk_full)

    result = runner.invoke(app, ["--home", str(home), "score"])

    assert result.exit_code == 1
    assert _one_line(result.stderr) == (
        f"error: no space left on device while writing the run record in {home / 'runs'}"
    )
    assert sorted((home / "runs").iterdir()) == records


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_the_next_run_removes_temporaries_of_runs_that_died(tmp_path: Path, make_drop) -> None:
    """Regression: a run killed while building the database left `.access-audit.duckdb.<pid>.tmp`
    and its `.wal` behind for ever."""
    home = _home_with_one_run(tmp_path, make_drop)
    dead = _dead_pid()
    debris = [
        home / f".access-audit.duckdb.{dead}.tmp",
        home / f".access-audit.duckdb.{dead}.tmp.wal",
        home / "runs" / f".20261121T000000Z-abcdef12.json.{dead}.tmp",
    ]
    running = home / ".access-audit.duckdb.1.tmp"  # pid 1 is always running: not ours to remove
    for path in [*debris, running]:
        path.write_bytes(b"left by a run that died")

    assert runner.invoke(app, ["--home", str(home), "score"]).exit_code == 0

    assert [p for p in debris if p.exists()] == []
    assert running.exists()


def test_a_bug_is_one_line_naming_an_owner_only_traceback_file(
    tmp_path: Path, make_drop, monkeypatch
) -> None:
    home = _home_with_one_run(tmp_path, make_drop)

    def bug(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError("Smith, John")  # a message that quotes the data

    monkeypatch.setattr("access_audit.score.run.write_scored", bug)
    result = runner.invoke(app, ["--home", str(home), "score"])

    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert line.startswith("error: internal error (KeyError); the full traceback is in ")
    assert "Smith" not in result.stderr
    path = Path(line.split(" is in ", 1)[1].split("; please report it")[0])
    assert path.parent == home / "runs"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "KeyError" in path.read_text() and "Traceback" in path.read_text()
    record = _last_run(home)
    assert record["outcome"] == "failed"
    assert str(path) in record["error"] and "Smith" not in record["error"]


def test_a_failed_drop_in_the_nightly_run_is_recorded_as_failed(tmp_path: Path, make_drop) -> None:
    """Regression: the run record said "completed_with_failures" while the command exited 1."""
    home = _home_with_one_run(tmp_path, make_drop)
    bad = make_drop("2026-11-21", {"access_log": [{"event_id": "E1", "user_id": "U1"}]})

    result = runner.invoke(app, ["--home", str(home), "nightly", str(bad)])

    assert result.exit_code == 1
    record = _last_run(home)
    assert record["outcome"] == "failed"
    assert record["error"].startswith(f"1 drop(s) failed to load: {bad.name}: ")
    assert "required column 'occurred_at'" in record["error"]


def test_a_value_in_an_error_is_shown_literally_not_as_terminal_markup(tmp_path: Path) -> None:
    """Regression: error lines went through rich markup, so '[store]' vanished from messages
    and an id such as '[blink]x' was styled, not shown."""
    home = tmp_path / "home"
    Workspace.open(home)
    result = runner.invoke(app, ["--home", str(home), "explain", "[blink]x[/blink]"])
    assert result.exit_code == 2
    assert _one_line(result.stderr) == "error: no flag or access with id [blink]x[/blink]"


def test_a_malformed_truth_file_is_one_line_without_its_values(tmp_path: Path) -> None:
    """Regression: a truth file polars cannot parse ended in a traceback."""
    home = tmp_path / "home"
    Workspace.open(home)
    truth = tmp_path / "truth.csv"
    truth.write_text('scenario,system\nA,RMS\n"Smith, John",RMS,extra\n')
    result = runner.invoke(app, ["--home", str(home), "evaluate", "--truth", str(truth)])
    assert result.exit_code == 2
    line = _one_line(result.stderr)
    assert line.startswith(f"error: {truth}: cannot be read as CSV (")
    assert "Smith" not in line


def test_storage_problems_are_recognised_from_every_engine() -> None:
    assert storage_problem(OSError(errno.ENOSPC, "No space left on device")) == (
        "no space left on device"
    )
    assert storage_problem(pl.exceptions.ComputeError(POLARS_FULL)) == "no space left on device"
    assert storage_problem(duckdb.IOException(DUCKDB_FULL.format(path="x"))) == (
        "no space left on device"
    )
    assert storage_problem(OSError(errno.EDQUOT, "Disk quota exceeded")) == "disk quota exceeded"
    assert storage_problem(ValueError("No space left on device")) is None  # not an I/O error
    assert storage_problem(pl.exceptions.ComputeError("invalid utf-8 sequence")) is None


def test_masking_helpers_show_no_personal_value() -> None:
    assert mask_value("Smith") == "'S…' (5 characters)"
    assert mask_value("") == "'…' (0 characters)"
    assert mask_value(None) == "'…' (0 characters)"
    assert mask_value("X") == "'…' (1 character)"
    message = 'could not parse `Smith` as date in column "dob": ["07/13/1980"]\nhint'
    assert redact_quoted(message) == "could not parse '…' as date in column '…': ['…'] hint"


def test_every_command_reports_failures_as_one_line() -> None:
    import typer

    from access_audit.cli import _reports_errors

    wrapper_code = _reports_errors(lambda: None).__code__

    def wrapped(function: Any) -> bool:
        while function is not None:
            if getattr(function, "__code__", None) is wrapper_code:
                return True
            function = getattr(function, "__wrapped__", None)
        return False

    commands = typer.main.get_group(app).commands
    assert [name for name, c in commands.items() if not wrapped(c.callback)] == []


def test_an_engine_message_quoting_the_data_is_masked_on_screen_and_in_the_record(
    tmp_path: Path,
) -> None:
    """Regression: polars' "at character 0 ('S')" reached the terminal and the run record. The
    line is now quarantined alone (issue 7.3); nothing from it reaches the screen or the record."""
    home = tmp_path / "home"
    drop = tmp_path / "drops" / "2026-11-21"
    drop.mkdir(parents=True)
    (drop / "access_log.jsonl").write_text('{"event_id": "E1"}\nSmith Jones\n')

    result = runner.invoke(app, ["--home", str(home), "ingest", str(drop)])

    assert result.exit_code == 1
    assert "is missing" in result.output
    assert "'S'" not in result.output and "Smith" not in result.output
    record = _last_run(home)
    assert record["outcome"] == "failed"
    assert "'S'" not in record["error"] and "Smith" not in json.dumps(record)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["flag", "--limit", "0"],
            "error: Invalid value for '--limit': Input should be greater than or equal to 1 "
            "(see access-audit flag --help)",
        ),
        (["nosuch"], "error: No such command 'nosuch'. (see access-audit --help)"),
    ],
)
def test_a_usage_mistake_is_one_line_from_the_installed_command(
    tmp_path: Path, argv: list[str], line: str
) -> None:
    """Regression: a bad option value printed usage, a hint and a four-line box."""
    done = subprocess.run(
        [sys.executable, "-m", "access_audit", "--home", str(tmp_path), *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == line
