"""How access-audit fails: one exception type for what a user can fix, and one line for everything.

- `AccessAuditError` (bad files, options, settings, a busy home): one line, exit code 2.
- `StorageError`, a subclass: the machine refused a write (disk full, quota, permissions, a
  read-only file system): one line naming the problem and what was being written, exit code 1.
- Anything else is a bug: one line naming the exception type and the file its full traceback was
  written to (owner-only), exit code 1.

Messages and run records never carry values from the data: `mask_value` and `redact_quoted` are
the shared helpers for showing a personal value or an engine's message that may quote one.
"""

from __future__ import annotations

import errno
import os
import re
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_FAILURE = 1


class AccessAuditError(Exception):
    """An error the CLI reports as one line and a non-zero exit code, never a traceback."""

    exit_code = EXIT_USER_ERROR


class MissingColumnError(AccessAuditError):
    """A file lacks a required column: the whole file, and so its drop, is unusable."""

    def __init__(self, file: str, column: str, table: str) -> None:
        super().__init__(f"{file}: required column '{column}' of table '{table}' is missing")
        self.file = file
        self.column = column
        self.table = table


class WorkspaceBusyError(AccessAuditError):
    """Another access-audit process holds the home's write lock."""


class InputError(AccessAuditError):
    """A value the user gave was refused, worded by where they gave it.

    The template's placeholders that are not among ``values`` name inputs: by default as the
    command line's options (``{due}`` reads ``--due``), or, with ``worded(labels)``, as another
    medium names them (the review page's form labels). Values are substituted as text, never
    read as a template, so a hostile value cannot name an input."""

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = values
        super().__init__(self.worded({}))

    def worded(self, labels: Mapping[str, str]) -> str:
        return self.template.format_map(_InputNames(self.values, labels))


class _InputNames(dict[str, object]):
    """``values``, and any other name as its label (else as a command-line option)."""

    def __init__(self, values: Mapping[str, object], labels: Mapping[str, str]) -> None:
        super().__init__(values)
        self.labels = labels

    def __missing__(self, name: str) -> str:
        return self.labels.get(name, "--" + name.replace("_", "-"))


class UnknownDropError(AccessAuditError):
    """A drop was named that was never loaded: the message names the loaded ones, if few."""

    NAMED_AT_MOST = 8

    def __init__(self, drop_id: str, loaded: list[str]) -> None:
        if not loaded:
            known = "no drop is loaded yet"
        elif len(loaded) <= self.NAMED_AT_MOST:
            known = "loaded: " + ", ".join(loaded)
        else:
            known = f"{len(loaded)} drops are loaded, {loaded[0]} to {loaded[-1]}"
        super().__init__(f"no drop '{drop_id}' was loaded ({known})")
        self.drop_id = drop_id


class StorageError(AccessAuditError):
    """The machine refused a write: nothing was committed, and the next run cleans up."""

    exit_code = EXIT_FAILURE


class CommittedButIncompleteError(AccessAuditError):
    """The stores were committed whole, but a step after the commit failed (the analysts'
    database could not be rebuilt, the run record could not be written): the message says
    which generation was committed and what is left to do. Exit code 1."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        """The run record's ``outcome``, e.g. ``committed_database_stale``."""


# -- recognising the machine's refusals -----------------------------------------------------------
_PROBLEMS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error",
}
# The engines (polars, DuckDB) report the OS error in their own exception types' text.
_PROBLEM_TEXTS = {
    "no space left on device": errno.ENOSPC,
    "os error 28": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "os error 122": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "os error 30": errno.EROFS,
}


def storage_problem(exc: BaseException) -> str | None:
    """'no space left on device' (or quota, read-only, permissions) if the machine refused an
    operation, from an OSError or an engine's error; None for anything else."""
    if isinstance(exc, OSError) and exc.errno in _PROBLEMS:
        return _PROBLEMS[exc.errno]
    if isinstance(exc, OSError | RuntimeError) or _from_an_engine(exc):
        text = str(exc).lower()
        for needle, code in _PROBLEM_TEXTS.items():
            if needle in text:
                return _PROBLEMS[code]
    return None


def storage_error(exc: BaseException, doing: str) -> StorageError | None:
    """A StorageError 'no space left on device while <doing>' for a refused write, else None."""
    problem = storage_problem(exc)
    if problem is None:
        return None
    return StorageError(f"{problem} while {doing}")


# -- bugs -----------------------------------------------------------------------------------------
TRACEBACK_SUFFIX = ".traceback.txt"


def write_traceback(exc: BaseException, folder: Path) -> Path:
    """The full traceback in an owner-only file under ``folder``; written once per exception."""
    existing = getattr(exc, "traceback_file", None)
    if isinstance(existing, Path):
        return existing
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"crash-{stamp}-{os.getpid()}{TRACEBACK_SUFFIX}"
    text = "".join(traceback.format_exception(exc))
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    exc.traceback_file = path  # type: ignore[attr-defined]
    return path


def internal_error_line(exc: BaseException, traceback_file: Path | None) -> str:
    """One line for a bug: its type (never its message, which may quote data) and where the
    traceback is."""
    where = f"; the full traceback is in {traceback_file}" if traceback_file else ""
    return f"internal error ({type(exc).__name__}){where}; please report it"


def failure_line(exc: BaseException, traceback_folder: Path | None = None) -> str:
    """What a run record and the terminal say about any failure, in one line without data."""
    if isinstance(exc, AccessAuditError):
        return redact_quoted(str(exc)) if _from_an_engine(exc.__cause__) else one_line(str(exc))
    problem = storage_problem(exc)
    if problem is not None:
        target = getattr(exc, "filename", None)
        return f"{problem} while writing {target}" if target else problem
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    path = None
    if traceback_folder is not None:
        try:
            path = write_traceback(exc, traceback_folder)
        except OSError:
            path = None  # the disk that failed may be the one we would write it to
    return internal_error_line(exc, path)


_ENGINES = ("polars", "duckdb", "_duckdb", "pyarrow")


def _from_an_engine(exc: BaseException | None) -> bool:
    """An engine's message may quote the value it choked on, e.g. "at character 0 ('S')"."""
    return exc is not None and type(exc).__module__.split(".")[0] in _ENGINES


def one_line(text: str) -> str:
    return " ".join(text.split())


# -- personal values ------------------------------------------------------------------------------
def mask_value(value: object) -> str:
    """A personal value as it may appear in a message: its first character and its length,
    e.g. 'S… (5 characters)'. Empty and one-character values show nothing of themselves."""
    text = "" if value is None else str(value)
    if len(text) <= 1:
        return f"'…' ({len(text)} character{'s' if len(text) != 1 else ''})"
    return f"'{text[0]}…' ({len(text)} characters)"


_QUOTED = re.compile(r"""'[^'\n]*'|"[^"\n]*"|`[^`\n]*`""")


def redact_quoted(message: str) -> str:
    """An engine's message with every quoted fragment (where engines put the offending value)
    replaced by '…', on one line."""
    return one_line(_QUOTED.sub("'…'", message))
