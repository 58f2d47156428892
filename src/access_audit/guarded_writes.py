"""How the home's writers guard a write, shared by the workspace and the desk (cases) that writes
beside it: owner-only files, a refused write as one line, and no append onto a broken log.

Kept below ``workspace`` so the desk's modules never import the workspace (imports point one
way: the workspace uses the desk, not the reverse).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from access_audit.errors import AccessAuditError, storage_error
from access_audit.store import StoreDamagedError

if TYPE_CHECKING:
    from access_audit.ledger import Ledger


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Files and folders created inside the block are readable by their owner alone."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@contextlib.contextmanager
def writing(what: str) -> Iterator[None]:
    """A write the machine refuses (disk full, quota, read-only) becomes one StorageError line,
    'no space left on device while writing <what>'; other errors pass unchanged."""
    try:
        yield
    except AccessAuditError:
        raise
    except Exception as exc:
        translated = storage_error(exc, f"writing {what}")
        if translated is None:
            raise
        raise translated from exc


def require_intact(ledger: Ledger, consequence: str) -> None:
    """StoreDamagedError unless ``ledger``'s chain checks out (a torn last line aside, which the
    append moves away): nothing is appended onto a deleted, edited or reordered history. Call
    holding the ledger's lock."""
    from access_audit.ledger import verify_ledger

    check = verify_ledger(ledger.path, ledger.name, torn_tail_ok=True)
    if not check.ok:
        raise StoreDamagedError(
            f"the {check.name} log is broken ({check.problem}); {consequence}. Run "
            "`access-audit verify`, and restore the log from a backup"
        )
