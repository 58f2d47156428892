"""The command line: each command parses options, calls one Workspace (or library) function, prints.

Heavy libraries (polars, duckdb, scikit-learn) are imported inside commands, so ``--help`` is fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from access_audit import __version__
from access_audit.errors import AccessAuditError
from access_audit.workspace import HOME_ENV, Workspace

app = typer.Typer(
    name="access-audit",
    help="Find records-system lookups made with no legitimate policing purpose.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def _reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """A user's error is one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AccessAuditError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        console.print(f"access-audit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help=f"The workspace folder (default: ${HOME_ENV}, else ./access-audit-data).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Find records-system lookups made with no legitimate policing purpose."""
    ctx.obj = {"home": home}


def _workspace(ctx: typer.Context, create: bool = False) -> Workspace:
    return Workspace.open(ctx.obj.get("home") if ctx.obj else None, create=create)


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


@app.command()
@_reports_errors
def ingest(
    ctx: typer.Context,
    drops: Annotated[
        list[Path],
        typer.Argument(help="Drop folders in the export-bundle format, loaded oldest first."),
    ],
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Load export drops into the stores: validated, deduplicated, each drop all-or-nothing."""
    workspace = _workspace(ctx, create=True)
    with _progress_bar(progress) as update:
        report = workspace.ingest(drops, progress=update)
    from access_audit.render import render_ingest_report

    render_ingest_report(console, err_console, report)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@_reports_errors
def status(ctx: typer.Context) -> None:
    """Rows per stored table, the current generation and the last runs."""
    from access_audit.render import render_status

    render_status(console, _workspace(ctx).status())


@app.command()
@_reports_errors
def rejected(
    ctx: typer.Context,
    drop: Annotated[str | None, typer.Option(help="Only this drop's rejected rows.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = 50,
    show_values: Annotated[
        bool,
        typer.Option(help="Show the rejected values of columns that hold personal data."),
    ] = False,
) -> None:
    """List rejected rows: drop, file, line, column, reason and the value that was refused."""
    from access_audit.render import render_rejected

    frame = _workspace(ctx).rejected_rows(drop_id=drop, limit=limit)
    render_rejected(console, frame, show_values=show_values)


@app.command()
@_reports_errors
def database(ctx: typer.Context) -> None:
    """Rebuild the analysts' DuckDB database and print its path (open it read-only)."""
    path = _workspace(ctx).refresh_catalog()
    console.print(str(path), highlight=False, soft_wrap=True)


@app.command()
@_reports_errors
def generate(
    out: Annotated[
        Path, typer.Argument(help="Folder to write OUT/YYYY-MM-DD/ drops and truth.csv.")
    ],
    staff: Annotated[int, typer.Option(min=1, help="Members of staff in the force.")] = 300,
    days: Annotated[int, typer.Option(min=1, help="Days of activity, one drop each.")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 7,
    start: Annotated[
        str | None, typer.Option(help="First day, YYYY-MM-DD (default 2026-10-12).")
    ] = None,
    file_format: Annotated[
        str, typer.Option("--format", help="File format of the drops: csv, parquet or jsonl.")
    ] = "csv",
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Write a synthetic force: daily export drops with planted misuse, and its truth file."""
    if file_format not in ("csv", "parquet", "jsonl"):
        raise AccessAuditError(f"--format must be csv, parquet or jsonl, not '{file_format}'")
    first_day = _parse_date(start, "--start") if start else None
    from access_audit.generate import generate_force

    with _progress_bar(progress) as update:
        result = generate_force(
            out,
            staff=staff,
            days=days,
            seed=seed,
            start=first_day,
            file_format=file_format,  # type: ignore[arg-type]
            progress=(lambda done, total: update("generating days", done, total))
            if update
            else None,
        )
    from access_audit.render import render_generate_result

    render_generate_result(console, result)


@app.command("convert-fhir")
@_reports_errors
def convert_fhir(
    sources: Annotated[
        list[Path],
        typer.Argument(help="FHIR AuditEvent files: JSON, NDJSON, Bundles or XML (R4 to R6)."),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Drop folder to write access_log_fhir.csv into.")
    ],
) -> None:
    """Turn FHIR AuditEvents into an export-bundle access_log that `ingest` can load."""
    from access_audit.interop import write_fhir_drop

    result = write_fhir_drop(sources, out)
    console.print(
        f"{result.rows} access_log row(s) written to {result.access_log}; "
        f"{len(result.unconvertible)} resource(s) could not be converted",
        highlight=False,
        soft_wrap=True,
    )
    for item in result.unconvertible:
        err_console.print(
            f"unconvertible: {item.source} #{item.position} ({item.event_id}): {item.reason}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
@_reports_errors
def nightly(
    ctx: typer.Context,
    drops: Annotated[
        list[Path], typer.Argument(help="The night's drop folder(s), loaded oldest first.")
    ],
    progress: Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")] = True,
) -> None:
    """Ingest, explain, score and flag in one idempotent run (what cron or systemd runs).

    Re-scores the days the drops touched and the re-explain window ([scoring] reexplain_days),
    so an assignment recorded late clears an earlier flag, with a note saying why."""
    workspace = _workspace(ctx, create=True)
    with _progress_bar(progress) as update:
        report = workspace.nightly(drops, progress=update)
    from access_audit.render import render_ingest_report, render_score_report

    render_ingest_report(console, err_console, report.ingest)
    if report.score is not None:
        render_score_report(console, report.score)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@_reports_errors
def score(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="First day to re-score: today, yesterday, 7d, YYYY-MM-DD.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Re-score days before this.")] = None,
) -> None:
    """Re-explain and re-score stored days (all by default), e.g. after changing the rules."""
    workspace = _workspace(ctx)
    window = _window(workspace, since, until)
    days = workspace.stored_days(window.start, window.end) if since or until else None
    report = workspace.score(days)
    from access_audit.render import render_score_report

    render_score_report(console, report)


@app.command()
@_reports_errors
def flag(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="Flags with accesses from: today, yesterday, 7d, 12h, YYYY-MM-DD."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="... and before this.")] = None,
    min_score: Annotated[
        float | None,
        typer.Option(min=0, max=100, help="Lowest score shown (default: the alert threshold)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many flags.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only flags in this review status: open, under_review, closed."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table, json (an array of flag objects) or csv.")
    ] = "table",
) -> None:
    """The review queue: flags whose accesses fall in the window, highest score first."""
    if output_format not in ("table", "json", "csv"):
        raise AccessAuditError(f"--format must be table, json or csv, not '{output_format}'")
    if status is not None and status not in ("open", "under_review", "closed"):
        raise AccessAuditError(f"--status must be open, under_review or closed, not '{status}'")
    workspace = _workspace(ctx)
    window = _window(workspace, since, until)
    queue = workspace.flags(
        since=window.start, until=window.end, min_score=min_score, status=status, limit=limit
    )
    workspace.record_view("flag", queue["flag_id"].to_list(), queue["subject_id"].to_list())
    from access_audit.render import render_flags

    render_flags(console, queue, output_format)


@app.command()
@_reports_errors
def explain(
    ctx: typer.Context,
    identifier: Annotated[
        str,
        typer.Argument(help="A flag id, or an access's event id (SYSTEM:event_id if ambiguous)."),
    ],
) -> None:
    """Why a flag was raised, or why an access was considered fine: explanations, indicators,
    score breakdown, the user's training and the review history."""
    workspace = _workspace(ctx)
    from access_audit.render import render_event_detail, render_flag_detail

    detail = workspace.flag_detail(identifier)
    if detail is not None:
        workspace.record_view("explain", [identifier], [str(detail.flag.get("subject_id") or "")])
        render_flag_detail(console, detail)
        return
    event = workspace.event_detail(identifier)
    if event is None:
        raise AccessAuditError(f"no flag or access with id {identifier}")
    workspace.record_view(
        "explain", event.flags["flag_id"].to_list(), [str(event.event.get("record_id") or "")]
    )
    render_event_detail(console, event)


@app.command()
@_reports_errors
def review(
    ctx: typer.Context,
    flag_id: Annotated[str, typer.Argument(help="The flag decided on.")],
    status: Annotated[str, typer.Option(help="open, under_review or closed.")],
    note: Annotated[str, typer.Option(help="Why: what was checked and found.")],
    outcome: Annotated[
        str | None,
        typer.Option(
            help="On closing: no_case_to_answer, legitimate_purpose, management_action, "
            "written_warning, final_written_warning, reduction_in_rank, dismissed, "
            "would_have_been_dismissed, would_not_have_been_dismissed, "
            "referred_for_criminal_investigation."
        ),
    ] = None,
    purpose: Annotated[
        str | None, typer.Option(help="For legitimate_purpose: the purpose (e.g. the assignment).")
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Who decided (default: the logged-in user).")
    ] = None,
) -> None:
    """Record a decision on a flag. History is append-only; the latest decision is its state."""
    decision = _workspace(ctx).review(
        flag_id, status=status, outcome=outcome, note=note, reviewer=reviewer, purpose=purpose
    )
    console.print(
        f"{decision.review_id}: {flag_id} is {decision.status}"
        + (f" ({decision.outcome})" if decision.outcome else "")
        + f", by {decision.reviewer}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@_reports_errors
def learn(
    ctx: typer.Context,
    retire: Annotated[
        bool, typer.Option("--retire", help="Stop using the learned model: rules only again.")
    ] = False,
) -> None:
    """Learn from closed reviews: train a model that re-ranks flags, report it on held-out
    decisions, store it as the next version and re-score with it."""
    workspace = _workspace(ctx)
    if retire:
        workspace.retire_model()
        console.print("learned model retired: flags are ranked by the rules again")
        return
    model = workspace.learn()
    holdout = model.holdout
    console.print(
        f"{model.version}: trained on {model.decisions} decision(s), {model.upheld} upheld; "
        f"held-out ({holdout['decisions']} decisions): ROC AUC {holdout['roc_auc']}, "
        f"average precision {holdout['average_precision']}; stored days re-scored",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@_reports_errors
def evaluate(
    ctx: typer.Context,
    truth: Annotated[Path, typer.Option("--truth", help="The generator's truth.csv.")],
    budget: Annotated[int, typer.Option(min=1, help="Flags an analyst reviews per day (K).")] = 20,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
    grouped: Annotated[
        bool,
        typer.Option(
            "--grouped/--flags",
            help="Rank the budget queue's entries (a user, or a subject, once a day) or flags.",
        ),
    ] = False,
) -> None:
    """Score the flags against planted misuse: precision at K, share caught within the daily
    budget, ROC AUC, legitimate accesses flagged, R-precision, PC B-type ranks."""
    if output_format not in ("text", "json"):
        raise AccessAuditError(f"--format must be text or json, not '{output_format}'")
    result = _workspace(ctx).evaluate(truth, budget=budget, grouped=grouped)
    from access_audit.render import render_evaluation

    render_evaluation(console, result, output_format)


@app.command()
@_reports_errors
def report(
    ctx: typer.Context,
    from_day: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    to_day: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (inclusive).")],
    output_format: Annotated[
        str, typer.Option("--format", help="text, csv or html (self-contained, with charts).")
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file instead of the screen.")
    ] = None,
) -> None:
    """What an FOI request asks: flags raised, reviewed and by outcome, APSP-type outcomes,
    upheld cases in one line each, and flagged users' training position."""
    if output_format not in ("text", "csv", "html"):
        raise AccessAuditError(f"--format must be text, csv or html, not '{output_format}'")
    workspace = _workspace(ctx)
    built = workspace.report(_parse_date(from_day, "--from"), _parse_date(to_day, "--to"))
    workspace.record_view("report", built.upheld["flag_id"].to_list(), [])
    from access_audit.report.render import render_csv, render_html, render_text

    text = {"text": render_text, "csv": render_csv, "html": render_html}[output_format](built)
    if output is None:
        print(text, end="")
        return
    from access_audit.workspace import owner_only

    with owner_only():
        output.write_text(text, encoding="utf-8")
    console.print(f"report written to {output}", highlight=False, soft_wrap=True)


def _window(workspace: Workspace, since: str | None, until: str | None) -> Any:
    from access_audit.timewindow import parse_window

    return parse_window(since, until, timezone=workspace.config.ingest.timezone)


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise AccessAuditError(f"{option}: '{text}' is not a YYYY-MM-DD date") from None


def main() -> Any:
    """Console-script entry point."""
    return app(prog_name="access-audit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
