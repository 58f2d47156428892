"""The analysts' workflow on a small generated force: reviews, learning, reports (rendered in
headless Chromium), the documented DuckDB investigations, and the notebooks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.errors import AccessAuditError
from access_audit.generate import generate_force
from access_audit.store import StoreDamagedError
from access_audit.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
OUTCOMES = ("dismissed", "written_warning", "no_case_to_answer")


@pytest.fixture(scope="module")
def force(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, Path]]:
    root = tmp_path_factory.mktemp("workflow")
    made = generate_force(root / "drops", staff=150, days=7, seed=11)
    workspace = Workspace.open(root / "home")
    assert workspace.nightly(made.drops).ok
    top = workspace.flags(limit=3)["flag_id"].to_list()
    for flag_id, outcome in zip(top, OUTCOMES, strict=True):
        workspace.review(flag_id, status="under_review", outcome=None, note="looking", reviewer="a")
        workspace.review(flag_id, status="closed", outcome=outcome, note="decided", reviewer="b")
    yield workspace, made.truth_path


def test_reviews_show_in_the_queue_and_survive_the_nightly_job(force) -> None:
    workspace, _ = force
    closed = workspace.flags(status="closed")
    assert sorted(closed["outcome"].to_list()) == sorted(OUTCOMES)
    before = workspace.scan("reviews").collect().sort("review_id")
    latest = (
        workspace.home.parent
        / "drops"
        / sorted(p.name for p in (workspace.home.parent / "drops").iterdir() if p.is_dir())[-1]
    )
    assert workspace.nightly([latest]).ok  # re-run: nothing new, days re-scored
    after = workspace.scan("reviews").collect().sort("review_id")
    assert after.equals(before) and after.height == 6
    assert sorted(workspace.flags(status="closed")["outcome"].to_list()) == sorted(OUTCOMES)


def test_report_counts_outcomes_and_training(force) -> None:
    workspace, _ = force
    days = workspace.stored_days()
    report = workspace.report(days[0], days[-1])
    assert report.reviewed == 3
    outcomes = dict(zip(report.by_outcome["outcome"], report.by_outcome["flags"], strict=True))
    assert outcomes["dismissed"] == 1 and outcomes["no_case_to_answer"] == 1
    assert report.upheld.height == 2  # dismissed and written warning are upheld
    assert set(report.training["user_id"]) == set(workspace.flags(since=None)["user_id"].unique())
    runner = CliRunner()
    csv = runner.invoke(
        app,
        [
            "--home",
            str(workspace.home),
            "report",
            "--from",
            str(days[0]),
            "--to",
            str(days[-1]),
            "--format",
            "csv",
        ],
    )
    assert csv.exit_code == 0, csv.output
    assert '"outcome","dismissed","1"' in csv.stdout  # every CSV cell is quoted
    # the view log names every flag and subject the report shows (it named no subject)
    import json

    logged = json.loads(workspace.views_ledger.path.read_text("utf-8").splitlines()[-1])
    shown = set(report.upheld["subject_ids"].explode().drop_nulls())
    assert shown and shown <= set(logged["subject_ids"])
    assert set(report.timeline["record_id"]) <= set(logged["subject_ids"])
    assert set(report.upheld["flag_ids"].explode()) == set(logged["flag_ids"])
    bad = runner.invoke(app, ["--home", str(workspace.home), "report", "--from", "x", "--to", "y"])
    assert bad.exit_code == 2 and "--from" in bad.stderr


def test_html_report_renders_in_headless_chromium(force, tmp_path: Path) -> None:
    workspace, _ = force
    days = workspace.stored_days()
    output = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "--home",
            str(workspace.home),
            "report",
            "--from",
            str(days[0]),
            "--to",
            str(days[-1]),
            "--format",
            "html",
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    assert output.stat().st_mode & 0o077 == 0  # owner-only: it names users and flags
    html = output.read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is needed: `make browser` installs Debian's package"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run(
        [chromium, *flags, "--dump-dom", output.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Flags raised and reviewed" in dom
    assert "Cases with an upheld flag" in dom and "Training position of flagged users" in dom
    assert len(re.findall(r"<svg", dom)) == 3
    assert len(re.findall(r'class="bar"', dom)) >= len(days)
    assert re.search(r'<circle class="(un)?explained"', dom)
    shot = tmp_path / "report.png"
    subprocess.run(
        [chromium, *flags, f"--screenshot={shot}", "--window-size=1000,1600", output.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_learning_needs_enough_decisions_then_reranks(force, tmp_path: Path) -> None:
    workspace, truth = force
    with pytest.raises(AccessAuditError, match="not enough decisions"):
        workspace.learn()
    planted = pl.read_csv(truth, infer_schema=False).select("system", "event_id")
    flags = workspace.scan("flags").collect().sort("score", descending=True).head(120)
    positive = (
        workspace.scan("flag_events")
        .collect()
        .join(planted, on=["system", "event_id"])
        .select("flag_id")
        .unique()
    )
    decisions = flags.select(
        "flag_id",
        status=pl.lit("closed"),
        outcome=pl.when(pl.col("flag_id").is_in(positive["flag_id"].implode()))
        .then(pl.lit("management_action"))
        .otherwise(pl.lit("no_case_to_answer")),
        note=pl.lit("simulated"),
        reviewer=pl.lit("test"),
    )
    workspace.review_many(decisions)
    model = workspace.learn()
    assert model.version == "learned-v1"
    assert (workspace.home / "models" / "learned-v1.json").exists()
    assert model.holdout["decisions"] > 0
    rescored = workspace.scan("flags").collect()
    assert set(rescored["model_version"]) <= {"learned-v1", "pattern-mcd-1"} | {"learned-v1"}
    assert (rescored["score"] != rescored["rule_score"]).any()
    _a_learned_model_is_vouched_for_and_an_edit_to_it_refused(workspace)
    workspace.retire_model()
    restored = workspace.scan("flags").collect()
    assert "learned-v1" not in set(restored["model_version"])
    checks = {check.name: check for check in workspace.verify(quick=True).checks}
    assert checks["models"].ok and checks["models"].items == 2  # learned, retired


def _a_learned_model_is_vouched_for_and_an_edit_to_it_refused(workspace: Workspace) -> None:
    """`learn` records the model's SHA-256 in the models log (issue 7, trust trial): verify
    passes; an edit to the model file fails verify and every scoring run."""
    checks = {check.name: check for check in workspace.verify(quick=True).checks}
    assert checks["models"].ok and checks["models"].items == 1
    path = workspace.home / "models" / "learned-v1.json"
    genuine = path.read_bytes()
    edited = json.loads(genuine)
    edited["coefficients"] = [0.0 for _ in edited["coefficients"]]
    path.write_text(json.dumps(edited), encoding="utf-8")
    problem = "models/learned-v1.json: changed since `access-audit learn` wrote it"
    checks = {check.name: check for check in workspace.verify(quick=True).checks}
    assert not checks["models"].ok and problem in str(checks["models"].problem)
    with pytest.raises(StoreDamagedError, match="changed since"):
        workspace.score()
    path.write_bytes(genuine)


def _sql_blocks() -> list[str]:
    text = (ROOT / "docs" / "investigations.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, flags=re.S)


def test_documented_investigations_run_against_the_database(force) -> None:
    workspace, _ = force
    blocks = _sql_blocks()
    assert len(blocks) >= 6
    with duckdb.connect(str(workspace.refresh_catalog()), read_only=True) as connection:
        for block in blocks:
            *settings, query = [s for s in block.split(";") if s.strip()]
            for statement in settings:
                connection.execute(statement)
            result = connection.sql(query).pl()
            assert result.width >= 1


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]
    missing = [c for c in commands if not re.search(rf"access-audit (--home \S+ )?{c}\b", readme)]
    assert not missing, f"README does not document: {missing}"


@pytest.mark.parametrize(
    "notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name
)
def test_notebooks_run_against_a_generated_force(force, notebook: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    workspace, truth = force
    document = nbformat.read(notebook, as_version=4)
    assert all(not c.get("outputs") for c in document.cells if c.cell_type == "code"), (
        "notebooks are stored without outputs"
    )
    os.environ["ACCESS_AUDIT_HOME"] = str(workspace.home)
    os.environ["ACCESS_AUDIT_TRUTH"] = str(truth)
    try:
        NotebookClient(
            document,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(notebook.parent)}},
        ).execute()
    finally:
        del os.environ["ACCESS_AUDIT_HOME"], os.environ["ACCESS_AUDIT_TRUTH"]
    errors = [o for c in document.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_the_pipeline_script_runs_the_nightly_job_and_catches_up(tmp_path: Path) -> None:
    made = generate_force(tmp_path / "drops", staff=60, days=4, seed=2)
    home = tmp_path / "home"
    env = {
        **os.environ,
        "ACCESS_AUDIT_BIN": str(Path(sys.executable).with_name("access-audit")),
        "CATCH_UP": "2",
    }
    script = ROOT / "pipelines" / "nightly.sh"
    first = subprocess.run(
        [str(script), str(made.out), str(home)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    workspace = Workspace.open(home)
    assert [d.isoformat()[:10] for d in workspace.stored_days()][-1] == made.drops[-1].name
    loaded = {r["drop_id"] for r in workspace.runs() if r.get("drop_id")} | {
        d for r in workspace.runs() for d in r.get("drops_loaded", [])
    }
    assert loaded == {d.name for d in made.drops[-2:]}  # the newest CATCH_UP drops
    again = subprocess.run(
        [str(script), str(made.out), str(home)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 0
    assert workspace.flags(min_score=0).height > 0


def test_upheld_cases_are_one_row_a_case_with_the_strongest_flags_circumstances() -> None:
    """An FOI request counts cases: two upheld flags of one case are one line, not two."""
    from datetime import date

    import polars as pl

    from access_audit.report import _upheld_cases

    def reasons(text: str) -> list[dict[str, object]]:
        return [{"code": "x", "text": text, "weight": 1.0}]

    raised = pl.DataFrame(
        {
            "flag_id": ["F1", "F2", "F3", "F4"],
            "day": [date(2026, 11, 2), date(2026, 11, 4), date(2026, 11, 3), date(2026, 11, 3)],
            "user_id": ["U1", "U1", "U2", "U3"],
            "outcome": ["written_warning", "dismissed", "dismissed", "no_case_to_answer"],
            "score": [60.0, 90.0, 70.0, 99.0],
            "subject_id": ["P1", "P1", "P2", "P3"],
            "reasons": [reasons("weaker"), reasons("stronger"), reasons("other"), reasons("no")],
        }
    )
    case_flags = pl.LazyFrame(
        {"flag_id": ["F1", "F2", "F3", "F4"], "case_id": ["CA", "CA", "CB", "CC"]}
    )
    # case CA is still open although two of its flags were upheld: the row says so
    cases = pl.LazyFrame(
        {
            "case_id": ["CA", "CB", "CC"],
            "status": ["open", "closed", "closed"],
            "outcome": [None, "dismissed", "no_case_to_answer"],
            "flags": [3, 1, 1],
        }
    )
    upheld = _upheld_cases(raised, case_flags, cases)
    assert upheld["case_id"].to_list() == ["CA", "CB"]
    assert upheld["case_status"].to_list() == ["open", "closed"]
    assert upheld["case_outcome"].to_list() == [None, "dismissed"]
    assert upheld["case_flags"].to_list() == [3, 1]
    first = upheld.row(0, named=True)
    assert first["flags"] == 2 and first["flag_ids"] == ["F1", "F2"]
    assert (first["first_day"], first["last_day"]) == (date(2026, 11, 2), date(2026, 11, 4))
    assert first["outcome"] == "dismissed, written_warning"
    assert first["circumstances"] == "stronger"
    assert first["subject_ids"] == ["P1"]
