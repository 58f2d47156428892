"""Generations: commit, roll back, prune, and never rewrite a file an older generation holds."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from access_audit.store import Store


def _frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(n))})


def test_commit_makes_a_new_generation_and_keeps_the_old_one_intact(tmp_path: Path) -> None:
    store = Store(tmp_path / "store", keep_generations=3)
    with store.transaction("r1") as txn:
        txn.replace_table("t", _frame(1))
    first = store.current()
    assert first is not None and first.number == 1
    with store.transaction("r2") as txn:
        txn.replace_table("t", _frame(5))
    second = store.current()
    assert second is not None and second.number == 2
    assert pl.read_parquet(first.table_files("t")[0]).height == 1
    assert pl.read_parquet(second.table_files("t")[0]).height == 5


def test_exception_rolls_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.transaction("r1") as txn:
        txn.replace_table("t", _frame(1))
    with pytest.raises(ValueError, match="boom"), store.transaction("r2") as txn:
        txn.replace_table("t", _frame(9))
        raise ValueError("boom")
    current = store.current()
    assert current is not None and current.number == 1
    assert [g.number for g in store.generations()] == [1]
    assert not list((tmp_path / "store").glob(".staging-*"))


def test_a_transaction_that_writes_nothing_commits_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.transaction("r1"):
        pass
    assert store.current() is None


def test_old_generations_are_pruned_down_to_the_minimum_count_once_out_of_keep_hours(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store", keep_generations=2, keep_hours=0)
    for i in range(4):
        with store.transaction(f"r{i}") as txn:
            txn.append("t", _frame(i + 1))
    assert [g.number for g in store.generations()] == [3, 4]
    current = store.current()
    assert current is not None
    assert sum(pl.read_parquet(f).height for f in current.table_files("t")) == 1 + 2 + 3 + 4


def test_replace_partitions_only_touches_named_days(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    frame = pl.DataFrame({"day": ["2026-11-20", "2026-11-21"], "x": [1, 2]})
    with store.transaction("r1") as txn:
        txn.append("t", frame, partition_by="day")
    with store.transaction("r2") as txn:
        txn.replace_partitions(
            "t", pl.DataFrame({"day": ["2026-11-21"], "x": [7]}), "day", ["2026-11-21"]
        )
    current = store.current()
    assert current is not None
    values = pl.scan_parquet(current.path / "t", hive_partitioning=True).collect()
    assert sorted(values.select("day", "x").rows()) == [
        (pl.Series(["2026-11-20"]).str.to_date()[0], 1),
        (pl.Series(["2026-11-21"]).str.to_date()[0], 7),
    ]


def test_savepoint_discards_only_its_own_writes(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.transaction("r1") as txn:
        txn.append("t", _frame(1))
        with pytest.raises(ValueError, match="bad drop"), txn.savepoint() as inner:
            inner.append("t", _frame(10))
            raise ValueError("bad drop")
        with txn.savepoint() as inner:
            inner.append("t", _frame(2))
    current = store.current()
    assert current is not None
    assert sorted(pl.read_parquet(f).height for f in current.table_files("t")) == [1, 2]
    assert [p.name for p in (tmp_path / "store").iterdir() if p.name.startswith(".st")] == []
