"""Cases: one user's flags on one subject (or their pattern flags) within a span, decided as one."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from access_audit import cli_base
from access_audit.cli import app
from access_audit.config import parse_config
from access_audit.errors import AccessAuditError
from access_audit.report import apsp_type
from access_audit.report.formats import render_html
from access_audit.review import default_reviewer
from access_audit.review.case_log import CASE_LOG_SCHEMA
from access_audit.review.cases import case_members, case_summaries
from access_audit.tables import FLAGS, REVIEWS
from access_audit.workspace import Workspace
from conftest import event, write_table

ASSIGNED_ON = date(2026, 10, 20)
"""The day the tests that set a due date now past make their assignments."""

DUCKDB_SHELL = Path(sys.executable).with_name("duckdb")
HOSTILE_USER = "[link=https://evil.example]U-9[/link]"
FORMULA_SUBJECT = '=HYPERLINK("http://evil.example")'
HOSTILE_NOTE = "checked [/] \x1b[2J later"
FORMULA_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")

STAFF = [
    {"user_id": u, "surname": "Officer", "role": "response_officer", "team_id": "T1"}
    for u in ("U1", "U2", HOSTILE_USER)
]
PERSONS = [
    {
        "person_id": p,
        "surname": "Subject",
        "sex": "F",
        "date_of_birth": "1990-01-01",
        "postcode": "NE1 1AA",
        "markers": None,
    }
    for p in ("P1", "P2", FORMULA_SUBJECT)
]
# Three nights: U1 looks up P1 on the 17th and again on the 19th (one case), and 34 days later
# (the next case); U1 on P2 and U2 on P1 are cases of their own.
NIGHTS = {
    "2026-10-17": [
        event("E1", "2026-10-17T10:00:00Z", user_id="U1", record_id="P1"),
        event("E2", "2026-10-17T11:00:00Z", user_id="U1", record_id="P2"),
        event("E3", "2026-10-17T12:00:00Z", user_id="U2", record_id="P1"),
        event("E4", "2026-10-17T13:00:00Z", user_id=HOSTILE_USER, record_id=FORMULA_SUBJECT),
    ],
    "2026-10-19": [event("E5", "2026-10-19T10:00:00Z", user_id="U1", record_id="P1")],
    "2026-11-20": [event("E6", "2026-11-20T10:00:00Z", user_id="U1", record_id="P1")],
}
FIRST_CASE = "C20261017-U1-person:P1"
NEXT_CASE = "C20261116-U1-person:P1"  # 2026-10-17 + 30 days: the span that holds 2026-11-20
HOSTILE_CASE = f"C20261017-{HOSTILE_USER.replace('-', '%2D')}-person:{FORMULA_SUBJECT}"


def _drop(root: Path, day: str) -> Path:
    folder = root / "drops" / day
    write_table(folder, "staff", STAFF)
    write_table(folder, "persons", PERSONS)
    write_table(folder, "access_log", NIGHTS[day])
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home after all three nights: every unexplained lookup is an alert."""
    root = tmp_path_factory.mktemp("cases")
    home = root / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text(
        "[scoring]\nalert_threshold = 10\n[peers]\nenabled = false\n", encoding="utf-8"
    )
    workspace = Workspace.open(home)
    for day in NIGHTS:
        assert workspace.nightly([_drop(root, day)]).ok
    return home


@pytest.fixture
def home(built: Path, tmp_path: Path) -> Workspace:
    """A private copy of the scored home, so each test's decisions are its own."""
    copy = tmp_path / "home"
    shutil.copytree(built, copy)
    workspace = Workspace.open(copy)
    workspace.refresh_catalog()  # the copied database's views name the original home's files
    return workspace


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide enough that no table cell wraps, so a value can be found whole in the output."""
    monkeypatch.setattr(cli_base, "console", Console(width=400))
    monkeypatch.setattr(cli_base, "err_console", Console(width=400, stderr=True))


def run(workspace: Workspace, *argv: str, exit_code: int = 0) -> str:
    result = CliRunner().invoke(app, [*argv, "--home", str(workspace.home)])
    assert result.exit_code == exit_code, result.output
    return result.stdout if exit_code == 0 else result.stderr


# -- grouping, as pure frames ---------------------------------------------------------------------
def _flags(*rows: tuple[str, str | None, str | None, str, bool]) -> pl.LazyFrame:
    """(flag_id, user_id, subject_id, day, alert) rows as the flags table; a subject-less row
    is a user-level pattern flag."""
    frame = pl.DataFrame(
        [
            {
                "flag_id": flag_id,
                "kind": "episode" if subject else "pattern",
                "user_id": user,
                "subject_type": "person" if subject else None,
                "subject_id": subject,
                "day": date.fromisoformat(day),
                "score": 70.0,
                "alert": alert,
            }
            for flag_id, user, subject, day, alert in rows
        ]
    )
    return frame.lazy().with_columns(
        [
            pl.lit(None, dtype=dtype).alias(name)
            for name, dtype in FLAGS.full_schema().items()
            if name not in frame.columns
        ]
    )


NO_REVIEWS = pl.LazyFrame(schema=REVIEWS.schema())
NO_CASE_EVENTS = pl.LazyFrame(schema=CASE_LOG_SCHEMA)


def test_a_case_is_one_users_flags_on_one_subject_or_their_patterns_within_the_span() -> None:
    flags = _flags(
        ("a", "U1", "P1", "2026-10-01", True),
        ("b", "U1", "P1", "2026-10-30", True),  # day 29 of the span: the same case
        ("c", "U1", "P1", "2026-10-31", True),  # day 30: the next case
        ("d", "U1", "P2", "2026-10-05", True),
        ("e", "U2", "P1", "2026-10-05", True),
        ("f", "U1", None, "2026-10-02", True),
        ("g", "U1", None, "2026-10-20", True),
        ("h", "U-1%", "P-1", "2026-10-03", True),
        ("i", "U1", "P3", "2026-10-04", False),  # not an alert, no decision: no case
        ("j", None, None, "2026-10-04", True),
    )
    members = case_members(flags, NO_REVIEWS, span_days=30).collect()
    assert dict(members.select("flag_id", "case_id").rows()) == {
        "a": "C20261001-U1-person:P1",
        "b": "C20261001-U1-person:P1",
        "c": "C20261031-U1-person:P1",
        "d": "C20261005-U1-person:P2",
        "e": "C20261005-U2-person:P1",
        "f": "C20261002-U1-user",
        "g": "C20261002-U1-user",
        "h": "C20261003-U%2D1%25-person:P%2D1",
        "j": "C20261004--user",
    }
    spans = members.filter(pl.col("flag_id") == "c").select("window_start", "window_end").row(0)
    assert spans == (date(2026, 10, 31), date(2026, 11, 29))


def test_a_cleared_or_decided_flag_stays_in_its_case() -> None:
    flags = _flags(
        ("a", "U1", "P1", "2026-10-01", False),
        ("b", "U1", "P1", "2026-10-02", True),
        ("c", "U1", "P1", "2026-10-03", False),
    ).with_columns(
        cleared_at=pl.when(pl.col("flag_id") == "a").then(
            pl.lit(datetime(2026, 10, 4, tzinfo=UTC), dtype=pl.Datetime("us", "UTC"))
        )
    )
    given = {"review_id": "R1", "flag_id": "c", "status": "under_review"}
    reviews = (
        pl.DataFrame([given])
        .with_columns(
            reviewed_at=pl.lit(datetime(2026, 10, 5, tzinfo=UTC)),
            **{
                name: pl.lit(None)
                for name in REVIEWS.schema().names()
                if name not in (*given, "reviewed_at")
            },
        )
        .cast(REVIEWS.schema())  # type: ignore[arg-type]
        .lazy()
    )
    members = case_members(flags, reviews, span_days=30).collect()
    assert members.sort("flag_id").select("flag_id", "case_id", "status").rows() == [
        ("a", "C20261001-U1-person:P1", "open"),
        ("b", "C20261001-U1-person:P1", "open"),
        ("c", "C20261001-U1-person:P1", "under_review"),
    ]


def _decision(case_id: str, status: str, flag_ids: list[str]) -> pl.LazyFrame:
    return pl.DataFrame(
        [
            {
                "case_id": case_id,
                "action": "decision",
                "recorded_at": datetime(2026, 10, 10, tzinfo=UTC),
                "analyst": "a",
                "status": status,
                "outcome": "no_case_to_answer" if status == "closed" else None,
                "flag_ids": flag_ids,
            }
        ],
        schema={k: CASE_LOG_SCHEMA[k] for k in ("case_id", "action", "recorded_at", "analyst")}
        | {"status": pl.String(), "outcome": pl.String(), "flag_ids": pl.List(pl.String())},
    ).lazy().with_columns(
        [pl.lit(None, dtype=d).alias(n) for n, d in CASE_LOG_SCHEMA.items() if n not in (
            "case_id", "action", "recorded_at", "analyst", "status", "outcome", "flag_ids")]
    ).select(CASE_LOG_SCHEMA.names())  # fmt: skip


def test_a_later_flag_joins_the_case_and_reopens_it_if_it_was_closed() -> None:
    before = _flags(("a", "U1", "P1", "2026-10-01", True))
    after = _flags(("a", "U1", "P1", "2026-10-01", True), ("b", "U1", "P1", "2026-10-09", True))
    log = _decision("C20261001-U1-person:P1", "closed", ["a"])
    # a case decision is recorded on its flags too
    decided = pl.DataFrame(
        [
            {
                "review_id": "R1",
                "flag_id": "a",
                "reviewed_at": datetime(2026, 10, 10, tzinfo=UTC),
                "reviewer": "a",
                "status": "closed",
                "outcome": "dismissed",
            }
        ],
        schema=REVIEWS.schema(),
        strict=False,
    ).lazy()
    today = date(2026, 10, 12)
    closed = case_summaries(case_members(before, decided, 30), log, today).collect()
    assert closed.select("case_id", "status", "flags", "reopened").rows() == [
        ("C20261001-U1-person:P1", "closed", 1, False)
    ]
    joined = case_summaries(case_members(after, decided, 30), log, today).collect()
    assert joined.select("case_id", "status", "flags", "undecided_flags", "reopened").rows() == [
        ("C20261001-U1-person:P1", "open", 2, 1, True)
    ]
    # an open case simply grows; the same flags and log always give the same cases
    open_log = _decision("C20261001-U1-person:P1", "under_review", ["a"])
    grown = case_summaries(case_members(after, NO_REVIEWS, 30), open_log, today).collect()
    assert grown.select("status", "flags").rows() == [("under_review", 2)]
    again = case_summaries(case_members(after, NO_REVIEWS, 30), open_log, today).collect()
    assert again.equals(grown)


# -- a real home ----------------------------------------------------------------------------------
def test_a_flag_from_a_later_nightly_run_joins_the_open_case(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text(
        "[scoring]\nalert_threshold = 10\n[peers]\nenabled = false\n", encoding="utf-8"
    )
    workspace = Workspace.open(home)
    assert workspace.nightly([_drop(tmp_path, "2026-10-17")]).ok
    assert workspace.cases.detail(FIRST_CASE).flags.height == 1
    workspace.cases.assign(FIRST_CASE, "analyst1", due=date(2026, 11, 1), today=ASSIGNED_ON)

    second = _drop(tmp_path, "2026-10-19")
    assert workspace.nightly([second]).ok
    detail = workspace.cases.detail(FIRST_CASE)
    assert detail.flags["flag_id"].sort().to_list() == [
        "F20261017-U1-P1",
        "F20261019-U1-P1",
    ]
    assert detail.case["assignee"] == "analyst1" and detail.case["status"] == "open"
    cases = workspace.cases.select()

    assert workspace.nightly([second]).ok  # re-running a night changes nothing
    assert workspace.cases.select().equals(cases)

    assert workspace.nightly([_drop(tmp_path, "2026-11-20")]).ok
    assert workspace.cases.detail(NEXT_CASE).flags["flag_id"].to_list() == ["F20261120-U1-P1"]
    assert workspace.cases.detail(FIRST_CASE).flags.height == 2


def test_case_review_decides_every_flag_through_the_review_path(home: Workspace) -> None:
    generation = home.generation()
    shown = run(
        home, "case", "review", FIRST_CASE, "--status", "closed", "--outcome",
        "written_warning", "--note", "both lookups admitted",
    )  # fmt: skip
    assert "recorded on 2 flag(s)" in shown
    flags = json.loads(run(home, "flag", "--min-score", "0", "--format", "json"))
    states = {f["flag_id"]: (f["status"], f["outcome"], f["review_note"]) for f in flags}
    decided = ("closed", "written_warning", "both lookups admitted")
    assert states["F20261017-U1-P1"] == decided and states["F20261019-U1-P1"] == decided
    assert states["F20261120-U1-P1"][0] == "open"  # the next case's flag is not decided
    assert states["F20261017-U1-P2"][0] == "open"
    case = json.loads(run(home, "case", "show", FIRST_CASE, "--format", "json"))
    assert (case["status"], case["outcome"], case["open_flags"]) == ("closed", "written_warning", 0)
    assert [h["action"] for h in case["history"]] == ["decision"]
    assert len(case["history"][0]["review_ids"]) == 2
    assert home.generation() == generation  # decisions make no store generation
    assert home.reviews_ledger.verify().ok and home.cases.ledger.verify().ok


def test_a_bad_case_decision_records_nothing(home: Workspace) -> None:
    reviews, cases = home.reviews_ledger.path, home.cases.ledger.path
    before = (reviews.read_bytes(), cases.read_bytes() if cases.exists() else b"")
    error = run(
        home, "case", "review", FIRST_CASE, "--status", "closed", "--outcome",
        "legitimate_purpose", "--note", "tasked",
        exit_code=2,
    )  # fmt: skip
    assert "legitimate_purpose needs --purpose" in error
    error = run(home, "case", "review", "C20261017-U9-person:P9", "--status", "closed", exit_code=2)
    assert "no case C20261017-U9-person:P9" in error  # named before the missing --note
    after = (reviews.read_bytes(), cases.read_bytes() if cases.exists() else b"")
    assert after == before


def test_assign_sets_the_assignee_and_due_date(home: Workspace) -> None:
    today = datetime.now(ZoneInfo(home.config.ingest.timezone)).date()
    due = (today + timedelta(days=3)).isoformat()
    shown = run(home, "case", "assign", FIRST_CASE, "--to", "analyst0", "--due", due)
    assert f"assigned to analyst0, due {due}" in shown
    # a due date already past when assigned: as if assigned on the 20th of October
    home.cases.assign(FIRST_CASE, "analyst1", due=date(2026, 10, 30), today=ASSIGNED_ON)
    run(home, "case", "assign", "C20261017-U1-person:P2", "--to", "analyst2")
    listed = {c["case_id"]: c for c in json.loads(run(home, "case", "list", "--format", "json"))}
    assert (listed[FIRST_CASE]["assignee"], listed[FIRST_CASE]["due"]) == ("analyst1", "2026-10-30")
    assert listed[FIRST_CASE]["overdue"] is True  # due in the past and not closed
    default_due = today + timedelta(days=home.config.cases.due_days)
    assert listed["C20261017-U1-person:P2"]["due"] == default_due.isoformat()
    assert listed["C20261017-U1-person:P2"]["overdue"] is False
    mine = json.loads(run(home, "case", "list", "--assignee", "analyst1", "--format", "json"))
    assert [c["case_id"] for c in mine] == [FIRST_CASE]
    overdue = json.loads(run(home, "case", "list", "--overdue", "--format", "json"))
    assert [c["case_id"] for c in overdue] == [FIRST_CASE]
    # a reassignment is a new line: the latest one holds
    run(home, "case", "assign", FIRST_CASE, "--to", "analyst3", "--due", "2099-01-01")
    detail = home.cases.detail(FIRST_CASE)
    assert (detail.case["assignee"], detail.case["overdue"]) == ("analyst3", False)
    assert detail.history["assignee"].to_list() == ["analyst0", "analyst1", "analyst3"]
    assert "--due must be a date" in run(
        home, "case", "assign", FIRST_CASE, "--to", "a", "--due", "soon", exit_code=2
    )
    # exactly YYYY-MM-DD, as the help says: not the other ISO forms, and not a blank
    for other in ("20991208", "2099-W50", "2099-12-08T00:00", ""):
        error = run(home, "case", "assign", FIRST_CASE, "--to", "a", "--due", other, exit_code=2)
        assert f"--due must be a date (YYYY-MM-DD), not '{other}'" in error
    assert "--to must name" in run(home, "case", "assign", FIRST_CASE, "--to", " ", exit_code=2)


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("\u200b", "--to must name the analyst"),
        ("\u202e \u2066", "--to must name the analyst"),
        ("a" * 201, "--to is 201 characters long: an analyst's name has at most 200"),
    ],
)
def test_an_assignee_that_shows_nothing_or_is_huge_is_refused(
    home: Workspace, name: str, said: str
) -> None:
    """A zero-width space passed for blank ("assigned to " and an invisible CSV cell)."""
    error = run(home, "case", "assign", FIRST_CASE, "--to", name, exit_code=2)
    assert said in error


def test_a_due_date_in_the_past_is_refused_but_today_is_not(home: Workspace) -> None:
    today = datetime.now(ZoneInfo(home.config.ingest.timezone)).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    before = home.cases.ledger.path.read_bytes() if home.cases.ledger.path.exists() else b""
    error = run(home, "case", "assign", FIRST_CASE, "--to", "a1", "--due", yesterday, exit_code=2)
    assert error.strip() == (
        f"error: --due {yesterday} is in the past (today is {today.isoformat()}): "
        "give today or a later date"
    )
    after = home.cases.ledger.path.read_bytes() if home.cases.ledger.path.exists() else b""
    assert after == before
    shown = run(home, "case", "assign", FIRST_CASE, "--to", "a1", "--due", today.isoformat())
    assert f"assigned to a1, due {today.isoformat()}" in shown


def test_an_edited_case_log_is_caught_by_verify(home: Workspace) -> None:
    home.cases.assign(FIRST_CASE, "analyst1", due=date(2026, 11, 1), today=ASSIGNED_ON)
    home.cases.assign(FIRST_CASE, "analyst2", due=date(2026, 11, 2), today=ASSIGNED_ON)
    assert "cases" in run(home, "verify")
    log = home.cases.ledger.path
    log.chmod(0o600)
    log.write_bytes(log.read_bytes().replace(b"analyst1", b"analyst9", 1))
    result = CliRunner().invoke(app, ["verify", "--home", str(home.home)])
    assert result.exit_code == 1
    assert "cases.jsonl line 1: its content does not match its hash (edited)" in result.output
    assert not next(c for c in home.verify_ledgers() if c.name == "cases").ok
    # it decides nothing a run derives: the nightly job still builds
    assert home.score().days


def _shell(database: Path, sql: str) -> list[list[str]]:
    assert DUCKDB_SHELL.exists(), "the DuckDB shell is missing: `make venv` installs duckdb-cli"
    done = subprocess.run(
        [str(DUCKDB_SHELL), "-readonly", "-csv", str(database)],
        input=".nullvalue ''\n" + sql,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return list(csv.reader(io.StringIO(done.stdout)))[1:]


def test_the_case_views_open_in_the_duckdb_shell_and_agree_with_the_cli(home: Workspace) -> None:
    home.cases.assign(FIRST_CASE, "analyst1", due=date(2026, 11, 1), today=ASSIGNED_ON)
    home.cases.review(FIRST_CASE, status="under_review", outcome=None, note="pulling logs")
    members = home.cases.members().collect()
    in_shell = _shell(
        home.database_path, "SELECT flag_id, case_id FROM case_flags ORDER BY flag_id;"
    )
    assert in_shell == sorted([list(r) for r in members.select("flag_id", "case_id").rows()])
    cases = _shell(
        home.database_path,
        "SELECT case_id, status, assignee, due, flags, open_flags FROM cases ORDER BY case_id;",
    )
    summaries = home.cases.select().sort("case_id")
    assert cases == [
        [r[0], r[1], r[2] or "", str(r[3] or ""), str(r[4]), str(r[5])]
        for r in summaries.select(
            "case_id", "status", "assignee", "due", "flags", "open_flags"
        ).rows()
    ]
    assert [FIRST_CASE, "under_review", "analyst1", "2026-11-01", "2", "2"] in cases
    assert _shell(home.database_path, "SELECT span_days FROM case_settings;") == [["30"]]


def test_the_report_counts_cases_as_well_as_alerts(home: Workspace) -> None:
    home.cases.review(FIRST_CASE, status="closed", outcome="management_action", note="admitted")
    report = home.report(date(2026, 10, 17), date(2026, 10, 19))
    assert report.raised == 5  # U1-P1 twice, U1-P2, U2-P1 and the hostile pair
    assert report.cases_raised == 4
    statuses = dict(report.cases_by_status.select("status", "cases").rows())
    assert statuses == {"open": 3, "under_review": 0, "closed": 1}
    outcomes = dict(report.cases_by_outcome.select("outcome", "cases").rows())
    assert outcomes["management_action"] == 1 and sum(outcomes.values()) == 1
    rows = list(
        csv.reader(io.StringIO(run(home, "report", "--from", "2026-10-17", "--to", "2026-10-19",
                                   "--format", "csv")))
    )  # fmt: skip
    assert ["summary", "cases raised (alerts grouped per user and subject)", "4"] in rows
    assert ["case_status", "closed", "1"] in rows
    page = render_html(report)
    assert "<td>Cases raised (alerts grouped per user and subject)</td><td>4</td>" in page
    assert "<td>Management action</td><td>1</td><td>2</td>" in page  # 1 case, 2 flags


def test_apsp_type_needs_a_victim_or_vulnerable_subject_and_a_contact_signal() -> None:
    settings = parse_config({}).reports.model_dump()
    raised = pl.DataFrame(
        {
            "flag_id": ["victim only", "victim repeated", "met on duty", "victim, patterned",
                        "pattern", "victim off shift"],
            "user_id": ["U1", "U2", "U3", "U4", "U4", "U5"],
            "codes": [["victim_subject", "unexplained"], ["victim_subject", "repeated"],
                      ["met_on_duty", "unexplained"], ["vulnerable_subject"],
                      ["pattern_young_women"], ["victim_subject", "off_shift", "crowd"]],
        }
    )  # fmt: skip
    chosen = raised.filter(apsp_type(raised, settings))["flag_id"].to_list()
    assert chosen == ["victim repeated", "victim, patterned"]


def test_cases_settings_are_validated() -> None:
    with pytest.raises(AccessAuditError, match=r"\[cases\] span_days: must be at least 1"):
        parse_config({"cases": {"span_days": 0}})
    assert parse_config({"cases": {"span_days": 7}}).cases.span_days == 7


# -- hostile input --------------------------------------------------------------------------------
def _no_control_characters(text: str) -> None:
    assert "\x1b" not in text and "\u202e" not in text


def test_hostile_ids_and_notes_are_shown_never_obeyed(home: Workspace) -> None:
    run(home, "case", "assign", HOSTILE_CASE, "--to", "[bold]analyst", "--note", HOSTILE_NOTE)
    run(home, "case", "review", HOSTILE_CASE, "--status", "under_review", "--note", HOSTILE_NOTE)
    listed = run(home, "case", "list")
    assert HOSTILE_USER in listed and "[bold]analyst" in listed
    assert "\x1b]8;" not in listed  # no terminal hyperlink was made
    shown = run(home, "case", "show", HOSTILE_CASE)
    _no_control_characters(shown)
    assert "checked [/] \\x1b[2J later" in shown and FORMULA_SUBJECT in shown
    rows = list(csv.reader(io.StringIO(run(home, "case", "list", "--format", "csv"))))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + FORMULA_SUBJECT in cells
    assert not [cell for cell in cells if cell.startswith(FORMULA_CHARACTERS)]
    as_json = json.loads(run(home, "case", "show", HOSTILE_CASE, "--format", "json"))
    assert as_json["user_id"] == HOSTILE_USER and as_json["note"] == HOSTILE_NOTE


def test_case_list_and_show_are_written_to_the_view_log(home: Workspace) -> None:
    run(home, "case", "list")
    run(home, "case", "show", FIRST_CASE)
    log = [json.loads(line) for line in home.views_ledger.path.read_text().splitlines()]
    listed, shown = log[-2], log[-1]
    assert listed["command"] == "case list" and "F20261017-U1-P1" in listed["flag_ids"]
    assert shown["command"] == "case show"
    assert sorted(shown["flag_ids"]) == ["F20261017-U1-P1", "F20261019-U1-P1"]
    assert shown["subject_ids"] == ["P1"]
    assert home.views_ledger.verify().ok


def test_a_case_no_flag_belongs_to_any_more_is_named_not_lost(home: Workspace) -> None:
    home.cases.assign(NEXT_CASE, "analyst1", due=date(2026, 12, 1), today=ASSIGNED_ON)
    # a narrower span moves the span that holds 2026-11-20: NEXT_CASE matches no flag now
    config = home.home / "access-audit.toml"
    config.write_text(config.read_text() + "[cases]\nspan_days = 7\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["case", "list", "--home", str(home.home)])
    assert result.exit_code == 0, result.output
    assert "C20261114-U1-person:P1" in result.stdout
    assert "1 case(s) in the case log match no flags now" in result.stderr
    assert NEXT_CASE in result.stderr
    error = run(home, "case", "show", NEXT_CASE, exit_code=2)
    assert "is in the case log, but no flag belongs to it any more" in error


def test_an_evidence_pack_of_a_case_holds_its_flags(home: Workspace, tmp_path: Path) -> None:
    shown = run(home, "evidence", FIRST_CASE, "--output", str(tmp_path / "pack"), "--no-pdf")
    assert "evidence pack written" in shown
    flags = list(csv.DictReader(io.StringIO((tmp_path / "pack" / "flags.csv").read_text())))
    assert sorted(f["flag_id"] for f in flags) == ["F20261017-U1-P1", "F20261019-U1-P1"]
    assert home.cases.flag_ids_of([FIRST_CASE, "F20261017-U1-P2"]) == [
        "F20261017-U1-P1",
        "F20261019-U1-P1",
        "F20261017-U1-P2",
    ]


def test_an_evidence_pack_of_a_case_holds_its_history_and_the_case_logs_verified_head(
    home: Workspace, tmp_path: Path
) -> None:
    home.cases.assign(
        FIRST_CASE, "analyst1", due=date(2026, 12, 1), note="=start here", today=ASSIGNED_ON
    )
    home.cases.review(
        FIRST_CASE, status="closed", outcome="written_warning", note="admitted it", reviewer="a2"
    )
    home.cases.assign(HOSTILE_CASE, "analyst9")  # another case: not in this pack
    pack = tmp_path / "pack"
    run(home, "evidence", FIRST_CASE, "F20261017-U1-P2", "--output", str(pack), "--no-pdf")
    history = list(csv.DictReader(io.StringIO((pack / "case_history.csv").read_text())))
    assert [(h["case_id"], h["action"], h["analyst"]) for h in history] == [
        (FIRST_CASE, "assign", default_reviewer()),
        (FIRST_CASE, "decision", "a2"),
    ]
    assert (history[0]["assignee"], history[0]["due"]) == ("analyst1", "2026-12-01")
    assert history[0]["note"] == "'=start here"  # a formula is shown as text in a spreadsheet
    decided = history[1]
    assert (decided["status"], decided["outcome"], decided["note"]) == (
        "closed",
        "written_warning",
        "admitted it",
    )
    assert decided["flag_ids"] == "F20261017-U1-P1 F20261019-U1-P1"
    assert len(decided["review_ids"].split(" ")) == 2
    assert decided["recorded_at_utc"].endswith("Z")
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["case_ids"] == [FIRST_CASE]
    assert manifest["counts"]["case_events"] == 2
    assert "case_history.csv" in {f["name"] for f in manifest["files"]}
    case_log = next(c for c in home.verify().checks if c.name == "cases")
    assert case_log.items == 3 and case_log.head
    assert {"name": "cases", "lines": 3, "head": case_log.head} in manifest["ledgers"]
    assert [entry["name"] for entry in manifest["ledgers"]] == [
        "reviews",
        "flag_views",
        "cases",
        "models",
    ]
    page = (pack / "evidence.html").read_text()
    assert f"Case history: {FIRST_CASE}" in page and "admitted it" in page
    assert "analyst9" not in page

    flags_only = tmp_path / "flags-only"
    run(home, "evidence", "F20261017-U1-P2", "--output", str(flags_only), "--no-pdf")
    assert not (flags_only / "case_history.csv").exists()
    manifest = json.loads((flags_only / "manifest.json").read_text())
    assert manifest["case_ids"] == [] and "case_events" not in manifest["counts"]
    assert {"name": "cases", "lines": 3, "head": case_log.head} in manifest["ledgers"]


def test_the_pack_shows_the_case_history_up_to_the_verified_head_only(home: Workspace) -> None:
    """An assignment appended after the chains were walked is not in the pack: the case log head
    in its manifest covers every line of its case history."""
    from access_audit.evidence import _verified_case_history

    home.cases.assign(FIRST_CASE, "analyst1")
    home.cases.assign(FIRST_CASE, "analyst2")
    assert _verified_case_history(home, 1, [FIRST_CASE])["assignee"].to_list() == ["analyst1"]
    both = _verified_case_history(home, 2, [FIRST_CASE])["assignee"].to_list()
    assert both == ["analyst1", "analyst2"]
    assert _verified_case_history(home, 2, [NEXT_CASE]).is_empty()


def _edit_first_line(path: Path, old: bytes, new: bytes) -> bytes:
    path.chmod(0o600)
    path.write_bytes(path.read_bytes().replace(old, new, 1))
    return path.read_bytes()


def test_case_commands_refuse_to_append_onto_an_edited_log(home: Workspace) -> None:
    """Regression (issue 7, trust trial): a decision was appended onto a broken chain, exit 0."""
    home.cases.assign(FIRST_CASE, "analyst1", due=date(2026, 11, 1), today=ASSIGNED_ON)
    cases = _edit_first_line(home.cases.ledger.path, b"analyst1", b"analyst9")
    reviews = home.reviews_ledger.path.read_bytes() if home.reviews_ledger.path.exists() else b""
    broken = "the cases log is broken (cases.jsonl line 1: its content does not match its hash"
    error = run(home, "case", "assign", FIRST_CASE, "--to", "analyst2", exit_code=2)
    assert broken in error and len(error.strip().splitlines()) == 1
    decided = ["--status", "closed", "--outcome", "no_case_to_answer", "--note", "n"]
    assert broken in run(home, "case", "review", FIRST_CASE, *decided, exit_code=2)
    assert home.cases.ledger.path.read_bytes() == cases
    assert (home.reviews_ledger.path.read_bytes() if reviews else b"") == reviews


def test_a_case_decision_refuses_an_edited_review_log_and_records_nothing(
    home: Workspace,
) -> None:
    home.review("F20261017-U1-P2", status="under_review", outcome=None, note="looking")
    reviews = _edit_first_line(home.reviews_ledger.path, b"looking", b"cleared")
    cases = home.cases.ledger.path.read_bytes() if home.cases.ledger.path.exists() else b""
    decided = ["--status", "closed", "--outcome", "no_case_to_answer", "--note", "n"]
    error = run(home, "case", "review", FIRST_CASE, *decided, exit_code=2)
    assert "the reviews log is broken (reviews.jsonl line 1" in error
    assert home.reviews_ledger.path.read_bytes() == reviews
    assert (home.cases.ledger.path.read_bytes() if cases else b"") == cases


def test_a_case_decision_the_case_log_cannot_take_says_what_was_recorded(
    home: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flags' decisions go to the review log, the case's line to the case log: when the
    second write fails (a full disk) the error names what was recorded and how to finish."""
    import errno
    import os

    from access_audit.ledger import Ledger

    real = Ledger.append_holding_lock

    def full_case_log(self: Ledger, records):  # type: ignore[no-untyped-def]
        if self.path == home.cases.ledger.path:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, records)

    monkeypatch.setattr(Ledger, "append_holding_lock", full_case_log)
    error = run(
        home, "case", "review", FIRST_CASE, "--status", "under_review", "--note", "looking",
        exit_code=1,
    )  # fmt: skip
    assert "no space left on device" in error
    assert "recorded on the case's 2 flag(s)" in error and "`case review` again" in error
    monkeypatch.undo()
    run(home, "case", "review", FIRST_CASE, "--status", "under_review", "--note", "looking")
    case = json.loads(run(home, "case", "show", FIRST_CASE, "--format", "json"))
    assert case["status"] == "under_review"


def test_a_closed_case_whose_flag_is_reopened_is_open_again(home: Workspace) -> None:
    """Closing the case closed its flags; a later flag-level review that reopens one of them
    left the case `closed` (and counted as such in the report)."""
    run(
        home, "case", "review", FIRST_CASE, "--status", "closed", "--outcome",
        "written_warning", "--note", "admitted",
    )  # fmt: skip
    run(home, "review", "F20261017-U1-P1", "--status", "open", "--note", "new information")
    listed = {c["case_id"]: c for c in json.loads(run(home, "case", "list", "--format", "json"))}
    case = listed[FIRST_CASE]
    assert (case["status"], case["reopened"], case["open_flags"]) == ("open", True, 1)
    connection = home.connect()  # the analysts' view says the same
    try:
        query = "SELECT status, reopened FROM cases WHERE case_id = ?"
        assert connection.execute(query, [FIRST_CASE]).fetchone() == ("open", True)
    finally:
        connection.close()
