"""The newcomer's friction list (issue 10, item 4): each point a user ran into, as a test."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.generate import generate_force
from access_audit.notebook import DEMO_HOME, notebook_path, open_workspace
from access_audit.report.charts import timeline
from access_audit.workspace import Workspace
from conftest import STAFF_ROWS, event

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
FIRST_DAY = date(2026, 10, 22)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A small generated force after its nightly run: flags to list, explain and report on."""
    root = tmp_path_factory.mktemp("friction")
    made = generate_force(root / "drops", staff=80, days=6, seed=3, start=FIRST_DAY)
    workspace = Workspace.open(root / "home")
    assert workspace.nightly(made.drops).ok
    yield workspace


def _home(workspace: Workspace) -> list[str]:
    return ["--home", str(workspace.home)]


@pytest.fixture
def no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """What cron gives: no COLUMNS in the environment."""
    monkeypatch.delenv("COLUMNS", raising=False)


# -- output to a file or a cron log ---------------------------------------------------------------
def test_piped_output_is_full_width_plain_text(tmp_path: Path, make_drop, no_columns) -> None:
    drop = make_drop("2026-11-21", {"access_log": [event("E1")], "staff": STAFF_ROWS})
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "ingest", str(drop)])
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) > 80
    # at 80 columns rich squeezed the headers ("dupli-/cates", "reje…")
    assert "┃ unchanged ┃ duplicates ┃ stale ┃ rejected ┃" in result.stdout
    assert "…" not in result.stdout
    assert "\x1b[" not in result.stdout


# -- --quiet, progress and exit codes -------------------------------------------------------------
@pytest.mark.parametrize("command", ["ingest", "nightly", "score", "generate", "learn"])
def test_long_commands_take_quiet(command: str, no_columns) -> None:
    assert "--quiet" in runner.invoke(app, [command, "--help"]).stdout


def test_quiet_prints_only_problems(tmp_path: Path, make_drop) -> None:
    good = make_drop("2026-11-21", {"access_log": [event("E1")], "staff": STAFF_ROWS})
    bad = make_drop("2026-11-22", {"access_log": [{"event_id": "E2", "user_id": "U1"}]})
    home = ["--home", str(tmp_path / "h")]
    quiet = runner.invoke(app, [*home, "ingest", "--quiet", str(good)])
    assert quiet.exit_code == 0 and quiet.stdout == ""
    failed = runner.invoke(app, [*home, "nightly", "-q", str(bad)])
    assert failed.exit_code == 1
    assert failed.stdout == ""
    assert "required column 'occurred_at'" in failed.stderr
    rescored = runner.invoke(app, [*home, "score", "--quiet"])
    assert rescored.exit_code == 0 and rescored.stdout == ""


def test_score_reports_progress_per_chunk(tmp_path: Path, make_drop) -> None:
    drops = [
        make_drop(f"2026-11-2{n}", {"access_log": [event(f"E{n}", f"2026-11-2{n}T10:00:00Z")]})
        for n in (1, 2, 3)
    ]
    workspace = Workspace.open(tmp_path / "home")
    assert workspace.ingest(drops).ok
    calls: list[tuple[str, int, int]] = []
    workspace.score(progress=lambda what, done, total: calls.append((what, done, total)))
    assert calls and calls[-1] == ("scoring days", 3, 3)
    assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)


def test_help_lists_the_exit_codes(no_columns) -> None:
    shown = " ".join(runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).stdout.split())
    assert "Exit codes: 0 done; 1 a drop could not be loaded" in shown
    assert "2 a user error" in shown


# -- --home after the command ---------------------------------------------------------------------
def test_home_is_accepted_after_the_command(tmp_path: Path, make_drop) -> None:
    home = str(tmp_path / "home")
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    assert runner.invoke(app, ["ingest", str(drop), "--home", home]).exit_code == 0
    after = runner.invoke(app, ["status", "--home", home])
    assert after.exit_code == 0 and f"home: {Path(home).absolute()}" in after.stdout
    both = runner.invoke(app, ["--home", home, "flag", "--home", home])
    assert both.exit_code == 0, both.output


def test_two_different_homes_are_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path / "a"), "status", "--home", "b"])
    assert result.exit_code == 2
    assert "--home given twice with different folders" in result.output


@pytest.mark.parametrize(
    "command",
    [
        *("ingest", "status", "rejected", "database", "nightly", "score", "flag", "explain"),
        *("review", "learn", "evaluate", "report"),
    ],
)
def test_every_workspace_command_takes_home(command: str) -> None:
    assert "--home" in runner.invoke(app, [command, "--help"]).stdout


# -- machine-readable output ----------------------------------------------------------------------
def test_flag_csv_and_json_times_are_the_same_iso_utc(scored: Workspace) -> None:
    args = [*_home(scored), "flag", "--since", str(FIRST_DAY), "--limit", "3", "--format"]
    as_json = json.loads(runner.invoke(app, [*args, "json"]).stdout)
    as_csv = list(csv.DictReader(io.StringIO(runner.invoke(app, [*args, "csv"]).stdout)))
    assert len(as_json) == len(as_csv) == 3
    for one, other in zip(as_json, as_csv, strict=True):
        for column in ("first_access_at", "last_access_at"):
            assert ISO_Z.match(other[column]), other[column]
            assert one[column] == other[column]


def test_explain_a_flag_as_json(scored: Workspace) -> None:
    flag = scored.flags(limit=1).row(0, named=True)
    result = runner.invoke(app, [*_home(scored), "explain", flag["flag_id"], "--format", "json"])
    assert result.exit_code == 0, result.output
    detail = json.loads(result.stdout)
    assert detail["flag_id"] == flag["flag_id"] and detail["score"] == flag["score"]
    assert ISO_Z.match(detail["first_access_at"])
    assert len(detail["accesses"]) == len(flag["events"])
    assert all(ISO_Z.match(a["occurred_at"]) for a in detail["accesses"])
    assert {"reasons", "training", "reviews", "status"} <= set(detail)


def test_explain_an_access_as_json(scored: Workspace) -> None:
    flag = scored.flags(limit=1).row(0, named=True)
    access = flag["events"][0]
    identifier = f"{access['system']}:{access['event_id']}"
    result = runner.invoke(app, [*_home(scored), "explain", identifier, "--format", "json"])
    detail = json.loads(result.stdout)
    assert detail["event_id"] == access["event_id"]
    assert flag["flag_id"] in [f["flag_id"] for f in detail["flags"]]


# -- empty homes and days without data ------------------------------------------------------------
def test_flag_on_an_empty_home_says_nothing_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    for output_format in ("table", "json"):
        result = runner.invoke(
            app, ["--home", str(tmp_path / "home"), "flag", "--format", output_format]
        )
        assert result.exit_code == 2
        assert "nothing is loaded yet" in result.output


def test_report_takes_the_same_days_as_flag(scored: Workspace) -> None:
    result = runner.invoke(app, [*_home(scored), "report", "--from", "yesterday", "--to", "today"])
    assert "is not a YYYY-MM-DD date" not in result.output
    # the generated force is in October 2026: nothing is loaded for yesterday
    assert result.exit_code == 2
    assert "no data is loaded for any day" in result.output


def test_an_empty_period_is_refused_unless_allowed(tmp_path: Path, scored: Workspace) -> None:
    period = ["report", "--from", "2026-01-01", "--to", "2026-01-03"]
    refused = runner.invoke(app, [*_home(scored), *period])
    assert refused.exit_code == 2 and "--allow-empty" in refused.output
    (tmp_path / "empty").mkdir()
    empty_home = runner.invoke(app, ["--home", str(tmp_path / "empty"), *period])
    assert empty_home.exit_code == 2 and "0 flags without having looked" in empty_home.output
    allowed = runner.invoke(app, [*_home(scored), *period, "--allow-empty"])
    assert allowed.exit_code == 0
    assert "days with data loaded: 0 of 3" in allowed.stdout
    assert "2026-01-02: no data loaded" in allowed.stdout


@pytest.mark.parametrize("output_format", ["text", "csv", "html"])
def test_days_without_data_are_marked_not_zero(
    tmp_path: Path, scored: Workspace, output_format: str
) -> None:
    out = tmp_path / f"report.{output_format}"
    result = runner.invoke(
        app,
        [
            *_home(scored),
            *("report", "--from", "2026-10-18", "--to", "2026-10-31"),
            *("--format", output_format, "--output", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    if output_format == "text":
        assert "2026-10-19: no data loaded" in text and "2026-10-31: no data loaded" in text
        assert "2026-10-25: no data loaded" not in text
    elif output_format == "csv":
        rows = {(r[0], r[1]): r[2] for r in csv.reader(io.StringIO(text))}
        assert rows[("per_day", "2026-10-19")] == "no data loaded"
        assert rows[("per_day", "2026-10-25")].isdigit()
    else:
        assert text.count('class="no-data"') >= 1 + 4  # the note, and one column per empty day
        assert "19 Oct: no data loaded" in text
        assert "2026-10-18 to 2026-10-20, 2026-10-28 to 2026-10-31" in text


# -- charts ---------------------------------------------------------------------------------------
def test_timeline_says_how_many_subjects_it_leaves_out() -> None:
    lanes = [f"person P{n:07d}" for n in range(15)]
    times = [datetime(2026, 10, 22, n, tzinfo=UTC) for n in range(15)]
    svg = timeline("accesses", times, [True] * 15, lanes)
    assert "and 3 more not shown" in svg
    assert "person P0000011" in svg and "person P0000012" not in svg


def test_timeline_labels_stay_off_the_plot() -> None:
    long_name = "incident CR/2026/500008 (domestic abuse, repeat victim)"
    times = [datetime(2026, 10, 22, 9, tzinfo=UTC), datetime(2026, 10, 23, 9, tzinfo=UTC)]
    svg = timeline("accesses", times, [True, False], [long_name, "person P1"])
    dots = [float(x) for x in re.findall(r'<circle[^>]* cx="([\d.]+)"', svg)]
    labels = re.findall(r'<text class="lane" x="([\d.]+)"[^>]*text-anchor="end">', svg)
    assert len(labels) == 2
    assert all(float(x) < min(dots) - 4 for x in labels)
    shown = re.findall(r"</title>([^<]*)</text>", svg)
    assert all(len(label) <= 22 for label in shown)
    assert f"<title>{long_name}</title>" in svg


# -- generate's limits ----------------------------------------------------------------------------
def test_generate_help_states_the_limits_it_enforces(tmp_path: Path, no_columns) -> None:
    shown = runner.invoke(app, ["generate", "--help"], env={"COLUMNS": "200"}).stdout
    assert "x>=3" in shown and "x>=40" in shown
    assert "x>=1" not in shown
    for option, value in (("--days", "2"), ("--staff", "39")):
        result = runner.invoke(app, ["generate", str(tmp_path / "out"), option, value])
        assert result.exit_code == 2, option
        assert "greater than or equal to" in result.output


# -- help texts -----------------------------------------------------------------------------------
def _help_texts(command: Any) -> list[str]:
    return [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]


@pytest.mark.parametrize("name", sorted(typer.main.get_group(app).commands))
def test_brackets_in_help_texts_are_shown(name: str, no_columns) -> None:
    command = typer.main.get_group(app).commands[name]
    bracketed = {
        f"[{m}]" for text in _help_texts(command) for m in re.findall(r"\\?\[([^\]]+)\]", text)
    }
    shown = runner.invoke(app, [name, "--help"], env={"COLUMNS": "300"}).stdout
    missing = [b for b in bracketed if b not in shown]
    assert not missing, f"{name} --help lost {missing}"


def test_nightly_help_names_the_setting() -> None:
    shown = runner.invoke(app, ["nightly", "--help"], env={"COLUMNS": "300"}).stdout
    assert "([scoring] reexplain_days)" in shown


# -- notebooks ------------------------------------------------------------------------------------
def test_a_relative_home_is_read_from_where_jupyter_was_started(tmp_path: Path) -> None:
    kernel_folder = tmp_path / "notebooks"  # Jupyter starts the kernel in the notebook's folder
    env = {"ACCESS_AUDIT_HOME": "demo/home", "PWD": str(tmp_path)}
    assert notebook_path("ACCESS_AUDIT_HOME", DEMO_HOME, env, kernel_folder) == (
        tmp_path / "demo" / "home"
    )
    absolute = {"ACCESS_AUDIT_HOME": str(tmp_path / "elsewhere"), "PWD": "/"}
    assert notebook_path("ACCESS_AUDIT_HOME", DEMO_HOME, absolute, kernel_folder) == (
        tmp_path / "elsewhere"
    )
    assert notebook_path("ACCESS_AUDIT_HOME", DEMO_HOME, {}, kernel_folder) == (
        tmp_path / "demo" / "home"
    )


def test_notebooks_open_their_home_through_one_helper_that_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        first_code = next("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "workspace = open_workspace()" in first_code, notebook.name
        assert "os.environ" not in first_code, notebook.name
    Workspace.open(tmp_path / "home")
    monkeypatch.setenv("ACCESS_AUDIT_HOME", "home")
    monkeypatch.setenv("PWD", str(tmp_path))
    assert open_workspace().home == tmp_path / "home"
    assert f"access-audit home: {tmp_path / 'home'}" in capsys.readouterr().out


def test_a_cleared_flags_time_is_iso_utc_in_csv_and_json() -> None:
    """`cleared_at` (a flag kept after late explanations cleared it) follows the same format."""
    from datetime import UTC, datetime

    import polars as pl

    from access_audit.review.queue import flag_records, flat_flags

    cleared = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    queue = pl.DataFrame(
        {
            "first_access_at": [at],
            "last_access_at": [at],
            "cleared_at": [cleared],
            "day": [at.date()],
            "events": [[{"system": "RMS", "event_id": "E1"}]],
            "reasons": [[{"code": "unexplained", "text": "nothing explains it", "weight": 1.0}]],
        }
    )
    assert flat_flags(queue)["cleared_at"].item() == "2026-11-21T10:00:00Z"
    assert flag_records(queue)[0]["cleared_at"] == "2026-11-21T10:00:00Z"


def test_notebooks_without_a_home_is_one_line_not_a_kernel_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from access_audit.notebooks import main

    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "notebooks/01_todays_flags.ipynb",
                "--home",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path),
            ]
        )
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no access-audit home" in err
    assert list(tmp_path.iterdir()) == []
