"""The analysts' real clients against a generated home's database (finding 8): the DuckDB shell
from PyPI (``duckdb-cli``, installed into .venv by ``make venv``) run as a subprocess, and plain
DuckDB Python opened read-only, as a notebook would."""

from __future__ import annotations

import importlib.metadata
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from access_audit.generate import generate_force
from access_audit.notebooks import execute_notebooks
from access_audit.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
DUCKDB_SHELL = Path(sys.executable).with_name("duckdb")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("clients")
    made = generate_force(root / "drops", staff=60, days=4, seed=2)
    workspace = Workspace.open(root / "home")
    assert workspace.nightly(made.drops).ok
    yield workspace.refresh_catalog()


def _investigation(title_words: str) -> str:
    """The SQL block of docs/investigations.md that follows the line holding ``title_words``."""
    text = (ROOT / "docs" / "investigations.md").read_text(encoding="utf-8")
    found = re.search(re.escape(title_words) + r".*?```sql\n(.*?)```", text, flags=re.S)
    assert found, f"docs/investigations.md has no query after {title_words!r}"
    return found.group(1)


def _shell(database: Path, sql: str) -> str:
    assert DUCKDB_SHELL.exists(), "the DuckDB shell is missing: `make venv` installs duckdb-cli"
    done = subprocess.run(
        [str(DUCKDB_SHELL), "-readonly", "-csv", str(database)],
        input=sql,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("title_words", "header"),
    [
        ("Everyone who looked at this person", "user_id,accesses,unexplained,first,last"),
        ("All unexplained lookups by this user", "occurred_at,system,action,record_type"),
    ],
)
def test_the_duckdb_shell_from_pypi_runs_the_documented_investigations(
    database: Path, title_words: str, header: str
) -> None:
    """duckdb-cli 1.5.6 refused the 2.x storage format ("version number 69 ... between 64
    and 68"); the database is written in the v1.4.0 format it reads."""
    output = _shell(database, _investigation(title_words))
    assert output.splitlines()[0].startswith(header)


def test_the_duckdb_shell_sees_the_same_rows_as_python(database: Path) -> None:
    query = "SELECT count(*) AS flags, count(DISTINCT user_id) AS users FROM flag_queue;"
    with duckdb.connect(str(database), read_only=True) as connection:
        flags, users = connection.execute(query).fetchall()[0]
    assert flags > 0
    assert _shell(database, query).splitlines() == ["flags,users", f"{flags},{users}"]


def test_a_notebook_reads_the_database_with_plain_duckdb(database: Path) -> None:
    """What a Jupyter user does: plain duckdb, read-only; TIMESTAMPTZ values come back as
    aware datetimes (DuckDB's Python client needs pytz for that)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.execute(
            "SELECT occurred_at, started_at FROM access_events, runs LIMIT 1"
        ).fetchall()[0]
        frame = connection.sql("SELECT * FROM flag_queue").pl()
        with pytest.raises(duckdb.Error):
            connection.execute("CREATE TABLE notes (x INTEGER)")
    assert all(isinstance(value, datetime) and value.tzinfo is not None for value in row)
    assert frame.height > 0


def test_an_executed_notebook_is_kept_owner_only(database: Path, tmp_path: Path) -> None:
    """Finding 11b: executed notebooks (flags and ids in their outputs) were 0644."""
    import nbformat

    out = tmp_path / "executed"
    out.mkdir(mode=0o755)
    source = ROOT / "notebooks" / "01_todays_flags.ipynb"
    older = out / source.name
    older.write_text("{}")
    older.chmod(0o644)
    written = execute_notebooks([source], out, database.parent)
    assert written == [older]
    assert stat.S_IMODE(older.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    outputs = [o for c in nbformat.read(older, as_version=4).cells for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.output_type == "error"]


def test_pytz_is_a_declared_dependency() -> None:
    requirements = importlib.metadata.requires("access-audit") or []
    assert any(re.match(r"pytz\b", r) for r in requirements)


def test_readme_names_every_view_of_the_database(database: Path) -> None:
    """Analysts learn the database from README's list: a view left out of it is a view nobody
    knows is there."""
    with duckdb.connect(str(database), read_only=True) as connection:
        views = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables"
            ).fetchall()
        }
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("`access-audit database` prints") :]
    paragraph = paragraph[: paragraph.index("\n\n")]
    named = set(re.findall(r"`([a-z_]+)`", paragraph))
    lookback = {view for view in views if view.startswith("lookback_")}
    assert lookback and "`lookback_*`" in paragraph
    assert {"access_events", "flags", "cases"} <= views
    assert sorted(views - lookback - named) == []
