"""Which committed files the pre-build check may leave unread: the files whose bytes this home's
own runs hashed (or wrote) and whose inode has not changed since.

The check before each transaction (``Store.check_current``) used to re-read every file of the
current generation (its SHA-256, or in quick mode its Parquet footer): 2,680 files and 630 MB on a
210-day backfill, before every drop, so a backfill was quadratic. It still lists every file (a
missing, added, symlinked or stray file is found by the listing, and a size by one ``lstat``), but
it reads only the files it cannot vouch for: those whose inode number, size, modification time or
change time (``st_ctime``) differ from what was recorded when their bytes were last compared with,
or written as, the entry the manifest holds for them.

Why the change time: writing a file, or renaming another over it, changes its modification time
and its change time; ``touch``/``os.utime`` can put the modification time back, but setting it
moves the change time to *now*, and no unprivileged process can set the change time. So a file
whose five stat fields still match was not written since it was hashed, unless the clock was set
back or someone with root forged the inode. Our own ``link``/``unlink`` calls also move the change
time (each transaction hard-links the generation into staging, and removes the staging folder or
prunes old generations), so a transaction ends by re-stating the current generation
(``settle``): a file whose size and modification time are unchanged since its bytes were checked
keeps its record with its new change time.

What that leaves, and why it is no weaker than before:

- A file tampered with *during* a transaction, after the check at its start, with its modification
  time put back, is not re-read by the next transaction (its new change time is taken as ours).
  ``verify`` still names it, and the new manifest can never bless it: a generation's manifest
  never describes a file it did not write; it carries the parent's entry forward, which still
  holds the original SHA-256, size and rows (``manifest.build_manifest``). Before, such a file was
  caught at the next transaction, but the transaction in which it was changed had already read it.
- The record is also kept in ``<store>/.verified`` (owner-only), so that a new process (each
  night's run) need not re-hash the whole generation. Someone able to rewrite it can make the
  check skip a file they changed; but anyone who can write in the store can already rewrite the
  current manifest and ``CURRENT`` so that the check passes, and the record, unlike such a rewrite,
  leaves the manifest intact, so ``verify`` (which never uses the record) names the file even
  without a signature or a published head. A record that does not name the current generation
  and its head, or cannot be read, is ignored.
- ``verify`` always reads every file.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat as stat_module
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from access_audit.manifest import CheckMode, FileEntry, Manifest

RECORD_NAME = ".verified"
RECORD_FORMAT = 1
RACY_NS = 50_000_000
"""A file modified less than this long before it is recorded is not vouched for: file times come
from a clock that ticks every few milliseconds, so a rewrite in the same tick would keep them."""

Signature = tuple[int, int, int, int, int]
"""``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)``."""
Written = tuple[int, int, int, int]
"""``(st_dev, st_ino, st_size, st_mtime_ns)`` of a file as this process wrote and hashed it."""


def signature(stat: os.stat_result) -> Signature:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def written_signature(stat: os.stat_result) -> Written:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class Vouched:
    """What is known about one inode's bytes, and the stat they were known under."""

    size: int
    mtime_ns: int
    ctime_ns: int
    sha256: str | None
    """The hash its bytes had (None: only the rows were read, a quick check)."""
    rows: int | None

    def covers(self, entry: FileEntry, mode: CheckMode) -> bool:
        """Whether what is known matches ``entry`` as far as a check in ``mode`` looks."""
        if self.size != entry.size or self.rows != entry.rows:
            return False
        return mode == "quick" or self.sha256 == entry.sha256

    def agrees(self, entry: FileEntry) -> bool:
        """Whether nothing known contradicts ``entry``."""
        return self.covers(entry, "quick") and self.sha256 in (None, entry.sha256)


class VerifiedFiles:
    """The inodes whose bytes are known to match their manifest entry, by ``(dev, ino)``."""

    def __init__(self) -> None:
        self._vouched: dict[tuple[int, int], Vouched] = {}
        self.loaded_for: tuple[str, str] | None = None
        """The generation name and head the persisted record was loaded for, if any."""

    def __len__(self) -> int:
        return len(self._vouched)

    def vouches(self, stat: os.stat_result, entry: FileEntry, mode: CheckMode) -> bool:
        """Whether a file with this ``lstat`` need not be read to match ``entry``."""
        known = self._vouched.get((stat.st_dev, stat.st_ino))
        return (
            known is not None
            and stat_module.S_ISREG(stat.st_mode)
            and (known.size, known.mtime_ns, known.ctime_ns)
            == (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
            and known.covers(entry, mode)
        )

    def remember(
        self, before: os.stat_result, after: os.stat_result, sha256: str | None, rows: int | None
    ) -> None:
        """A file was read and matched its entry: vouch for it if it did not change while it was
        read and was not modified just before (see ``RACY_NS``)."""
        if signature(before) != signature(after) or _too_fresh(after.st_mtime_ns):
            return
        self._vouched[(after.st_dev, after.st_ino)] = Vouched(
            after.st_size, after.st_mtime_ns, after.st_ctime_ns, sha256, rows
        )

    def forget(self) -> None:
        self._vouched.clear()

    def settle(self, folder: Path, manifest: Manifest, written: Mapping[str, Written]) -> None:
        """After a transaction's own links and unlinks: keep, with its new change time, every
        file of the current generation (``folder``) whose bytes were checked or written by this
        process and whose inode, size and modification time are unchanged; forget the rest."""
        settled: dict[tuple[int, int], Vouched] = {}
        base = os.fspath(folder)
        for entry in manifest.files:
            try:
                stat = os.lstat(os.path.join(base, entry.path))
            except OSError:
                continue
            key = (stat.st_dev, stat.st_ino)
            if not stat_module.S_ISREG(stat.st_mode) or _too_fresh(stat.st_mtime_ns):
                continue
            known = self._vouched.get(key)
            if known is not None and known.agrees(entry):
                if (known.size, known.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                    settled[key] = replace(known, ctime_ns=stat.st_ctime_ns)
            elif written.get(entry.path) == written_signature(stat):
                settled[key] = Vouched(
                    stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, entry.sha256, entry.rows
                )
        self._vouched = settled

    # -- the record kept between processes -------------------------------------------------------
    def save(self, root: Path, generation: str, head: str) -> None:
        """Write the record for ``generation`` (with its head) owner-only, atomically."""
        files = [
            [dev, ino, v.size, v.mtime_ns, v.ctime_ns, v.sha256, v.rows]
            for (dev, ino), v in sorted(self._vouched.items())
        ]
        body = {"format": RECORD_FORMAT, "generation": generation, "head": head, "files": files}
        path = root / RECORD_NAME
        temporary = path.with_name(f"{RECORD_NAME}.tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(json.dumps(body, separators=(",", ":")).encode("ascii"))
        os.replace(temporary, path)
        self.loaded_for = (generation, head)

    def load(self, root: Path, generation: str, head: str | None) -> None:
        """Take the record kept for ``generation`` with ``head``, once per generation; a record
        for another generation or head, or one that cannot be read, is ignored (every file is
        then read)."""
        if head is None or self.loaded_for == (generation, head):
            return
        self.loaded_for = (generation, head)
        self._vouched = _read_record(root / RECORD_NAME, generation, head)


def _read_record(path: Path, generation: str, head: str) -> dict[tuple[int, int], Vouched]:
    try:
        raw = json.loads(path.read_bytes().decode("ascii"))
        if raw["format"] != RECORD_FORMAT or [raw["generation"], raw["head"]] != [generation, head]:
            return {}
        return {
            (int(dev), int(ino)): Vouched(
                int(size),
                int(mtime),
                int(ctime),
                None if sha is None else str(sha),
                None if rows is None else int(rows),
            )
            for dev, ino, size, mtime, ctime, sha, rows in raw["files"]
        }
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return {}


def _too_fresh(mtime_ns: int) -> bool:
    return mtime_ns > time.time_ns() - RACY_NS
