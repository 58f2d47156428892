"""An analyst's read-only DuckDB session, opened in the morning, keeps working however many runs
commit after it (issue 7: a session failed with "No files found … store/g000011/…" once later
commits had pruned the generation its views point at)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl

from access_audit.workspace import Workspace
from conftest import STAFF_ROWS, event

# A separate process, as an analyst's notebook is: DuckDB caches open databases per process.
SESSION = textwrap.dedent(
    """
    import sys, duckdb
    connection = duckdb.connect(sys.argv[1], read_only=True)
    for _request in sys.stdin:
        events = connection.execute("SELECT count(*) FROM access_events").fetchone()[0]
        flags = connection.execute("SELECT count(*) FROM flags").fetchone()[0]
        print(events, flags, flush=True)
    """
)


def _night(make_drop, number: int) -> Path:
    day = f"2026-11-{number:02d}"
    rows = [event(f"E{number}", f"{day}T10:00:00Z", record_id=f"P{number:07d}")]
    return make_drop(day, {"access_log": rows, "staff": STAFF_ROWS})


def _review_tonights_flag(workspace: Workspace, night: int, reviews: int) -> None:
    """Analysts' decisions between two runs (one batch: today each one is a store commit)."""
    flag_id = workspace.flags(min_score=0).sort("flag_id")["flag_id"][-1]
    decisions = pl.DataFrame(
        {
            "flag_id": [flag_id] * reviews,
            "status": ["under_review"] * reviews,
            "outcome": [None] * reviews,
            "note": [f"night {night}, look {step}" for step in range(reviews)],
            "reviewer": ["analyst"] * reviews,
        },
        schema=dict.fromkeys(("flag_id", "status", "outcome", "note", "reviewer"), pl.String()),
    )
    assert workspace.review_many(decisions) == reviews


def test_an_open_session_keeps_answering_through_ten_nightly_runs_and_fifty_reviews(
    tmp_path: Path, make_drop
) -> None:
    workspace = Workspace.open(tmp_path / "home")
    assert workspace.nightly([_night(make_drop, 1)]).ok
    workspace.connect().close()  # the catalog is built on generation 1
    with subprocess.Popen(
        [sys.executable, "-c", SESSION, str(workspace.database_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as session:
        assert session.stdin is not None and session.stdout is not None

        def ask() -> str:
            assert session.stdin is not None and session.stdout is not None
            session.stdin.write("count\n")
            session.stdin.flush()
            return session.stdout.readline().strip()

        assert ask() == "1 1"
        for night in range(2, 12):
            _review_tonights_flag(workspace, night, reviews=5)
            assert workspace.nightly([_night(make_drop, night)]).ok
            assert ask() == "1 1", f"after night {night}"
        session.stdin.close()
        assert session.wait() == 0
    assert workspace.scan("reviews").collect().height == 50
    assert workspace.verify().ok
