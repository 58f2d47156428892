"""The analysts' database: a home path is a path, never a glob or a partition."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from access_audit.catalog import build_catalog
from access_audit.cli import app
from access_audit.escape import glob_literal
from access_audit.workspace import Workspace
from conftest import STAFF_ROWS, event

runner = CliRunner()


def _ingest(home: Path, drop: Path) -> None:
    result = runner.invoke(app, ["--home", str(home), "ingest", str(drop)])
    assert result.exit_code == 0, result.output


def _users_in_views(home: Path) -> tuple[set[str], set[object]]:
    with duckdb.connect(str(home / "access-audit.duckdb"), read_only=True) as connection:
        users = {row[0] for row in connection.sql("SELECT user_id FROM access_events").fetchall()}
        days = {row[0] for row in connection.sql("SELECT day FROM access_events").fetchall()}
    return users, days


@pytest.mark.parametrize(
    ("name", "neighbour"),
    [
        ("star*", "starX"),
        ("q?x", "qyx"),
        ("br[a]c", "bra"),
        ("day=2020-01-01", "other"),
        ("a=b", "other"),
    ],
)
def test_a_home_path_is_never_a_glob_nor_a_partition(
    tmp_path: Path, make_drop, name: str, neighbour: str
) -> None:
    """Finding 4: `--home '/tmp/x/star*'` showed another home's rows; `[` crashed after the
    commit; a `day=` folder above the home overwrote the partition column."""
    mine = make_drop("2026-11-21", {"access_log": [event("E1")], "staff": STAFF_ROWS})
    theirs = make_drop(
        "2026-11-22",
        {"access_log": [event("E9", "2026-11-22T10:00:00Z", user_id="U00002")]},
    )
    _ingest(tmp_path / neighbour / "home", theirs)
    home = tmp_path / name / "home"
    _ingest(home, mine)
    users, days = _users_in_views(home)
    assert users == {"U00001"}
    assert [str(d) for d in days] == ["2026-11-21"]
    status = runner.invoke(app, ["--home", str(home), "status"])
    assert status.exit_code == 0, status.output


def test_partitioned_views_have_exactly_the_stored_columns(tmp_path: Path, make_drop) -> None:
    home = tmp_path / "x=1" / "home"
    _ingest(home, make_drop("2026-11-21", {"access_log": [event("E1")]}))
    workspace = Workspace.open(home)
    expected = list(workspace.scan("access_events").collect_schema())
    with duckdb.connect(str(workspace.database_path), read_only=True) as connection:
        columns = [row[0] for row in connection.sql("DESCRIBE access_events").fetchall()]
    assert sorted(columns) == sorted(expected)


def test_a_day_filter_reads_only_that_days_files(tmp_path: Path, make_drop) -> None:
    """The partition column comes from each file's folder and DuckDB still prunes files by it."""
    home = tmp_path / "home"
    for day in ("2026-11-21", "2026-11-22", "2026-11-23"):
        _ingest(home, make_drop(day, {"access_log": [event(f"E{day}", f"{day}T10:00:00Z")]}))
    with duckdb.connect(str(home / "access-audit.duckdb"), read_only=True) as connection:
        plan = connection.sql(
            "EXPLAIN ANALYZE SELECT count(*) FROM access_events WHERE day = DATE '2026-11-22'"
        ).fetchall()[0][1]
    assert "Scanning Files: 1/3" in plan


def test_glob_literal_matches_only_itself(tmp_path: Path) -> None:
    assert glob_literal("/data/plain/file.parquet") == "/data/plain/file.parquet"
    assert glob_literal("/x/a*b?c[d]") == "/x/a[*]b[?]c[[]d]"
    with pytest.raises(Exception, match="backslash"):
        glob_literal("/x/a\\b*")


def test_a_home_duckdb_cannot_read_is_refused_before_anything_is_written(
    tmp_path: Path, make_drop
) -> None:
    home = tmp_path / "back\\slash" / "home"
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    result = runner.invoke(app, ["--home", str(home), "ingest", str(drop)])
    assert result.exit_code == 2
    assert "backslash" in result.stderr
    assert not home.exists()


def test_catalog_of_an_empty_home_has_typed_empty_views(tmp_path: Path) -> None:
    home = tmp_path / "empty[1]"
    home.mkdir()
    path = build_catalog(home, None, home / "runs")
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM access_events").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM runs").fetchone() == (0,)


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_moved_or_copied_home_reads_its_own_files(tmp_path: Path, make_drop, how: str) -> None:
    """The views hold absolute paths: after `mv` they failed (no files found at the old place);
    a `cp -a` copy silently showed the original's reviews. The next command rebuilds them."""
    import shutil

    old = tmp_path / "old"
    _ingest(old, make_drop("2026-11-21", {"access_log": [event("E1")], "staff": STAFF_ROWS}))
    new = tmp_path / "new"
    if how == "moved":
        old.rename(new)
    else:
        shutil.copytree(old, new, symlinks=True)
    Workspace.open(new).record_view("flag", ["F1"], ["P1"])
    with duckdb.connect(str(new / "access-audit.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM access_events").fetchone() == (1,)
        assert connection.execute("SELECT count(*) FROM flag_views").fetchone() == (1,)
        assert connection.execute("SELECT home FROM catalog_info").fetchone() == (str(new),)
