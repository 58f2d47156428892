"""The check before each transaction re-reads only files changed since their bytes were last
checked or written (issue 9, backfill: it re-hashed the whole generation before every drop), and
a change behind the store's back is still caught, by the check or by `verify`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from access_audit import verified
from access_audit.manifest import read_manifest
from access_audit.store import Store, StoreDamagedError
from access_audit.verified import RECORD_NAME
from access_audit.workspace import Workspace
from conftest import STAFF_ROWS, event, write_table


@pytest.fixture(autouse=True)
def no_racy_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written a moment ago are vouched for too: the tests tamper after the fact, never in
    the same clock tick (the margin itself is tested below)."""
    monkeypatch.setattr(verified, "RACY_NS", 0)


def _days(store: Store, run: str, days: list[int]) -> None:
    """One transaction appending a small partition per day."""
    frame = pl.DataFrame({"day": days, "x": [d * 10 for d in days]})
    with store.transaction(run, verify="full") as txn:
        txn.append("events", frame, partition_by="day")


def _history(root: Path, nights: int = 3) -> Store:
    store = Store(root / "store", keep_generations=10)
    for night in range(nights):
        _days(store, f"r{night}", [night])
    return store


def _committed_file(store: Store, day: int) -> Path:
    current = store.current()
    assert current is not None
    (path,) = (current.path / "events" / f"day={day}").glob("*.parquet")
    return path


def _rewrite_same_size(path: Path) -> None:
    """Other bytes, same length, written in place (so the same inode, every generation)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    os.chmod(path, 0o600)
    with open(path, "r+b") as handle:
        handle.write(data)
    os.chmod(path, 0o400)


def test_a_backfill_reads_only_what_the_last_transaction_could_not_vouch_for(
    tmp_path: Path,
) -> None:
    store = _history(tmp_path, nights=4)
    first = Store(tmp_path / "store").check_current("full")  # a new process, its record kept
    assert first.check.ok and first.files_read == 0 and first.files_vouched == 5
    (tmp_path / "store" / RECORD_NAME).unlink()
    cold = Store(tmp_path / "store").check_current("full")
    assert cold.files_read == 5 and cold.files_vouched == 0
    again = store.check_current("full")  # this process: its own memory
    assert again.files_read == 0 and again.files_vouched == 5


def test_the_record_is_owner_only_and_names_the_current_head(tmp_path: Path) -> None:
    store = _history(tmp_path, nights=2)
    record = tmp_path / "store" / RECORD_NAME
    assert record.stat().st_mode & 0o777 == 0o600
    body = json.loads(record.read_text(encoding="ascii"))
    assert (
        f"{body['generation']} {body['head']}"
        == (tmp_path / "store" / "CURRENT").read_text(encoding="utf-8").strip()
    )
    assert store.current() is not None


@pytest.mark.parametrize("same_process", [True, False], ids=["same process", "next process"])
def test_a_same_size_rewrite_after_a_transaction_is_caught_before_the_next(
    tmp_path: Path, same_process: bool
) -> None:
    store = _history(tmp_path)
    target = _committed_file(store, 1)
    _rewrite_same_size(target)
    checker = store if same_process else Store(tmp_path / "store")
    with pytest.raises(StoreDamagedError, match=r"events/day=1/.*content differs"):
        checker.check_current("full")
    with pytest.raises(StoreDamagedError, match=r"events/day=1/"):
        _days(checker, "r9", [9])


def test_a_rewrite_with_its_modification_time_put_back_is_caught(tmp_path: Path) -> None:
    """``touch -r`` restores the modification time, but setting it moves the change time."""
    store = _history(tmp_path)
    target = _committed_file(store, 0)
    before = target.stat()
    _rewrite_same_size(target)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    with pytest.raises(StoreDamagedError, match=r"events/day=0/.*content differs"):
        Store(tmp_path / "store").check_current("full")


def test_a_file_swapped_for_one_of_the_same_size_and_time_is_caught(tmp_path: Path) -> None:
    """A new inode renamed over the committed file: its record does not cover the new inode."""
    store = _history(tmp_path)
    target = _committed_file(store, 2)
    before = target.stat()
    forged = target.with_name("forged.tmp")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    forged.write_bytes(bytes(data))
    os.utime(forged, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(forged, target)
    with pytest.raises(StoreDamagedError, match=r"events/day=2/.*content differs"):
        store.check_current("full")


def test_a_forged_record_hides_a_change_from_the_check_but_never_from_verify(
    tmp_path: Path,
) -> None:
    """Whoever can write the store can make the check pass (they could rewrite the manifest and
    CURRENT just as well); the next manifest still carries the original entry, so the changed
    file is never blessed, and `verify` names it in every later generation."""
    store = _history(tmp_path)
    target = _committed_file(store, 1)
    current = store.current()
    assert current is not None
    relative = target.relative_to(current.path).as_posix()
    loaded = read_manifest(current.path)
    assert loaded is not None
    original = loaded[0].by_path()[relative]
    _rewrite_same_size(target)
    record = tmp_path / "store" / RECORD_NAME
    body = json.loads(record.read_text(encoding="ascii"))
    stat = target.stat()
    for row in body["files"]:
        if row[1] == stat.st_ino:
            row[2:5] = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
    record.write_text(json.dumps(body), encoding="ascii")

    forger = Store(tmp_path / "store", keep_generations=10)
    assert forger.check_current("full").check.ok
    _days(forger, "r9", [9])
    newest = forger.current()
    assert newest is not None and newest.number == 4
    carried = read_manifest(newest.path)
    assert carried is not None and carried[0].by_path()[relative] == original
    report = forger.verify("full")
    assert not report.check.ok
    assert report.check.problem is not None and relative in report.check.problem


def test_an_unreadable_or_stale_record_is_ignored(tmp_path: Path) -> None:
    _history(tmp_path)
    record = tmp_path / "store" / RECORD_NAME
    record.write_text("{not json", encoding="ascii")
    assert Store(tmp_path / "store").check_current("full").files_read == 4
    body = {"format": 1, "generation": "g000002", "head": "0" * 64, "files": []}
    record.write_text(json.dumps(body), encoding="ascii")
    assert Store(tmp_path / "store").check_current("full").files_read == 4


def test_a_quick_check_vouches_for_no_full_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.transaction("r0", verify="quick") as txn:
        txn.append("events", pl.DataFrame({"day": [0], "x": [1]}), partition_by="day")
    (tmp_path / "store" / RECORD_NAME).unlink()
    fresh = Store(tmp_path / "store")
    assert fresh.check_current("quick").files_read == 2
    assert fresh.check_current("quick").files_read == 0
    assert fresh.check_current("full").files_read == 2


def test_a_file_modified_in_the_last_clock_ticks_is_not_vouched_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File times come from a coarse clock: a rewrite in the same tick could keep them."""
    monkeypatch.setattr(verified, "RACY_NS", 3600 * 10**9)
    _history(tmp_path, nights=2)
    assert Store(tmp_path / "store").check_current("full").files_read == 3


def test_ingest_leaves_the_next_run_nothing_to_re_read_and_still_refuses_an_edit(
    tmp_path: Path,
) -> None:
    """Through the workspace: drops ingested in one call, then a new process's check."""
    drops = []
    for day in ("2026-11-20", "2026-11-21", "2026-11-22"):
        drop = tmp_path / "drops" / day
        write_table(drop, "access_log", [event(f"E{day}", f"{day}T09:00:00Z")])
        write_table(drop, "staff", STAFF_ROWS)
        drops.append(drop)
    assert Workspace.open(tmp_path / "home").ingest(drops).ok
    later = Workspace.open(tmp_path / "home")
    walked = later.store.check_current("full")
    assert walked is not None and walked.files_read == 0 and walked.files_vouched > 3
    current = later.generation()
    assert current is not None
    (target,) = (current.path / "access_events" / "day=2026-11-21").glob("*.parquet")
    _rewrite_same_size(target)
    with pytest.raises(StoreDamagedError, match="day=2026-11-21"):
        later.ingest([drops[0]])
