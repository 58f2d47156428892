"""Analysts hold the DuckDB database open while the job writes: the job succeeds, and the
analyst's session keeps seeing one whole generation, never half a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from access_audit.workspace import Workspace
from conftest import event

READER = textwrap.dedent(
    """
    import sys, time, duckdb
    connection = duckdb.connect(sys.argv[1], read_only=True)
    def count():
        events = connection.execute("SELECT count(*) FROM access_events").fetchone()[0]
        flags = connection.execute("SELECT count(*) FROM flags").fetchone()[0]
        return f"{events} {flags}"
    print("before", count(), flush=True)
    sys.stdin.readline()          # the test ingests another drop meanwhile
    print("after", count(), flush=True)
    """
)


@pytest.mark.parametrize("command", ["ingest", "nightly"])
def test_job_succeeds_while_an_analyst_holds_the_database_open(
    tmp_path: Path, make_drop, command: str
) -> None:
    workspace = Workspace.open(tmp_path / "home")
    assert workspace.nightly(
        [make_drop("2026-11-20", {"access_log": [event("E1"), event("E2")]})]
    ).ok
    flags_before = workspace.scan("flags").collect().height
    assert flags_before == 1  # U00001's unexplained look at P0000001
    with subprocess.Popen(
        [sys.executable, "-c", READER, str(workspace.database_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as reader:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().split() == ["before", "2", str(flags_before)]

        writer = subprocess.run(
            [
                sys.executable,
                "-m",
                "access_audit",
                "--home",
                str(workspace.home),
                command,
                "--no-progress",
                str(
                    make_drop(
                        "2026-11-21",
                        {"access_log": [event("E3", "2026-11-21T10:00:00Z", record_id="P9")]},
                    )
                ),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert writer.returncode == 0, writer.stderr

        reader.stdin.write("\n")
        reader.stdin.flush()
        # The open session still sees its own generation, whole: no new events, no new flags.
        assert reader.stdout.readline().split() == ["after", "2", str(flags_before)]
        assert reader.wait(timeout=30) == 0
    # A new session sees the new generation.
    with workspace.connect() as fresh:
        assert fresh.execute("SELECT count(*) FROM access_events").fetchone() == (3,)
        flags_now = fresh.execute("SELECT count(*) FROM flags").fetchone()
        assert flags_now == ((2,) if command == "nightly" else (1,))


def test_two_writers_take_turns(tmp_path: Path, make_drop) -> None:
    """Four first runs at once on a home that does not exist yet: all succeed, in turn."""
    home = tmp_path / "home"
    drops = [make_drop(f"2026-11-2{i}", {"access_log": [event(f"E{i}")]}) for i in range(4)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "access_audit",
                "--home",
                str(home),
                "ingest",
                "--no-progress",
                str(drop),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for drop in drops
    ]
    finished = [(process.communicate(timeout=120)[1], process.returncode) for process in processes]
    for err, returncode in finished:
        assert returncode == 0, err
    workspace = Workspace.open(home)
    assert workspace.scan("access_events").collect().height == 4
    assert workspace.generation() is not None
    assert workspace.generation().number == 4  # type: ignore[union-attr]
