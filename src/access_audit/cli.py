"""The command line: each command parses options, calls one Workspace (or library) function, prints.

Heavy libraries (polars, duckdb, scikit-learn) are imported inside commands, so ``--help`` is fast.
"""

from __future__ import annotations

import inspect
import re
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from access_audit import __version__, cli_base
from access_audit.case_cli import case_app
from access_audit.cli_base import (
    EXIT_CODES,
    MAX_LIMIT,
    HomeOption,
    ProgressOption,
    QuietOption,
    _output,
    _print_error,
    _progress_bar,
    _reports_errors,
    _warn_broken_ledgers,
    _workspace,
)
from access_audit.errors import AccessAuditError, InputError, one_line
from access_audit.generate import MIN_DAYS, MIN_STAFF
from access_audit.workspace import HOME_ENV, Workspace

__all__ = ["EXIT_CODES", "MAX_LIMIT", "app", "main"]

app = typer.Typer(
    name="access-audit",
    help="Find records-system lookups made with no legitimate policing purpose.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        cli_base.console.print(f"access-audit {__version__}")
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
    cli_base.fresh_consoles()
    ctx.obj = {"home": home}


EngineOption = Annotated[
    str,
    typer.Option(
        help="What scores: polars (this machine) or spark (the home's \\[spark] master; needs "
        "pip install 'access-audit\\[spark]' and Java 17). Both give the same flags."
    ),
]


CASE_ID_SHAPE = re.compile(r"C\d{8}-", re.ASCII)


def _case_hint(identifier: str, command: str) -> str:
    """For an id shaped like a case's (C<day>-…) given where a flag is expected: which command
    takes cases."""
    if CASE_ID_SHAPE.match(identifier) is None:
        return ""
    return f" (it is shaped like a case id: `access-audit {command}` takes cases)"


def _some_drop_is_a_folder(drops: list[Path]) -> None:
    """Refuse, before a home is made, a run none of whose drops is a folder (a mistyped path, a
    shell glob that matched nothing); one missing drop among others fails on its own."""
    if not any(drop.is_dir() for drop in drops):
        raise AccessAuditError(
            f"{drops[0]}: not a folder, and neither is any other drop given (a drop is a folder "
            "of export files; did a shell pattern match nothing?); nothing was loaded"
        )


@app.command()
@_reports_errors
def ingest(
    ctx: typer.Context,
    drops: Annotated[
        list[Path],
        typer.Argument(help="Drop folders in the export-bundle format, loaded oldest first."),
    ],
    progress: ProgressOption = True,
    quiet: QuietOption = False,
    home: HomeOption = None,
) -> None:
    """Load export drops into the stores: validated, deduplicated, each drop all-or-nothing."""
    _some_drop_is_a_folder(drops)
    workspace = _workspace(ctx, home, create=True)
    with _progress_bar(progress and not quiet) as update:
        report = workspace.ingest(drops, progress=update)
    from access_audit.render import render_ingest_report

    render_ingest_report(_output(quiet), cli_base.err_console, report)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@_reports_errors
def status(ctx: typer.Context, home: HomeOption = None) -> None:
    """Rows per stored table, the current generation and the last runs."""
    from access_audit.render import render_status

    render_status(cli_base.console, _workspace(ctx, home).status())


@app.command()
@_reports_errors
def rejected(
    ctx: typer.Context,
    drop: Annotated[str | None, typer.Option(help="Only this drop's rejected rows.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many rows.")] = 50,
    show_values: Annotated[
        bool,
        typer.Option(help="Show the rejected values of columns that hold personal data."),
    ] = False,
    home: HomeOption = None,
) -> None:
    """List rejected rows: drop, file, line, column, reason and the value that was refused."""
    from access_audit.render import render_rejected

    frame = _workspace(ctx, home).rejected_rows(drop_id=drop, limit=limit)
    render_rejected(cli_base.console, frame, show_values=show_values)


@app.command()
@_reports_errors
def database(ctx: typer.Context, home: HomeOption = None) -> None:
    """Rebuild the analysts' DuckDB database and print its path (open it read-only)."""
    path = _workspace(ctx, home).refresh_catalog()
    from access_audit.escape import terminal

    cli_base.console.print(terminal(path), highlight=False, soft_wrap=True)


@app.command()
@_reports_errors
def generate(
    out: Annotated[
        Path, typer.Argument(help="Folder to write OUT/YYYY-MM-DD/ drops and truth.csv.")
    ],
    staff: Annotated[int, typer.Option(min=MIN_STAFF, help="Members of staff in the force.")] = 300,
    days: Annotated[
        int,
        typer.Option(
            min=MIN_DAYS,
            help=f"Days of activity, one drop each (at least {MIN_DAYS}, so that follow-up "
            "lookups fit).",
        ),
    ] = 14,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 7,
    start: Annotated[
        str | None,
        typer.Option(help="First day: YYYY-MM-DD, today, yesterday or 14d (default 2026-10-12)."),
    ] = None,
    file_format: Annotated[
        str, typer.Option("--format", help="File format of the drops: csv, parquet or jsonl.")
    ] = "csv",
    progress: ProgressOption = True,
    quiet: QuietOption = False,
) -> None:
    """Write a synthetic force: daily export drops with planted misuse, and its truth file."""
    if file_format not in ("csv", "parquet", "jsonl"):
        raise AccessAuditError(f"--format must be csv, parquet or jsonl, not '{file_format}'")
    from access_audit.generate import FORCE_TIMEZONE, generate_force
    from access_audit.timewindow import parse_day

    first_day = parse_day(start, timezone=FORCE_TIMEZONE, option="--start") if start else None
    with _progress_bar(progress and not quiet) as update:
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

    render_generate_result(_output(quiet), result)


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
    from access_audit.escape import terminal
    from access_audit.interop import write_fhir_drop

    result = write_fhir_drop(sources, out)
    cli_base.console.print(
        f"{result.rows} access_log row(s) written to {terminal(result.access_log)}; "
        f"{len(result.unconvertible)} resource(s) could not be converted",
        highlight=False,
        soft_wrap=True,
    )
    for item in result.unconvertible:
        cli_base.err_console.print(
            f"unconvertible: {terminal(item.source)} #{item.position} "
            f"({terminal(item.event_id)}): {terminal(item.reason)}",
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
    progress: ProgressOption = True,
    quiet: QuietOption = False,
    engine: EngineOption = "polars",
    home: HomeOption = None,
) -> None:
    """Ingest, explain, score and flag in one idempotent run (what cron or systemd runs).

    Re-scores the days the drops touched and the re-explain window (\\[scoring] reexplain_days),
    so an assignment recorded late clears an earlier flag, with a note saying why."""
    _some_drop_is_a_folder(drops)
    workspace = _workspace(ctx, home, create=True)
    with _progress_bar(progress and not quiet) as update:
        report = workspace.nightly(drops, progress=update, engine=engine)
    from access_audit.render import render_ingest_report, render_score_report

    out = _output(quiet)
    render_ingest_report(out, cli_base.err_console, report.ingest)
    if report.score is not None:
        render_score_report(out, report.score)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@_reports_errors
def verify(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Check sizes and Parquet row counts only; no re-hashing."),
    ] = False,
    published_head: Annotated[
        str | None,
        typer.Option(
            help="A head printed by an earlier verify (g000012:<hash>), kept where the home's "
            "owner cannot write: fail unless this chain still holds it."
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="The Ed25519 public key (PEM) of \\[store] signing_key: fail unless the current "
            "head is signed with it."
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Check the store's hash chain and every stored file against its manifest; exit 1 if broken.

    Prints each chain's head hash (publish it elsewhere to detect a rewrite of the whole chain),
    or the first file that was changed, added or removed since its generation was committed."""
    report = _workspace(ctx, home).verify(
        quick=quick, published_head=published_head, public_key=public_key
    )
    from access_audit.render import render_verify

    render_verify(cli_base.console, report)
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
    progress: ProgressOption = True,
    quiet: QuietOption = False,
    engine: EngineOption = "polars",
    home: HomeOption = None,
) -> None:
    """Re-explain and re-score stored days (all by default), e.g. after changing the rules."""
    workspace = _workspace(ctx, home)
    window = _window(workspace, since, until)
    days = workspace.stored_days(window.start, window.end) if since or until else None
    with _progress_bar(progress and not quiet) as update:
        report = workspace.score(days, progress=update, engine=engine)
    from access_audit.render import render_score_report

    render_score_report(_output(quiet), report)


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
    limit: Annotated[
        int | None, typer.Option(min=1, max=MAX_LIMIT, help="At most this many flags.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only flags in this review status: open, under_review, closed."),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's flags.")] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="table, json (an array of flag objects) or csv; times in ISO 8601 UTC, "
            "e.g. 2026-11-21T10:00:00Z.",
        ),
    ] = "table",
    home: HomeOption = None,
) -> None:
    """The review queue: flags whose accesses fall in the window, highest score first."""
    if output_format not in ("table", "json", "csv"):
        raise AccessAuditError(f"--format must be table, json or csv, not '{output_format}'")
    if status is not None and status not in ("open", "under_review", "closed"):
        raise AccessAuditError(f"--status must be open, under_review or closed, not '{status}'")
    workspace = _workspace(ctx, home)
    window = _window(workspace, since, until)
    queue = workspace.flags(
        since=window.start,
        until=window.end,
        min_score=min_score,
        status=status,
        user=user,
        limit=limit,
    )
    workspace.record_view("flag", queue["flag_id"].to_list(), queue["subject_id"].to_list())
    _warn_broken_ledgers(workspace)
    from access_audit.render import render_flags

    render_flags(cli_base.console, queue, output_format)


@app.command()
@_reports_errors
def explain(
    ctx: typer.Context,
    identifier: Annotated[
        str,
        typer.Argument(help="A flag id, or an access's event id (SYSTEM:event_id if ambiguous)."),
    ],
    output_format: Annotated[
        str,
        typer.Option("--format", help="text, or json (one object; times in ISO 8601 UTC)."),
    ] = "text",
    system: Annotated[
        str | None,
        typer.Option(
            "--system",
            help="The access's system, when its ids hold ':' and SYSTEM:event_id is ambiguous; "
            "IDENTIFIER is then the event id exactly.",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Why a flag was raised, or why an access was considered fine: explanations, indicators,
    score breakdown, the user's training and the review history."""
    if output_format not in ("text", "json"):
        raise AccessAuditError(f"--format must be text or json, not '{output_format}'")
    workspace = _workspace(ctx, home)
    from access_audit import render

    _warn_broken_ledgers(workspace)
    detail = workspace.flag_detail(identifier) if system is None else None
    if detail is not None:
        workspace.record_view("explain", [identifier], [str(detail.flag.get("subject_id") or "")])
        if output_format == "json":
            print(render.flag_detail_json(detail))
        else:
            render.render_flag_detail(cli_base.console, detail)
        return
    event = workspace.event_detail(identifier, system)
    if event is None:
        raise AccessAuditError(
            f"no flag or access with id {identifier}{_case_hint(identifier, 'case show')}"
        )
    workspace.record_view(
        "explain", event.flags["flag_id"].to_list(), [str(event.event.get("record_id") or "")]
    )
    if output_format == "json":
        print(render.event_detail_json(event))
    else:
        render.render_event_detail(cli_base.console, event)


@app.command()
@_reports_errors
def review(
    ctx: typer.Context,
    flag_id: Annotated[str, typer.Argument(help="The flag decided on.")],
    status: Annotated[str, typer.Option(help="open, under_review or closed.")],
    note: Annotated[str, typer.Option(help="Why: what was checked and found (required).")] = "",
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
        str | None,
        typer.Option(
            help="With legitimate_purpose, and only then (required): the purpose, e.g. the "
            "assignment that was never recorded."
        ),
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Who decided (default: the logged-in user).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Record a decision on a flag. History is append-only; the latest decision is its state."""
    try:
        decision = _workspace(ctx, home).review(
            flag_id, status=status, outcome=outcome, note=note, reviewer=reviewer, purpose=purpose
        )
    except InputError as error:
        from access_audit.review import PROBLEMS

        hint = _case_hint(flag_id, "case review")
        if hint and error.template == PROBLEMS["unknown_flag"]:
            raise AccessAuditError(f"{error}{hint}") from None
        raise
    from access_audit.escape import terminal

    cli_base.console.print(
        f"{terminal(decision.review_id)}: {terminal(flag_id)} is {terminal(decision.status)}"
        + (f" ({terminal(decision.outcome)})" if decision.outcome else "")
        + f", by {terminal(decision.reviewer)}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@_reports_errors
def serve(
    ctx: typer.Context,
    port: Annotated[
        int,
        typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)."),
    ] = 8765,
    reviewer: Annotated[
        str | None,
        typer.Option(help="Who the decisions recorded there are by (default: the logged-in user)."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """The review queue in the browser: the queue, each flag's evidence and timelines, and a
    review form; the cases, each with its assign and review forms; on 127.0.0.1 only. Open the
    address it prints (its token opens a session); every page shown is recorded in the view log.
    Ctrl-C stops it."""
    from access_audit.escape import terminal
    from access_audit.serve.server import serve as serve_review_page

    workspace = _workspace(ctx, home)

    def announce(url: str) -> None:
        cli_base.console.print(
            f"Review page for {terminal(workspace.home)}: open {url}\n"
            "(the token in it is the key: do not share it; Ctrl-C stops the server)",
            highlight=False,
            soft_wrap=True,
        )
        cli_base.console.file.flush()

    serve_review_page(workspace, port=port, reviewer=reviewer, announce=announce)


@app.command()
@_reports_errors
def learn(
    ctx: typer.Context,
    retire: Annotated[
        bool, typer.Option("--retire", help="Stop using the learned model: rules only again.")
    ] = False,
    quiet: QuietOption = False,
    home: HomeOption = None,
) -> None:
    """Learn from closed reviews: train a model that re-ranks flags, report it on held-out
    decisions, store it as the next version and re-score with it."""
    workspace = _workspace(ctx, home)
    out = _output(quiet)
    if retire:
        workspace.retire_model()
        out.print("learned model retired: flags are ranked by the rules again")
        return
    model = workspace.learn()
    holdout = model.holdout
    out.print(
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
    home: HomeOption = None,
) -> None:
    """Score the flags against planted misuse: precision at K, share caught within the daily
    budget, ROC AUC, legitimate accesses flagged, R-precision, PC B-type ranks."""
    if output_format not in ("text", "json"):
        raise AccessAuditError(f"--format must be text or json, not '{output_format}'")
    result = _workspace(ctx, home).evaluate(truth, budget=budget, grouped=grouped)
    from access_audit.render import render_evaluation

    render_evaluation(cli_base.console, result, output_format)


@app.command()
@_reports_errors
def report(
    ctx: typer.Context,
    from_day: Annotated[
        str, typer.Option("--from", help="First day: YYYY-MM-DD, today, yesterday or 30d.")
    ],
    to_day: Annotated[
        str, typer.Option("--to", help="Last day (inclusive), in the same forms as --from.")
    ],
    output_format: Annotated[
        str, typer.Option("--format", help="text, csv or html (self-contained, with charts).")
    ] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file instead of the screen.")
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Report even if no data is loaded for any day of the period (its figures are "
            "then all zero, which does not mean no misuse).",
        ),
    ] = False,
    home: HomeOption = None,
) -> None:
    """What an FOI request asks: flags raised, reviewed and by outcome, APSP-type outcomes,
    upheld cases in one line each, and flagged users' training position. Days with no loaded
    data are marked as such, never counted as days without alerts."""
    if output_format not in ("text", "csv", "html"):
        raise AccessAuditError(f"--format must be text, csv or html, not '{output_format}'")
    workspace = _workspace(ctx, home)
    built = workspace.report(
        _day(workspace, from_day, "--from"),
        _day(workspace, to_day, "--to"),
        allow_empty=allow_empty,
    )
    # every flag and subject the report shows: the upheld cases' and the top user's timeline
    shown_subjects = [
        *built.upheld["subject_ids"].explode().drop_nulls().to_list(),
        *(built.timeline["record_id"].to_list() if built.timeline.height else []),
    ]
    workspace.record_view(
        "report",
        built.upheld["flag_ids"].explode().drop_nulls().to_list(),
        sorted(set(shown_subjects)),
    )
    _warn_broken_ledgers(workspace)
    from access_audit.report.formats import render_csv, render_html, render_text

    text = {"text": render_text, "csv": render_csv, "html": render_html}[output_format](built)
    if output is None:
        print(text, end="")
        return
    from access_audit.escape import terminal
    from access_audit.private_files import write_private_text

    write_private_text(output, text)
    cli_base.console.print(f"report written to {terminal(output)}", highlight=False, soft_wrap=True)


@app.command()
@_reports_errors
def evidence(
    ctx: typer.Context,
    flag_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="FLAG_OR_CASE",
            help="The flags the pack is about: flag ids, or case ids (a case stands for its "
            "flags, as `case show` lists them).",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", help="The pack's folder: must not exist yet, or be an empty folder."
        ),
    ],
    pdf: Annotated[
        bool,
        typer.Option(
            "--pdf/--no-pdf",
            help="Print evidence.pdf from the HTML page with headless Chromium (needed: "
            "`make browser`); --no-pdf writes the pack without it, with a warning.",
        ),
    ] = True,
    progress: ProgressOption = True,
    quiet: QuietOption = False,
    home: HomeOption = None,
) -> None:
    """Write an evidence pack for a misconduct hearing: an HTML page and its PDF, a CSV of every
    access in scope (UTC and local times, what explains it or why nothing does), the user's
    shifts, assignments and training, the review history with notes (and a case's history), and
    a manifest of every file's SHA-256 with the store's and the logs' verified chain heads.
    Refused if the home fails verification; owner-only files; the export is recorded in the view
    log."""
    workspace = _workspace(ctx, home)
    with _progress_bar(progress and not quiet) as update:
        pack = workspace.evidence(
            flag_ids, output.expanduser().absolute(), pdf=pdf, progress=update
        )
    from access_audit.escape import terminal

    if not pack.pdf:
        cli_base.err_console.print(
            "[bold red]warning:[/] no PDF in this pack (--no-pdf): the hearing gets the HTML "
            "page only",
            highlight=False,
            soft_wrap=True,
        )
    _output(quiet).print(
        f"evidence pack written to {terminal(pack.path)}: {len(pack.files)} files, "
        f"{pack.accesses} access(es), {pack.reviews} review(s); store head "
        f"{terminal(pack.store_head)}",
        highlight=False,
        soft_wrap=True,
    )


app.add_typer(case_app, name="case")  # `access-audit case …`, in case_cli.py


def _one_line_summaries(*apps: typer.Typer) -> None:
    """Each command's line in `--help`'s command list: its docstring's first paragraph on one
    line (Rich keeps a docstring's line breaks there, breaking a summary mid-sentence)."""
    for each in apps:
        for command in each.registered_commands:
            doc = inspect.getdoc(command.callback) if command.callback else None
            if command.short_help is None and command.help is None and doc:
                command.short_help = " ".join(doc.split("\n\n")[0].split())


_one_line_summaries(app, case_app)


def _window(workspace: Workspace, since: str | None, until: str | None) -> Any:
    from access_audit.timewindow import parse_window

    return parse_window(since, until, timezone=workspace.config.ingest.timezone)


def _day(workspace: Workspace, text: str, option: str) -> date:
    from access_audit.timewindow import parse_day

    return parse_day(text, timezone=workspace.config.ingest.timezone, option=option)


def main() -> int:
    """Console-script entry point. A usage mistake (an unknown command, a bad option value) is
    one line too, naming the command's --help, exit 2; Ctrl-C is one line, exit 130."""
    try:
        result = app(prog_name="access-audit", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        _print_error("interrupted")
        return 130
    except TyperException as exc:
        exit_code = int(getattr(exc, "exit_code", 2))
        if type(exc).__name__ == "NoArgsIsHelpError":
            return exit_code  # the help has been shown: that is the whole answer
        command = getattr(getattr(exc, "ctx", None), "command_path", "access-audit")
        formatted = getattr(exc, "format_message", None)
        text = formatted() if callable(formatted) else str(exc)
        _print_error(f"{one_line(text)} (see {command} --help)")
        return exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
