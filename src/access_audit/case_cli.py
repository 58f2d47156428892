"""`access-audit case list|show|assign|review`: thin commands over ``Workspace.cases``.

Registered on the main app by ``cli.py``; shares its error handling, ``--home`` and consoles
through ``cli_base`` (never importing ``cli``, so imports point one way).
"""

from __future__ import annotations

from typing import Annotated

import typer

from access_audit import cli_base
from access_audit.errors import AccessAuditError

case_app = typer.Typer(
    name="case",
    help="Cases: one user's flags on one subject (or their pattern flags) within \\[cases] "
    "span_days, assigned, reviewed and decided as one.",
    epilog=cli_base.EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@case_app.callback()
@cli_base._reports_errors
def case_options() -> None:
    """Cases: one user's flags on one subject (or their pattern flags) within \\[cases]
    span_days, assigned, reviewed and decided as one."""


CaseId = Annotated[str, typer.Argument(help="The case, e.g. C20261128-U00141-person:P0001421.")]


@case_app.command("list")
@cli_base._reports_errors
def list_cases(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only cases in this status: open, under_review, closed.")
    ] = None,
    assignee: Annotated[
        str | None, typer.Option(help="Only cases assigned to this analyst.")
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only cases past their due date and not closed.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, max=cli_base.MAX_LIMIT, help="At most this many cases.")
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", help="table, json (an array of case objects) or csv; times ISO 8601 UTC."
        ),
    ] = "table",
    home: cli_base.HomeOption = None,
) -> None:
    """The cases, open and under review first, then by their strongest flag."""
    if output_format not in ("table", "json", "csv"):
        raise AccessAuditError(f"--format must be table, json or csv, not '{output_format}'")
    workspace = cli_base._workspace(ctx, home)
    cli_base._warn_broken_ledgers(workspace)
    cases = workspace.cases.select(status=status, assignee=assignee, overdue=overdue, limit=limit)
    workspace.record_view(
        "case list",
        cases["flag_ids"].explode().drop_nulls().to_list(),
        cases["subject_id"].drop_nulls().to_list(),
    )
    from access_audit.render_cases import render_cases, render_unmatched

    render_cases(cli_base.console, cases, output_format)
    render_unmatched(cli_base.err_console, workspace.cases.unmatched())


@case_app.command("show")
@cli_base._reports_errors
def show_case(
    ctx: typer.Context,
    case_id: CaseId,
    output_format: Annotated[
        str, typer.Option("--format", help="text, or json (one object; times ISO 8601 UTC).")
    ] = "text",
    home: cli_base.HomeOption = None,
) -> None:
    """One case: status, assignee and due date, every flag with its reasons and notes, and the
    case's history."""
    if output_format not in ("text", "json"):
        raise AccessAuditError(f"--format must be text or json, not '{output_format}'")
    workspace = cli_base._workspace(ctx, home)
    cli_base._warn_broken_ledgers(workspace)
    detail = workspace.cases.detail(case_id)
    workspace.record_view(
        "case show",
        detail.flags["flag_id"].to_list(),
        detail.flags["subject_id"].drop_nulls().to_list(),
    )
    from access_audit.render_cases import case_detail_json, render_case_detail

    if output_format == "json":
        print(case_detail_json(detail))
    else:
        render_case_detail(cli_base.console, detail)


@case_app.command("assign")
@cli_base._reports_errors
def assign_case(
    ctx: typer.Context,
    case_id: CaseId,
    to: Annotated[str, typer.Option("--to", help="The analyst the case is assigned to.")],
    due: Annotated[
        str | None,
        typer.Option(help="Due date, YYYY-MM-DD (default: \\[cases] due_days from today)."),
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why, or what to look at first.")] = None,
    analyst: Annotated[
        str | None, typer.Option(help="Who assigns it (default: the logged-in user).")
    ] = None,
    home: cli_base.HomeOption = None,
) -> None:
    """Assign a case to an analyst with a due date (appended to the case log)."""
    from access_audit.review.casework import due_date

    assignment = cli_base._workspace(ctx, home).cases.assign(
        case_id, to, due=due_date(due, blank_is_default=False), note=note, analyst=analyst
    )
    from access_audit.render_cases import render_assignment

    render_assignment(cli_base.console, assignment)


@case_app.command("review")
@cli_base._reports_errors
def review_case(
    ctx: typer.Context,
    case_id: CaseId,
    status: Annotated[str, typer.Option(help="open, under_review or closed.")],
    note: Annotated[str, typer.Option(help="Why: what was checked and found (required).")] = "",
    outcome: Annotated[
        str | None,
        typer.Option(help="On closing: an outcome as `review` takes (see review --help)."),
    ] = None,
    purpose: Annotated[
        str | None,
        typer.Option(help="With legitimate_purpose, and only then (required): the purpose."),
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Who decided (default: the logged-in user).")
    ] = None,
    home: cli_base.HomeOption = None,
) -> None:
    """Record one decision on every flag of a case (as `review` does for one flag), then on the
    case. A flag that joins the case later reopens a closed case until it is decided too."""
    decision = cli_base._workspace(ctx, home).cases.review(
        case_id, status=status, outcome=outcome, note=note, reviewer=reviewer, purpose=purpose
    )
    from access_audit.render_cases import render_case_decision

    render_case_decision(cli_base.console, decision)
