"""Turning typed results into terminal output. Counts, reasons and identifiers: never names."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from access_audit.escape import csv_text, printable, terminal
from access_audit.schema import TABLES_BY_NAME

if TYPE_CHECKING:
    import polars as pl

    from access_audit.evaluate import Evaluation
    from access_audit.generate import GenerateResult
    from access_audit.review.detail import EventDetail, FlagDetail
    from access_audit.score.run import ScoreReport
    from access_audit.workspace import IngestReport, VerifyReport, WorkspaceStatus

CLEARED_WHY = "explained since, or no longer over the threshold: `explain` says which"


def render_ingest_report(console: Console, err_console: Console, report: IngestReport) -> None:
    table = Table(title="Ingest", show_lines=False)
    for heading in (
        "drop",
        "table",
        "files",
        "read",
        "loaded",
        "unchanged",
        "duplicates",
        "stale",
        "rejected",
    ):
        table.add_column(heading, justify="left" if heading in ("drop", "table") else "right")
    for drop in report.loaded:
        if not drop.tables:
            table.add_row(terminal(drop.drop_id), "(nothing new)", *[""] * 7)
        for load in drop.tables.values():
            table.add_row(
                terminal(drop.drop_id),
                load.table,
                str(load.files),
                str(load.rows_read),
                str(load.loaded),
                str(load.unchanged),
                str(load.duplicates),
                str(load.stale),
                str(load.rejected_rows),
            )
    console.print(table)
    reasons: dict[str, int] = {}
    for drop in report.loaded:
        for key, count in drop.rejections.items():
            reasons[key] = reasons.get(key, 0) + count
        for name in drop.unrecognised_files:
            err_console.print(
                f"warning: {terminal(drop.drop_id)}/{terminal(name)}: not an export file; ignored"
            )
        for name, why in sorted(drop.ignored_files.items()):
            err_console.print(
                f"warning: {printable(drop.drop_id)}/{printable(name)}: {why}; ignored",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if drop.skipped_files:
            console.print(
                f"{terminal(drop.drop_id)}: {len(drop.skipped_files)} file(s) already loaded, "
                "skipped"
            )
    if reasons:
        rejections = Table(title="Rejected rows by table and reason")
        rejections.add_column("table: reason")
        rejections.add_column("rows", justify="right")
        for key, count in sorted(reasons.items()):
            rejections.add_row(terminal(key), str(count))
        console.print(rejections)
        console.print("List them with `access-audit rejected`.")
    for failure in report.failed:
        # A drop that could not be opened is named in its error already (its path).
        named = failure.error.startswith(failure.drop)
        which = "" if named else f"{terminal(failure.drop)}: "
        err_console.print(
            f"[bold red]failed:[/] {which}{terminal(failure.error)} "
            "(nothing from this drop was loaded)",
            highlight=False,
            soft_wrap=True,
        )
    loaded = sum(d.rows_loaded for d in report.loaded)
    # a drop delivered again reads as "loaded": say that it brought nothing new
    again = sum(1 for d in report.loaded if d.skipped_files and d.rows_loaded == 0)
    repeated = f" ({again} of them already loaded: nothing new)" if again else ""
    console.print(
        f"{len(report.loaded)} drop(s) loaded, {len(report.failed)} failed; "
        f"{loaded} row(s) added; generation {report.generation}{repeated}"
    )


def render_status(console: Console, status: WorkspaceStatus) -> None:
    console.print(f"home: {terminal(status.home)}", highlight=False, soft_wrap=True)
    console.print(f"generation: {status.generation}")
    console.print(f"database: {terminal(status.database)}", highlight=False, soft_wrap=True)
    table = Table(title="Stored tables")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for count in status.tables:
        table.add_row(count.table, str(count.rows))
    console.print(table)
    if status.last_runs:
        runs = Table(title="Last runs")
        for heading in ("run", "command", "drop", "outcome", "error"):
            runs.add_column(heading)
        for run in status.last_runs:
            runs.add_row(
                *[_text(run.get(k)) for k in ("run_id", "command", "drop_id", "outcome", "error")]
            )
        console.print(runs)


def render_rejected(console: Console, frame: pl.DataFrame, show_values: bool) -> None:
    if frame.is_empty():
        console.print("no rejected rows")
        return
    table = Table(title=f"Rejected rows ({frame.height} shown)")
    for heading in ("drop", "file", "line", "column", "reason", "value"):
        table.add_column(heading, justify="right" if heading == "line" else "left")
    for row in frame.select(
        "drop_id", "table_name", "source_file", "source_line", "column", "reason", "raw_value"
    ).to_dicts():
        table.add_row(
            _text(row["drop_id"]),
            _text(row["source_file"]),
            _text(row["source_line"]),
            _text(row["column"]),
            _text(row["reason"]),
            _value(row, show_values),
        )
    console.print(table)


def _value(row: dict[str, Any], show_values: bool) -> str:
    spec = TABLES_BY_NAME.get(str(row["table_name"]))
    column = spec.column_index.get(str(row["column"])) if spec else None
    # A whole refused line (column "(line)") may hold any of the row's values.
    whole_line = column is None and row["column"] == "(line)"
    if (whole_line or (column is not None and column.personal)) and not show_values:
        return "(personal data: --show-values)"
    return _text(row["raw_value"])


def render_generate_result(console: Console, result: GenerateResult) -> None:
    table = Table(title=f"Synthetic force in {terminal(result.out)}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in result.rows.items():
        table.add_row(name, str(rows))
    console.print(table)
    console.print(
        f"{len(result.drops)} drop(s), {result.episodes} planted misuse episode(s) "
        f"(truth: {terminal(result.truth_path)}); {result.seconds:.1f}s",
        highlight=False,
        soft_wrap=True,
    )


def _text(value: object) -> str:
    """A value from the data as a table cell: literal, never markup."""
    return terminal(value)


def render_score_report(console: Console, report: ScoreReport) -> None:
    if not report.days:
        console.print("nothing to score: no accesses are stored")
        return
    first, last = report.days[0], report.days[-1]
    console.print(
        f"scored {report.events} access(es) on {len(report.days)} day(s) ({first} to {last}) in "
        f"{report.seconds:.1f}s: {_percent(report.explained)} explained "
        f"({_percent(report.first_explained)} of first accesses); with mined explanations "
        f"{_percent(report.explained_with_mined)} "
        f"({_percent(report.first_explained_with_mined)} of first accesses); "
        f"{report.flags} flag(s), {report.alerts} alert(s)"
        + (f" ({report.audit_gaps} audit gap(s))" if report.audit_gaps else "")
        + (f", {len(report.cleared)} alert(s) cleared ({CLEARED_WHY})" if report.cleared else ""),
        highlight=False,
        soft_wrap=True,
    )
    if report.earlier_rules:
        console.print(
            f"of them, {len(report.earlier_rules)} earlier day(s) ({report.earlier_rules[0]} to "
            f"{report.earlier_rules[-1]}) were scored again first: other rules had scored them, "
            "and the days asked for are weighed against a look-back of the rules in force",
            highlight=False,
            soft_wrap=True,
        )
    roles = [row for row in report.coverage if row["scope"] == "role"]
    if roles:
        table = Table(title="Explained accesses by role")
        for column in ("role", "accesses", "explained", "with mined"):
            table.add_column(column, justify="left" if column == "role" else "right")
        for row in roles:
            table.add_row(
                _text(row["group"]),
                str(row["accesses"]),
                _percent(row["share"]),
                _percent(row.get("share_with_mined")),
            )
        console.print(table)


def _percent(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _reason_line(reasons: list[dict[str, Any]] | None) -> str:
    if not reasons:
        return ""
    return "; ".join(f"{terminal(r['text'])} ({100 * r['weight']:.0f}%)" for r in reasons)


def render_flags(console: Console, queue: pl.DataFrame, output_format: str) -> None:
    """The review queue as a table, a JSON array of flag objects, or CSV."""
    import json

    from access_audit.review.queue import flag_records

    if output_format == "json":
        print(json.dumps(flag_records(queue), default=str, indent=1))
        return
    if output_format == "csv":
        from access_audit.review.queue import flat_flags

        flat = flat_flags(queue)
        print(csv_text(flat), end="")
        return
    if queue.is_empty():
        console.print(
            "no flags match (the window, --min-score, and --status or --user if given; "
            "try --since 7d, or --min-score 0 for all)"
        )
        return
    table = Table(title=f"{queue.height} flag(s), highest score first", show_lines=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("flag (day-user-subject)", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("why (share of score)", ratio=1)
    for row in queue.to_dicts():
        status = terminal(row["status"]) + (
            f"\n{terminal(row['outcome'])}" if row["outcome"] else ""
        )
        reasons = _reason_line((row["reasons"] or [])[:3])
        if row.get("cleared_at"):
            reasons += f"\n[italic]cleared {row['cleared_at']:%Y-%m-%d %H:%M} UTC[/]"
        if row["note"]:
            reasons += f"\n[italic]{terminal(row['note'])}[/]"
        if row.get("review_note"):
            reasons += f"\n[bold]review:[/] {terminal(row['review_note'])}"
        accesses = f"{len(row['events'] or [])} access(es) {row['first_access_at']:%d %b %H:%M}"
        table.add_row(
            f"{row['score']:.0f}",
            f"{terminal(row['flag_id'])}\n[dim]{accesses}[/]",
            status,
            reasons,
        )
    console.print(table)


def render_flag_detail(console: Console, detail: FlagDetail) -> None:
    flag = detail.flag
    console.print(
        f"[bold]{terminal(flag['flag_id'])}[/] — score {flag['score']:.0f} "
        f"(rules {flag['rule_score']:.0f}, {terminal(flag['model_version'])}); "
        f"{terminal(flag['kind'])}"
        + (f" of {terminal(flag['user_id'])}" if flag["user_id"] else "")
        + (
            f" with {terminal(flag['subject_type'])} {terminal(flag['subject_id'])}"
            if flag["subject_id"]
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"status: {terminal(flag['status'])}"
        + (f" ({terminal(flag['outcome'])})" if flag.get("outcome") else ""),
        highlight=False,
    )
    if flag.get("cleared_at"):
        console.print(f"cleared: {flag['cleared_at']:%Y-%m-%d %H:%M} UTC", highlight=False)
    if flag.get("note"):
        console.print(f"note: {terminal(flag['note'])}", highlight=False, soft_wrap=True)
    table = Table(title="Score breakdown")
    table.add_column("reason")
    table.add_column("share", justify="right")
    for reason in flag["reasons"] or []:
        table.add_row(terminal(reason["text"]), f"{100 * reason['weight']:.0f}%")
    console.print(table)
    events = Table(title="Accesses", show_lines=True)
    for column in ("when (UTC)", "event", "action", "record", "explained by", "indicators"):
        events.add_column(column, overflow="fold")
    for row in detail.events.to_dicts():
        indicators = ", ".join(
            terminal(i["code"]) + (f" ({terminal(i['evidence'])})" if i["evidence"] else "")
            for i in row["indicators"] or []
        )
        events.add_row(
            f"{row['occurred_at']:%Y-%m-%d %H:%M:%S}",
            f"{terminal(row['system'])}:{terminal(row['event_id'])}",
            terminal(row["action"]),
            f"{terminal(row['record_type'])} {terminal(row['record_id'])}",
            "; ".join(terminal(e) for e in row["explanations"] or [])
            or _weakly(row.get("weak_explanations"))
            or "[red]nothing[/]",
            indicators,
        )
    console.print(events)
    if detail.training.is_empty():
        console.print("training: [red]no training recorded for this user[/]")
    else:
        console.print(
            "training: "
            + ", ".join(
                f"{terminal(r['course'])} {terminal(r['completed_at'])}"
                for r in detail.training.to_dicts()
            ),
            highlight=False,
        )
    if not detail.reviews.is_empty():
        console.print(_frame_table("Review history", detail.reviews))


def _weakly(weak: list[dict[str, Any]] | None) -> str:
    """Mined explanations, marked weak: they lowered the score, they explain nothing outright."""
    return "; ".join(
        f"[yellow]weakly ({terminal(w['kind'])}, support {w['support']}):[/] "
        f"{terminal(w['detail'])}"
        for w in weak or []
    )


def flag_detail_json(detail: FlagDetail) -> str:
    """`explain FLAG --format json`: the flag (as in `flag --format json`) with its accesses,
    the user's training and the review history."""
    import json

    payload = {
        **detail.flag,
        "accesses": detail.events.to_dicts(),
        "training": detail.training.to_dicts(),
        "reviews": detail.reviews.to_dicts(),
    }
    return json.dumps(payload, default=_json_value, indent=1)


def event_detail_json(detail: EventDetail) -> str:
    """`explain EVENT --format json`: the access, what explains it, its indicators, its flags."""
    import json

    payload = {
        **detail.event,
        "explanations": detail.explanations.to_dicts(),
        "weak_explanations": detail.weak_explanations.to_dicts(),
        "indicators": detail.indicators.to_dicts(),
        "flags": detail.flags.to_dicts(),
    }
    return json.dumps(payload, default=_json_value, indent=1)


def _json_value(value: object) -> str:
    """Dates and times as JSON text: ISO 8601, times in UTC with "Z" like the flag queue's."""
    from access_audit.review.queue import ISO_UTC

    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).strftime(ISO_UTC)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def render_event_detail(console: Console, detail: EventDetail) -> None:
    event = detail.event
    console.print(
        f"[bold]{terminal(event['system'])}:{terminal(event['event_id'])}[/] "
        f"{event['occurred_at']:%Y-%m-%d %H:%M:%S} UTC — {terminal(event['user_id'])} "
        f"{terminal(event['action'])} {terminal(event['record_type'])} "
        f"{terminal(event['record_id'])}",
        highlight=False,
        soft_wrap=True,
    )
    if detail.explanations.is_empty():
        console.print("explained by: [red]nothing[/]")
    for row in detail.explanations.to_dicts():
        console.print(
            f"explained by: {terminal(row['detail'])} ({terminal(row['kind'])})",
            highlight=False,
            soft_wrap=True,
        )
    for row in detail.weak_explanations.to_dicts():
        console.print(
            f"weakly explained by: {terminal(row['detail'])} ({terminal(row['kind'])}, "
            f"support {row['support']}, strength {row['strength']:.2f})",
            highlight=False,
            soft_wrap=True,
        )
    for row in detail.indicators.to_dicts():
        evidence = f": {terminal(row['evidence'])}" if row["evidence"] else ""
        console.print(
            f"indicator {terminal(row['code'])} (+{row['points']:.0f}){evidence}",
            highlight=False,
            soft_wrap=True,
        )
    for row in detail.flags.to_dicts():
        console.print(
            f"in flag {terminal(row['flag_id'])} (score {row['score']:.0f})", highlight=False
        )


def render_evaluation(console: Console, result: Evaluation, output_format: str) -> None:
    import json

    if output_format == "json":
        payload = {
            "budget": result.budget,
            "threshold": result.threshold,
            "overall": result.overall,
            "per_day": result.per_day.with_columns(result.per_day["day"].cast(str)).to_dicts(),
            "per_scenario": result.per_scenario.to_dicts(),
            "pc_b": result.pc_b.with_columns(result.pc_b["day"].cast(str)).to_dicts(),
            "audit_gaps": result.gaps,
            "false_positives": result.false_positives.to_dicts(),
        }
        print(json.dumps(payload, default=str, indent=1))
        return
    overall = result.overall
    console.print(
        f"[bold]Overall[/] (budget K={result.budget} flags a day, alert threshold "
        f"{result.threshold:.0f})",
    )
    lines = {
        "planted episodes caught within budget": f"{overall['caught_within_budget']} of "
        f"{overall['episodes']} ({_percent(overall['share_caught_within_budget'])})",
        "mean daily precision of the top K": _percent(overall["mean_precision_at_k"]),
        "mean daily R-precision": _fraction(overall["mean_r_precision"]),
        "episode-level ROC AUC": _fraction(overall["episode_roc_auc"]),
        "legitimate accesses flagged": f"{overall['legitimate_accesses_flagged']} of "
        f"{overall['legitimate_accesses']} ({_percent(overall['share_legitimate_flagged'])})",
        "PC B-type episodes, worst rank on their day": str(overall["pc_b_worst_rank"]),
        "flags a day": "n/a"
        if overall["flags_per_day"] is None
        else f"{overall['flags_per_day']:.1f}",
        "legitimate flags in the daily top K": f"{overall['top_k_legitimate']} of "
        f"{overall['top_k_flags']} ({_percent(overall['share_top_k_legitimate'])})",
    }
    if result.gaps is not None:
        gaps = result.gaps
        lines["planted audit gaps caught"] = (
            f"{gaps['gaps_caught']} of {gaps['planted_gaps']} "
            f"({gaps['gaps_caught_as_alerts']} of them as alerts)"
        )
        lines["false audit-gap flags"] = (
            f"{gaps['false_gap_flags']} ({gaps['false_gap_flags_per_day']:.2f} a day)"
        )
    for label, value in lines.items():
        console.print(f"  {label}: {value}", highlight=False)
    for title, frame in (
        ("Per day", result.per_day),
        ("Per scenario", result.per_scenario),
        ("PC B-type episodes", result.pc_b),
        ("Legitimate flags in the daily top K (largest families)", result.false_positives.head(10)),
    ):
        console.print(_frame_table(title, frame, justify="right"))


def _frame_table(title: str, frame: pl.DataFrame, justify: str = "left") -> Table:
    """A small result frame (tens of rows) as a terminal table: output, not pipeline."""
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(terminal(column), justify=justify, overflow="fold")  # type: ignore[arg-type]
    for values in frame.rows():
        table.add_row(*[_cell(v) for v in values])
    return table


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _json_value(value)  # as in the JSON and CSV
    return _text(value)


def render_verify(console: Console, report: VerifyReport) -> None:
    """One line per chain: ok with its head (the hash to publish), or the first broken place."""
    for check in report.checks:
        if check.ok:
            head = check.head or "none (empty)"
            if check.name == "store" and report.current is not None and check.head:
                head = f"g{report.current:06d}:{check.head}"
            line = f"{check.name}: ok, {check.items} link(s), head {head}"
        else:
            line = f"{check.name}: BROKEN: {check.problem}"
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    how = "sizes and row counts" if report.quick else "re-hashed"
    console.print(
        f"{report.files_read} file(s) {how}, {report.bytes_read / 1e6:.1f} MB, "
        f"{report.seconds:.1f}s",
        markup=False,
        highlight=False,
    )
