"""Generations: commit, roll back, prune, and never rewrite a file an older generation holds."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from access_audit.config import parse_config
from access_audit.errors import AccessAuditError
from access_audit.manifest import describe_file, generation_files, read_manifest
from access_audit.store import Store, StoreDamagedError


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


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += timedelta(hours=hours)


def test_pruning_keeps_every_generation_current_within_keep_hours(tmp_path: Path) -> None:
    clock = _Clock()
    store = Store(tmp_path / "store", keep_generations=2, keep_hours=36, clock=clock)
    for i in range(4):  # g1..g4 committed at 08:00, 09:00, 10:00, 11:00
        with store.transaction(f"r{i}") as txn:
            txn.append("t", _frame(i + 1))
        clock.advance(1)
    assert [g.number for g in store.generations()] == [1, 2, 3, 4]
    clock.advance(34)  # 22:00 next day: g1 stopped being current (g2 came) 37 h ago, g2 36 h ago
    with store.transaction("r5") as txn:
        txn.append("t", _frame(1))
    assert [g.number for g in store.generations()] == [2, 3, 4, 5]
    clock.advance(100)  # everything old: down to the minimum count, the current one kept
    with store.transaction("r6") as txn:
        txn.append("t", _frame(1))
    assert [g.number for g in store.generations()] == [5, 6]
    verified = store.verify()
    assert verified.check.ok and verified.starts_at == 5
    assert verified.note == "the chain starts at g000005: earlier generations were pruned"


def test_a_manifest_lists_every_file_exactly_as_it_is_on_disk(tmp_path: Path) -> None:
    """Entries written, carried from the parent and kept through savepoints all describe the
    bytes truly there."""
    store = Store(tmp_path / "store")
    frame = pl.DataFrame({"day": ["2026-11-20", "2026-11-21"], "x": [1, 2]})
    with store.transaction("r1") as txn:
        txn.append("t", frame, partition_by="day")
        txn.replace_table("u", _frame(3))
    with store.transaction("r2") as txn:
        with pytest.raises(ValueError, match="bad"), txn.savepoint() as inner:
            inner.replace_table("u", _frame(9))
            raise ValueError("bad")
        with txn.savepoint() as inner:
            inner.replace_partitions(
                "t", pl.DataFrame({"day": ["2026-11-21"], "x": [7]}), "day", ["2026-11-21"]
            )
        txn.append("v", _frame(2))
    current = store.current()
    assert current is not None
    loaded = read_manifest(current.path)
    assert loaded is not None
    on_disk = [describe_file(path, name) for name, path in generation_files(current.path).items()]
    assert sorted(loaded[0].files, key=lambda e: e.path) == sorted(on_disk, key=lambda e: e.path)
    assert {e.rows for e in loaded[0].files if e.path.startswith("u/")} == {3}
    assert store.verify().check.ok


def _strip_manifests(root: Path) -> None:
    """What a home written by the version before manifests looks like."""
    for manifest in root.glob("g*/_manifest.json"):
        manifest.unlink()
    for file in root.glob("g*/**/*"):
        if file.is_file():
            file.chmod(0o600)
    name = (root / "CURRENT").read_text().split()[0]
    (root / "CURRENT").write_text(name + "\n")


def test_a_home_from_before_manifests_verifies_and_starts_its_chain_at_the_next_commit(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "store")
    for i in range(2):
        with store.transaction(f"r{i}") as txn:
            txn.append("t", _frame(i + 1))
    _strip_manifests(tmp_path / "store")
    before = store.verify()
    assert before.check.ok and before.starts_at is None
    assert before.note == (
        "g000002 was made by a version without manifests: the chain starts at the next commit"
    )
    with store.transaction("r2", verify="full") as txn:
        txn.append("t", _frame(3))
    after = store.verify()
    assert after.check.ok and after.starts_at == 3 and after.check.items == 1
    assert after.note is not None and "starts at g000003" in after.note
    current = store.current()
    assert current is not None
    assert {p.stat().st_mode & 0o777 for p in current.path.rglob("*") if p.is_file()} == {0o400}


def test_a_generation_missing_from_the_middle_breaks_the_chain(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for i in range(3):
        with store.transaction(f"r{i}") as txn:
            txn.append("t", _frame(i + 1))
    shutil.rmtree(tmp_path / "store" / "g000002")
    check = store.verify().check
    assert not check.ok and check.problem == "g000002: missing from the chain"


def test_a_deleted_manifest_is_not_taken_for_an_old_home(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    for i in range(2):
        with store.transaction(f"r{i}") as txn:
            txn.append("t", _frame(i + 1))
    (tmp_path / "store" / "g000001" / "_manifest.json").unlink()
    check = store.verify().check
    assert not check.ok
    assert check.problem == "g000001/_manifest.json: missing (g000002 chains to it)"
    with pytest.raises(StoreDamagedError, match=r"g000001/_manifest\.json: missing"):
        store.check_current("full")


@pytest.mark.parametrize("change", ["add", "delete"])
def test_a_commit_without_a_check_never_launders_a_changed_file_into_the_chain(
    tmp_path: Path, change: str
) -> None:
    """Even a transaction that skips the check before building (a review) refuses to commit a
    file added to, or removed from, the generation behind the store's back."""
    store = Store(tmp_path / "store")
    with store.transaction("r1") as txn:
        txn.append("t", _frame(1))
        txn.append("t", _frame(2))
    current = store.current()
    assert current is not None
    first = current.table_files("t")[0]
    if change == "add":
        pl.DataFrame({"x": [99]}).write_parquet(first.with_name("planted.parquet"))
        named = "g000001/t/planted.parquet: not in the manifest"
    else:
        first.unlink()
        named = f"g000001/t/{first.name}: missing"
    with pytest.raises(StoreDamagedError, match=named), store.transaction("r2") as txn:
        txn.append("u", _frame(1))
    assert [g.number for g in store.generations()] == [1]


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"keep_hours": "a day"}, r"\[store\] keep_hours: expected a number"),
        ({"keep_hours": -1}, r"\[store\] keep_hours: must be at least 0"),
        ({"verify_before_build": "never"}, r"\[store\] verify_before_build: expected 'full' or"),
        ({"signing_key": ""}, r"\[store\] signing_key: must not be empty"),
    ],
)
def test_store_settings_are_checked_when_loaded(store: dict[str, object], message: str) -> None:
    with pytest.raises(AccessAuditError, match=message):
        parse_config({"store": store})


def test_store_settings_default_to_a_day_and_a_half_and_full_checks() -> None:
    settings = parse_config({}).store
    assert (settings.keep_hours, settings.verify_before_build, settings.signing_key) == (
        36.0,
        "full",
        None,
    )
