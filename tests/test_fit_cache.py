"""The pattern model's MinCovDet fits and the collaborative groups are stored by the SHA-256 of
what they were computed from and read back instead of recomputed: bitwise the same centres,
spreads and groups, so the same flags, and a re-score of unchanged days fits nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from access_audit.generate import generate_force
from access_audit.score import anchors, patterns
from access_audit.score.fit_cache import FitCache, fit_key, groups_key
from access_audit.score.mined import collaborative_groups
from access_audit.score.robust import min_cov_det
from access_audit.workspace import Workspace


def _shares(rows: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    return np.column_stack([generator.beta(2, 9, rows), generator.beta(1, 6, rows)])


def test_a_stored_fit_reads_back_bitwise_as_computed() -> None:
    matrix = _shares(400, 3)
    fresh = FitCache()
    key, fitted = fresh.fit(matrix, min_cov_det)
    assert fitted is not None and fresh.misses == 1

    calls: list[int] = []

    def never(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(m))
        return min_cov_det(m)

    # through the stored form (Parquet-typed rows), as the next run reads it
    reread = FitCache(fresh.rows([key, key]))
    assert reread.rows([key]).height == 1
    again_key, again = reread.fit(matrix.copy(), never)
    assert again is not None
    assert again_key == key and calls == [] and reread.hits == 1
    location, covariance = min_cov_det(matrix)
    assert again[0].tobytes() == location.tobytes()
    assert again[1].tobytes() == covariance.tobytes()


def test_a_failed_fit_is_remembered_as_failed() -> None:
    def fails(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise ValueError("singular")

    cache = FitCache()
    key, fitted = cache.fit(np.ones((8, 2)), fails)
    assert fitted is None
    stored = cache.rows([key])
    assert stored["location"].to_list() == [None]
    assert FitCache(stored).fit(np.ones((8, 2)), min_cov_det) == (key, None)


def test_any_change_to_the_matrix_is_another_key() -> None:
    matrix = _shares(50, 5)
    changed = matrix.copy()
    changed[17, 1] = np.nextafter(changed[17, 1], 1.0)
    keys = {
        fit_key(matrix),
        fit_key(changed),
        fit_key(matrix[:-1]),
        fit_key(matrix.reshape(25, 4)),
        fit_key(matrix[:, :1]),
    }
    assert len(keys) == 5
    assert fit_key(np.asfortranarray(matrix)) == fit_key(matrix)


def test_groups_are_kept_by_the_pairs_they_read_and_their_settings() -> None:
    # two pairs of users who open the same three records, and one who shares one record
    opened = pl.DataFrame(
        {
            "user_id": ["a", "b", "c", "d", "e"] * 3,
            "record_type": ["person"] * 15,
            "record_id": [f"P{u}{n}" for n in range(3) for u in ("1", "1", "2", "2", "1")],
            "day": [date(2026, 11, 1)] * 15,
        }
    )
    settings = {
        "min_shared_records": 2,
        "max_record_users": 10,
        "neighbours": 3,
        "iterations": 10,
        "min_members": 2,
    }
    calls: list[int] = []

    def finder(lookups: pl.LazyFrame, s: dict[str, object]) -> pl.DataFrame:
        calls.append(1)
        return collaborative_groups(lookups, s)

    cache = FitCache()
    key, groups = cache.groups(opened.lazy(), settings, finder)
    assert groups.height > 0
    # the same pairs in another order, read back from their stored form: not computed again
    shuffled = opened.reverse().lazy()
    reread = FitCache(stored_groups=cache.group_rows([key, "not-a-key"]))
    again_key, again = reread.groups(shuffled, settings, finder)
    assert again_key == key and again.equals(groups) and calls == [1]
    # any other pair or setting is another key
    unique = (
        opened.select("user_id", "record_type", "record_id")
        .unique()
        .sort("user_id", "record_type", "record_id")
    )
    assert groups_key(unique.head(-1), settings) != key
    assert groups_key(unique, {**settings, "neighbours": 4}) != key


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    force = generate_force(tmp_path_factory.mktemp("force"), staff=200, days=5, seed=13)
    return sorted(force.drops)


def _flags(workspace: Workspace) -> pl.DataFrame:
    return workspace.scan("flags").collect().sort("flag_id")


def test_a_rescore_reads_its_fits_back_and_changes_nothing(
    drops: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text(
        "[scoring]\nlookback_days = 3\nrefit_days = 2\nchunk_days = 2\n", encoding="utf-8"
    )
    workspace = Workspace.open(home)
    assert workspace.ingest(drops).ok
    fitted: list[int] = []

    def counted(matrix: np.ndarray, checked: bool = False) -> tuple[np.ndarray, np.ndarray]:
        fitted.append(len(matrix))
        return min_cov_det(matrix, checked)

    monkeypatch.setattr(patterns, "min_cov_det", counted)
    grouped: list[int] = []

    def counted_groups(lookups: pl.LazyFrame, s: dict[str, object]) -> pl.DataFrame:
        grouped.append(1)
        return collaborative_groups(lookups, s)

    monkeypatch.setattr(anchors, "collaborative_groups", counted_groups)
    workspace.score()
    first = _flags(workspace)
    assert fitted, "the force is too small for any peer group to be modelled"
    assert first.filter(pl.col("alert")).height > 0
    stored = workspace.scan("pattern_fits").collect()
    assert stored.height > 0 and stored["key"].n_unique() == stored.height
    assert workspace.scan("collaborative_fits").collect().height > 0
    generation = workspace.generation().path

    fitted.clear()
    grouped.clear()
    workspace.score()
    assert fitted == [] and grouped == []
    assert workspace.generation().path == generation
    assert _flags(workspace).equals(first)

    # a night re-scoring its last days reads its anchors' fits too
    days = sorted(workspace.scan("access_events").select("day").unique().collect()["day"])
    workspace.score(days[-2:])
    assert fitted == [] and grouped == []
    assert _flags(workspace).equals(first)
