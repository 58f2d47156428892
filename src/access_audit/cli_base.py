"""What every command module shares: the exit codes, ``--home`` and the workspace it opens, the
consoles, one-line errors, ``--quiet`` and the progress bar.

``cli.py`` (the main commands) and ``case_cli.py`` (`access-audit case …`) both import this
module and neither imports the other's commands the other way round: ``cli`` registers the case
commands, so imports point one way (``cli`` → ``case_cli`` → ``cli_base``). The consoles are
this module's globals, made afresh per run by ``fresh_consoles``: read them as
``cli_base.console`` so a command prints to the run's console.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from typer.exceptions import TyperException

from access_audit.errors import EXIT_FAILURE, AccessAuditError, failure_line
from access_audit.workspace import HOME_ENV, RUNS_FOLDER, Workspace, resolve_home

EXIT_CODES = (
    "Exit codes: 0 done; 1 a drop could not be loaded (ingest, nightly: the other drops were "
    "loaded, each all-or-nothing), the machine refused a write (disk full) or an unexpected "
    "failure (its traceback is kept in the home's runs/ folder); 2 a user error (a bad option, "
    "file, setting or home), reported in one line on stderr; 130 interrupted."
)

# The largest --limit: more rows than any home holds, and small enough for every engine's index.
MAX_LIMIT = 1_000_000_000
# Wide enough that no table or line is wrapped or cut when output goes to a file or cron log.
PIPED_WIDTH = 10_000


def _console(stderr: bool = False) -> Console:
    """A terminal gets rich output; a file, pipe or cron log gets full-width plain text."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, emoji=False)
    return Console(
        stderr=stderr, width=PIPED_WIDTH, color_system=None, highlight=False, emoji=False
    )


console = _console()
err_console = _console(stderr=True)


def fresh_consoles() -> None:
    """Decide the consoles per run, not at import: one process may print to a terminal, then to
    a pipe."""
    global console, err_console
    console, err_console = _console(), _console(stderr=True)


P = ParamSpec("P")
R = TypeVar("R")


def _reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Every failure is one line on stderr, never a traceback: a user's error exits 2, a refused
    write (disk full) 1, and a bug 1 with its traceback written to a file under the home."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except AccessAuditError as exc:
            _print_error(failure_line(exc))
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            _print_error(failure_line(exc, _traceback_folder(args, kwargs)))
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper


def _print_error(line: str) -> None:
    from rich.text import Text

    from access_audit.escape import printable

    message = Text("error:", style="bold red")
    message.append(" " + printable(line))
    err_console.print(message, highlight=False, soft_wrap=True)


def _warn_broken_ledgers(workspace: Workspace) -> None:
    """A line on stderr per broken log chain: the decisions shown may have been edited."""
    from rich.text import Text

    from access_audit.escape import printable

    for line in workspace.ledger_warnings():
        message = Text("warning:", style="bold yellow")
        message.append(" " + printable(line))
        err_console.print(message, highlight=False, soft_wrap=True)


def _traceback_folder(args: Any, kwargs: Any) -> Path:
    """The home's run folder when the command has a home that exists; else the temp folder."""
    import tempfile

    ctx = kwargs.get("ctx") or next((a for a in args if isinstance(a, typer.Context)), None)
    home = resolve_home(ctx.obj.get("home") if ctx is not None and ctx.obj else None)
    if home.is_dir():
        return home / RUNS_FOLDER
    return Path(tempfile.gettempdir())


HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help=f"The workspace folder (default: ${HOME_ENV}, else ./access-audit-data); "
        "also accepted before the command.",
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only warnings and errors (for cron); no progress."),
]
ProgressOption = Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")]


def _home(ctx: typer.Context, home: Path | None) -> Path | None:
    """`--home` given before the command, after it, or both if they name the same folder."""
    before = ctx.obj.get("home") if ctx.obj else None
    if before is not None and home is not None and resolve_home(before) != resolve_home(home):
        raise AccessAuditError(
            f"--home given twice with different folders: {before} (before the command) "
            f"and {home} (after it)"
        )
    return home if home is not None else before


def _workspace(ctx: typer.Context, home: Path | None, create: bool = False) -> Workspace:
    return Workspace.open(_home(ctx, home), create=create)


def _output(quiet: bool) -> Console:
    """Where a command's results go: the console, or nowhere with --quiet (errors still show)."""
    return Console(quiet=True, emoji=False) if quiet else console


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on a terminal; nothing when output is piped (cron, CI)."""
    if not enabled or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def update(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        yield update
