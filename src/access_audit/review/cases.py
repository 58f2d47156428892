"""Cases: an analyst's unit of work, grouping the flags that are one story. Pure frame functions.

A case holds one user's flags on one subject, or one user's user-level flags (patterns), from the
day of the first such flag for ``[cases] span_days`` days; the next flag after that span starts
the next case. Membership is derived, never stored: the same flags and decisions always give the
same cases, so re-running changes nothing, and a flag raised by a later nightly run joins the case
whose span it falls in. A case's id names its key and the first day of its span:

- ``C20261128-U00141-person:P0001421``: user ``U00141``'s flags on person ``P0001421``;
- ``C20261120-U00080-user``: user ``U00080``'s user-level (pattern) flags;
- ``C20261130--system:RMS``: a flag with no user (a system's audit gap).

Each part is encoded as in flag ids (``%`` and ``-`` written ``%25`` and ``%2D``). A flag belongs
to a case if it is an alert, was an alert until a late explanation cleared it, or has a decision:
so a case keeps its flags (and its id) when one is cleared.

What a case *is* (assignee, due date, status, outcome) lives in the case log
(``audit/cases.jsonl``, ``review/case_log.py``): a decision on a case is recorded on every one of
its flags through the review path, and once on the case, with the flags it covered. A case closed
before a later flag joined it, or with one of its flags reopened by a flag review, is open again
(``reopened``) until that flag is decided (closed) too.

``sql/40_cases.sql`` defines the same membership for the analysts' database (the ``case_flags``
and ``cases`` views); tests/test_cases.py holds the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from access_audit.exprs import fmt
from access_audit.review.queue import QUEUE_COLUMNS, current_reviews

CASE_KEY = ["user_id", "subject_type", "subject_id"]
USER_LEVEL = "user"
"""The last part of a user-level case's id (its flags have no subject)."""

CASE_FLAG_COLUMNS = [
    "case_id",
    "window_start",
    "window_end",
    *[c for c in QUEUE_COLUMNS if c != "events"],
]
CASE_COLUMNS = [
    "case_id",
    "user_id",
    "subject_type",
    "subject_id",
    "window_start",
    "window_end",
    "status",
    "outcome",
    "assignee",
    "due",
    "overdue",
    "flags",
    "alerts",
    "open_flags",
    "undecided_flags",
    "reopened",
    "max_score",
    "first_access_at",
    "last_access_at",
    "flag_ids",
    "assigned_at",
    "decided_at",
    "decided_by",
    "note",
]


@dataclass(frozen=True)
class CaseDetail:
    """One case: its summary row (``CASE_COLUMNS``), its flags and its history."""

    case: dict[str, object]
    flags: pl.DataFrame
    history: pl.DataFrame


def id_part(column: str) -> pl.Expr:
    """An id as one part of a case id, encoded as flag ids' parts are (``%25``, ``%2D``)."""
    return (
        pl.col(column)
        .str.replace_all("%", "%25", literal=True)
        .str.replace_all("-", "%2D", literal=True)
    )


def case_members(flags: pl.LazyFrame, reviews: pl.LazyFrame, span_days: int) -> pl.LazyFrame:
    """The flags that belong to cases, each with its ``case_id`` and span and its review state
    (``status``, ``outcome``, ``review_note``), columns ``CASE_FLAG_COLUMNS``."""
    anchor = pl.col("day").min().over(CASE_KEY)
    windows_in = (pl.col("day") - anchor).dt.total_days() // span_days
    subject = (
        pl.when(pl.col("subject_type").is_null() & pl.col("subject_id").is_null())
        .then(pl.lit(USER_LEVEL))
        .otherwise(
            fmt(
                "{}:{}",
                id_part("subject_type").fill_null(""),
                id_part("subject_id").fill_null(""),
            )
        )
    )
    return (
        flags.join(current_reviews(reviews), on="flag_id", how="left")
        .filter(
            pl.col("alert") | pl.col("cleared_at").is_not_null() | pl.col("status").is_not_null()
        )
        .with_columns(
            status=pl.col("status").fill_null("open"),
            window_start=anchor + pl.duration(days=windows_in * span_days),
        )
        .with_columns(
            window_end=pl.col("window_start") + pl.duration(days=span_days - 1),
            case_id=fmt(
                "C{}-{}-{}",
                pl.col("window_start").dt.strftime("%Y%m%d"),
                id_part("user_id").fill_null(""),
                subject,
            ),
        )
        .select(CASE_FLAG_COLUMNS)
        .sort("case_id", "day", "flag_id")
    )


def case_summaries(members: pl.LazyFrame, log: pl.LazyFrame, today: date) -> pl.LazyFrame:
    """One row per case (``CASE_COLUMNS``): its flags' counts and span, its latest assignment and
    decision from the case log, and its status; open and under-review cases first, then by their
    strongest flag."""
    grouped = members.group_by("case_id").agg(
        pl.col("user_id", "subject_type", "subject_id", "window_start", "window_end").first(),
        flags=pl.len().cast(pl.Int64),
        alerts=pl.col("alert").sum().cast(pl.Int64),
        open_flags=(pl.col("status") != "closed").sum().cast(pl.Int64),
        max_score=pl.col("score").max(),
        first_access_at=pl.col("first_access_at").min(),
        last_access_at=pl.col("last_access_at").max(),
        flag_ids=pl.col("flag_id").sort(),
    )
    ordered = log.with_row_index("_line")
    assignment = (
        ordered.filter(pl.col("action") == "assign")
        .group_by("case_id")
        .agg(
            pl.col("assignee", "due").sort_by("_line").last(),
            assigned_at=pl.col("recorded_at").sort_by("_line").last(),
        )
    )
    decision = (
        ordered.filter(pl.col("action") == "decision")
        .group_by("case_id")
        .agg(
            pl.col("outcome", "note").sort_by("_line").last(),
            decided_status=pl.col("status").sort_by("_line").last(),
            decided_flags=pl.col("flag_ids").sort_by("_line").last(),
            decided_at=pl.col("recorded_at").sort_by("_line").last(),
            decided_by=pl.col("analyst").sort_by("_line").last(),
        )
    )
    undecided = (
        pl.col("flag_ids")
        .list.set_difference(
            pl.col("decided_flags").fill_null(pl.lit([], dtype=pl.List(pl.String)))
        )
        .list.len()
        .cast(pl.Int64)
    )
    # closed, then a later flag joined it or one of its flags was reopened by a flag review
    reopened = (pl.col("decided_status") == "closed") & (
        (pl.col("undecided_flags") > 0) | (pl.col("open_flags") > 0)
    )
    status = (
        pl.when(pl.col("decided_status").is_null() | pl.col("reopened"))
        .then(pl.lit("open"))
        .otherwise(pl.col("decided_status"))
    )
    return (
        grouped.join(assignment, on="case_id", how="left")
        .join(decision, on="case_id", how="left")
        .with_columns(undecided_flags=undecided)
        .with_columns(reopened=reopened.fill_null(False))
        .with_columns(status=status)
        .with_columns(
            overdue=(pl.col("due") < today) & (pl.col("status") != "closed"),
        )
        .with_columns(pl.col("overdue").fill_null(False))
        .sort(
            [pl.col("status") == "closed", "max_score", "case_id"],
            descending=[False, True, False],
        )
        .select(CASE_COLUMNS)
    )


def select_cases(
    summaries: pl.LazyFrame,
    *,
    status: str | None = None,
    assignee: str | None = None,
    overdue: bool = False,
    limit: int | None = None,
) -> pl.LazyFrame:
    """Cases in one status, assigned to one analyst, overdue; at most ``limit``."""
    chosen = summaries
    if status is not None:
        chosen = chosen.filter(pl.col("status") == status)
    if assignee is not None:
        chosen = chosen.filter(pl.col("assignee") == assignee)
    if overdue:
        chosen = chosen.filter("overdue")
    return chosen.head(limit) if limit is not None else chosen


def case_decisions(
    flag_ids: list[str],
    *,
    status: str,
    outcome: str | None,
    note: str,
    reviewer: str | None,
    purpose: str | None,
) -> pl.DataFrame:
    """One review decision per flag of a case, for ``review.decide`` (the path `review` takes)."""
    return pl.DataFrame({"flag_id": flag_ids}, schema={"flag_id": pl.String()}).with_columns(
        status=pl.lit(status, dtype=pl.String),
        outcome=pl.lit(outcome, dtype=pl.String),
        note=pl.lit(note, dtype=pl.String),
        reviewer=pl.lit(reviewer, dtype=pl.String),
        purpose=pl.lit(purpose, dtype=pl.String),
    )


def case_records(summaries: pl.DataFrame) -> list[dict[str, object]]:
    """Cases as JSON-ready dicts: times ISO 8601 in UTC with ``Z``, days as dates."""
    from access_audit.review.queue import ISO_UTC

    return summaries.with_columns(
        pl.col("first_access_at", "last_access_at", "assigned_at", "decided_at").dt.strftime(
            ISO_UTC
        ),
        pl.col("window_start", "window_end", "due").cast(pl.String),
    ).to_dicts()


def flat_cases(summaries: pl.DataFrame) -> pl.DataFrame:
    """Cases with one text value per cell, for CSV: times as in the JSON, flag ids joined by
    spaces."""
    from access_audit.review.queue import ISO_UTC

    return summaries.with_columns(
        pl.col("first_access_at", "last_access_at", "assigned_at", "decided_at").dt.strftime(
            ISO_UTC
        ),
        flag_ids=pl.col("flag_ids").list.join(" "),
    )
