"""Scoring is per day against stored look-back aggregates and models fitted at calendar anchors:
the days scored together, the chunk size, scoring night by night and whether the aggregates were
kept or rebuilt never change a flag."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from access_audit.generate import generate_force
from access_audit.score import rebuild_lookback, score_days
from access_audit.score.anchors import reach_days
from access_audit.score.lookback import AGGREGATE_TABLES, Lookback, read_lookback
from access_audit.score.run import access_sources
from access_audit.workspace import Workspace

DAYS = 6
LOOKBACK = 2
REFIT = 2
"""Models fitted every other day: six days hold three anchors, and days scored against each."""


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    force = generate_force(tmp_path_factory.mktemp("force"), staff=150, days=DAYS, seed=11)
    return sorted(force.drops)


def _home(tmp_path: Path, name: str, chunk_days: int) -> Workspace:
    home = tmp_path / name
    home.mkdir()
    # a short look-back, so that six days hold several whole windows
    (home / "access-audit.toml").write_text(
        f"[scoring]\nlookback_days = {LOOKBACK}\nchunk_days = {chunk_days}\nrefit_days = {REFIT}\n",
        encoding="utf-8",
    )
    return Workspace.open(home)


def _flags(workspace: Workspace) -> pl.DataFrame:
    return (
        workspace.scan("flags")
        .select("flag_id", "score", "alert", "points", "reasons", "event_count", "day")
        .collect()
        .sort("flag_id")
    )


def _weak(workspace: Workspace) -> pl.DataFrame:
    return workspace.scan("weak_explanations").collect().sort("day", "system", "event_id", "kind")


def _assert_same_flags(left: pl.DataFrame, right: pl.DataFrame) -> None:
    assert left["flag_id"].to_list() == right["flag_id"].to_list()
    assert left["alert"].to_list() == right["alert"].to_list()
    for number in ("score", "points"):
        assert (left[number] - right[number]).abs().max() <= 1e-9  # type: ignore[operator]
    exact = [c for c in left.columns if c not in ("score", "points")]
    different = left.select(exact).join(right.select(exact), on=exact, how="anti")
    assert different.is_empty(), different.to_dicts()[:3]


def test_flags_do_not_depend_on_the_chunk_size(drops: list[Path], tmp_path: Path) -> None:
    one_at_a_time = _home(tmp_path, "chunk1", 1)
    assert one_at_a_time.ingest(drops).ok
    one_at_a_time.score()
    reference = _flags(one_at_a_time)
    assert reference.filter(pl.col("alert")).height > 0
    assert reference["day"].n_unique() >= DAYS

    together = _home(tmp_path, "chunk4", 4)
    assert together.ingest(drops).ok
    together.score()
    _assert_same_flags(_flags(together), reference)
    # the mined explanations too: each day's learned from its own look-back only
    weak = _weak(one_at_a_time)
    assert weak.height > 0
    assert _weak(together).equals(weak)


def test_flags_do_not_depend_on_scoring_in_one_run_or_night_by_night(
    drops: list[Path], tmp_path: Path
) -> None:
    at_once = _home(tmp_path, "once", 14)
    assert at_once.ingest(drops).ok
    at_once.score()
    reference = _flags(at_once)
    assert reference.filter(pl.col("alert")).height > 0

    # the same accesses, each day scored in its own run after the days before it (a night each):
    # a day between two anchors reads its anchor's models from the stored aggregates
    nightly = _home(tmp_path, "nights", 14)
    assert nightly.ingest(drops).ok
    days = sorted(nightly.scan("access_events").select("day").unique().collect()["day"])
    assert len(days) >= DAYS
    for day in days:
        nightly.score([day])
    _assert_same_flags(_flags(nightly), reference)
    assert _weak(nightly).equals(_weak(at_once))


def test_anchored_models_change_pattern_flags_only(drops: list[Path], tmp_path: Path) -> None:
    """Fitting the models every day (refit_days = 1) or at anchors changes no mined explanation
    but the collaborative groups' and, here where those explain the same accesses, no flag but
    the pattern ones (their peers' centres)."""
    anchored = _home(tmp_path, "anchored", 14)
    assert anchored.ingest(drops).ok
    anchored.score()
    daily = tmp_path / "daily"
    daily.mkdir()
    (daily / "access-audit.toml").write_text(
        f"[scoring]\nlookback_days = {LOOKBACK}\nrefit_days = 1\n", encoding="utf-8"
    )
    every_day = Workspace.open(daily)
    assert every_day.ingest(drops).ok
    every_day.score()
    not_pattern = pl.col("flag_id").str.contains("-pattern-").not_()
    # (a reason may name another collaborative group: one fitted at the anchor)
    numbers = ["flag_id", "alert", "score", "points"]
    left, right = (_flags(w).filter(not_pattern).select(numbers) for w in (anchored, every_day))
    _assert_same_flags(left, right)
    assert left.height > 0
    other = pl.col("kind") != "collaborative_group"
    assert _weak(anchored).filter(other).equals(_weak(every_day).filter(other))


def test_stored_aggregates_equal_a_rebuild_and_a_home_without_them_scores_the_same(
    drops: list[Path], tmp_path: Path
) -> None:
    workspace = _home(tmp_path, "home", 3)
    for drop in drops:
        assert workspace.nightly([drop]).ok
    before = _flags(workspace)

    # kept incrementally, night by night, they are what the accesses give from scratch
    days = sorted(workspace.scan("access_events").select("day").unique().collect()["day"])
    stored = Lookback(
        *(workspace.scan(t).collect() for t in AGGREGATE_TABLES[:3])  # type: ignore[arg-type]
    )
    rebuilt = rebuild_lookback(workspace.scan, days)
    for table, frame in stored.tables().items():
        keys = frame.columns
        assert frame.sort(keys).equals(rebuilt.tables()[table].select(keys).sort(keys)), table

    # a home from an earlier version has none: the look-back is rebuilt, the flags are the same
    generation = workspace.generation().path
    # (an alert a later night cleared is kept with its old reasons: only the others compare)
    cleared = workspace.scan("flags").filter(pl.col("cleared_at").is_not_null()).select("flag_id")
    stored_flags = (
        before.filter(pl.col("day").is_in(days[-2:]))
        .join(cleared.collect(), on="flag_id", how="anti")
        .drop("day")
    )
    for sources in (None, access_sources(generation)):
        scored = score_days(workspace.scan, days[-2:], workspace.rules, sources)
        again = (
            scored.flags.join(stored_flags.select("flag_id"), on="flag_id", how="semi")
            .select(stored_flags.columns)
            .sort("flag_id")
        )
        assert again.height == stored_flags.height
        known = set(stored_flags["flag_id"]) | set(cleared.collect()["flag_id"])
        assert set(scored.flags["flag_id"]) <= known
        _assert_same_flags(again, stored_flags)
        # rebuilt from scratch, the scored days' look-back is rebuilt (and would be stored) too
        # (back to the first scored day's anchor's look-back: score/anchors.py)
        reach = reach_days(workspace.rules)
        rebuilt = (
            [d for d in days if (days[-2] - d).days <= reach] if sources is None else days[-2:]
        )
        assert scored.lookback_days == rebuilt


def test_a_day_whose_accesses_changed_is_rebuilt_not_read() -> None:
    day, other = date(2026, 11, 20), date(2026, 11, 21)
    stored = {
        "lookback_sources": pl.LazyFrame(
            {"source": ["a.parquet", "b.parquet"], "day": [day, other]}
        ),
    }
    empty = Lookback.empty()

    def scan(name: str) -> pl.LazyFrame:
        frame = stored.get(name)
        return frame if frame is not None else getattr(empty, _field(name)).lazy()

    asked: list[list[date]] = []

    def rebuild(days: list[date]) -> Lookback:
        asked.append(list(days))
        return Lookback.empty()

    sources = {day: "a.parquet", other: "b.parquet\nlate.parquet"}
    _, rebuilt = read_lookback(scan, [day, other], sources, rebuild)
    assert rebuilt == [other] and asked == [[other]]


def _field(table: str) -> str:
    return table.removeprefix("lookback_")


def test_the_aggregates_are_scanned_as_typed_tables(tmp_path: Path) -> None:
    from access_audit.tables import scan_stored, stored_table

    for table in AGGREGATE_TABLES:
        assert scan_stored(tmp_path, table).collect_schema() == stored_table(table).full_schema()
