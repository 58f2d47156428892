"""The one exception type for errors a user can cause or fix (bad files, options, a busy home)."""

from __future__ import annotations


class AccessAuditError(Exception):
    """An error the CLI reports as one line and a non-zero exit code, never a traceback."""


class MissingColumnError(AccessAuditError):
    """A file lacks a required column: the whole file, and so its drop, is unusable."""

    def __init__(self, file: str, column: str, table: str) -> None:
        super().__init__(f"{file}: required column '{column}' of table '{table}' is missing")
        self.file = file
        self.column = column
        self.table = table


class WorkspaceBusyError(AccessAuditError):
    """Another access-audit process holds the home's write lock."""
