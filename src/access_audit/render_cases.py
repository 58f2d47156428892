"""Cases as terminal tables, JSON and CSV. Ids, notes and names from the data are escaped for
where they go: ``terminal`` for Rich, ``csv_text`` for CSV; JSON escapes by construction."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from access_audit.escape import csv_text, terminal

if TYPE_CHECKING:
    import polars as pl

    from access_audit.review.cases import CaseDetail
    from access_audit.review.casework import CaseAssignment, CaseDecision


def _json_value(value: object) -> str:
    from access_audit.review.queue import ISO_UTC

    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(ISO_UTC)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _subject(row: dict[str, object]) -> str:
    if row.get("subject_id") is None:
        return "user-level patterns"
    return f"{terminal(row['subject_type'])} {terminal(row['subject_id'])}"


def _status(row: dict[str, object]) -> str:
    text = terminal(row["status"])
    if row.get("outcome"):
        text += f"\n{terminal(row['outcome'])}"
    if row.get("reopened"):
        text += f"\n[italic]reopened: {row['undecided_flags']} new flag(s)[/]"
    return text


def render_cases(console: Console, cases: pl.DataFrame, output_format: str) -> None:
    """`case list`: a table, a JSON array of case objects, or CSV."""
    from access_audit.review.cases import case_records, flat_cases

    if output_format == "json":
        print(json.dumps(case_records(cases), default=_json_value, indent=1))
        return
    if output_format == "csv":
        print(csv_text(flat_cases(cases)), end="")
        return
    if cases.is_empty():
        console.print("no cases match (cases group alerts: `access-audit flag` lists them)")
        return
    table = Table(
        title=f"{cases.height} case(s), open first, strongest flag first", show_lines=True
    )
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("case", no_wrap=True)
    table.add_column("user / subject")
    table.add_column("status", no_wrap=True)
    table.add_column("assignee / due")
    table.add_column("flags", justify="right")
    for row in cases.to_dicts():
        due = f"{row['due']}" + (" [bold red]overdue[/]" if row["overdue"] else "")
        assigned = (
            f"{terminal(row['assignee'])}\n{due}" if row["assignee"] else "[dim]unassigned[/]"
        )
        table.add_row(
            f"{row['max_score']:.0f}",
            f"{terminal(row['case_id'])}\n[dim]{row['window_start']} to {row['window_end']}[/]",
            f"{terminal(row['user_id'])}\n{_subject(row)}",
            _status(row),
            assigned,
            f"{row['flags']} ({row['open_flags']} not closed)",
        )
    console.print(table)


def case_detail_json(detail: CaseDetail) -> str:
    """`case show --format json`: the case (as in `case list --format json`), its flags and its
    history."""
    payload = {
        **detail.case,
        "flag_details": detail.flags.to_dicts(),
        "history": detail.history.to_dicts(),
    }
    return json.dumps(payload, default=_json_value, indent=1)


def render_case_detail(console: Console, detail: CaseDetail) -> None:
    case = detail.case
    console.print(
        f"[bold]{terminal(case['case_id'])}[/]: {terminal(case['user_id'])}, {_subject(case)}; "
        f"{case['window_start']} to {case['window_end']}",
        highlight=False,
        soft_wrap=True,
    )
    status = terminal(case["status"]) + (
        f" ({terminal(case['outcome'])})" if case["outcome"] else ""
    )
    if case["reopened"]:
        status += f"; reopened: {case['undecided_flags']} flag(s) joined after it was closed"
    console.print(f"status: {status}", highlight=False, soft_wrap=True)
    if case["assignee"]:
        overdue = " [bold red]overdue[/]" if case["overdue"] else ""
        console.print(
            f"assigned to {terminal(case['assignee'])}, due {case['due']}{overdue}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print("unassigned")
    flags = Table(title=f"{detail.flags.height} flag(s)", show_lines=True)
    for column in ("score", "flag", "day", "status", "why", "notes"):
        flags.add_column(column, justify="right" if column == "score" else "left")
    for row in detail.flags.to_dicts():
        reasons = "; ".join(terminal(r["text"]) for r in (row["reasons"] or [])[:3])
        notes = "\n".join(
            part
            for part in (
                terminal(row["note"]) if row["note"] else "",
                f"[bold]review:[/] {terminal(row['review_note'])}" if row["review_note"] else "",
            )
            if part
        )
        flags.add_row(
            f"{row['score']:.0f}",
            terminal(row["flag_id"]),
            str(row["day"]),
            terminal(row["status"]) + (f"\n{terminal(row['outcome'])}" if row["outcome"] else ""),
            reasons,
            notes,
        )
    console.print(flags)
    if detail.history.is_empty():
        return
    history = Table(title="Case history", show_lines=True)
    for column in ("when (UTC)", "by", "what", "note"):
        history.add_column(column)
    for row in detail.history.to_dicts():
        if row["action"] == "assign":
            what = f"assigned to {terminal(row['assignee'])}, due {row['due']}"
        else:
            what = f"{terminal(row['status'])}" + (
                f" ({terminal(row['outcome'])})" if row["outcome"] else ""
            )
            what += f" on {len(row['flag_ids'] or [])} flag(s)"
            if row["purpose"]:
                what += f"; purpose: {terminal(row['purpose'])}"
        history.add_row(
            f"{row['recorded_at']:%Y-%m-%d %H:%M}" if row["recorded_at"] else "",
            terminal(row["analyst"]),
            what,
            terminal(row["note"]),
        )
    console.print(history)


def render_assignment(console: Console, assignment: CaseAssignment) -> None:
    console.print(
        f"{terminal(assignment.case_id)} assigned to {terminal(assignment.assignee)}, due "
        f"{assignment.due}, by {terminal(assignment.analyst)}",
        highlight=False,
        soft_wrap=True,
    )


def render_case_decision(console: Console, decision: CaseDecision) -> None:
    console.print(
        f"{terminal(decision.case_id)} is {terminal(decision.status)}"
        + (f" ({terminal(decision.outcome)})" if decision.outcome else "")
        + f", by {terminal(decision.analyst)}: recorded on {len(decision.flag_ids)} flag(s) "
        f"({', '.join(terminal(f) for f in decision.flag_ids)})",
        highlight=False,
        soft_wrap=True,
    )


def render_unmatched(err_console: Console, case_ids: list[str]) -> None:
    """A warning naming case-log entries whose case no flag belongs to any more."""
    if not case_ids:
        return
    err_console.print(
        f"warning: {len(case_ids)} case(s) in the case log match no flags now (re-scored, or a "
        f"late drop moved the span; their decisions stay on the flags): "
        + ", ".join(terminal(c) for c in case_ids),
        highlight=False,
        soft_wrap=True,
    )
