"""A Report as text, CSV (section, item, value) or one self-contained HTML page with SVG charts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from access_audit.escape import csv_text, printable
from access_audit.escape import html_text as escape
from access_audit.report import Report
from access_audit.report.charts import bar_chart, timeline

# What a day with no loaded accesses shows instead of a count: never "0 alerts".
NO_DATA = "no data loaded"


def _rows(report: Report) -> list[tuple[str, str, str]]:
    """Every figure of the report as (section, item, value): the CSV, and the text's source."""
    days = report.per_day.height
    rows = [
        ("summary", "period", f"{report.start} to {report.end}"),
        ("summary", "cases raised (alerts grouped per user and subject)", str(report.cases_raised)),
        ("summary", "flags raised (alerts)", str(report.raised)),
        ("summary", "flags reviewed", str(report.reviewed)),
        ("summary", "audit gaps raised (missing audit trail)", str(report.audit_gaps)),
        ("summary", "days with data loaded", f"{report.per_day['loaded'].sum()} of {days}"),
    ]
    rows += [
        ("per_day", str(r["day"]), NO_DATA if r["alerts"] is None else str(r["alerts"]))
        for r in report.per_day.to_dicts()
    ]
    rows += [
        ("case_status", r["status"], str(r["cases"])) for r in report.cases_by_status.to_dicts()
    ]
    rows += [
        ("case_outcome", r["outcome"], str(r["cases"])) for r in report.cases_by_outcome.to_dicts()
    ]
    rows += [("status", r["status"], str(r["flags"])) for r in report.by_status.to_dicts()]
    rows += [("outcome", r["outcome"], str(r["flags"])) for r in report.by_outcome.to_dicts()]
    apsp_total = report.apsp_outcomes["apsp_flags"][0] if report.apsp_outcomes.height else 0
    rows.append(("apsp", "APSP-type cases raised", str(report.apsp_cases)))
    rows.append(("apsp", "APSP-type flags raised", str(apsp_total)))
    rows += [
        ("apsp_outcome", r["outcome"], str(r["flags"])) for r in report.apsp_outcomes.to_dicts()
    ]
    rows += [
        (
            "upheld",
            r["case_id"],
            f"{_days(r)} {r['user_id'] or '(no user)'}: {_case_state(r)}; "
            f"{r['flags']} of its {r['case_flags']} flag(s) upheld ({', '.join(r['flag_ids'])}): "
            f"{r['outcome']}; {r['circumstances']}",
        )
        for r in report.upheld.to_dicts()
    ]
    rows += [
        (
            "training",
            r["user_id"],
            f"last {r['last_training'] or 'never'}; "
            f"{'OVERDUE' if r['overdue'] else 'in date'}; {r['alerts']} alert(s)",
        )
        for r in report.training.to_dicts()
    ]
    return rows


def _days(case: dict[str, Any]) -> str:
    first, last = case["first_day"], case["last_day"]
    return str(first) if first == last else f"{first} to {last}"


def _case_state(case: dict[str, Any]) -> str:
    outcome = f" ({case['case_outcome']})" if case["case_outcome"] else ""
    return f"case {case['case_status']}{outcome}"


def render_text(report: Report) -> str:
    lines = [f"access-audit report, {report.start} to {report.end}", ""]
    current = None
    titles = {
        "summary": "Summary",
        "per_day": f"Alerts per day ('{NO_DATA}': the day's accesses are not in the store, so "
        "its alerts are unknown, not zero)",
        "case_status": "Cases by status (an FOI request counts cases: one per user and "
        "subject, or per user's patterns, within [cases] span_days)",
        "case_outcome": "Closed cases by outcome",
        "status": "Flags by review status",
        "outcome": "Closed flags by outcome",
        "apsp": "Abuse of position for a sexual purpose (APSP-type: a victim or vulnerable "
        "subject AND a contact-type signal; README 'APSP-type')",
        "apsp_outcome": "APSP-type flags by outcome",
        "upheld": "Cases with an upheld flag (each case's own status; the strongest upheld "
        "flag's circumstances)",
        "training": f"Training position of flagged users (overdue after {report.overdue_months} "
        "months)",
    }
    for section, item, value in _rows(report):
        if section != current:
            lines += ["", titles[section]]
            current = section
        lines.append(f"  {printable(item)}: {printable(value)}")
    return "\n".join(lines).replace("\n\n\n", "\n\n").strip() + "\n"


def render_csv(report: Report) -> str:
    """The figures as (section, item, value) rows; ids and circumstances never become formulas."""
    import polars as pl

    schema = {"section": pl.String, "item": pl.String, "value": pl.String}
    return csv_text(pl.DataFrame(_rows(report), schema=schema, orient="row"))


def _table(headers: list[str], rows: list[list[object]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(headers)}">none</td></tr>'
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f0f3f6}.figures td:last-child{text-align:right}
.overdue,.no-data{color:#b03a2e;font-weight:bold}svg{max-width:100%;height:auto}
"""


def _day_ranges(days: list[date]) -> str:
    """Sorted days as runs: "2026-10-18 to 2026-10-20, 2026-10-28"."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(f"{r[0]} to {r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def render_html(report: Report) -> str:
    """One page, no server, no script, no external file: tables and inline SVG charts."""
    days = report.per_day
    per_day = bar_chart(
        "Alerts raised per day",
        [d.strftime("%d %b") for d in days["day"].to_list()],
        days["alerts"].to_list(),
        colour="alert",
        missing=NO_DATA,
    )
    missing = report.days_without_data
    no_data = (
        f'<p class="no-data">No data loaded for {len(missing)} of {days.height} day(s): '
        f"{escape(_day_ranges(missing))}. Their alerts are unknown, not zero.</p>"
        if missing
        else ""
    )
    outcomes = report.by_outcome.filter(report.by_outcome["flags"] > 0)
    outcome_chart = bar_chart(
        "Closed flags by outcome", outcomes["outcome"].to_list(), outcomes["flags"].to_list()
    )
    if report.timeline_user and report.timeline.height:
        user_chart = timeline(
            f"Accesses by {report.timeline_user}, the highest-scored flagged user "
            "(red: unexplained)",
            report.timeline["occurred_at"].to_list(),
            report.timeline["explained"].to_list(),
            (report.timeline["record_type"] + " " + report.timeline["record_id"]).to_list(),
        )
    else:
        user_chart = "<p>No flagged user in this period.</p>"
    summary = _table(
        ["figure", "value"],
        [
            ["Cases raised (alerts grouped per user and subject)", report.cases_raised],
            ["APSP-type cases raised", report.apsp_cases],
        ]
        + [[f"Cases {r['status']}", r["cases"]] for r in report.cases_by_status.to_dicts()]
        + [
            ["Flags raised (alerts)", report.raised],
            ["Flags reviewed", report.reviewed],
            ["Audit gaps raised (missing audit trail)", report.audit_gaps],
        ]
        + [[f"Status: {r['status']}", r["flags"]] for r in report.by_status.to_dicts()],
        "figures",
    )
    outcome_table = _table(
        ["outcome", "cases", "all flags", "APSP-type flags"],
        [
            [a["label"], c["cases"], a["flags"], b["flags"]]
            for a, b, c in zip(
                report.by_outcome.to_dicts(),
                report.apsp_outcomes.to_dicts(),
                report.cases_by_outcome.to_dicts(),
                strict=True,
            )
        ],
        "figures",
    )
    upheld = _table(
        [
            "case",
            "days",
            "user",
            "case status",
            "upheld flags (of the case's)",
            "flag outcomes",
            "circumstances (strongest flag)",
        ],
        [
            [
                r["case_id"],
                _days(r),
                r["user_id"],
                _case_state(r),
                f"{', '.join(r['flag_ids'])} ({r['flags']} of {r['case_flags']})",
                r["outcome"],
                r["circumstances"],
            ]
            for r in report.upheld.to_dicts()
        ],
    )
    training_rows = (
        "".join(
            f'<tr class="{"overdue" if r["overdue"] else ""}"><td>{escape(r["user_id"])}</td>'
            f"<td>{escape(str(r['last_training'] or 'never'))}</td>"
            f"<td>{'overdue' if r['overdue'] else 'in date'}</td><td>{r['alerts']}</td></tr>"
            for r in report.training.to_dicts()
        )
        or '<tr><td colspan="4">none</td></tr>'
    )
    apsp_total = report.apsp_outcomes["apsp_flags"][0] if report.apsp_outcomes.height else 0
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>access-audit report {report.start} to {report.end}</title>
<style>{STYLE}</style></head>
<body>
<h1>access-audit report: {report.start} to {report.end}</h1>
<p>Lookups flagged as possibly made with no legitimate policing purpose, their review and outcome.
Identifiers only: names stay in the records systems.</p>
<h2 id="summary">Flags raised and reviewed</h2>{summary}
{no_data}
{per_day}
<h2 id="outcomes">Outcomes</h2>
<p>APSP-type flags (a victim or vulnerable subject and a contact-type signal: met on duty,
contact details viewed, repeated lookups, or a user-level pattern): {apsp_total}, in
{report.apsp_cases} case(s).</p>
{outcome_table}
{outcome_chart}
<h2 id="upheld">Cases with an upheld flag</h2>{upheld}
<h2 id="training">Training position of flagged users</h2>
<p>Last APSP training; overdue after {report.overdue_months} months or if never recorded.</p>
<table><thead><tr><th>user</th><th>last training</th><th>position</th><th>alerts</th></tr></thead>
<tbody>{training_rows}</tbody></table>
<h2 id="timeline">Access timeline</h2>
{user_chart}
</body></html>
"""
