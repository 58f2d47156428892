"""Writing an evidence pack: the I/O edge of ``access-audit evidence``.

A pack is a folder of owner-only files — ``evidence.html`` and ``evidence.pdf`` (printed from it by
headless Chromium), one CSV per table (``accesses.csv``, ``flags.csv``, ``shifts.csv``,
``assignments.csv``, ``training.csv``, ``reviews.csv``, ``users.csv``; ``case_history.csv`` when a
case id was exported), ``manifest.json`` (every other file's SHA-256 and size, the flags and cases,
the verified store head and the review, view and case log heads) and
``SHA256SUMS`` (every file, the manifest included, for ``sha256sum -c``).

It is built in a hidden folder beside the target and renamed into place only when complete, so a
failure (Chromium missing or crashing, a full disk, a kill) never leaves half a pack: the target
is either absent or whole. A target that exists and is not an empty folder is refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from access_audit.errors import AccessAuditError, storage_problem
from access_audit.escape import csv_text
from access_audit.evidence.page import Provenance, render_page
from access_audit.evidence.scope import EvidenceTables
from access_audit.integrity import file_sha256
from access_audit.private_files import FILE_MODE, FOLDER_MODE

PAGE = "evidence.html"
PDF = "evidence.pdf"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
CASE_HISTORY = "case_history.csv"
"""The case log's assignments and decisions on the cases exported (only when a case id was)."""
FORMAT = "access-audit evidence pack 1"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
PDF_TIMEOUT_SECONDS = 180
# The staging folder's name does not repeat the target's: a long but legal --output name would
# otherwise make it too long for the file system.
_STAGING = re.compile(r"^\.evidence-(?P<pid>\d+)\.tmp$")


class ChromiumMissingError(AccessAuditError):
    """The PDF needs headless Chromium, and there is none on the PATH."""


@dataclass(frozen=True)
class PackFile:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class EvidencePack:
    """What ``Workspace.evidence`` wrote."""

    path: Path
    files: list[PackFile]
    flag_ids: list[str]
    case_ids: list[str]
    """The cases asked for (their flags are ``flag_ids``); their history is ``case_history.csv``."""
    accesses: int
    reviews: int
    store_head: str | None
    pdf: bool


def find_chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ChromiumMissingError(
        "the PDF is printed by headless Chromium, and none is installed: run `make browser` "
        "(Debian's chromium), or pass --no-pdf for a pack without its PDF"
    )


def refuse_existing(output: Path) -> None:
    """A pack never mixes with other files: the target must be absent or an empty folder."""
    if output.is_symlink() or (output.exists() and not output.is_dir()):
        raise AccessAuditError(f"{output}: exists and is not a folder; choose a new --output")
    if output.is_dir() and any(output.iterdir()):
        raise AccessAuditError(f"{output}: the folder is not empty; choose a new --output")
    if not output.parent.is_dir():
        raise AccessAuditError(f"{output.parent}: no such folder")


@contextlib.contextmanager
def staged_pack(output: Path) -> Iterator[Path]:
    """An owner-only hidden folder beside ``output`` to build the pack in; renamed to ``output``
    when the block succeeds, removed when it fails. Folders left by a killed run are removed."""
    refuse_existing(output)
    _remove_dead_staging(output.parent)
    staging = output.parent / f".evidence-{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(mode=FOLDER_MODE)
    except OSError as exc:
        if storage_problem(exc) is not None:  # a full or read-only disk: reported as such
            raise
        raise AccessAuditError(
            f"{output.parent}: a pack cannot be written here ({exc.strerror})"
        ) from None
    try:
        yield staging
        for path in staging.iterdir():
            path.chmod(FILE_MODE)
            _fsync(path)
        staging.chmod(FOLDER_MODE)
        _fsync(staging)
        _publish(staging, output)
        _fsync(output.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _publish(staging: Path, output: Path) -> None:
    """Rename the finished pack into place; an empty target folder is replaced, anything else
    (a folder filled meanwhile) refused."""
    try:
        os.rename(staging, output)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise AccessAuditError(
                f"{output}: something was written there meanwhile; choose a new --output"
            ) from None
        raise


def _fsync(path: Path) -> None:
    """Flush a file's or folder's contents to disk: a pack renamed into place is whole even
    after a power cut."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _remove_dead_staging(folder: Path) -> None:
    from access_audit.debris import process_is_running

    for entry in folder.iterdir():
        match = _STAGING.match(entry.name)
        if match and entry.is_dir() and not process_is_running(int(match["pid"])):
            shutil.rmtree(entry, ignore_errors=True)


def _csv(frame: pl.DataFrame) -> str:
    """Every cell quoted, formulas neutralised (``escape.csv_text``); booleans and numbers as
    text so they are never mistaken for formulas either."""
    return csv_text(frame.with_columns(pl.all().cast(pl.String)))


def _write(folder: Path, name: str, text: str) -> None:
    handle = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
        out.write(text)


def print_pdf(page: Path, pdf: Path, chromium: str) -> None:
    """Print ``page`` to ``pdf`` with headless Chromium (a throwaway profile, no sandbox: the page
    is our own, escaped and script-free)."""
    with tempfile.TemporaryDirectory(prefix="access-audit-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                timeout=PDF_TIMEOUT_SECONDS,
                check=False,
                env={**os.environ, "HOME": profile},
            )
        except subprocess.TimeoutExpired:
            raise AccessAuditError(
                f"chromium did not print the PDF within {PDF_TIMEOUT_SECONDS}s; no pack written"
            ) from None
    if result.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        how = _how_it_ended(result.returncode)
        raise AccessAuditError(f"chromium could not print the PDF ({how}); no pack written")


def _how_it_ended(returncode: int) -> str:
    """Chromium's end in words: a signal by name (a kill for memory is SIGKILL), an exit code,
    or an exit 0 with no PDF (a page renderer that crashed or was killed, e.g. out of memory)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = " (out of memory?)" if -returncode == signal.SIGKILL else ""
        return f"killed by {name}{why}"
    if returncode > 0:
        return f"exit {returncode}"
    return "it exited without a PDF: its page renderer crashed or was killed, e.g. out of memory"


TABLE_FILES = {
    "flags.csv": "flags",
    "users.csv": "users",
    "accesses.csv": "accesses",
    "shifts.csv": "shifts",
    "assignments.csv": "assignments",
    "training.csv": "training",
    "apsp_training.csv": "apsp",
    "reviews.csv": "reviews",
}


def write_pack_files(
    folder: Path,
    tables: EvidenceTables,
    provenance: Provenance,
    chromium: str | None,
    *,
    page_rows: int,
) -> list[PackFile]:
    """Write every file of the pack into ``folder`` (``chromium`` None: no PDF); the manifest
    and checksums last; the page lists ``page_rows`` accesses at most (the CSVs every one).
    Returns every file with its SHA-256, the manifest included."""
    for name, table in TABLE_FILES.items():
        _write(folder, name, _csv(getattr(tables, table)))
    counts = {
        "flags": tables.flags.height,
        "accesses": tables.accesses.height,
        "shifts": tables.shifts.height,
        "assignments": tables.assignments.height,
        "reviews": tables.reviews.height,
    }
    if tables.case_history is not None:
        _write(folder, CASE_HISTORY, _csv(tables.case_history))
        counts["case_events"] = tables.case_history.height
    _write(folder, PAGE, render_page(tables, provenance, page_rows))
    if chromium is not None:
        print_pdf(folder / PAGE, folder / PDF, chromium)
    files = [_describe(folder / name) for name in sorted(p.name for p in folder.iterdir())]
    manifest = {
        "format": FORMAT,
        **provenance.as_json(),
        "counts": counts,
        "files": [{"name": f.name, "sha256": f.sha256, "bytes": f.bytes} for f in files],
    }
    _write(folder, MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=True) + "\n")
    files.append(_describe(folder / MANIFEST))
    _write(folder, SUMS, "".join(f"{f.sha256}  {f.name}\n" for f in files))
    return files


def _describe(path: Path) -> PackFile:
    return PackFile(path.name, file_sha256(path), path.stat().st_size)
