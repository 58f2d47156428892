"""Generations of Parquet stores: every write is all-or-nothing, and readers never see half a run.

Layout under ``<home>/store``::

    CURRENT                      name of the committed generation, replaced atomically
    g000012/                     a complete, immutable snapshot of every table
        _generation.json
        access_events/day=2026-11-21/part-<run>.parquet
        staff/part-<run>.parquet
        ...
    .staging-<run>/              a transaction in progress (removed on failure)

A transaction starts by hard-linking the current generation into a staging folder (cheap: no data
is copied), writes only new files there (a file is never rewritten in place, so the inode the older
generation links to is never touched), then renames staging to the next generation and swaps
``CURRENT``. A crash at any point before that swap leaves the previous generation current. Old
generations are kept (``keep_generations``) so an analyst's open DuckDB session, which points at
the generation it was opened on, stays consistent while the nightly job commits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from access_audit.errors import AccessAuditError, WorkspaceBusyError

if TYPE_CHECKING:
    import polars as pl

CURRENT_FILE = "CURRENT"
GENERATION_META = "_generation.json"
_STAGING_PREFIX = ".staging-"
_GENERATION_PREFIX = "g"


def new_run_id() -> str:
    """Sortable, unique: UTC time to the second plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _generation_name(number: int) -> str:
    return f"{_GENERATION_PREFIX}{number:06d}"


def _generation_number(name: str) -> int | None:
    if name.startswith(_GENERATION_PREFIX) and name[1:].isdigit():
        return int(name[1:])
    return None


@dataclass(frozen=True)
class Generation:
    """A committed, read-only snapshot of every table."""

    number: int
    path: Path

    def table_path(self, table: str) -> Path:
        return self.path / table

    def table_files(self, table: str) -> list[Path]:
        return sorted(self.table_path(table).glob("**/*.parquet"))

    def meta(self) -> dict[str, Any]:
        meta_path = self.path / GENERATION_META
        if not meta_path.exists():
            return {}
        loaded: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        return loaded


class Store:
    """The generations under one home, and the lock that serialises writers."""

    def __init__(self, root: Path, keep_generations: int = 5, lock_timeout: float = 600.0):
        self.root = root
        self.keep_generations = keep_generations
        self.lock_timeout = lock_timeout

    # -- reading -------------------------------------------------------------------------------
    def current(self) -> Generation | None:
        pointer = self.root / CURRENT_FILE
        if not pointer.exists():
            return None
        name = pointer.read_text(encoding="utf-8").strip()
        number = _generation_number(name)
        if number is None or not (self.root / name).is_dir():
            raise AccessAuditError(
                f"{pointer}: names no generation ('{name}'); the store is damaged"
            )
        return Generation(number, self.root / name)

    def generations(self) -> list[Generation]:
        if not self.root.exists():
            return []
        found = []
        for child in self.root.iterdir():
            number = _generation_number(child.name)
            if number is not None and child.is_dir():
                found.append(Generation(number, child))
        return sorted(found, key=lambda g: g.number)

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the home's write lock; wait up to ``lock_timeout`` seconds for another writer."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / ".lock"
        handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise WorkspaceBusyError(
                            f"another access-audit process is writing to {self.root.parent}; "
                            f"gave up after {self.lock_timeout:.0f}s"
                        ) from None
                    time.sleep(0.2)
            yield
        finally:
            os.close(handle)

    @contextlib.contextmanager
    def transaction(
        self, run_id: str, meta: Mapping[str, Any] | None = None
    ) -> Iterator[Transaction]:
        """Stage changes on top of the current generation; commit only if the block succeeds."""
        with self.lock():
            self._remove_debris()
            base = self.current()
            staging = self.root / f"{_STAGING_PREFIX}{run_id}"
            if base is not None:
                _link_tree(base.path, staging)
            else:
                staging.mkdir(parents=True)
            txn = Transaction(staging, run_id, base)
            try:
                yield txn
                if txn.changed:
                    txn.committed = self._commit(txn, meta or {})
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
            if txn.committed is not None:
                self._prune()

    def _commit(self, txn: Transaction, meta: Mapping[str, Any]) -> Generation:
        number = (txn.base.number + 1) if txn.base else 1
        info = {
            "number": number,
            "run_id": txn.run_id,
            "parent": txn.base.number if txn.base else None,
            "committed_at": datetime.now(UTC).isoformat(),
            **meta,
        }
        (txn.path / GENERATION_META).write_text(json.dumps(info, default=str), encoding="utf-8")
        target = self.root / _generation_name(number)
        os.replace(txn.path, target)
        _write_atomically(self.root / CURRENT_FILE, _generation_name(number) + "\n")
        return Generation(number, target)

    def _remove_debris(self) -> None:
        """Staging folders of crashed runs, and generations renamed but never made current."""
        current = self.current()
        for child in list(self.root.iterdir()):
            number = _generation_number(child.name)
            stale_generation = number is not None and (current is None or number > current.number)
            if child.name.startswith(_STAGING_PREFIX) or (stale_generation and child.is_dir()):
                shutil.rmtree(child, ignore_errors=True)

    def _prune(self) -> None:
        generations = self.generations()
        for old in generations[: -self.keep_generations]:
            shutil.rmtree(old.path, ignore_errors=True)


class Transaction:
    """A staging folder: scan tables as they stand, write new files, never rewrite in place."""

    def __init__(self, path: Path, run_id: str, base: Generation | None):
        self.path = path
        self.run_id = run_id
        self.base = base
        self.changed = False
        self.committed: Generation | None = None

    def table_path(self, table: str) -> Path:
        return self.path / table

    def table_files(self, table: str) -> list[Path]:
        return sorted(self.table_path(table).glob("**/*.parquet"))

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[Transaction]:
        """A nested transaction: kept if its block succeeds, discarded (alone) if it raises."""
        child_path = self.path.with_name(f"{self.path.name}.savepoint")
        shutil.rmtree(child_path, ignore_errors=True)
        _link_tree(self.path, child_path)
        child = Transaction(child_path, self.run_id, self.base)
        try:
            yield child
        except BaseException:
            shutil.rmtree(child_path, ignore_errors=True)
            raise
        if child.changed:
            discarded = self.path.with_name(f"{self.path.name}.discarded")
            os.replace(self.path, discarded)
            os.replace(child_path, self.path)
            shutil.rmtree(discarded, ignore_errors=True)
            self.changed = True
        else:
            shutil.rmtree(child_path, ignore_errors=True)

    def replace_table(self, table: str, frame: pl.DataFrame) -> Path:
        """The table becomes exactly ``frame`` (one file)."""
        self._unlink_files(self.table_files(table))
        return self._write(self.table_path(table) / f"part-{self.run_id}.parquet", frame)

    def append(
        self, table: str, frame: pl.DataFrame, partition_by: str | None = None
    ) -> list[Path]:
        """Add ``frame`` as new part files, one per partition value when partitioned."""
        if frame.height == 0:
            return []
        if partition_by is None:
            name = f"part-{self.run_id}-{uuid.uuid4().hex[:6]}.parquet"
            return [self._write(self.table_path(table) / name, frame)]
        written = []
        for (value,), part in frame.partition_by(partition_by, as_dict=True).items():
            folder = self.table_path(table) / f"{partition_by}={_partition_text(value)}"
            name = f"part-{self.run_id}-{uuid.uuid4().hex[:6]}.parquet"
            written.append(self._write(folder / name, part.drop(partition_by)))
        return written

    def replace_partitions(
        self, table: str, frame: pl.DataFrame, partition_by: str, values: Sequence[object]
    ) -> list[Path]:
        """Every partition named in ``values`` becomes exactly the rows of ``frame`` in it."""
        for value in values:
            folder = self.table_path(table) / f"{partition_by}={_partition_text(value)}"
            if folder.exists():
                self._unlink_files(sorted(folder.glob("*.parquet")))
                with contextlib.suppress(OSError):
                    folder.rmdir()
        self.changed = True
        return self.append(table, frame, partition_by=partition_by)

    def _unlink_files(self, files: Sequence[Path]) -> None:
        for file in files:
            file.unlink()
        if files:
            self.changed = True

    def _write(self, target: Path, frame: pl.DataFrame) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        frame.write_parquet(temporary, compression="zstd", statistics=True)
        os.replace(temporary, target)
        self.changed = True
        return target


def _partition_text(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)


def _link_tree(source: Path, target: Path) -> None:
    """Mirror ``source`` into ``target`` with hard links: O(files), no data copied."""
    for folder, _dirs, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            if name == GENERATION_META:
                continue
            os.link(Path(folder) / name, target / relative / name)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
