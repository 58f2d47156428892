"""Decisions and the view log: hash-chained ledgers outside the store's generations."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.errors import AccessAuditError
from access_audit.review import decide
from access_audit.store import StoreDamagedError
from access_audit.tables import REVIEWS
from access_audit.workspace import Workspace
from conftest import event, write_table

# staff `PC-12` viewing `P77` and staff `PC` viewing `12-P77`: once the same flag id
STAFF = [
    {"user_id": u, "surname": "Officer", "role": "response_officer", "team_id": "T1"}
    for u in ("PC-12", "PC", "U3")
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
    for p in ("P77", "12-P77", "P5")
]
ACCESSES = [
    event("E1", "2026-10-17T10:00:00Z", user_id="PC-12", record_id="P77"),
    event("E2", "2026-10-17T11:00:00Z", user_id="PC", record_id="12-P77"),
    event("E3", "2026-10-17T12:00:00Z", user_id="U3", record_id="P5"),
]
FIRST = "F20261017-PC%2D12-P77"
SECOND = "F20261017-PC-12%2DP77"
THIRD = "F20261017-U3-P5"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reviews")
    drop = root / "drops" / "2026-10-17"
    write_table(drop, "staff", STAFF)
    write_table(drop, "persons", PERSONS)
    write_table(drop, "access_log", ACCESSES)
    workspace = Workspace.open(root / "home")
    assert workspace.nightly([drop]).ok
    return workspace.home


@pytest.fixture
def home(built: Path, tmp_path: Path) -> Workspace:
    """A private copy of the scored home, so each test's decisions are its own."""
    copy = tmp_path / "home"
    shutil.copytree(built, copy)
    workspace = Workspace.open(copy)
    workspace.refresh_catalog()  # the copied database's views name the original home's files
    return workspace


def decisions(*rows: dict[str, str | None]) -> pl.DataFrame:
    columns = ["flag_id", "status", "outcome", "note", "reviewer", "purpose"]
    return pl.DataFrame(
        [{c: r.get(c) for c in columns} for r in rows], schema=dict.fromkeys(columns, pl.String)
    )


def test_flag_ids_with_dashes_stay_distinct_and_a_review_closes_one(home: Workspace) -> None:
    flags = home.flags(min_score=0).sort("flag_id")
    assert flags.select("flag_id", "user_id", "subject_id").rows() == [
        (FIRST, "PC-12", "P77"),
        (SECOND, "PC", "12-P77"),
        (THIRD, "U3", "P5"),
    ]
    home.review(FIRST, status="closed", outcome="no_case_to_answer", note="checked")
    states = dict(home.flags(min_score=0).select("flag_id", "status").rows())
    assert states == {FIRST: "closed", SECOND: "open", THIRD: "open"}


def test_a_review_leaves_the_store_and_the_database_alone(home: Workspace) -> None:
    """Reviews used to commit a generation each (only five are kept): an analyst's session
    opened before the sixth review failed. Now they touch neither store nor database."""
    generation = home.generation()
    database = home.database_path.stat()
    with duckdb.connect(str(home.database_path), read_only=True) as session:
        for number in range(8):
            home.review(FIRST, status="under_review", outcome=None, note=f"step {number}")
        counted = session.execute("SELECT count(*) FROM reviews").fetchone()
        queued = session.execute(
            "SELECT status FROM flag_queue WHERE flag_id = $id", {"id": FIRST}
        ).fetchone()
        assert session.execute("SELECT count(*) FROM flags").fetchone() == (3,)
    assert counted == (8,) and queued == ("under_review",)
    assert home.generation() == generation
    assert home.database_path.stat().st_mtime_ns == database.st_mtime_ns


def test_review_many_is_the_review_path_with_suppression_and_unique_ids(home: Workspace) -> None:
    now = datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
    batch = decisions(
        {
            "flag_id": FIRST,
            "status": "closed",
            "outcome": "legitimate_purpose",
            "note": "tasked",
            "reviewer": "a",
            "purpose": "control room tasking",
        },
        {"flag_id": SECOND, "status": "under_review", "note": "pulling records", "reviewer": "a"},
    )
    first = decide(batch, home.scan("flags"), suppress_days=90, now=now)
    second = decide(batch, home.scan("flags"), suppress_days=90, now=now)
    ids = [*first["review_id"], *second["review_id"]]
    assert len(set(ids)) == 4
    assert first["suppress_until"].to_list() == [now + timedelta(days=90), None]
    assert first["purpose"].to_list() == ["control room tasking", None]

    assert home.review_many(batch) == 2
    stored = home.scan("reviews").collect()
    assert stored.schema == REVIEWS.schema()
    legitimate = stored.filter(pl.col("outcome") == "legitimate_purpose").row(0, named=True)
    assert legitimate["suppress_until"] - legitimate["reviewed_at"] == timedelta(days=90)
    assert legitimate["user_id"] == "PC-12" and legitimate["subject_id"] == "P77"


def test_a_bad_row_records_nothing_and_is_named(home: Workspace) -> None:
    batch = decisions(
        {"flag_id": FIRST, "status": "under_review", "note": "ok", "reviewer": "a"},
        {"flag_id": THIRD, "status": "closed", "outcome": "legitimate_purpose", "note": "x"},
    )
    with pytest.raises(AccessAuditError, match=f"1 bad decision.*{THIRD}: legitimate_purpose"):
        home.review_many(batch)
    assert home.scan("reviews").collect().is_empty()


def test_a_wrong_flag_id_is_reported_before_a_missing_note(home: Workspace) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["--home", str(home.home), "review", "F-nope", "--status", "under_review"]
    )
    assert result.exit_code == 2
    assert "no flag F-nope" in result.stderr
    missing_note = runner.invoke(
        app, ["--home", str(home.home), "review", FIRST, "--status", "under_review"]
    )
    assert missing_note.exit_code == 2 and "--note must say why" in missing_note.stderr


def test_purpose_goes_exactly_with_legitimate_purpose(home: Workspace) -> None:
    with pytest.raises(AccessAuditError, match="legitimate_purpose needs --purpose"):
        home.review(FIRST, status="closed", outcome="legitimate_purpose", note="it was fine")
    with pytest.raises(AccessAuditError, match="--purpose goes only with"):
        home.review(
            FIRST, status="closed", outcome="dismissed", note="sacked", purpose="no purpose"
        )
    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            *("--home", str(home.home), "review", FIRST, "--status", "closed"),
            *("--outcome", "legitimate_purpose", "--purpose", "tasked", "--note", "confirmed"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert home.scan("reviews").select("purpose").collect().item() == "tasked"


def test_the_queue_shows_the_analysts_latest_note(home: Workspace) -> None:
    home.review(FIRST, status="under_review", outcome=None, note="first look")
    home.review(FIRST, status="under_review", outcome=None, note="[red]CCTV[/]")
    queue = home.flags(min_score=0)
    notes = dict(queue.select("flag_id", "review_note").rows())
    assert notes == {FIRST: "[red]CCTV[/]", SECOND: None, THIRD: None}
    shown = CliRunner().invoke(
        app,
        ["--home", str(home.home), "flag", "--since", "2026-10-17", "--min-score", "0"],
        terminal_width=200,
    )
    assert shown.exit_code == 0, shown.output
    assert "review: [red]CCTV[/]" in shown.stdout


def test_the_view_log_records_the_account_not_just_logname(
    home: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "someone-else")
    monkeypatch.setenv("USER", "someone-else")
    home.record_view("flag", [FIRST], ["P77"])
    entry = json.loads(home.views_ledger.path.read_text().splitlines()[-1])
    assert entry["viewer"] == "someone-else"
    assert entry["uid"] == os.getuid()
    assert entry["login"] == pwd.getpwuid(os.getuid()).pw_name
    with home.connect() as session:
        row = session.execute("SELECT viewer, uid, login, flag_ids FROM flag_views").fetchall()
    assert row == [("someone-else", os.getuid(), entry["login"], [FIRST])]


def test_verify_names_a_deleted_view_line_and_an_edited_review(home: Workspace) -> None:
    for command in ("flag", "explain", "report"):
        home.record_view(command, [FIRST], ["P77"])
    home.review(FIRST, status="under_review", outcome=None, note="looking")
    home.review(FIRST, status="closed", outcome="no_case_to_answer", note="fine")
    assert all(check.ok for check in home.verify_ledgers())

    views = home.views_ledger.path.read_text().splitlines(keepends=True)
    home.views_ledger.path.write_text(views[0] + views[2])
    reviews = home.reviews_ledger.path.read_text()
    home.reviews_ledger.path.write_text(reviews.replace("no_case_to_answer", "dismissed"))
    checks = {check.name: check for check in home.verify_ledgers()}
    assert checks["flag_views"].problem == (
        "flag_views.jsonl line 2: does not follow the line before it "
        "(a line was deleted, inserted or reordered)"
    )
    assert checks["reviews"].problem == (
        "reviews.jsonl line 2: its content does not match its hash (edited)"
    )
    home.reviews_ledger.path.write_text(reviews.splitlines(keepends=True)[1])  # first deleted
    assert home.verify_ledgers()[0].problem == (
        "reviews.jsonl line 1: does not start the chain (a line before it was deleted)"
    )


def test_a_truncated_last_line_breaks_no_reader(home: Workspace) -> None:
    home.review(FIRST, status="under_review", outcome=None, note="looking")
    home.review(FIRST, status="closed", outcome="no_case_to_answer", note="fine")
    home.record_view("flag", [FIRST], ["P77"])
    home.record_view("flag", [SECOND], ["12-P77"])
    for ledger in (home.reviews_ledger, home.views_ledger):
        ledger.path.write_bytes(ledger.path.read_bytes()[:-40])
    assert home.scan("reviews").collect()["status"].to_list() == ["under_review"]
    with home.connect() as session:
        assert session.execute("SELECT count(*) FROM reviews").fetchone() == (1,)
        assert session.execute("SELECT count(*) FROM flag_views").fetchone() == (1,)
        assert session.execute(
            "SELECT status FROM flag_queue WHERE flag_id = $id", {"id": FIRST}
        ).fetchone() == ("under_review",)
    problems = [check.problem for check in home.verify_ledgers()]
    assert problems == [
        "reviews.jsonl line 2: unterminated (a torn write); the next append moves it aside",
        "flag_views.jsonl line 2: unterminated (a torn write); the next append moves it aside",
        None,  # the case log, untouched
        None,  # the models log, empty
    ]
    home.review(FIRST, status="closed", outcome="no_case_to_answer", note="again")
    assert home.verify_ledgers()[0].ok
    assert home.flags(min_score=0, status="closed")["flag_id"].to_list() == [FIRST]


def test_a_home_from_the_previous_version_is_migrated_once(home: Workspace) -> None:
    """Reviews in the store's `reviews` table and an unchained view log are brought into the
    ledgers, each row once, even when the import runs again after a crash."""
    legacy = pl.DataFrame(
        {
            "review_id": ["R20261018090000-0", "R20261018090000-0", "R20261018100000-x"],
            "flag_id": [FIRST, SECOND, FIRST],
            "user_id": ["PC-12", "PC", "PC-12"],
            "subject_id": ["P77", "12-P77", "P77"],
            "status": ["under_review", "under_review", "closed"],
            "outcome": [None, None, "written_warning"],
            "purpose": [None, None, None],
            "note": ["a", "b", "c"],
            "reviewer": ["x", "y", "x"],
            "reviewed_at": [datetime(2026, 10, 18, 9, tzinfo=UTC)] * 2
            + [datetime(2026, 10, 18, 10, tzinfo=UTC)],
            "suppress_until": [None, None, None],
        },
        schema=REVIEWS.schema(),
    )
    with home.store.transaction("legacy-reviews") as txn:
        txn.append("reviews", legacy)
    audit = home.home / "audit"
    for name in ("reviews.jsonl", ".ledgers-migrated"):
        (audit / name).unlink()
    old_view = {"viewed_at": "2026-10-18T09:00:00+00:00", "viewer": "x", "command": "flag",
                "flag_ids": [FIRST], "subject_ids": ["P77"]}  # fmt: skip
    (audit / "flag_views.jsonl").write_text(json.dumps(old_view) + "\n")

    migrated = Workspace.open(home.home)
    reviews = migrated.scan("reviews").collect().sort("review_id", "flag_id")
    assert reviews.equals(legacy.sort("review_id", "flag_id"))
    assert all(check.ok for check in migrated.verify_ledgers())
    views = [json.loads(line) for line in (audit / "flag_views.jsonl").read_text().splitlines()]
    assert len(views) == 1 and {k: views[0][k] for k in old_view} == old_view

    (audit / ".ledgers-migrated").unlink()  # as if a crash came before the marker was written
    again = Workspace.open(home.home)
    assert again.scan("reviews").collect().height == 3
    assert dict(again.flags(min_score=0).select("flag_id", "outcome").rows())[FIRST] == (
        "written_warning"
    )
    with again.connect() as session:
        assert session.execute("SELECT count(*) FROM reviews").fetchone() == (3,)


def test_any_text_in_a_note_round_trips(home: Workspace) -> None:
    note = 'line one\u2028line two\r\n"quoted" — Zoë\'s {json} \x00 end'
    home.review(FIRST, status="under_review", outcome=None, note=note)
    assert home.scan("reviews").select("note").collect().item() == note
    with home.connect() as session:
        assert session.execute("SELECT note FROM reviews").fetchone() == (note,)
    assert all(b < 0x80 for b in home.reviews_ledger.path.read_bytes())
    assert home.verify_ledgers()[0].ok


@pytest.mark.parametrize("log", ["flag_views", "reviews"])
def test_verify_catches_a_line_deleted_from_an_append_only_log(home: Workspace, log: str) -> None:
    """Issue 7.9: deleting a line from audit/flag_views.jsonl went unnoticed. `verify` walks the
    review and view logs' chains after the store's and names the broken one."""
    runner = CliRunner()
    where = ["--home", str(home.home)]
    for flag_id in (FIRST, SECOND, THIRD):
        shown = runner.invoke(app, [*where, "flag", "--min-score", "0", "--format", "json"])
        assert shown.exit_code == 0, shown.output
        decision = ["--status", "closed", "--outcome", "no_case_to_answer", "--note", "checked"]
        reviewed = runner.invoke(app, [*where, "review", flag_id, *decision])
        assert reviewed.exit_code == 0, reviewed.output
    assert runner.invoke(app, [*where, "verify"]).exit_code == 0
    path = home.home / "audit" / f"{log}.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) >= 3
    os.chmod(path, 0o600)
    path.write_bytes(b"".join(lines[:1] + lines[2:]))
    result = runner.invoke(app, [*where, "verify"])
    assert result.exit_code == 1
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert len(broken) == 1 and log in broken[0], result.stdout
    # and the jobs refuse to build on it, in one line, changing nothing
    generation = home.generation()
    refused = runner.invoke(app, [*where, "score"])
    assert refused.exit_code == 2
    assert f"the {log} log is broken" in refused.output and "line 2" in refused.output
    assert home.generation() == generation


def test_a_torn_last_log_line_does_not_stop_the_jobs(home: Workspace) -> None:
    """A write cut short (disk full, kill) leaves an unterminated last line: `verify` reports it,
    but the nightly job still runs, and the next append moves the torn line aside."""
    home.record_view("flag", [FIRST], ["P77"])
    path = home.home / "audit" / "flag_views.jsonl"
    os.chmod(path, 0o600)
    with open(path, "ab") as handle:
        handle.write(b'{"viewed_at": "2026-')
    assert not home.verify_ledgers()[1].ok
    assert home.verify_ledgers(torn_tail_ok=True)[1].ok
    report = home.score()  # re-scores unchanged data: runs, and commits nothing new
    assert report.days and home.runs()[-1]["outcome"] == "completed"


def _forge_second_review(home: Workspace) -> bytes:
    """Two decisions, then the second line's outcome edited in place (the trust trial's sed)."""
    runner = CliRunner()
    where = ["--home", str(home.home)]
    for flag_id, outcome in ((FIRST, "no_case_to_answer"), (SECOND, "no_case_to_answer")):
        decided = ["--status", "closed", "--outcome", outcome, "--note", "checked"]
        assert runner.invoke(app, [*where, "review", flag_id, *decided]).exit_code == 0
    path = home.reviews_ledger.path
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"outcome":"no_case_to_answer"', b'"outcome":"dismissed"')
    os.chmod(path, 0o600)
    path.write_bytes(b"".join(lines))
    return path.read_bytes()


def test_review_refuses_to_append_onto_an_edited_log(home: Workspace) -> None:
    """Regression (issue 7, trust trial): verify and nightly refused an edited review log, but
    `review` still appended to it, exit 0."""
    forged = _forge_second_review(home)
    decided = ["--status", "closed", "--outcome", "no_case_to_answer", "--note", "again"]
    result = CliRunner().invoke(app, ["--home", str(home.home), "review", THIRD, *decided])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: the reviews log is broken (reviews.jsonl line 2: its content does not match its "
        "hash (edited)); nothing was recorded. Run `access-audit verify`, and restore the log "
        "from a backup"
    )
    assert home.reviews_ledger.path.read_bytes() == forged
    with pytest.raises(StoreDamagedError, match="the reviews log is broken"):
        home.review_many(decisions({"flag_id": THIRD, "status": "under_review", "note": "n"}))
    assert home.reviews_ledger.path.read_bytes() == forged


def test_review_still_appends_after_a_torn_last_line(home: Workspace) -> None:
    home.review(FIRST, status="under_review", outcome=None, note="looking")
    with open(home.reviews_ledger.path, "ab") as handle:
        handle.write(b'{"review_id": "R')
    home.review(FIRST, status="closed", outcome="no_case_to_answer", note="fine")
    assert home.verify_ledgers()[0].ok


@pytest.mark.parametrize(
    "command",
    [
        ["flag", "--min-score", "0", "--status", "closed", "--format", "json"],
        ["explain", SECOND],
        ["report", "--from", "2026-10-17", "--to", "2026-10-17"],
    ],
    ids=["flag", "explain", "report"],
)
def test_reads_of_an_edited_log_warn_in_one_line(home: Workspace, command: list[str]) -> None:
    """The forged outcome is what the log now says, and these commands show it: they used to
    show it with no warning."""
    _forge_second_review(home)
    result = CliRunner().invoke(app, ["--home", str(home.home), *command])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == (
        "warning: the reviews log is broken (reviews.jsonl line 2: its content does not match "
        "its hash (edited)): what is shown may rest on an edited history; run "
        "`access-audit verify`"
    )
    intact = CliRunner().invoke(app, ["--home", str(home.home), "verify"])
    assert intact.exit_code == 1


def test_the_subjects_a_pattern_flag_names_are_logged_as_shown(
    home: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pattern flag's reason lists the subjects behind its figure, so every screen that shows
    the flag shows them: the view log must name them, or "who looked at P63" misses it."""
    import polars as pl

    from access_audit.score.patterns import SUBJECTS_MARKER
    from access_audit.tables import stored_table

    flag_id = "F20261017-U1-pattern-young_women"
    legacy_id = "F20261016-U1-pattern-young_women"
    schema = stored_table("flags").full_schema()

    def pattern_flag(flag: str, text: str, subjects: list[str] | None) -> dict[str, object]:
        row: dict[str, object] = {name: None for name in schema}
        reasons = [{"code": "pattern_young_women", "text": text, "weight": 1.0}]
        return row | {
            "flag_id": flag,
            "kind": "pattern",
            "user_id": "U1",
            "day": date(2026, 10, 16),
            "reasons": reasons,
            "pattern_subjects": subjects,
        }

    # the typed column is read, not the text: an id holding ", " stays one id
    text = f"27 of the 62 subjects … were young women{SUBJECTS_MARKER}P63, P6, 6, P477"
    typed = pattern_flag(flag_id, text, ["P477", "P6, 6", "P63"])
    # a flag stored before the column existed reads it as null: its reason's list is read back
    # against the persons the user looked up in its window, so "P, 9001" stays one id (another
    # user's "P" and "9001" are not named)
    old_text = f"3 of the 9 subjects … were young women{SUBJECTS_MARKER}P, 9001, P1, P2"
    legacy = pattern_flag(legacy_id, old_text, None)
    stored = pl.DataFrame([typed, legacy], schema=schema, strict=False).lazy()
    looked_up = [("U1", "P, 9001"), ("U1", "P1"), ("U1", "P2"), ("U2", "P"), ("U2", "9001")]
    events = pl.LazyFrame(
        {
            "user_id": [user for user, _ in looked_up],
            "record_type": ["person"] * len(looked_up),
            "record_id": [subject for _, subject in looked_up],
            "day": [date(2026, 10, 16)] * len(looked_up),
        }
    )
    real_scan = home.scan
    tables = {"flags": stored, "access_events": events}
    monkeypatch.setattr(home, "scan", lambda t: tables[t] if t in tables else real_scan(t))
    home.record_view("explain", [flag_id], ["P295"])
    last = json.loads(home.views_ledger.path.read_bytes().splitlines()[-1])
    assert last["subject_ids"] == ["P295", "P477", "P6, 6", "P63"]
    home.record_view("explain", [legacy_id], [])
    last = json.loads(home.views_ledger.path.read_bytes().splitlines()[-1])
    assert last["subject_ids"] == ["P, 9001", "P1", "P2"]
