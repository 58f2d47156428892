"""Generations of Parquet stores: every write is all-or-nothing, readers never see half a run, and
every committed file is tamper-evident.

Layout under ``<home>/store``::

    CURRENT                      name of the committed generation and its head hash, replaced
                                 atomically
    g000012/                     a complete, immutable snapshot of every table
        _generation.json         run id, command, parent, commit time
        _manifest.json           every other file's path, SHA-256, size and rows, chained to
                                 g000011's manifest (see ``manifest.py``)
        access_events/day=2026-11-21/part-<run>.parquet
        staff/part-<run>.parquet
        ...
    .staging-<run>/              a transaction in progress (removed on failure)

A transaction starts by hard-linking the current generation into a staging folder (cheap: no data
is copied), writes only new files there, then renames staging to the next generation and swaps
``CURRENT``. A crash at any point before that swap leaves the previous generation current.

Files are written once and never changed: each is written under a temporary name, made read-only
(0400) and renamed into place; removing a file from a table unlinks it from the staging folder only.
Hard links between generations are safe because nothing rewrites a file in place, and the
manifests catch anything that does: a file shared by five generations is listed, with its hash, in
five chained manifests. ``nightly``, ``score`` and ``ingest`` check the generation they build on
before building (``[store] verify_before_build``) and refuse if it is damaged.

Pruning (after each commit) goes by time, not count, because what must survive is every generation
an analyst's open DuckDB session may still read: a session reads the generation that was current
when its database file was built. A generation stopped being current when the next one was
committed, so it is kept while that commit is less than ``keep_hours`` old (default 36: an
analyst's day and a night, with margin). The newest ``keep_generations`` are kept whatever their
age, the current one always, and only the oldest are removed, so the kept generations are
contiguous and their manifests still chain.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from access_audit.errors import AccessAuditError, WorkspaceBusyError
from access_audit.integrity import GENESIS, file_sha256
from access_audit.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    CheckMode,
    FileEntry,
    Manifest,
    ManifestError,
    StoreVerification,
    build_manifest,
    generation_name,
    read_manifest,
    walk_chain,
    write_manifest,
)
from access_audit.verified import VerifiedFiles, Written, written_signature

if TYPE_CHECKING:
    import polars as pl

CURRENT_FILE = "CURRENT"
PENDING_FILE = "PENDING"
"""Names the generation a commit is about to make current: written before staging is renamed
to it and removed once ``CURRENT`` names it. A generation newer than ``CURRENT`` that PENDING
does not name was current once: ``CURRENT`` was rolled back."""
GENERATION_META = "_generation.json"
_STAGING_PREFIX = ".staging-"
_READ_ONLY = 0o400
_GENERATION_PREFIX = "g"


def new_run_id() -> str:
    """Sortable, unique: UTC time to the second plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


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


class StoreDamagedError(AccessAuditError):
    """A committed generation no longer matches its manifest: nothing is built on it."""


Clock = Callable[[], datetime]


class Store:
    """The generations under one home, and the lock that serialises writers."""

    def __init__(
        self,
        root: Path,
        keep_generations: int = 5,
        lock_timeout: float = 600.0,
        keep_hours: float = 36.0,
        clock: Clock | None = None,
        signing_key: Path | None = None,
    ):
        self.root = root
        self.keep_generations = keep_generations
        self.lock_timeout = lock_timeout
        self.keep_hours = keep_hours
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.signing_key = signing_key
        """An Ed25519 private key (PEM) outside the home: each commit signs its head with it."""
        self.verified = VerifiedFiles()
        """The files ``check_current`` need not re-read (``verified.py``); never used by
        ``verify``."""

    # -- reading -------------------------------------------------------------------------------
    def current(self) -> Generation | None:
        pointer = self._read_pointer()
        if pointer is None:
            return None
        name = pointer[0]
        number = _generation_number(name)
        if number is None or not (self.root / name).is_dir():
            raise AccessAuditError(
                f"{self.root / CURRENT_FILE}: names no generation ('{name}'); the store is damaged"
            )
        return Generation(number, self.root / name)

    def recorded_head(self) -> str | None:
        """The head hash ``CURRENT`` records (None on a home made before manifests)."""
        pointer = self._read_pointer()
        return pointer[1] if pointer is not None and len(pointer) > 1 else None

    def _read_pointer(self) -> list[str] | None:
        pointer = self.root / CURRENT_FILE
        if not pointer.exists():
            return None
        return pointer.read_text(encoding="utf-8").split() or [""]

    def generations(self) -> list[Generation]:
        if not self.root.exists():
            return []
        found = []
        for child in self.root.iterdir():
            number = _generation_number(child.name)
            if number is not None and child.is_dir():
                found.append(Generation(number, child))
        return sorted(found, key=lambda g: g.number)

    def committed(self) -> list[Generation]:
        """Kept generations up to the current one (not a commit's debris beyond it)."""
        current = self.current()
        if current is None:
            return []
        return [g for g in self.generations() if g.number <= current.number]

    # -- verifying -----------------------------------------------------------------------------
    def verify(self, mode: CheckMode = "full", public_key: Path | None = None) -> StoreVerification:
        """Walk every kept generation's manifest and files (see ``manifest.walk_chain``); with
        ``public_key``, the current generation's head must also carry its signature."""
        with self.lock(shared=True):
            committed = self.committed()
            walked = walk_chain([(g.number, g.path) for g in committed], self.recorded_head(), mode)
            walked = walked.failing(self.rollback_problem())
            if public_key is None or not walked.check.ok:
                return walked
            if not committed or walked.check.head is None:
                return walked.failing("the store has no manifest to check a signature against")
            from access_audit.signing import signature_problem

            current = committed[-1]
            return walked.failing(
                signature_problem(current.path, public_key, current.number, walked.check.head)
            )

    def check_current(self, mode: CheckMode) -> StoreVerification | None:
        """Raise StoreDamagedError unless the current generation matches its manifest, chains
        to its parent and is the head ``CURRENT`` records; the walk (None: no generation yet).
        Reads only the files ``self.verified`` cannot vouch for. Call with the lock held."""
        rolled_back = self.rollback_problem()
        if rolled_back is not None:
            raise StoreDamagedError(
                f"the store is damaged, so nothing was built on it: {rolled_back} "
                "(`access-audit verify` checks every generation)"
            )
        current = self.current()
        if current is None:
            return None
        chain = [(g.number, g.path) for g in self.committed()[-2:]]
        head = self.recorded_head()
        self.verified.load(self.root, current.path.name, head)
        walked = walk_chain(chain, head, mode, files_from=current.number, trusted=self.verified)
        if not walked.check.ok:
            raise StoreDamagedError(
                f"the store is damaged, so nothing was built on it: {walked.check.problem} "
                "(`access-audit verify` checks every generation)"
            )
        return walked

    def rollback_problem(self) -> str | None:
        """One line if a generation newer than the one ``CURRENT`` names is on disk and is not
        the debris of a commit cut short (named by ``PENDING``): ``CURRENT`` was rolled back,
        and the next run would otherwise delete the newer generation."""
        current = self.current()
        pending = self._pending()
        for generation in reversed(self.generations()):
            newer = current is None or generation.number > current.number
            if newer and generation.path.name != pending:
                named = current.path.name if current is not None else "none"
                return (
                    f"CURRENT: names {named}, but {generation.path.name} is newer "
                    "(CURRENT was rolled back)"
                )
        return None

    def _pending(self) -> str | None:
        try:
            return (self.root / PENDING_FILE).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def refuse_strays(self) -> None:
        """StoreDamagedError if the current generation holds a symbolic link, a FIFO or a
        folder without a file: readers (the analysts' views) must never follow one. Cheap: it
        lists the folder, it reads no file."""
        from access_audit.manifest import stray_problem

        current = self.current()
        if current is None:
            return
        problem = stray_problem(current.path, current.path.name)
        if problem is not None:
            raise StoreDamagedError(
                f"the store is damaged, so it was not read: {problem} (`access-audit verify` "
                "checks every generation)"
            )

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """Hold the home's write lock (or, ``shared``, keep writers out while reading); wait up to
        ``lock_timeout`` seconds for another process."""
        lock_path = self.root / ".lock"
        if shared:
            if not lock_path.exists():
                yield
                return
            handle = os.open(lock_path, os.O_RDONLY)
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        kind = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            while True:
                try:
                    fcntl.flock(handle, kind | fcntl.LOCK_NB)
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
        self,
        run_id: str,
        meta: Mapping[str, Any] | None = None,
        verify: CheckMode | None = None,
    ) -> Iterator[Transaction]:
        """Stage changes on top of the current generation; commit only if the block succeeds.

        With ``verify``, first check the generation it builds on (StoreDamagedError if broken)."""
        with self.lock():
            self._remove_debris()
            if verify is not None:
                self.check_current(verify)
            elif (rolled_back := self.rollback_problem()) is not None:
                raise StoreDamagedError(
                    f"the store is damaged, so nothing was built on it: {rolled_back}"
                )
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
            if verify is not None:
                self._settle_verified(txn)

    def _settle_verified(self, txn: Transaction) -> None:
        """Last in a transaction, after its own links and unlinks (staging, pruning) moved the
        files' change times: re-state the current generation so the next check reads only what
        changed since (``verified.py``), here and, through ``.verified``, in the next process."""
        current = self.current()
        head = self.recorded_head()
        if current is None or head is None:
            return
        committed = txn.committed is not None and txn.manifest is not None
        try:
            manifest = txn.manifest if committed else _manifest_of(current)
            if manifest is None:
                return
            self.verified.settle(current.path, manifest, txn.written_stats if committed else {})
            self.verified.save(self.root, current.path.name, head)
        except (ManifestError, OSError):
            self.verified.forget()

    def _commit(self, txn: Transaction, meta: Mapping[str, Any]) -> Generation:
        number = (txn.base.number + 1) if txn.base else 1
        info = {
            "number": number,
            "run_id": txn.run_id,
            "parent": txn.base.number if txn.base else None,
            "committed_at": self.clock().isoformat(),
            **meta,
        }
        meta_path = txn.path / GENERATION_META
        meta_path.write_text(json.dumps(info, default=str), encoding="utf-8")
        txn.record_written(meta_path, rows=None)
        _remove_empty_folders(txn.path)
        try:
            manifest = self._staged_manifest(txn, number)
        except ManifestError as exc:
            message = f"the store is damaged, so nothing was built on it: {exc}"
            raise StoreDamagedError(message) from None

        _make_read_only(txn.path, manifest)
        head = write_manifest(txn.path, manifest)
        txn.manifest = manifest
        if self.signing_key is not None:
            from access_audit.signing import write_signature

            write_signature(txn.path, self.signing_key, number, head)
        target = self.root / generation_name(number)
        _write_atomically(self.root / PENDING_FILE, generation_name(number) + "\n")
        os.replace(txn.path, target)
        _write_atomically(self.root / CURRENT_FILE, f"{generation_name(number)} {head}\n")
        (self.root / PENDING_FILE).unlink()
        return Generation(number, target)

    def _staged_manifest(self, txn: Transaction, number: int) -> Manifest:
        parent = read_manifest(txn.base.path) if txn.base else None
        return build_manifest(
            txn.path,
            number,
            parent[1] if parent else GENESIS,
            txn.written,
            txn.removed,
            (txn.base.path.name, parent[0]) if txn.base and parent else None,
        )

    def _remove_debris(self) -> None:
        """Staging folders of crashed runs, and the generation a crashed commit renamed but never
        made current (``PENDING`` names it); a newer generation it does not name is left for
        ``rollback_problem`` to report."""
        current = self.current()
        pending = self._pending()
        for child in list(self.root.iterdir()):
            number = _generation_number(child.name)
            stale_generation = (
                number is not None
                and (current is None or number > current.number)
                and child.name == pending
            )
            if child.name.startswith(_STAGING_PREFIX) or (stale_generation and child.is_dir()):
                shutil.rmtree(child, ignore_errors=True)
        if pending is not None:
            (self.root / PENDING_FILE).unlink(missing_ok=True)

    def _prune(self) -> None:
        """Remove the oldest generations no session can still hold (the rule is in the module
        docstring): stop at the first one to keep, so the kept ones stay contiguous."""
        generations = self.committed()
        cutoff = self.clock() - timedelta(hours=self.keep_hours)
        removable = len(generations) - max(self.keep_generations, 1)
        for old, successor in itertools.pairwise(generations[: removable + 1]):
            if _committed_at(successor) >= cutoff:
                break
            shutil.rmtree(old.path, ignore_errors=True)


def _manifest_of(generation: Generation) -> Manifest | None:
    loaded = read_manifest(generation.path)
    return loaded[0] if loaded is not None else None


def _committed_at(generation: Generation) -> datetime:
    """When a generation was committed: its metadata, else its folder's modification time."""
    try:
        parsed = datetime.fromisoformat(str(generation.meta()["committed_at"]))
    except (ValueError, KeyError, OSError):
        return datetime.fromtimestamp(generation.path.stat().st_mtime, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _remove_empty_folders(folder: Path) -> None:
    """Folders a transaction emptied (every file of a table removed): a committed generation
    holds no folder without a file, so ``verify`` can report any such folder as planted."""
    for parent, _dirs, _files in os.walk(folder, topdown=False):
        if Path(parent) != folder:
            with contextlib.suppress(OSError):
                os.rmdir(parent)


def _make_read_only(folder: Path, manifest: Manifest) -> None:
    """Every committed file read-only: files written by this transaction already are; this
    covers the metadata and files of a home made before files were written read-only."""
    for entry in manifest.files:
        path = folder / entry.path
        if path.stat().st_mode & 0o777 != _READ_ONLY:
            path.chmod(_READ_ONLY)


class Transaction:
    """A staging folder: scan tables as they stand, write new files, never rewrite in place."""

    def __init__(self, path: Path, run_id: str, base: Generation | None):
        self.path = path
        self.run_id = run_id
        self.base = base
        self.changed = False
        self.committed: Generation | None = None
        self.written: dict[str, FileEntry] = {}
        """Files this transaction wrote, described as written (so a commit hashes only these)."""
        self.removed: set[str] = set()
        """Files of the base this transaction unlinked on purpose."""
        self.written_stats: dict[str, Written] = {}
        self.manifest: Manifest | None = None
        """The manifest this transaction committed, once it has."""
        """The inode, size and modification time of each file of ``written`` as it was hashed."""

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
        child.written = dict(self.written)
        child.removed = set(self.removed)
        child.written_stats = dict(self.written_stats)
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
            self.written = child.written
            self.removed = child.removed
            self.written_stats = child.written_stats
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
        """Every partition named in ``values`` becomes exactly the rows of ``frame`` in it. A
        partition that already holds exactly those rows (in any order) is left as it is, so
        re-scoring unchanged data changes nothing and commits no new generation."""
        import polars as pl

        texts = {_partition_text(value) for value in values}
        parts = {
            _partition_text(key): part
            for (key,), part in frame.partition_by(partition_by, as_dict=True).items()
        }
        changed = []
        for text in sorted(texts):
            folder = self.table_path(table) / f"{partition_by}={text}"
            existing = sorted(folder.glob("*.parquet")) if folder.exists() else []
            wanted = parts.get(text, frame.clear()).drop(partition_by)
            if _holds_exactly(existing, wanted):
                continue
            changed.append(text)
            if folder.exists():
                self._unlink_files(existing)
                with contextlib.suppress(OSError):
                    folder.rmdir()
            self.changed = True
        rewritten = [parts[text] for text in changed if text in parts]
        keep = pl.concat(rewritten) if rewritten else frame.clear()
        return self.append(table, keep, partition_by=partition_by)

    def _unlink_files(self, files: Sequence[Path]) -> None:
        for file in files:
            file.unlink()
            self.removed.add(file.relative_to(self.path).as_posix())
        if files:
            self.changed = True

    def _write(self, target: Path, frame: pl.DataFrame) -> Path:
        """Write once: a temporary file, made read-only, described, renamed into place."""
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        frame.write_parquet(temporary, compression="zstd", statistics=True)
        temporary.chmod(_READ_ONLY)
        entry = self._describe(temporary, target, frame.height)
        os.replace(temporary, target)
        self.written[entry.path] = entry
        self.changed = True
        return target

    def record_written(self, path: Path, rows: int | None) -> None:
        """Describe a file written into the staging folder by other means (the metadata)."""
        path.chmod(_READ_ONLY)
        entry = self._describe(path, path, rows)
        self.written[entry.path] = entry

    def _describe(self, written: Path, target: Path, rows: int | None) -> FileEntry:
        relative = target.relative_to(self.path).as_posix()
        before = os.lstat(written)
        entry = FileEntry(relative, file_sha256(written), before.st_size, rows)
        after = os.lstat(written)
        self.written_stats.pop(relative, None)
        if written_signature(before) == written_signature(after):
            self.written_stats[relative] = written_signature(after)
        return entry


def _holds_exactly(files: Sequence[Path], wanted: pl.DataFrame) -> bool:
    """Whether ``files`` hold exactly the rows of ``wanted``, as a multiset (order aside), with
    its schema: compared row by row after sorting both by a row hash, so a hash collision can
    only make two equal partitions look different (and be rewritten), never the reverse."""
    import polars as pl

    if not files:
        return wanted.height == 0
    try:
        stored = pl.concat([pl.read_parquet(f) for f in files], how="vertical")
    except (pl.exceptions.PolarsError, OSError):
        return False
    if stored.schema != wanted.schema or stored.height != wanted.height:
        return False

    def ordered(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(_row_hash=frame.hash_rows(seed=0)).sort("_row_hash")

    return ordered(stored).equals(ordered(wanted))


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
            if name in (GENERATION_META, MANIFEST_NAME, SIGNATURE_NAME):
                continue
            os.link(Path(folder) / name, target / relative / name)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
