"""Files written outside the home — generated drops, converted FHIR drops, reports, executed
notebooks — hold officers' ids and victims' details, so they are owner-only like the home itself.

A umask only governs files that do not exist yet: writing over an existing ``0644`` report would
keep it readable by everyone. So every such file is written to a temporary file created ``0600``
beside it, then renamed over it; a failed write leaves the old file as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from access_audit.errors import AccessAuditError

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> Path:
    """``path`` as an owner-only folder: made if missing (its missing parents too), and made
    owner-only if it is the user's own (a drop folder written before, with a looser mode)."""
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    if path.stat().st_uid == os.getuid():
        path.chmod(FOLDER_MODE)
    return path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A ``0600`` temporary path beside ``path`` to write into; renamed over ``path`` when the
    block succeeds, removed when it fails."""
    if not path.parent.is_dir():
        raise AccessAuditError(f"{path.parent}: no such folder")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # Renaming over a folder fails late; over a device, a pipe or a link (/dev/stdout) it
        # would replace that file with a report. Refuse before anything is written.
        raise AccessAuditError(
            f"{path}: not a regular file (a folder, device, pipe or link); give a file's path"
        )
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, FILE_MODE)  # a writer may have made the file anew
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_private_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (replacing it), owner-only."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path
