"""`access-audit report`: what a force must answer in an FOI request like the seed's.

Flags raised, reviewed and by outcome; outcomes of APSP-type flags; one line of circumstances per
upheld case; the training position of flagged users. `build_report` is pure frames in, a typed
`Report` out; `formats.py` turns it into text, CSV or a self-contained HTML page.

A day for which no accesses are loaded is not a day without alerts: `per_day` marks it (`loaded`
false, `alerts` null), and a period with no loaded data at all is refused unless asked for, so an
empty or half-loaded home cannot answer "0 flags" to an FOI request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import polars as pl

from access_audit.errors import AccessAuditError
from access_audit.review import OUTCOMES, UPHELD
from access_audit.review.case_log import CASE_LOG_SCHEMA
from access_audit.review.cases import case_members, case_summaries
from access_audit.review.queue import current_reviews
from access_audit.score.rules import Rules


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    raised: int
    reviewed: int
    by_status: pl.DataFrame
    by_outcome: pl.DataFrame
    apsp_outcomes: pl.DataFrame
    upheld: pl.DataFrame
    training: pl.DataFrame
    per_day: pl.DataFrame
    """day, loaded (accesses are stored for it), alerts (null when nothing is loaded)."""
    timeline_user: str | None
    timeline: pl.DataFrame
    overdue_months: int
    audit_gaps: int = 0
    """Audit-gap alerts raised: windows where the audit trail itself went missing (issue 7)."""
    cases_raised: int = 0
    """Cases with an alert raised in the period (review/cases.py): what an FOI request counts."""
    cases_by_status: pl.DataFrame = field(default_factory=pl.DataFrame)
    """status, cases: those cases by their status now."""
    cases_by_outcome: pl.DataFrame = field(default_factory=pl.DataFrame)
    """outcome, label, cases: the closed ones by outcome."""
    apsp_cases: int = 0
    """Cases holding an APSP-type alert raised in the period."""

    @property
    def days_without_data(self) -> list[date]:
        return self.per_day.filter(~pl.col("loaded"))["day"].to_list()


def _outcome_table(flags: pl.DataFrame) -> pl.DataFrame:
    closed = flags.filter(pl.col("status") == "closed")
    counts = closed.group_by("outcome").agg(flags=pl.len())
    return (
        pl.DataFrame({"outcome": list(OUTCOMES), "label": list(OUTCOMES.values())})
        .join(counts, on="outcome", how="left")
        .with_columns(pl.col("flags").fill_null(0).cast(pl.Int64))
    )


def _alerts_per_day(
    start: date, end: date, raised: pl.DataFrame, loaded_days: pl.DataFrame
) -> pl.DataFrame:
    """Every day of the period: whether data is loaded for it, and its alerts (null if not)."""
    return (
        pl.DataFrame({"day": pl.date_range(start, end, eager=True)})
        .join(raised.group_by("day").agg(alerts=pl.len()), on="day", how="left")
        .with_columns(loaded=pl.col("day").is_in(loaded_days["day"].implode()))
        .select(
            "day",
            "loaded",
            alerts=pl.when(pl.col("loaded") | pl.col("alerts").is_not_null())
            .then(pl.col("alerts").fill_null(0))
            .cast(pl.Int64),
        )
    )


def build_report(
    start: date,
    end: date,
    flags: pl.LazyFrame,
    reviews: pl.LazyFrame,
    training: pl.LazyFrame,
    events: pl.LazyFrame,
    explanations: pl.LazyFrame,
    rules: Rules,
    *,
    allow_empty: bool = False,
    case_flags: pl.LazyFrame | None = None,
    cases: pl.LazyFrame | None = None,
) -> Report:
    """The report for alerts raised on days start..end (inclusive). Refused when no accesses are
    loaded for any of those days, unless `allow_empty`.

    `case_flags` and `cases` are the home's case membership and case states
    (`Workspace.cases`); without them, flags are grouped with the default span and no case has
    been assigned or decided."""
    settings = rules.reports
    loaded_days = (
        events.filter(pl.col("day").is_between(start, end)).select(pl.col("day").unique()).collect()
    )
    if loaded_days.is_empty() and not allow_empty:
        raise AccessAuditError(
            f"no data is loaded for any day from {start} to {end}, so this report would say "
            "0 flags without having looked; load the drops first, or pass --allow-empty"
        )
    raised = (
        flags.filter(pl.col("day").is_between(start, end) & pl.col("alert"))
        .join(current_reviews(reviews), on="flag_id", how="left")
        .with_columns(
            status=pl.col("status").fill_null("open"),
            codes=pl.col("reasons").list.eval(pl.element().struct.field("code")),
        )
        .collect()
    )
    apsp = raised.filter(apsp_type(raised, settings))
    by_status = (
        pl.DataFrame({"status": ["open", "under_review", "closed"]})
        .join(raised.group_by("status").agg(flags=pl.len()), on="status", how="left")
        .with_columns(pl.col("flags").fill_null(0).cast(pl.Int64))
    )
    course = settings["training_course"]
    months = int(settings["training_overdue_months"])
    cutoff = end - timedelta(days=round(months * 30.44))
    last_course = (
        training.filter(pl.col("course") == course)
        .group_by("user_id")
        .agg(last_training=pl.col("completed_at").max())
    )
    # a system's audit gap has no user: it has no training position and no timeline
    with_user = raised.filter(pl.col("user_id").is_not_null())
    flagged_users = with_user.group_by("user_id").agg(alerts=pl.len()).lazy()
    training_position = (
        flagged_users.join(last_course, on="user_id", how="left")
        .with_columns(
            overdue=pl.col("last_training").is_null() | (pl.col("last_training") < cutoff)
        )
        .sort(["overdue", "alerts", "user_id"], descending=[True, True, False])
        .collect()
    )
    per_day = _alerts_per_day(start, end, raised, loaded_days)
    top_user = (
        with_user.group_by("user_id")
        .agg(pl.col("score").max())
        .sort("score", descending=True)["user_id"]
        .head(1)
        .to_list()
    )
    timeline = pl.DataFrame()
    if top_user:
        keys = ["system", "event_id"]
        timeline = (
            events.filter(
                (pl.col("user_id") == top_user[0])
                & pl.col("day").is_between(start, end)
                & pl.col("record_id").is_not_null()
            )
            .select(*keys, "occurred_at", "record_type", "record_id")
            .join(
                explanations.select(keys).unique().with_columns(explained=pl.lit(True)),
                on=keys,
                how="left",
            )
            .with_columns(pl.col("explained").fill_null(False))
            .sort("occurred_at")
            .collect()
        )
    if case_flags is None or cases is None:
        case_flags = case_members(flags, reviews, DEFAULT_CASE_SPAN_DAYS)
        cases = case_summaries(case_flags, pl.LazyFrame(schema=CASE_LOG_SCHEMA), end)
    case_counts = _case_counts(raised, apsp, case_flags, cases)
    upheld = _upheld_cases(raised, case_flags, cases)
    return Report(
        start=start,
        end=end,
        raised=raised.height,
        reviewed=int((raised["status"] != "open").sum()),
        by_status=by_status,
        by_outcome=_outcome_table(raised),
        apsp_outcomes=_outcome_table(apsp).with_columns(
            apsp_flags=pl.lit(apsp.height, dtype=pl.Int64)
        ),
        upheld=upheld,
        training=training_position,
        per_day=per_day,
        timeline_user=top_user[0] if top_user else None,
        timeline=timeline,
        overdue_months=months,
        audit_gaps=raised.filter(pl.col("kind") == "audit_gap").height,
        **case_counts,
    )


DEFAULT_CASE_SPAN_DAYS = 30


def apsp_type(raised: pl.DataFrame, settings: dict[str, Any]) -> pl.Expr:
    """Which alerts are APSP-type ([reports] in score/rules.toml): the subject is marked by one
    of `apsp_subject_codes` (a victim, a vulnerable person) AND there is a contact-type signal,
    one of `apsp_contact_codes` on the alert itself or an alert of `apsp_pattern_codes` (a
    user-level pattern) for the same user among `raised`. A victim lookup alone is not."""

    def has_any(codes: list[str]) -> pl.Expr:
        return pl.col("codes").list.set_intersection(pl.lit(codes)).list.len() > 0

    patterned = raised.filter(has_any(list(settings["apsp_pattern_codes"])))["user_id"]
    return has_any(list(settings["apsp_subject_codes"])) & (
        has_any(list(settings["apsp_contact_codes"]))
        | pl.col("user_id").is_in(patterned.drop_nulls().unique().implode())
    )


def _upheld_cases(
    raised: pl.DataFrame, case_flags: pl.LazyFrame, cases: pl.LazyFrame
) -> pl.DataFrame:
    """One row per case holding an alert of the period whose flag review upheld it: its days,
    user and subject, the case's own status and outcome (a flag can be upheld while its case is
    still open), its upheld flags and the circumstances of the strongest (an FOI request counts
    cases)."""
    upheld = (
        raised.lazy()
        .filter(pl.col("outcome").is_in(UPHELD))
        .join(case_flags.select("flag_id", "case_id"), on="flag_id", how="left")
        # a flag outside every case (none today: every alert is in one) stands for itself
        .with_columns(pl.col("case_id").fill_null(pl.col("flag_id")))
        .sort("score", "flag_id", descending=[True, False])
    )
    states = cases.select(
        "case_id", case_status="status", case_outcome="outcome", case_flags="flags"
    )
    return (
        upheld.group_by("case_id", maintain_order=True)
        .agg(
            first_day=pl.col("day").min(),
            last_day=pl.col("day").max(),
            user_id=pl.col("user_id").first(),
            subject_ids=pl.col("subject_id").drop_nulls().unique().sort(),
            flags=pl.len(),
            flag_ids=pl.col("flag_id").sort(),
            outcome=pl.col("outcome").unique().sort().str.join(", "),
            circumstances=pl.col("reasons")
            .first()
            .list.head(3)
            .list.eval(pl.element().struct.field("text"))
            .list.join("; "),
        )
        .join(states, on="case_id", how="left")
        .with_columns(
            case_status=pl.col("case_status").fill_null("open"),
            case_flags=pl.col("case_flags").fill_null(pl.col("flags")),
        )
        .sort("first_day", "case_id")
        .collect()
    )


def _case_counts(
    raised: pl.DataFrame, apsp: pl.DataFrame, case_flags: pl.LazyFrame, cases: pl.LazyFrame
) -> dict[str, Any]:
    """The report's case figures: cases with an alert raised in the period, by status and
    outcome, and those holding an APSP-type alert."""
    membership = case_flags.select("flag_id", "case_id")
    raised_cases = (
        raised.lazy()
        .join(membership, on="flag_id")
        .select("case_id")
        .unique()
        .join(cases.select("case_id", "status", "outcome"), on="case_id", how="left")
        .collect()
    )
    apsp_cases = apsp.lazy().join(membership, on="flag_id").select("case_id").unique().collect()
    by_status = (
        pl.DataFrame({"status": ["open", "under_review", "closed"]})
        .join(raised_cases.group_by("status").agg(cases=pl.len()), on="status", how="left")
        .with_columns(pl.col("cases").fill_null(0).cast(pl.Int64))
    )
    closed = raised_cases.filter(pl.col("status") == "closed")
    by_outcome = (
        pl.DataFrame({"outcome": list(OUTCOMES), "label": list(OUTCOMES.values())})
        .join(closed.group_by("outcome").agg(cases=pl.len()), on="outcome", how="left")
        .with_columns(pl.col("cases").fill_null(0).cast(pl.Int64))
    )
    return {
        "cases_raised": raised_cases.height,
        "cases_by_status": by_status,
        "cases_by_outcome": by_outcome,
        "apsp_cases": apsp_cases.height,
    }
