"""Append-only, hash-chained JSON Lines logs: where human decisions and the view log live.

Each line is one JSON object: the record's own fields plus ``prev`` (the previous line's hash, or
``GENESIS`` on the first line) and ``hash`` = ``integrity.link_hash(prev, canonical JSON of the
record)``. Deleting, editing, inserting or reordering a line breaks the chain at that line, and
``verify_ledger`` names it. (Removing lines from the *end* leaves a shorter valid chain: only a head
recorded elsewhere, ``ChainCheck.head``, shows that.)

Writers take an exclusive ``flock`` on a lock file beside the log (not the store's write lock, so
a review does not wait for the nightly job), write whole lines and ``fsync`` before returning.
A crash can leave a torn, unterminated last line: readers ignore it, ``verify_ledger`` reports it,
and the next append first moves it to ``<log>.torn`` and records the repair in the chain.

A hash chain is sequential by definition, so appending and verifying walk the lines one by one;
the logs hold decisions and views, not accesses, so they stay small.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from access_audit.errors import WorkspaceBusyError
from access_audit.integrity import GENESIS, ChainCheck, link_hash

CHAIN_FIELDS = ("prev", "hash")
REPAIR_FIELD = "repair"
"""A line recording a repair (a torn fragment quarantined) carries this key and no record fields."""
QUARANTINE_SUFFIX = ".torn"
_TAIL_CHUNK = 1 << 16


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """The bytes a line's hash covers: sorted keys, no spaces, ASCII (anything else escaped, so
    no character in a note can look like a line break to a line-oriented reader)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode("ascii")


def chained_line(previous: str, record: Mapping[str, Any]) -> tuple[bytes, str]:
    """One ledger line (newline-terminated) for ``record`` after ``previous``, and its hash."""
    body = {k: v for k, v in record.items() if k not in CHAIN_FIELDS}
    digest = link_hash(previous, canonical_json(body))
    return canonical_json({**body, "prev": previous, "hash": digest}) + b"\n", digest


def utc_text(moment: datetime) -> str:
    """A timestamp as the ledgers write it: ISO 8601, microseconds, UTC, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Ledger:
    """One append-only chained log file."""

    path: Path
    name: str
    """Which chain, as ``ChainCheck.name`` reports it: ``reviews``, ``flag_views``."""
    lock_timeout: float = 60.0

    @property
    def quarantine_path(self) -> Path:
        return self.path.with_name(self.path.name + QUARANTINE_SUFFIX)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    # -- reading -------------------------------------------------------------------------------
    def complete_bytes(self) -> bytes:
        """Every complete (newline-terminated) line; an unterminated last line is left out."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return b""
        return data[: data.rfind(b"\n") + 1]

    def verify(self) -> ChainCheck:
        return verify_ledger(self.path, self.name)

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this log's append lock; wait up to ``lock_timeout`` seconds for another writer."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.lock_timeout
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise WorkspaceBusyError(
                            f"another access-audit process is writing {self.path.name}; "
                            f"gave up after {self.lock_timeout:.0f}s"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(handle)

    def append(self, records: Sequence[Mapping[str, Any]]) -> str:
        """Chain ``records`` onto the log, durably; returns the new head hash."""
        with self.locked():
            return self.append_holding_lock(records)

    def ensure_exists(self) -> None:
        """Create the (empty) log, owner-only, so views over it can be defined before any line."""
        if self.path.exists():
            return
        with self.locked():
            self.create_holding_lock()

    def create_holding_lock(self) -> None:
        """``ensure_exists`` for a caller that already holds ``locked()``."""
        os.close(self._open_for_append())

    def _open_for_append(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        existed = self.path.exists()
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        if not existed:
            _fsync_folder(self.path.parent)
        return handle

    def append_holding_lock(self, records: Sequence[Mapping[str, Any]]) -> str:
        """``append`` for a caller that already holds ``locked()``."""
        handle = self._open_for_append()
        try:
            size = os.fstat(handle).st_size
            previous, torn_at = _tail(handle, size)
            lines: list[bytes] = []
            if torn_at < size:
                repair = self._quarantine(handle, torn_at, size)
                line, previous = chained_line(previous, repair)
                lines.append(line)
            for record in records:
                line, previous = chained_line(previous, record)
                lines.append(line)
            start = os.fstat(handle).st_size
            try:
                _write_all(handle, b"".join(lines))
                os.fsync(handle)
            except OSError:
                # A full disk may take some of the lines: cut the log back to where this append
                # began, so a batch (a case's decisions) is recorded whole or not at all.
                os.ftruncate(handle, start)
                os.fsync(handle)
                raise
            return previous
        finally:
            os.close(handle)

    def _quarantine(self, handle: int, torn_at: int, size: int) -> dict[str, Any]:
        """Move the unterminated fragment at ``torn_at`` to the quarantine file; the repair line."""
        fragment = os.pread(handle, size - torn_at, torn_at)
        now = utc_text(datetime.now(UTC))
        entry = {
            "quarantined_at": now,
            "ledger": self.path.name,
            "offset": torn_at,
            "sha256": hashlib.sha256(fragment).hexdigest(),
            "fragment_base64": base64.b64encode(fragment).decode("ascii"),
        }
        self._set_aside(entry)
        os.ftruncate(handle, torn_at)
        os.fsync(handle)
        return {
            REPAIR_FIELD: "torn_line",
            "repaired_at": now,
            "offset": torn_at,
            "bytes": len(fragment),
            "sha256": entry["sha256"],
            "moved_to": self.quarantine_path.name,
        }

    def rechain_legacy(self) -> int:
        """Chain a log written before logs were chained (no line has a hash): the same records,
        in order, rewritten as a chain; unreadable lines go to the quarantine file. Returns how
        many lines were chained (0 when there was nothing to do). Call under ``locked()``."""
        data = self.path.read_bytes() if self.path.exists() else b""
        parsed = [(raw, _json_object(raw)) for raw in data.split(b"\n") if raw.strip()]
        if not parsed or any(r is not None and "hash" in r for _, r in parsed):
            return 0
        chained: list[bytes] = []
        previous = GENESIS
        for raw, record in parsed:
            if record is None:
                self._quarantine_bytes(raw)
                continue
            line, previous = chained_line(previous, record)
            chained.append(line)
        temporary = self.path.with_name(f".{self.path.name}.rechain")
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(handle, b"".join(chained))
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, self.path)
        _fsync_folder(self.path.parent)
        return len(chained)

    def _quarantine_bytes(self, raw: bytes) -> None:
        self._set_aside(
            {
                "quarantined_at": utc_text(datetime.now(UTC)),
                "ledger": self.path.name,
                "sha256": hashlib.sha256(raw).hexdigest(),
                "fragment_base64": base64.b64encode(raw).decode("ascii"),
            }
        )

    def _set_aside(self, entry: Mapping[str, Any]) -> None:
        """Append one entry to the quarantine file, durably, before the log itself changes."""
        existed = self.quarantine_path.exists()
        handle = os.open(self.quarantine_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _write_all(handle, canonical_json(entry) + b"\n")
            os.fsync(handle)
        finally:
            os.close(handle)
        if not existed:
            _fsync_folder(self.path.parent)


def verify_ledger(path: Path, name: str, *, torn_tail_ok: bool = False) -> ChainCheck:
    """Walk a ledger and name its first broken line: deleted, inserted, reordered, edited or torn.
    A missing file is an empty, valid chain. ``torn_tail_ok`` accepts an unterminated last line
    (a write cut short by a full disk or a kill, which the next append moves aside): the jobs
    build on such a log; ``verify`` still reports it."""
    previous = GENESIS
    count = 0
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; missing is a valid empty chain
    except FileNotFoundError:
        return ChainCheck(name, True, 0, None)
    with handle:
        for number, raw in enumerate(handle, start=1):
            problem = _line_problem(raw, previous)
            if problem is not None and torn_tail_ok and not raw.endswith(b"\n"):
                break  # only the last line can lack its newline
            if problem is not None:
                head = previous if count else None
                return ChainCheck(name, False, count, head, f"{path.name} line {number}: {problem}")
            previous = json.loads(raw)["hash"]
            count += 1
    return ChainCheck(name, True, count, previous if count else None)


def _line_problem(raw: bytes, previous: str) -> str | None:
    if not raw.endswith(b"\n"):
        return "unterminated (a torn write); the next append moves it aside"
    entry = _json_object(raw)
    if entry is None:
        return "not a JSON object"
    if not isinstance(entry.get("prev"), str) or not isinstance(entry.get("hash"), str):
        return "not chained (no prev/hash)"
    if entry["prev"] != previous and previous == GENESIS:
        return "does not start the chain (a line before it was deleted)"
    if entry["prev"] != previous:
        return "does not follow the line before it (a line was deleted, inserted or reordered)"
    body = {k: v for k, v in entry.items() if k not in CHAIN_FIELDS}
    if link_hash(previous, canonical_json(body)) != entry["hash"]:
        return "its content does not match its hash (edited)"
    return None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _tail(handle: int, size: int) -> tuple[str, int]:
    """(hash to chain the next line onto, offset where an unterminated fragment starts or size).

    Reads backwards from the end only as far as the last complete line. A damaged last line
    does not stop appends: the chain continues from a hash of its bytes and ``verify`` names it."""
    buffer = b""
    position = size
    while position > 0:
        start = max(0, position - _TAIL_CHUNK)
        buffer = os.pread(handle, position - start, start) + buffer
        position = start
        if buffer.count(b"\n") >= 2:
            break
    end = buffer.rfind(b"\n") + 1
    torn_at = position + end
    complete = buffer[:end]
    if not complete:
        return GENESIS, torn_at
    last = complete[complete.rfind(b"\n", 0, len(complete) - 1) + 1 :]
    entry = _json_object(last)
    if entry is not None and isinstance(entry.get("hash"), str):
        return str(entry["hash"]), torn_at
    return link_hash(GENESIS, last), torn_at


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(handle, view)
        view = view[written:]


def _fsync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
