"""Evidence packs: `access-audit evidence FLAG_ID ... --output DIR`.

On a small generated force (two flags with reviews) and on a tiny inline home whose ids, reason
code, justification and review note are hostile: the pack's files and their SHA-256 manifest, the
verified store head, owner-only modes, the PDF's text (pdftotext), escaping in HTML and CSV, the
view log, and every refusal (unknown flag, used folder, damaged store, no Chromium) writing
nothing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from access_audit.cli import app
from access_audit.evidence import pack as pack_module
from access_audit.evidence.scope import (
    EvidenceScope,
    access_rows,
    flag_scope_text,
    gather_evidence,
)
from access_audit.generate import generate_force
from access_audit.score.pattern_scope import pattern_subjects, unreadable_subjects
from access_audit.score.patterns import SUBJECTS_MARKER
from access_audit.tables import REVIEWS, stored_table
from access_audit.workspace import Workspace
from conftest import event

runner = CliRunner()
FILES = {
    "SHA256SUMS",
    "accesses.csv",
    "apsp_training.csv",
    "assignments.csv",
    "evidence.html",
    "evidence.pdf",
    "flags.csv",
    "manifest.json",
    "reviews.csv",
    "shifts.csv",
    "training.csv",
    "users.csv",
}
SCRIPT = "<script>alert(1)</script>"
FORMULA = "=cmd|' /C calc'!A0"
HOSTILE_NOTE = f"{FORMULA} {SCRIPT}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pdf_text(pdf: Path) -> str:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "pdftotext is needed: `make browser` installs Debian's poppler-utils"
    text = subprocess.run(
        [pdftotext, str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    return " ".join(text.split())  # words as the PDF shows them, whatever the line breaks


def _evidence(home: Path, *args: str) -> Result:
    return runner.invoke(app, ["evidence", *args, "--home", str(home), "--no-progress"])


def _views(workspace: Workspace) -> pl.DataFrame:
    lines = workspace.views_ledger.complete_bytes().decode().splitlines()
    return pl.DataFrame([json.loads(line) for line in lines])


# -- a generated force --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def force(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, list[str]]]:
    root = tmp_path_factory.mktemp("evidence")
    made = generate_force(root / "drops", staff=150, days=7, seed=11)
    workspace = Workspace.open(root / "home")
    assert workspace.nightly(made.drops).ok
    top = workspace.flags(limit=2)["flag_id"].to_list()
    workspace.review(top[0], status="under_review", outcome=None, note="pulling the call log")
    workspace.review(
        top[0], status="closed", outcome="written_warning", note="admitted curiosity", reviewer="b"
    )
    yield workspace, top


@pytest.fixture(scope="module")
def pack(force, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace, flags = force
    output = tmp_path_factory.mktemp("packs") / "hearing-001"
    previous = os.umask(0o022)  # a loose umask: the pack must be owner-only regardless
    try:
        result = _evidence(workspace.home, *flags, "--output", str(output))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    return output


def test_the_pack_holds_every_file_and_its_manifest_verifies(force, pack: Path) -> None:
    workspace, flags = force
    assert {p.name for p in pack.iterdir()} == FILES
    manifest = json.loads((pack / "manifest.json").read_text())
    assert manifest["flag_ids"] == flags and manifest["pdf"] is True
    listed = {f["name"]: f for f in manifest["files"]}
    assert set(listed) == FILES - {"manifest.json", "SHA256SUMS"}
    for name, entry in listed.items():
        assert _sha256(pack / name) == entry["sha256"], name
        assert (pack / name).stat().st_size == entry["bytes"]
    sums = dict(
        reversed(line.split("  ")) for line in (pack / "SHA256SUMS").read_text().splitlines()
    )
    assert set(sums) == FILES - {"SHA256SUMS"}
    assert all(_sha256(pack / name) == digest for name, digest in sums.items())
    # the head it names is the store's verified head of the generation it was read from
    verified = workspace.verify()
    assert verified.ok
    generation = workspace.generation()
    assert generation is not None
    assert manifest["store_head"] == f"g{generation.number:06d}:{verified.checks[0].head}"
    assert manifest["generation"] == generation.number
    reviews_head = next(c for c in verified.checks if c.name == "reviews")
    assert {"name": "reviews", "lines": 2, "head": reviews_head.head} in manifest["ledgers"]


def test_the_accesses_csv_covers_the_flags_and_says_what_explains_each(force, pack: Path) -> None:
    workspace, flags = force
    accesses = pl.read_csv(pack / "accesses.csv", infer_schema=False)
    held = (
        workspace.scan("flag_events")
        .filter(pl.col("flag_id").is_in(flags))
        .select("system", "event_id")
        .collect()
    )
    in_flag = accesses.filter(pl.col("held_by_flag") == "true").select("system", "event_id")
    assert in_flag.sort(pl.all()).equals(held.sort(pl.all()))
    stored = workspace.scan("flags").filter(pl.col("flag_id").is_in(flags)).collect()
    subjects = set(zip(stored["user_id"], stored["subject_id"], strict=True))
    assert set(zip(accesses["user_id"], accesses["record_id"], strict=True)) == subjects
    every_access = workspace.scan("access_events").collect()
    expected = sum(
        every_access.filter((pl.col("user_id") == u) & (pl.col("record_id") == s)).height
        for u, s in subjects
    )
    assert accesses.height == expected  # every stored access by the user to the subject
    assert accesses["occurred_at_utc"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").all()
    assert accesses["occurred_at_local"].str.contains(r"[+-]\d\d:\d\d$").all()
    unexplained = accesses.filter(pl.col("explained") == "false")["explanation"]
    assert unexplained.len() > 0 and unexplained.str.starts_with("nothing explains it: ").all()
    explained = accesses.filter(pl.col("explained") == "true")["explanation"]
    assert not explained.str.starts_with("nothing").any()
    reviews = pl.read_csv(pack / "reviews.csv", infer_schema=False)
    assert reviews["note"].to_list() == ["pulling the call log", "admitted curiosity"]
    assert reviews["outcome"].to_list() == ["", "written_warning"]  # every cell quoted
    apsp = pl.read_csv(pack / "apsp_training.csv", infer_schema=False)
    assert set(apsp["user_id"]) == set(stored["user_id"])


def test_the_pack_is_owner_only(pack: Path) -> None:
    assert stat.S_IMODE(pack.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in pack.iterdir()}
    assert modes == dict.fromkeys(FILES, 0o600)
    assert not list(pack.parent.glob(".*evidence-*"))  # no staging folder left behind


def test_the_pdf_holds_the_page_text(force, pack: Path) -> None:
    _, flags = force
    text = _pdf_text(pack / "evidence.pdf")
    for flag_id in flags:
        assert flag_id in text
    for heading in ("Accesses in scope", "Rostered shifts", "Training", "Review history"):
        assert heading in text
    assert "admitted curiosity" in text and "written_warning" in text
    assert "nothing explains it" in text


def test_the_export_is_in_the_view_log(force, pack: Path) -> None:
    workspace, flags = force
    views = _views(workspace).filter(pl.col("command") == "evidence")
    assert views.height == 1
    assert views["flag_ids"][0].to_list() == flags
    subjects = workspace.scan("flags").filter(pl.col("flag_id").is_in(flags)).collect()
    assert set(subjects["subject_id"]) <= set(views["subject_ids"][0].to_list())


def test_a_used_output_folder_and_an_unknown_flag_are_refused(force, pack: Path, tmp_path) -> None:
    workspace, flags = force
    before = workspace.views_ledger.complete_bytes()
    used = _evidence(workspace.home, flags[0], "--output", str(pack))
    assert used.exit_code == 2
    assert "not empty" in used.stderr and len(used.stderr.strip().splitlines()) == 1
    unknown = _evidence(workspace.home, flags[0], "F20991231-NOBODY-P0", "--output", str(tmp_path))
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == "error: no flag F20991231-NOBODY-P0; nothing was written"
    assert list(tmp_path.iterdir()) == []  # the empty folder given stays empty
    inside = _evidence(workspace.home, flags[0], "--output", str(workspace.home / "store" / "p"))
    assert inside.exit_code == 2 and "inside the store" in inside.stderr
    assert not (workspace.home / "store" / "p").exists()
    assert workspace.views_ledger.complete_bytes() == before  # nothing exported, nothing logged


# -- a tiny home with hostile values ------------------------------------------------------------
@pytest.fixture
def hostile(workspace: Workspace, make_drop) -> tuple[Workspace, str]:
    subject = SCRIPT
    drop = make_drop(
        "2026-11-20",
        {
            "staff": [
                {"user_id": "U1", "surname": "Brown", "role": "response_officer", "team_id": "T1"}
            ],
            "access_log": [
                event(
                    "E1",
                    "2026-11-20T10:03:00Z",
                    user_id="U1",
                    record_id=subject,
                    reason_code="@SUM(1+1)",
                    justification=FORMULA,
                ),
                event("E0", "2026-11-18T23:30:00Z", user_id="U1", record_id=subject),
                event("E2", "2026-11-20T11:00:00Z", user_id="U1", record_id="P2"),
            ],
            "shifts": [
                {
                    "user_id": "U1",
                    "starts_at": "2026-11-20T08:00:00Z",
                    "ends_at": "2026-11-20T16:00:00Z",
                }
            ],
            "assignments": [
                {
                    "incident_id": "CR/2026/000900",
                    "user_id": "U1",
                    "team_id": None,
                    "role": "officer_in_charge",
                    "assigned_from": "2026-11-20T07:00:00Z",
                    "assigned_to": None,
                }
            ],
            "training": [{"user_id": "U1", "course": "APSP", "completed_at": "2023-01-01"}],
        },
    )
    assert workspace.nightly([drop]).ok
    flag_id = f"F20261120-U1-{subject}"
    workspace.review(flag_id, status="under_review", outcome=None, note=HOSTILE_NOTE)
    return workspace, flag_id


def test_hostile_values_are_shown_as_text_in_html_csv_and_pdf(hostile, tmp_path: Path) -> None:
    workspace, flag_id = hostile
    output = tmp_path / "pack"
    result = _evidence(workspace.home, flag_id, "--output", str(output))
    assert result.exit_code == 0, result.output
    html = (output / "evidence.html").read_text()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"(src|href)=|https?:|url\(", html)  # nothing external to load
    for name in ("accesses.csv", "reviews.csv", "flags.csv"):
        text = (output / name).read_text()
        assert '"=' not in text and '"@' not in text and '"+' not in text, name
    accesses = pl.read_csv(output / "accesses.csv", infer_schema=False)
    assert accesses["justification"].to_list() == ["", f"'{FORMULA}"]
    assert accesses["reason_code"].to_list() == ["", "'@SUM(1+1)"]
    assert pl.read_csv(output / "reviews.csv", infer_schema=False)["note"].to_list() == [
        f"'{HOSTILE_NOTE}"
    ]
    text = _pdf_text(output / "evidence.pdf")
    assert SCRIPT in text.replace(" ", "")  # printed, not run
    # both accesses to the subject, on either day, and not the other subject's
    assert accesses["event_id"].to_list() == ["E0", "E1"]
    assert accesses["held_by_flag"].to_list() == ["false", "true"]
    on_shift = dict(zip(accesses["event_id"], accesses["shift"], strict=True))
    assert on_shift == {
        "E0": "outside any rostered shift",
        "E1": "2026-11-20T08:00:00Z to 2026-11-20T16:00:00Z",
    }
    assignments = pl.read_csv(output / "assignments.csv", infer_schema=False)
    assert assignments["incident_id"].to_list() == ["CR/2026/000900"]
    assert assignments["assigned_to_utc"].to_list() == ["open"]
    apsp = pl.read_csv(output / "apsp_training.csv", infer_schema=False).row(0, named=True)
    assert apsp["last_completed"] == "2023-01-01" and apsp["position"].startswith("OVERDUE")


def test_a_damaged_store_gets_no_pack(hostile, tmp_path: Path) -> None:
    workspace, flag_id = hostile
    generation = workspace.generation()
    assert generation is not None
    target = next((generation.path / "access_events").glob("**/*.parquet"))
    os.chmod(target, 0o600)
    pl.read_parquet(target).head(0).write_parquet(target)  # an officer's rows deleted
    before = workspace.views_ledger.complete_bytes()
    result = _evidence(workspace.home, flag_id, "--output", str(tmp_path / "pack"))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "fails verification" in line and len(line.splitlines()) == 1
    assert not (tmp_path / "pack").exists()
    assert workspace.views_ledger.complete_bytes() == before


def test_without_chromium_it_refuses_unless_no_pdf(hostile, tmp_path: Path, monkeypatch) -> None:
    workspace, flag_id = hostile
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    refused = _evidence(workspace.home, flag_id, "--output", str(tmp_path / "a"))
    assert refused.exit_code == 2
    assert "--no-pdf" in refused.stderr and "make browser" in refused.stderr
    assert not (tmp_path / "a").exists()
    html_only = _evidence(
        workspace.home, flag_id, "--output", str(tmp_path / "b"), "--no-pdf", "--quiet"
    )
    assert html_only.exit_code == 0, html_only.output
    assert "warning: no PDF" in html_only.stderr  # --quiet keeps warnings
    assert html_only.stdout == ""
    assert {p.name for p in (tmp_path / "b").iterdir()} == FILES - {"evidence.pdf"}
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["pdf"] is False
    assert "No PDF was printed" in (tmp_path / "b" / "evidence.html").read_text()


def test_a_failure_while_writing_leaves_no_half_pack(hostile, tmp_path: Path, monkeypatch) -> None:
    workspace, flag_id = hostile

    def chromium_crashes(*_args: object) -> None:
        raise pack_module.AccessAuditError("chromium could not print the PDF (exit 139)")

    monkeypatch.setattr(pack_module, "print_pdf", chromium_crashes)
    output = tmp_path / "out" / "pack"
    output.mkdir(parents=True)  # an empty folder is accepted as the target
    result = _evidence(workspace.home, flag_id, "--output", str(output))
    assert result.exit_code == 2
    assert list(output.parent.iterdir()) == [output] and list(output.iterdir()) == []
    monkeypatch.undo()
    assert _evidence(workspace.home, flag_id, "--output", str(output)).exit_code == 0
    assert (output / "evidence.pdf").exists()


def test_a_pack_over_the_page_limit_lists_a_bounded_page_and_every_access_in_csv(
    hostile, tmp_path: Path
) -> None:
    """Regression: 15,000 accesses behind a pattern flag made a page Chromium could not print
    (it was killed for memory, and no pack was written); the page is now bounded by
    ``[evidence] page_rows``, the CSV holds every access."""
    workspace, flag_id = hostile
    settings = workspace.home / "access-audit.toml"
    before = settings.read_text() if settings.exists() else ""
    settings.write_text(before + "\n[evidence]\npage_rows = 1\n")
    output = tmp_path / "pack"
    result = _evidence(workspace.home, flag_id, "--output", str(output))
    assert result.exit_code == 0, result.output
    accesses = pl.read_csv(output / "accesses.csv", infer_schema=False)
    assert accesses["event_id"].to_list() == ["E0", "E1"]  # the CSV: every access
    html = (output / "evidence.html").read_text()
    listed = html.split('id="accesses"')[1].split("The accesses listed")[1].split("</table>")[0]
    assert listed.count("<tr>") == 2  # the header and one access: the flag's own
    assert ">E1<" in listed and ">E0<" not in listed
    sentence = "This page lists 1 of the 2 accesses"
    assert sentence in html and "the complete list is in accesses.csv" in html
    per_day = html.split("Accesses per day (UTC)")[1].split("</table>")[0]
    assert "2026-11-18" in per_day and "2026-11-20" in per_day
    assert sentence in _pdf_text(output / "evidence.pdf")


def test_a_chromium_killed_by_a_signal_is_reported_as_such(tmp_path: Path) -> None:
    """Regression: a Chromium killed for memory was reported as "exit 0"."""
    page = tmp_path / "page.html"
    page.write_text("<p>x</p>")
    for script, said in (
        ("kill -KILL $$", "killed by SIGKILL (out of memory?)"),
        ("exit 0", "exited without a PDF"),
        ("exit 3", "exit 3"),
    ):
        chromium = tmp_path / "chromium"
        chromium.write_text(f"#!/bin/sh\n{script}\n")
        chromium.chmod(0o700)
        with pytest.raises(pack_module.AccessAuditError, match=re.escape(said)):
            pack_module.print_pdf(page, tmp_path / "page.pdf", str(chromium))


# -- the scope of a pattern flag, on tiny frames ------------------------------------------------
def _pattern_scope(
    subjects: list[str] | None, lookback_days: int | None
) -> tuple[EvidenceScope, pl.LazyFrame]:
    """A pattern flag of U1 on 2026-11-20 and U1's accesses around it, as a pack reads them."""
    utc = pl.Datetime("us", "UTC")
    # E1, E3: the flag's own (held); E2: a subject behind the figure the same day; E4: one 19
    # days before (in the 30-day look-back); E5: 50 days before; E6: a subject not behind the
    # figure; E7: the day after the flag
    when = {
        "E1": "2026-11-20T10:00:00",
        "E2": "2026-11-20T11:00:00",
        "E3": "2026-11-20T12:00:00",
        "E4": "2026-11-01T09:00:00",
        "E5": "2026-10-01T09:00:00",
        "E6": "2026-11-20T13:00:00",
        "E7": "2026-11-21T09:00:00",
    }
    subject = {"E1": "P1", "E2": "P2", "E3": "P3", "E4": "P1", "E5": "P1", "E6": "P9", "E7": "P2"}
    events = pl.LazyFrame(
        {
            "system": ["RMS"] * len(when),
            "event_id": list(when),
            "occurred_at": pl.Series(list(when.values())).str.to_datetime(time_zone="UTC"),
            "user_id": ["U1"] * len(when),
            "action": ["view"] * len(when),
            "record_type": ["person"] * len(when),
            "record_id": [subject[e] for e in when],
            "reason_code": [None] * len(when),
            "justification": [None] * len(when),
        },
        schema_overrides={"reason_code": pl.String, "justification": pl.String},
    ).with_columns(day=pl.col("occurred_at").dt.date())
    reason = "3 of the 9 subjects … opened contact details; the subjects: P1, P2, P3"
    flags = pl.LazyFrame(
        {
            "flag_id": ["F20261120-U1-pattern-contact"],
            "kind": ["pattern"],
            "user_id": ["U1"],
            "subject_type": [None],
            "subject_id": [None],
            "reasons": [[{"code": "pattern_contact", "text": reason, "weight": 1.0}]],
            "day": [date(2026, 11, 20)],
            "pattern_subjects": [subjects],
            "pattern_lookback_days": [lookback_days],
        },
        schema_overrides={
            "subject_type": pl.String,
            "subject_id": pl.String,
            "pattern_subjects": pl.List(pl.String),
            "pattern_lookback_days": pl.Int32,
        },
    )
    flag_events = pl.LazyFrame(
        {"flag_id": ["F20261120-U1-pattern-contact"] * 2, "system": ["RMS"] * 2},
    ).with_columns(event_id=pl.Series(["E1", "E3"]))
    empty = pl.LazyFrame(
        schema={"system": pl.String, "event_id": pl.String, "day": pl.Date, "detail": pl.String}
    )
    indicators = pl.LazyFrame(
        {
            "system": ["RMS", "RMS"],
            "event_id": ["E1", "E3"],
            "code": ["unexplained", "unexplained"],
            "points": [10.0, 10.0],
            "evidence": [None, None],
            "day": pl.Series(["2026-11-20"] * 2).str.to_date(),
        },
        schema_overrides={"evidence": pl.String},
    )
    shifts = pl.LazyFrame(schema={"user_id": pl.String, "starts_at": utc, "ends_at": utc})
    scope = EvidenceScope(
        flags=flags,
        flag_events=flag_events,
        events=events,
        explanations=empty,
        indicators=indicators,
        shifts=shifts,
        assignments=pl.LazyFrame(),
        incident_persons=pl.LazyFrame(),
        staff=pl.LazyFrame(),
        training=pl.LazyFrame(),
        reviews=pl.LazyFrame(),
    )
    return scope, flags


def test_a_pattern_flag_holds_the_accesses_behind_its_figure() -> None:
    """Regression: a pattern flag's pack held only its own day's accesses, not the accesses to
    the subjects its figure counts over its look-back window."""
    scope, flags = _pattern_scope(["P1", "P2", "P3"], 30)
    rows = access_rows(scope, flags, "Europe/London", "nothing links them", 30).collect()
    assert rows["event_id"].to_list() == ["E4", "E1", "E2", "E3"]
    assert rows["held_by_flag"].to_list() == [False, True, False, True]
    assert rows["explanation"].to_list()[1] == "nothing explains it: nothing links them"
    assert rows["occurred_at_local"].to_list()[1:] == [
        "2026-11-20T10:00:00+00:00",
        "2026-11-20T11:00:00+00:00",
        "2026-11-20T12:00:00+00:00",
    ]
    said = flag_scope_text(flags, scope.events, 30).collect()["scope"].to_list()
    assert said == [
        "every access by the user from 2026-10-21 to 2026-11-20 (the pattern's look-back: the "
        "30 days before the flag's day, and that day) to the 3 subject(s) its figure counts: "
        '"P1", "P2", "P3"'
    ]


def test_a_pattern_flag_uses_the_look_back_it_was_scored_with() -> None:
    """Regression: the pack used today's [scoring] lookback_days, so setting it to 7 left out
    accesses the figure (scored over 30 days) counted, silently."""
    scope, flags = _pattern_scope(["P1", "P2", "P3"], 30)
    rows = access_rows(scope, flags, "UTC", "nothing links them", 7).collect()
    assert rows["event_id"].to_list() == ["E4", "E1", "E2", "E3"]  # E4: 19 days before
    said = flag_scope_text(flags, scope.events, 7).collect()["scope"].item()
    assert said.startswith("every access by the user from 2026-10-21 to 2026-11-20 (the ")
    assert "the 30 days before" in said and "today's" not in said
    # a flag stored before the look-back was: today's setting stands in, and the pack says so
    scope, flags = _pattern_scope(["P1", "P2", "P3"], None)
    rows = access_rows(scope, flags, "UTC", "nothing links them", 7).collect()
    assert rows["event_id"].to_list() == ["E1", "E2", "E3"]
    said = flag_scope_text(flags, scope.events, 7).collect()["scope"].item()
    assert "from 2026-11-13 to 2026-11-20" in said and "the 7 days before" in said
    assert "stored without the look-back" in said and "today's [scoring] lookback_days" in said


def _legacy(listed: str, looked_up: dict[str, str]) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """A pattern flag of U1 on 2026-11-20 stored before ``pattern_subjects`` (its reason ends
    with ``listed``), and person lookups ``{subject: "user day"}``."""
    flags = pl.LazyFrame(
        {
            "flag_id": ["F20261120-U1-pattern-contact"],
            "kind": ["pattern"],
            "user_id": ["U1"],
            "day": [date(2026, 11, 20)],
            "reasons": [[{"code": "pattern_contact", "text": f"3 of …{SUBJECTS_MARKER}{listed}"}]],
            "pattern_subjects": [None],
            "pattern_lookback_days": [30],
        },
        schema_overrides={
            "pattern_subjects": pl.List(pl.String),
            "pattern_lookback_days": pl.Int32,
        },
    )
    who = [(subject, *when.split()) for subject, when in looked_up.items()]
    events = pl.LazyFrame(
        {
            "record_type": ["person"] * len(who),
            "record_id": [subject for subject, _, _ in who],
            "user_id": [user for _, user, _ in who],
            "day": [date.fromisoformat(day) for _, _, day in who],
        }
    )
    return flags, events


def test_a_legacy_subject_list_splits_no_id_that_holds_a_comma() -> None:
    """Regression: for a flag stored before pattern_subjects, the subject "P, 9001" was read back
    as "P" and "9001", so other persons' accesses entered the pack and the view log."""
    listed = "P, 9001, P1, P2"
    others = {"P": "U2 2026-11-20", "9001": "U2 2026-11-19", "P3": "U1 2026-11-20"}
    own = {"P, 9001": "U1 2026-11-20", "P1": "U1 2026-11-01", "P2": "U1 2026-11-20"}
    flags, events = _legacy(listed, own | others)
    read = pattern_subjects(flags, events, 30).collect()
    assert read["subject_id"].to_list() == ["P, 9001", "P1", "P2"]
    assert read["exact"].all() and unreadable_subjects(flags, events, 30) == []
    # the user looked up "9001" too: the list could be read two ways, so it is not read
    flags, events = _legacy(listed, own | {"9001": "U1 2026-11-18"})
    assert not pattern_subjects(flags, events, 30).collect()["exact"].any()
    assert unreadable_subjects(flags, events, 30) == ["F20261120-U1-pattern-contact"]
    # a listed subject outside the window (P1 was looked up 60 days before): not read either
    flags, events = _legacy(listed, own | {"P1": "U1 2026-09-21"})
    assert unreadable_subjects(flags, events, 30) == ["F20261120-U1-pattern-contact"]
    # in the pack: the subjects read back, quoted so that "P, 9001" reads as one
    scope, flags = _pattern_scope(None, 30)
    said = flag_scope_text(flags, scope.events, 30).collect()["scope"].item()
    assert said.endswith('its figure counts: "P1", "P2", "P3"')


def test_a_pack_of_an_unreadable_legacy_pattern_flag_is_refused(
    hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from access_audit import evidence

    workspace, flag_id = hostile
    monkeypatch.setattr(evidence, "unreadable_subjects", lambda *_args: [flag_id])
    before = workspace.views_ledger.complete_bytes()
    result = _evidence(workspace.home, flag_id, "--output", str(tmp_path / "pack"))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "cannot be read back exactly" in line and len(line.splitlines()) == 1
    assert "score --since 2026-11-20 --until 2026-11-21" in line
    assert not (tmp_path / "pack").exists()
    assert workspace.views_ledger.complete_bytes() == before


def _typed(table: str, rows: dict[str, list[object]] | None = None) -> pl.LazyFrame:
    """A stored table's frame, typed as the store types it: empty, or these rows."""
    schema = stored_table(table).full_schema()
    if rows is None:
        return pl.LazyFrame(schema=schema)
    frame = pl.DataFrame(rows).with_columns(
        pl.col(c).str.to_datetime(time_zone="UTC")
        for c, t in schema.items()
        if c in rows and isinstance(t, pl.Datetime)
    )
    return (
        frame.lazy()
        .cast({c: schema[c] for c in rows})
        .select(  # type: ignore[arg-type]
            pl.col(c) if c in rows else pl.lit(None, dtype=t).alias(c) for c, t in schema.items()
        )
    )


def test_an_audit_gap_of_a_vanished_user_shows_the_shift_it_vanished_from() -> None:
    gap = "F20261021-U9-gap-PND-0800"
    scope = EvidenceScope(
        flags=_typed(
            "flags",
            {
                "flag_id": [gap],
                "kind": ["audit_gap"],
                "user_id": ["U9"],
                "subject_type": ["system"],
                "subject_id": ["PND"],
                "first_access_at": ["2026-10-21T08:00:00Z"],
                "last_access_at": ["2026-10-21T16:00:00Z"],
                "reasons": [[]],
            },
        ),
        flag_events=_typed("flag_events"),
        events=_typed("access_events"),
        explanations=_typed("explanations"),
        indicators=_typed("indicators"),
        shifts=_typed(
            "shifts",
            {
                "user_id": ["U9", "U9", "U8"],
                "starts_at": [
                    "2026-10-21T08:00:00Z",
                    "2026-10-25T08:00:00Z",
                    "2026-10-21T08:00:00Z",
                ],
                "ends_at": ["2026-10-21T16:00:00Z", "2026-10-25T16:00:00Z", "2026-10-21T16:00:00Z"],
            },
        ),
        assignments=_typed("assignments"),
        incident_persons=_typed("incident_persons"),
        staff=_typed("staff", {"user_id": ["U9"], "role": ["analyst"], "team_id": ["INTEL"]}),
        training=_typed("training"),
        reviews=pl.LazyFrame(schema=REVIEWS.schema()),
    )
    tables = gather_evidence(
        scope,
        [gap],
        timezone="Europe/London",
        unexplained_text="-",
        training_course="APSP",
        overdue_months=24,
        lookback_days=30,
    )
    assert tables.accesses.is_empty()
    assert tables.shifts.select("user_id", "starts_at_utc").rows() == [
        ("U9", "2026-10-21T08:00:00Z")
    ]
    assert tables.shifts["starts_at_local"].to_list() == ["2026-10-21T09:00:00+01:00"]
    assert tables.apsp.row(0, named=True) == {
        "user_id": "U9",
        "course": "APSP",
        "last_completed": "never",
        "judged_at": "2026-10-21T16:00:00Z",
        "position": "OVERDUE (older than 24 months or never)",
    }
    assert tables.users.rows() == [("U9", "analyst", "INTEL")]


def test_the_pack_shows_reviews_up_to_the_verified_head_only(hostile) -> None:
    """A decision appended after the chains were walked is not in the pack: the review log head
    in its manifest covers every review it shows."""
    from access_audit.evidence import _verified_reviews

    workspace, flag_id = hostile
    workspace.review(flag_id, status="closed", outcome="no_case_to_answer", note="later")
    assert _verified_reviews(workspace, 1).collect()["note"].to_list() == [HOSTILE_NOTE]
    assert _verified_reviews(workspace, 2).collect()["note"].to_list() == [HOSTILE_NOTE, "later"]
