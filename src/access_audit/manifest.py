"""Generation manifests: every file of a generation with its SHA-256, size and row count, chained.

Each committed generation holds ``_manifest.json``: its number, the head hash of the previous
generation's manifest (``GENESIS`` for the first one, or for the first made on a home written by a
version without manifests) and one entry per file. A generation's *head* is
``link_hash(previous, manifest bytes)``, so changing any file, any manifest or the order of
generations changes every later head, as in git or Certificate Transparency. ``CURRENT`` records
the head of the current generation beside its name.

Only a full re-hash is the truth about a file. ``quick`` checks sizes and Parquet row counts (read
from the files' footers) and catches a rewritten partition with fewer rows, a deleted or added file,
but not a same-size, same-row-count swap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from access_audit.errors import AccessAuditError
from access_audit.integrity import GENESIS, ChainCheck, file_sha256, link_hash

MANIFEST_NAME = "_manifest.json"
SIGNATURE_NAME = "_head.sig"
"""The optional signature over the generation's head (``signing.py``): written after the
manifest, so not listed in it."""
MANIFEST_FORMAT = 1

CheckMode = Literal["full", "quick"]


class ManifestError(AccessAuditError):
    """A manifest that cannot be read: the store is damaged."""


@dataclass(frozen=True)
class FileEntry:
    """One file of a generation as committed."""

    path: str
    """Relative to the generation folder, with forward slashes."""
    sha256: str
    size: int
    rows: int | None
    """Rows in a Parquet file (from its footer); None for other files."""

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "rows": self.rows}


@dataclass(frozen=True)
class Manifest:
    generation: int
    previous: str
    files: tuple[FileEntry, ...]

    def to_bytes(self) -> bytes:
        """Canonical bytes: fixed key order, files sorted by path, one file a line (diffable)."""
        lines = [
            json.dumps(entry.as_json(), sort_keys=True, ensure_ascii=True)
            for entry in sorted(self.files, key=lambda e: e.path)
        ]
        body = (
            "{"
            f'"format": {MANIFEST_FORMAT}, "generation": {self.generation}, '
            f'"previous": {json.dumps(self.previous)}, "files": [\n' + ",\n".join(lines) + "\n]}\n"
        )
        return body.encode("ascii")

    def by_path(self) -> dict[str, FileEntry]:
        return {entry.path: entry for entry in self.files}

    def head(self) -> str:
        """This link's hash: over the previous head and these bytes."""
        return link_hash(self.previous, self.to_bytes())


def parse_manifest(data: bytes, where: str) -> Manifest:
    """The manifest in ``data``; ManifestError naming ``where`` if it is not one."""
    try:
        raw = json.loads(data.decode("ascii"))
        files = tuple(
            FileEntry(
                path=str(item["path"]),
                sha256=str(item["sha256"]),
                size=int(item["size"]),
                rows=None if item["rows"] is None else int(item["rows"]),
            )
            for item in raw["files"]
        )
        manifest = Manifest(int(raw["generation"]), str(raw["previous"]), files)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ManifestError(f"{where}: not a readable manifest") from None
    if raw.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{where}: unknown manifest format {raw.get('format')!r}")
    return manifest


def read_manifest(folder: Path) -> tuple[Manifest, str] | None:
    """The manifest of a generation folder and its head hash; None if it has none."""
    path = folder / MANIFEST_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    manifest = parse_manifest(data, f"{folder.name}/{MANIFEST_NAME}")
    if manifest.to_bytes() != data:
        raise ManifestError(f"{folder.name}/{MANIFEST_NAME}: not in canonical form (edited)")
    return manifest, manifest.head()


def write_manifest(folder: Path, manifest: Manifest) -> str:
    """Write the manifest read-only into ``folder`` (before it is committed); its head hash."""
    path = folder / MANIFEST_NAME
    data = manifest.to_bytes()
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o400)
    return manifest.head()


def parquet_rows(path: Path) -> int:
    """Row count from a Parquet file's footer (no data pages are read)."""
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid, a ValueError
        raise ManifestError(
            f"{path.name}: not a readable Parquet file ({type(exc).__name__})"
        ) from None


def describe_file(path: Path, relative: str) -> FileEntry:
    """Hash, size and row count of a file as it stands on disk."""
    rows = parquet_rows(path) if path.suffix == ".parquet" else None
    return FileEntry(relative, file_sha256(path), path.stat().st_size, rows)


def generation_files(folder: Path) -> dict[str, Path]:
    """Every regular file in a generation folder but its manifest and signature, by relative
    path. Symbolic links are never followed (see ``generation_entries`` for what else is there)."""
    return generation_entries(folder)[0]


def generation_entries(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The regular files of a generation folder (as ``generation_files``), and every other entry
    in it, by relative path, with what it is: a symbolic link (to a file or a folder), a FIFO,
    socket or device, or a folder holding no file. A committed generation holds none of these,
    and a reader must never meet one: ``pl.scan_parquet`` and DuckDB follow a symlinked folder
    that ``os.walk`` skips, so a file planted through one would be read but never checked."""
    files: dict[str, Path] = {}
    strays: dict[str, str] = {}

    def visit(directory: Path, prefix: str) -> bool:
        holds_a_file = False
        with os.scandir(directory) as entries:
            for entry in entries:
                relative = prefix + entry.name
                kind = _stray_kind(entry)
                if kind is None and entry.is_dir(follow_symlinks=False):
                    if visit(Path(entry.path), relative + "/"):
                        holds_a_file = True
                    elif relative not in strays:
                        strays[relative] = "a folder holding no file"
                elif kind is None:
                    holds_a_file = True
                    if relative not in (MANIFEST_NAME, SIGNATURE_NAME):
                        files[relative] = Path(entry.path)
                else:
                    strays[relative] = kind
        return holds_a_file

    visit(folder, "")
    return files, strays


def _stray_kind(entry: os.DirEntry[str]) -> str | None:
    """What a directory entry is if it is neither a regular file nor a real folder."""
    if entry.is_symlink():
        return "a symbolic link"
    if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
        return None
    return "not a regular file (a FIFO, socket or device)"


def stray_problem(folder: Path, shown: str) -> str | None:
    """One line naming the first entry under ``folder`` that is not a regular file or a folder
    holding one (``generation_entries``), shown as ``shown/<path>``; None if there is none."""
    strays = generation_entries(folder)[1]
    if not strays:
        return None
    first = min(strays)
    return f"{shown}/{printable(first)}: {strays[first]}, not in the manifest"


def build_manifest(
    folder: Path,
    number: int,
    previous: str,
    written: Mapping[str, FileEntry],
    removed: Set[str],
    parent: tuple[str, Manifest] | None,
) -> Manifest:
    """The manifest of a staged generation built on ``parent`` (its name and manifest).

    Files this transaction wrote were described as they were written; files hard-linked from the
    parent keep the parent's entry (a carried entry still describes the original bytes, so an
    edit made in place is caught by the next check). Any other file, and any file of the parent
    missing but not removed by the transaction, was changed behind the store's back: raise, so a
    commit never launders it into the chain. Only on a home made before manifests (no parent
    manifest) is every file hashed now."""
    files, strays = generation_entries(folder)
    if strays:
        first = min(strays)
        where = parent[0] if parent is not None else folder.name
        raise ManifestError(f"{where}/{printable(first)}: {strays[first]}, not in the manifest")
    if parent is None:
        inherited: dict[str, FileEntry] = {}
    else:
        inherited = parent[1].by_path()
        _refuse_unaccounted(parent[0], files.keys(), written.keys(), removed, inherited.keys())
    entries = []
    for relative, path in sorted(files.items()):
        entry = written.get(relative) or inherited.get(relative)
        entries.append(entry if entry is not None else describe_file(path, relative))
    return Manifest(number, previous, tuple(entries))


def _refuse_unaccounted(
    parent: str,
    present: Set[str],
    written: Set[str],
    removed: Set[str],
    inherited: Set[str],
) -> None:
    added = sorted(present - written - inherited)
    if added:
        raise ManifestError(
            f"{parent}/{printable(added[0])}: not in the manifest (added after the commit)"
        )
    missing = sorted(inherited - present - removed)
    if missing:
        raise ManifestError(f"{parent}/{printable(missing[0])}: missing (the manifest lists it)")


class Vouching(Protocol):
    """What ``FileCheck`` asks of a record of files known to match their entry
    (``verified.VerifiedFiles``)."""

    def vouches(self, stat: os.stat_result, entry: FileEntry, mode: CheckMode) -> bool: ...

    def remember(
        self, before: os.stat_result, after: os.stat_result, sha256: str | None, rows: int | None
    ) -> None: ...


@dataclass
class FileCheck:
    """Compares files on disk with manifest entries. Each inode is read at most once, so a file
    hard-linked into every kept generation is hashed once. With ``trusted``, a file whose inode
    it vouches for (unchanged since its bytes were last checked: ``verified.py``) is only stated,
    not read, and a file read and found as its entry says is vouched for from then on."""

    mode: CheckMode
    files_read: int = 0
    bytes_read: int = 0
    trusted: Vouching | None = None
    files_vouched: int = 0

    def __post_init__(self) -> None:
        self._seen: dict[tuple[int, int], _OnDisk] = {}

    def first_problem(self, folder: Path, manifest: Manifest) -> str | None:
        """One line naming the first file (by path) that differs from the manifest."""
        if folder.is_symlink():
            return f"{folder.name}: a symbolic link, not a generation folder"
        expected = manifest.by_path()
        actual, strays = generation_entries(folder)
        for relative in sorted(expected.keys() | actual.keys() | strays.keys()):
            problem = None
            if relative in strays:
                problem = f"{strays[relative]}, not in the manifest"
            elif relative not in actual:
                problem = "missing (the manifest lists it)"
            elif relative not in expected:
                problem = "not in the manifest (added after the commit)"
            else:
                problem = self._compare(actual[relative], expected[relative])
            if problem is not None:
                return f"{folder.name}/{printable(relative)}: {problem}"
        return None

    def _compare(self, path: Path, entry: FileEntry) -> str | None:
        stat = os.lstat(path)
        if self.trusted is not None and self.trusted.vouches(stat, entry, self.mode):
            self.files_vouched += 1
            return None
        key = (stat.st_dev, stat.st_ino)
        if key not in self._seen:
            self._seen[key] = self._read(path, entry)
        found = self._seen[key]
        if entry.rows is not None and found.rows is None:
            return "not a readable Parquet file"
        if entry.rows is not None and found.rows != entry.rows:
            return f"{found.rows} rows, the manifest says {entry.rows}"
        if stat.st_size != entry.size:
            return f"{stat.st_size} bytes, the manifest says {entry.size}"
        if found.sha256 is not None and found.sha256 != entry.sha256:
            return "content differs from the manifest (SHA-256)"
        if self.trusted is not None:
            self.trusted.remember(stat, os.lstat(path), found.sha256, entry.rows)
        return None

    def _read(self, path: Path, entry: FileEntry) -> _OnDisk:
        self.files_read += 1
        self.bytes_read += path.stat().st_size
        rows = None
        if entry.rows is not None:
            try:
                rows = parquet_rows(path)
            except ManifestError:
                rows = None
        return _OnDisk(file_sha256(path) if self.mode == "full" else None, rows)


@dataclass(frozen=True)
class _OnDisk:
    sha256: str | None
    rows: int | None


def printable(text: str) -> str:
    """A path from disk, safe to show on one terminal line: control characters escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


@dataclass(frozen=True)
class StoreVerification:
    """The store's chain as ``verify`` walked it."""

    check: ChainCheck
    starts_at: int | None
    """The first generation the chain covers (None: no manifest yet)."""
    note: str | None
    """Where the chain starts and why, when that is not generation 1."""
    files_read: int
    bytes_read: int
    heads: dict[int, str] = field(default_factory=dict)
    """Each walked generation's head hash, by number."""
    files_vouched: int = 0
    """Files only stated, not read, because their bytes were known to match (``verified.py``)."""

    def failing(self, problem: str | None) -> StoreVerification:
        """This walk, broken with ``problem`` if it was whole and ``problem`` is not None."""
        if problem is None or not self.check.ok:
            return self
        return replace(self, check=replace(self.check, ok=False, problem=problem))

    def compared_with(self, published: str) -> StoreVerification:
        """This walk, broken unless ``published`` (``g000012:<hex>``, a head copied somewhere
        the home's owner cannot write) is the head of that generation in this chain."""
        return self.failing(published_head_problem(self.heads, published))


def published_head_problem(heads: Mapping[int, str], published: str) -> str | None:
    name, _, expected = published.strip().partition(":")
    number = _generation_number(name)
    if number is None or len(expected) != 64:
        raise AccessAuditError(f"--published-head: expected g000012:<64 hex digits>, not {name!r}")
    if number not in heads:
        return f"{generation_name(number)}: not kept, so the published head cannot be compared"
    if heads[number] != expected.lower():
        return f"{generation_name(number)}: its head differs from the published one (rewritten)"
    return None


def _generation_number(name: str) -> int | None:
    digits = name[1:] if name[:1] == "g" else name
    return int(digits) if digits.isdigit() else None


@dataclass
class _Walk:
    checker: FileCheck
    walked: int = 0
    head: str | None = None
    starts_at: int | None = None
    note: str | None = None
    heads: dict[int, str] = field(default_factory=dict)

    def result(self, problem: str | None = None) -> StoreVerification:
        return StoreVerification(
            ChainCheck("store", problem is None, self.walked, self.head, problem),
            self.starts_at,
            self.note,
            self.checker.files_read,
            self.checker.bytes_read,
            self.heads,
            self.checker.files_vouched,
        )


def walk_chain(
    generations: Sequence[tuple[int, Path]],
    recorded_head: str | None,
    mode: CheckMode,
    files_from: int = 0,
    trusted: Vouching | None = None,
) -> StoreVerification:
    """Walk committed generations oldest first (the last is the current one): each manifest
    readable, numbered right and chained to the one before, the last one's head as ``CURRENT``
    records it; then the files of every generation from ``files_from`` on, newest first, as
    their manifest says (``trusted``: see ``FileCheck``). Stops at the first problem, named in
    one line."""
    walk = _Walk(FileCheck(mode, trusted=trusted))
    manifests: list[tuple[Path, Manifest]] = []
    unmanifested: int | None = None
    for index, (number, folder) in enumerate(generations):
        if index and number != generations[index - 1][0] + 1:
            return walk.result(f"{generation_name(number - 1)}: missing from the chain")
        try:
            loaded = read_manifest(folder)
        except ManifestError as exc:
            return walk.result(str(exc))
        if loaded is None:
            if walk.starts_at is not None:
                return walk.result(f"{folder.name}/{MANIFEST_NAME}: missing")
            unmanifested = number
            continue
        manifest, head = loaded
        problem = _link_problem(walk, folder, manifest, number, unmanifested)
        if problem is not None:
            return walk.result(problem)
        manifests.append((folder, manifest))
        walk.head = head
        walk.heads[number] = head
        walk.walked += 1
    problem = _head_problem(walk, generations, recorded_head)
    for folder, manifest in reversed(manifests):
        if problem is None and manifest.generation >= files_from:
            problem = walk.checker.first_problem(folder, manifest)
    return walk.result(problem)


def _link_problem(
    walk: _Walk, folder: Path, manifest: Manifest, number: int, unmanifested: int | None
) -> str | None:
    where = f"{folder.name}/{MANIFEST_NAME}"
    if manifest.generation != number:
        return f"{where}: names generation {manifest.generation}"
    if walk.starts_at is not None:
        if manifest.previous != walk.head:
            parent = generation_name(number - 1)
            return (
                f"{parent}/{MANIFEST_NAME}: changed since {folder.name} was committed "
                f"({where} records another hash for it)"
            )
        return None
    walk.starts_at = number
    if manifest.previous == GENESIS:
        if unmanifested is not None:
            walk.note = (
                f"the chain starts at {folder.name}: earlier generations were made by a "
                "version without manifests"
            )
        return None
    if unmanifested is not None:
        return (
            f"{generation_name(number - 1)}/{MANIFEST_NAME}: missing ({folder.name} chains to it)"
        )
    walk.note = f"the chain starts at {folder.name}: earlier generations were pruned"
    return None


def _head_problem(
    walk: _Walk, generations: Sequence[tuple[int, Path]], recorded_head: str | None
) -> str | None:
    if not generations:
        return None
    current = generation_name(generations[-1][0])
    if walk.starts_at is None:
        if recorded_head is not None:
            return f"{current}/{MANIFEST_NAME}: missing (CURRENT records a head)"
        walk.note = (
            f"{current} was made by a version without manifests: the chain starts at the "
            "next commit"
        )
        return None
    if recorded_head is None:
        return f"CURRENT: records no head hash, though {current} has a manifest"
    if recorded_head != walk.head:
        return f"CURRENT: the head it records differs from {current}/{MANIFEST_NAME}"
    return None


def generation_name(number: int) -> str:
    return f"g{number:06d}"
