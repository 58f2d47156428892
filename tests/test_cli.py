"""The command line, through CliRunner and as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from access_audit.cli import app
from conftest import STAFF_ROWS, event

runner = CliRunner()


def _commands() -> list[str]:
    group = typer.main.get_group(app)
    return sorted(group.commands)


def test_every_command_has_help_text() -> None:
    commands = _commands()
    assert {"ingest", "status", "rejected", "database", "generate"} <= set(commands)
    for name in commands:
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, name
        summary = typer.main.get_group(app).commands[name].help
        assert summary and len(summary.strip()) > 20, name


@pytest.mark.parametrize("command", ["score", "nightly"])
def test_help_names_the_spark_extra_as_typed(command: str) -> None:
    """Brackets in help text are Rich markup unless escaped: `[spark]` must not vanish."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert "pip install 'access-audit[spark]'" in result.output


def test_ingest_status_and_rejected(tmp_path: Path, make_drop) -> None:
    drop = make_drop(
        "2026-11-21", {"access_log": [event("E1"), event("E2", "31/12/2026")], "staff": STAFF_ROWS}
    )
    home = tmp_path / "home"
    result = runner.invoke(app, ["--home", str(home), "ingest", str(drop)])
    assert result.exit_code == 0, result.output
    assert "1 drop(s) loaded, 0 failed; 3 row(s) added" in result.output
    assert "access_log: bad_timestamp" in result.output
    assert "already loaded" not in result.output
    again = runner.invoke(app, ["--home", str(home), "ingest", str(drop)])
    assert again.exit_code == 0, again.output
    assert "0 row(s) added" in again.output
    assert "(1 of them already loaded: nothing new)" in again.output
    status = runner.invoke(app, ["--home", str(home), "status"])
    assert status.exit_code == 0
    assert "generation: 1" in status.output
    listed = runner.invoke(app, ["--home", str(home), "rejected"])
    assert "31/12/2026" in listed.output
    assert "bad_timestamp" in listed.output


def test_rejected_names_the_loaded_drops_when_asked_for_one_never_loaded(
    tmp_path: Path, make_drop
) -> None:
    home = str(tmp_path / "home")
    for day in ("2026-11-20", "2026-11-21"):
        drop = make_drop(day, {"access_log": [event(f"E{day}"), event("X" + day, "31/12/2026")]})
        assert runner.invoke(app, ["--home", home, "ingest", str(drop)]).exit_code == 0
    unknown = runner.invoke(app, ["rejected", "--drop", "2026-11-22", "--home", home])
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == (
        "error: no drop '2026-11-22' was loaded (loaded: 2026-11-20, 2026-11-21)"
    )
    assert unknown.stdout == ""
    one = runner.invoke(app, ["rejected", "--drop", "2026-11-21", "--home", home])
    assert one.exit_code == 0 and "Rejected rows (1 shown)" in one.stdout


def test_nothing_rejected_says_so_instead_of_an_empty_table(tmp_path: Path, make_drop) -> None:
    home = str(tmp_path / "home")
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    assert runner.invoke(app, ["--home", home, "ingest", str(drop)]).exit_code == 0
    listed = runner.invoke(app, ["--home", home, "rejected"])
    assert listed.exit_code == 0 and listed.stdout.strip() == "no rejected rows"


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["explain"], "`access-audit case show` takes cases"),
        (["review", "--status", "under_review", "--note", "n"], "`access-audit case review`"),
    ],
)
def test_a_case_id_given_for_a_flag_points_at_the_case_command(
    tmp_path: Path, make_drop, command: list[str], said: str
) -> None:
    home = str(tmp_path / "home")
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    assert runner.invoke(app, ["--home", home, "ingest", str(drop)]).exit_code == 0
    case = "C20261121-U1-person:P1"
    result = runner.invoke(app, ["--home", home, command[0], case, *command[1:]])
    assert result.exit_code == 2 and said in result.stderr
    flag = runner.invoke(app, ["--home", home, command[0], "F1", *command[1:]])
    assert flag.exit_code == 2 and "case" not in flag.stderr


def test_an_unknown_drop_names_the_range_when_many_are_loaded() -> None:
    from access_audit.errors import UnknownDropError

    many = [f"2026-11-{day:02d}" for day in range(1, 22)]
    assert str(UnknownDropError("x", many)) == (
        "no drop 'x' was loaded (21 drops are loaded, 2026-11-01 to 2026-11-21)"
    )
    assert str(UnknownDropError("x", [])) == "no drop 'x' was loaded (no drop is loaded yet)"


def test_personal_values_are_masked_in_rejected_listing(tmp_path: Path, make_drop) -> None:
    persons = [{"person_id": "P1", "surname": "Adams", "date_of_birth": "1990-13-45"}]
    drop = make_drop("2026-11-21", {"access_log": [event("E1")], "persons": persons})
    home = str(tmp_path / "home")
    runner.invoke(app, ["--home", home, "ingest", str(drop)])
    masked = runner.invoke(app, ["--home", home, "rejected"])
    assert "1990-13-45" not in masked.output
    assert "personal data" in masked.output
    shown = runner.invoke(app, ["--home", home, "rejected", "--show-values"])
    assert "1990-13-45" in shown.output


def test_home_comes_from_the_environment(tmp_path: Path, make_drop, monkeypatch) -> None:
    home = tmp_path / "env-home"
    monkeypatch.setenv("ACCESS_AUDIT_HOME", str(home))
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    assert runner.invoke(app, ["ingest", str(drop)]).exit_code == 0
    assert (home / "access-audit.duckdb").exists()


def test_failed_drop_exits_non_zero_with_one_line(tmp_path: Path, make_drop) -> None:
    drop = make_drop("2026-11-21", {"access_log": [{"event_id": "E1", "user_id": "U1"}]})
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "ingest", str(drop)])
    assert result.exit_code == 1
    assert "access_log.csv: required column 'occurred_at'" in result.output
    assert "Traceback" not in result.output


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "none"), "status"])
    assert result.exit_code == 2
    assert "no access-audit home here" in result.output
    assert "Traceback" not in result.output


def test_help_does_not_import_the_data_engines() -> None:
    code = (
        "import sys, access_audit.cli; "
        "heavy = ('polars', 'duckdb', 'sklearn', 'pyarrow', 'pydantic'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_installed_console_script_runs_as_a_subprocess(tmp_path: Path, make_drop) -> None:
    script = Path(sys.executable).with_name("access-audit")
    assert script.exists(), "install the package (make venv) so the console script exists"
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    env = {**os.environ, "ACCESS_AUDIT_HOME": str(tmp_path / "home"), "COLUMNS": "60"}
    loaded = subprocess.run(
        [str(script), "ingest", "--no-progress", str(drop)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "1 row(s) added" in loaded.stdout
    # a real pipe is not a terminal: full-width plain text, whatever COLUMNS says
    assert "┃ unchanged ┃ duplicates ┃ stale ┃ rejected ┃" in loaded.stdout
    assert "\x1b[" not in loaded.stdout
    version = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("access-audit ")


@pytest.mark.parametrize(
    "argv", [["generate", "x", "--format", "xml"], ["generate", "x", "--start", "21/11/2026"]]
)
def test_bad_options_are_clear_errors(tmp_path: Path, argv: list[str]) -> None:
    argv = [a if a != "x" else str(tmp_path / "out") for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert "error:" in result.output


def test_the_command_list_gives_each_summary_unbroken() -> None:
    """A docstring's first paragraph spans lines; the command list shows it as one sentence,
    not broken where the source line ended (newcomer)."""
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "220"})
    assert result.exit_code == 0
    assert (
        "explanations, indicators, score breakdown, the user's training and the review history."
        in result.output
    )
    cases = CliRunner().invoke(app, ["case", "--help"], env={"COLUMNS": "220"})
    assert cases.exit_code == 0
    for line in cases.output.splitlines():
        # no summary line in the box ends mid-sentence with a comma
        assert not line.rstrip(" │").endswith(",")
