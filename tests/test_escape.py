"""Hostile ids, notes and values through the real CLI: shown literally, never obeyed (finding 5).

An id or note is Rich markup to the terminal (``[/]`` made every later `explain` of a flag fail;
``[link=…]U00001[/link]`` showed as another officer), a formula to a spreadsheet (``=HYPERLINK``),
or a control sequence to the terminal (``\\x1b[2J``, a right-to-left override)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from access_audit import cli_base
from access_audit.cli import app
from access_audit.escape import csv_text, html_text, printable, terminal, visible
from access_audit.evaluate import read_truth
from access_audit.workspace import Workspace
from conftest import event, write_table

LINK_USER = "[link=https://evil.example]U00001[/link]"
FORMULA_RECORD = '=HYPERLINK("http://evil.example")'
CLEAR_SCREEN_EVENT = "E9\x1b[2J"
RLO_USER = "U0\u202eX"
NOTE = "checked [/] later"
FORMULA_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")
DAY = "2026-11-21"


@dataclass(frozen=True)
class HostileHome:
    home: Path
    flag_id: str  # the flag of LINK_USER, closed as dismissed with NOTE

    def run(self, *argv: str) -> str:
        result = CliRunner().invoke(app, ["--home", str(self.home), *argv])
        assert result.exit_code == 0, result.output
        return result.stdout


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide enough that no table cell wraps, so a value can be found whole in the output."""
    monkeypatch.setattr(cli_base, "console", Console(width=400))
    monkeypatch.setattr(cli_base, "err_console", Console(width=400, stderr=True))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileHome]:
    root = tmp_path_factory.mktemp("hostile")
    drop = root / "drops" / DAY
    accesses = [
        event(f"E{i}", f"{DAY}T0{i}:00:00Z", user_id=LINK_USER, record_id=FORMULA_RECORD)
        for i in range(1, 4)
    ]
    accesses += [
        event(CLEAR_SCREEN_EVENT, f"{DAY}T09:00:00Z", user_id=RLO_USER, record_id="-2+3"),
        event("E10", "[/]\x1b[31mnot a time"),
    ]
    write_table(drop, "access_log", accesses)
    staff = [{"user_id": LINK_USER, "surname": "Smith", "role": "@role", "team_id": "+T1"}]
    write_table(drop, "staff", staff)
    broken = root / "drops" / "2026-11-22 [/] \x1b[31m"
    broken.mkdir(parents=True)
    home = root / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text("[scoring]\nalert_threshold = 10\n")
    CliRunner().invoke(app, ["--home", str(home), "nightly", "--no-progress", str(drop)])
    CliRunner().invoke(app, ["--home", str(home), "ingest", "--no-progress", str(broken)])
    flag_id = f"F20261121-{LINK_USER}-{FORMULA_RECORD}"
    hostile = HostileHome(home, flag_id)
    hostile.run(
        "review", flag_id, "--status", "closed", "--outcome", "dismissed", "--note", NOTE,
        "--reviewer", "[bold]reviewer",
    )  # fmt: skip
    yield hostile


def _no_control_characters(text: str) -> None:
    assert "\x1b" not in text and "\u202e" not in text


def test_a_note_with_markup_never_breaks_explain(hostile: HostileHome) -> None:
    shown = hostile.run("explain", hostile.flag_id)
    assert NOTE in shown
    assert f"episode of {LINK_USER} with person {FORMULA_RECORD}" in shown
    assert "[bold]reviewer" in shown


def test_ids_with_markup_are_shown_as_they_are_in_the_queue(hostile: HostileHome) -> None:
    shown = hostile.run("flag", "--since", DAY, "--min-score", "0")
    assert "[link=https://evil.example]" in shown
    assert "\x1b]8;" not in shown  # no terminal hyperlink was made


def test_control_characters_are_shown_not_obeyed(hostile: HostileHome) -> None:
    shown = hostile.run("explain", CLEAR_SCREEN_EVENT)
    _no_control_characters(shown)
    assert "E9\\x1b[2J" in shown and "U0\\u202eX" in shown
    queue = hostile.run("flag", "--since", DAY, "--min-score", "0")
    _no_control_characters(queue)


def test_flag_csv_cells_never_start_a_formula(hostile: HostileHome) -> None:
    text = hostile.run("flag", "--since", DAY, "--format", "csv")
    _no_control_characters(text)  # a cell cannot clear the terminal it is printed to
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + FORMULA_RECORD in cells and "'-2+3" in cells
    assert "U0\\u202eX" in cells  # a right-to-left override is shown, not obeyed
    assert not [cell for cell in cells if cell.startswith(FORMULA_CHARACTERS)]


def test_flag_json_keeps_the_values_exact(hostile: HostileHome) -> None:
    flags = json.loads(hostile.run("flag", "--since", DAY, "--format", "json"))
    assert {f["user_id"] for f in flags} == {LINK_USER, RLO_USER}


def test_report_text_csv_and_html_show_hostile_values_inertly(
    hostile: HostileHome, tmp_path: Path
) -> None:
    period = ["report", "--from", DAY, "--to", DAY]
    text = hostile.run(*period)
    assert f"{LINK_USER}: last never" in text and "U0\\u202eX: last never" in text
    _no_control_characters(text)
    rows = list(csv.reader(io.StringIO(hostile.run(*period, "--format", "csv"))))
    upheld = [row for row in rows if row[0] == "upheld"]
    # one row per upheld case, naming its flags
    assert upheld and upheld[0][1] == f"C20261121-{LINK_USER}-person:{FORMULA_RECORD}"
    assert f"(F20261121-{LINK_USER}-{FORMULA_RECORD})" in upheld[0][2]
    assert not [c for row in rows[1:] for c in row if c.startswith(FORMULA_CHARACTERS)]
    page = tmp_path / "report.html"
    hostile.run(*period, "--format", "html", "--output", str(page))
    html = page.read_text(encoding="utf-8")
    assert "[link=https://evil.example]U00001[/link]" in html
    assert "=HYPERLINK(&quot;http://evil.example&quot;)" in html
    _no_control_characters(html)  # a browser would show U0\u202eX reversed, as "UX0"
    assert "U0\\u202eX" in html
    assert '"http://evil.example"' not in html


def test_rejected_values_and_failed_drops_are_shown_inertly(hostile: HostileHome) -> None:
    rejected = hostile.run("rejected", "--show-values")
    assert "[/]\\x1b[31mnot a time" in rejected
    _no_control_characters(rejected)
    status = hostile.run("status")
    assert "[/] \\x1b[31m" in status
    _no_control_characters(status)


def test_terminal_and_printable_escape_markup_and_controls() -> None:
    assert terminal("a [b]c[/b] d") == "a \\[b]c\\[/b] d"
    assert printable("a\x1b[2Jb\nc\u202e") == "a\\x1b[2Jb\\nc\\u202e"
    assert terminal(None) == printable(None) == ""


def test_csv_text_quotes_every_cell_and_prefixes_formulas() -> None:
    frame = pl.DataFrame({"id": ["=1+1", "+x", "-2", "@SUM(A1)", "\tt", "\rr", "ok", None]})
    lines = csv_text(frame).splitlines()
    assert lines[:5] == ['"id"', '"\'=1+1"', '"\'+x"', '"\'-2"', '"\'@SUM(A1)"']
    assert lines[-2:] == ['"ok"', '""']
    controls = pl.DataFrame({"id": ["a\x1b[2Jb", "\u202eLIVE", "two\nlines", "\x00"]})
    assert csv_text(controls).splitlines() == [
        '"id"',
        '"a\\x1b[2Jb"',
        '"\\u202eLIVE"',
        '"two\\nlines"',
        '"\\x00"',
    ]


def test_html_shows_controls_and_bidi_marks_but_keeps_lines_and_markup() -> None:
    from markupsafe import Markup

    assert html_text("<b>\u202e10000U\x1b</b>") == "&lt;b&gt;\\u202e10000U\\x1b&lt;/b&gt;"
    assert visible("two\nlines\tand a tab") == "two\nlines\tand a tab"
    assert visible(Markup("<svg/>")) == Markup("<svg/>") and visible(3) == 3


def test_emoji_codes_in_a_note_are_shown_as_typed(hostile: HostileHome) -> None:
    """Rich replaces `:thumbs_up:` with an emoji unless told not to: a note, or an access of
    system `A` and event `B`, would read differently from what was typed."""
    flags = json.loads(hostile.run("flag", "--since", DAY, "--format", "json"))
    flag_id = next(f["flag_id"] for f in flags if f["user_id"] == RLO_USER)
    note = "checked :thumbs_up: :cross_mark:"
    hostile.run("review", flag_id, "--status", "under_review", "--note", note)
    done = subprocess.run(
        [sys.executable, "-m", "access_audit", "--home", str(hostile.home), "explain", flag_id],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert note in done.stdout and "\N{THUMBS UP SIGN}" not in done.stdout


def test_an_error_naming_a_hostile_id_is_one_literal_line(hostile: HostileHome) -> None:
    result = CliRunner().invoke(app, ["--home", str(hostile.home), "explain", "[/]\x1b[2J"])
    assert result.exit_code == 2
    assert result.stderr == "error: no flag or access with id [/]\\x1b[2J\n"


@pytest.mark.parametrize("file_format", ["csv", "parquet", "jsonl"])
def test_a_drop_file_name_is_never_a_glob(tmp_path: Path, file_format: str) -> None:
    """A drop `2026-11-21*` is one folder: its neighbour `2026-11-21X` is not read with it."""
    drop = tmp_path / "2026-11-21*"
    write_table(drop, "access_log_[1]", [event("E1")], file_format)
    write_table(tmp_path / "2026-11-21X", "access_log_1", [event("E2")], file_format)
    home = str(tmp_path / "home")
    result = CliRunner().invoke(app, ["--home", home, "ingest", "--no-progress", str(drop)])
    assert result.exit_code == 0, result.output
    stored = Workspace.open(home).scan("access_events").collect()
    assert stored["event_id"].to_list() == ["E1"]


def test_a_truth_file_name_is_never_a_glob(tmp_path: Path) -> None:
    header = "episode_id,scenario,user_id,person_id,system,event_id\n"
    (tmp_path / "truth[1].csv").write_text(header + "EP1,pc_b,U1,P1,RMS,E1\n")
    (tmp_path / "truth1.csv").write_text(header + "EP2,pc_b,U2,P2,RMS,E2\n")
    assert read_truth(tmp_path / "truth[1].csv")["episode_id"].to_list() == ["EP1"]


def test_an_access_whose_ids_hold_a_colon_is_never_mistaken_for_another(tmp_path: Path) -> None:
    """`explain A:B:C` showed (A:B, C) and left (A, B:C) unreachable: now an ambiguous
    identifier is refused in one line, and `--system` names either exactly."""
    drop = tmp_path / "drops" / DAY
    write_table(
        drop,
        "access_log",
        [
            event("B:C", f"{DAY}T08:00:00Z", system="A", user_id="U00001"),
            event("C", f"{DAY}T09:00:00Z", system="A:B", user_id="U00002"),
        ],
    )
    home = str(tmp_path / "home")
    assert (
        CliRunner().invoke(app, ["--home", home, "ingest", "--no-progress", str(drop)]).exit_code
        == 0
    )
    ambiguous = CliRunner().invoke(app, ["--home", home, "explain", "A:B:C"])
    assert ambiguous.exit_code == 2 and ambiguous.stderr.count("\n") == 1
    assert "2 accesses match A:B:C" in ambiguous.stderr and "--system" in ambiguous.stderr
    for system, event_id, user in (("A", "B:C", "U00001"), ("A:B", "C", "U00002")):
        shown = CliRunner().invoke(
            app, ["--home", home, "explain", event_id, "--system", system, "--format", "json"]
        )
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["user_id"] == user
