"""Turning typed results into terminal output. Counts, reasons and identifiers: never names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from access_audit.schema import TABLES_BY_NAME

if TYPE_CHECKING:
    import polars as pl

    from access_audit.workspace import IngestReport, WorkspaceStatus


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
            table.add_row(drop.drop_id, "(nothing new)", *[""] * 7)
        for load in drop.tables.values():
            table.add_row(
                drop.drop_id,
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
            err_console.print(f"warning: {drop.drop_id}/{name}: not an export file; ignored")
        if drop.skipped_files:
            console.print(
                f"{drop.drop_id}: {len(drop.skipped_files)} file(s) already loaded, skipped"
            )
    if reasons:
        rejections = Table(title="Rejected rows by table and reason")
        rejections.add_column("table: reason")
        rejections.add_column("rows", justify="right")
        for key, count in sorted(reasons.items()):
            rejections.add_row(key, str(count))
        console.print(rejections)
        console.print("List them with `access-audit rejected`.")
    for failure in report.failed:
        err_console.print(
            f"[bold red]failed:[/] {failure.error} (nothing from this drop was loaded)",
            highlight=False,
            soft_wrap=True,
        )
    loaded = sum(d.rows_loaded for d in report.loaded)
    console.print(
        f"{len(report.loaded)} drop(s) loaded, {len(report.failed)} failed; "
        f"{loaded} row(s) added; generation {report.generation}"
    )


def render_status(console: Console, status: WorkspaceStatus) -> None:
    console.print(f"home: {status.home}", highlight=False, soft_wrap=True)
    console.print(f"generation: {status.generation}")
    console.print(f"database: {status.database}", highlight=False, soft_wrap=True)
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
    if column is not None and column.personal and not show_values:
        return "(personal data: --show-values)"
    return _text(row["raw_value"])


def render_generate_result(console: Console, result: Any) -> None:
    table = Table(title=f"Synthetic force in {result.out}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in result.rows.items():
        table.add_row(name, str(rows))
    console.print(table)
    console.print(
        f"{len(result.drops)} drop(s), {result.episodes} planted misuse episode(s) "
        f"(truth: {result.truth_path}); {result.seconds:.1f}s"
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)
