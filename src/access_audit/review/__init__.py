"""Reviews: analysts' decisions on flags, with the misconduct outcomes forces report.

The statuses and outcomes are data (OUTCOMES, from the categories in the FOI response in
shared/seeds/, plus referral for criminal investigation). History is append-only: a new decision is
a new row, and the latest one is the flag's state.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from access_audit.errors import AccessAuditError, InputError
from access_audit.exprs import fmt
from access_audit.tables import REVIEWS, UTC_DATETIME

STATUSES = ("open", "under_review", "closed")
OUTCOMES: dict[str, str] = {
    "no_case_to_answer": "No case to answer",
    "legitimate_purpose": "Legitimate purpose (e.g. an assignment never recorded)",
    "management_action": "Management action",
    "written_warning": "Written warning",
    "final_written_warning": "Final written warning",
    "reduction_in_rank": "Reduction in rank",
    "dismissed": "Dismissed",
    "would_have_been_dismissed": "Would have been dismissed",
    "would_not_have_been_dismissed": "Would not have been dismissed",
    "referred_for_criminal_investigation": "Referred for criminal investigation",
}
UPHELD = (
    "management_action",
    "written_warning",
    "final_written_warning",
    "reduction_in_rank",
    "dismissed",
    "would_have_been_dismissed",
    "referred_for_criminal_investigation",
)


@dataclass(frozen=True)
class Review:
    review_id: str
    flag_id: str
    status: str
    outcome: str | None
    reviewer: str
    reviewed_at: datetime
    suppress_until: datetime | None


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def decide(
    decisions: pl.DataFrame,
    flags: pl.LazyFrame,
    *,
    suppress_days: int,
    now: datetime,
) -> pl.DataFrame:
    """Check decisions (flag_id, status, outcome, note, reviewer[, purpose]) and make them review
    rows (``tables.REVIEWS``): the one path for a single `review` and a bulk `review_many`.

    Every row is checked first; a bad one fails the whole batch, naming the first. A
    `legitimate_purpose` decision carries the purpose and quiets its pair until `suppress_days`
    from now. Review ids are unique across batches (time, a random batch token, the row)."""
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise AccessAuditError(f"decisions lack column(s) {', '.join(missing)}")
    wanted = _normalised(decisions)
    known = _flags_named(flags, wanted["flag_id"]).select(
        "flag_id", "user_id", "subject_id", known=pl.lit(True)
    )
    checked = (
        wanted.lazy()
        .join(known, on="flag_id", how="left", maintain_order="left")
        .with_columns(problem=_first_problem())
        .collect()
    )
    _raise_for_problems(checked)
    token = f"R{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:10]}"
    legitimate = pl.col("outcome") == "legitimate_purpose"
    return checked.select(
        review_id=fmt("{}-{}", pl.lit(token), pl.int_range(1, pl.len() + 1)),
        flag_id="flag_id",
        user_id="user_id",
        subject_id="subject_id",
        status="status",
        outcome="outcome",
        purpose="purpose",
        note="note",
        reviewer="reviewer",
        reviewed_at=pl.lit(now, dtype=UTC_DATETIME),
        suppress_until=pl.when(legitimate)
        .then(pl.lit(now + timedelta(days=suppress_days), dtype=UTC_DATETIME))
        .otherwise(pl.lit(None, dtype=UTC_DATETIME)),
    ).cast(REVIEWS.schema())  # type: ignore[arg-type]


DECISION_COLUMNS = ("flag_id", "status", "outcome", "note", "reviewer")


def _flags_named(flags: pl.LazyFrame, flag_ids: pl.Series) -> pl.LazyFrame:
    """The flags with these ids, reading only the days the ids name (``F<yyyymmdd>-…``), so a
    review does not scan every stored day."""
    ids = flag_ids.drop_nulls().unique()
    days = ids.str.slice(1, 8).str.to_date("%Y%m%d", strict=False).drop_nulls().unique()
    return flags.filter(
        pl.col("day").is_in(days.implode()) & pl.col("flag_id").is_in(ids.implode())
    )


def _normalised(decisions: pl.DataFrame) -> pl.DataFrame:
    """Text columns, blanks as nulls (the note is kept as written), the default reviewer."""
    frame = decisions
    if "purpose" not in frame.columns:
        frame = frame.with_columns(purpose=pl.lit(None, dtype=pl.String))
    trimmed = ["flag_id", "status", "outcome", "reviewer", "purpose"]
    blank_to_null = [
        pl.col(c).cast(pl.String).str.strip_chars().replace("", None).alias(c) for c in trimmed
    ]
    return frame.select(*blank_to_null, pl.col("note").cast(pl.String).fill_null("")).with_columns(
        pl.col("reviewer").fill_null(default_reviewer())
    )


PROBLEMS: dict[str, str] = {
    "unknown_flag": "no flag {flag}",
    "bad_status": "{status} must be one of {statuses}, not '{given_status}'",
    "bad_outcome": "{outcome} must be one of {outcomes}, not '{given_outcome}'",
    "outcome_before_closing": "an outcome is recorded when closing: {status} must be closed",
    "closing_without_outcome": "closing a flag needs an {outcome}",
    "purpose_missing": "legitimate_purpose needs {purpose}: what the access was for",
    "purpose_not_legitimate": "{purpose} goes only with {outcome} legitimate_purpose",
    "note_missing": "{note} must say why",
}
"""What is wrong with a decision, by problem code: an ``InputError`` template, whose inputs
(``{status}``) read as the CLI's options or the review form's labels."""


def _first_problem() -> pl.Expr:
    """The code (``PROBLEMS``) of the first thing wrong with each decision, in the order a user
    would fix them."""
    status, outcome, purpose = pl.col("status"), pl.col("outcome"), pl.col("purpose")
    legitimate = outcome.fill_null("") == "legitimate_purpose"
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col("known").is_null(), "unknown_flag"),
        (~status.fill_null("").is_in(STATUSES), "bad_status"),
        (outcome.is_not_null() & ~outcome.fill_null("").is_in(list(OUTCOMES)), "bad_outcome"),
        (outcome.is_not_null() & (status != "closed"), "outcome_before_closing"),
        ((status == "closed") & outcome.is_null(), "closing_without_outcome"),
        (legitimate & purpose.is_null(), "purpose_missing"),
        (~legitimate & purpose.is_not_null(), "purpose_not_legitimate"),
        (pl.col("note").str.strip_chars() == "", "note_missing"),
    ]
    expression: pl.Expr = pl.lit(None, dtype=pl.String)
    for failed, code in reversed(checks):
        expression = pl.when(failed).then(pl.lit(code)).otherwise(expression)
    return expression


def _raise_for_problems(checked: pl.DataFrame) -> None:
    bad = checked.filter(pl.col("problem").is_not_null())
    if bad.is_empty():
        return
    first = bad.row(0, named=True)
    values = {
        "flag": first["flag_id"] or "",
        "statuses": ", ".join(STATUSES),
        "given_status": first["status"] or "",
        "outcomes": ", ".join(OUTCOMES),
        "given_outcome": first["outcome"] or "",
    }
    template = PROBLEMS[first["problem"]]
    if checked.height == 1:
        raise InputError(template, **values)
    raise InputError(
        "{count} bad decision(s), nothing recorded; the first, for {flag}: " + template,
        count=bad.height,
        **values,
    )


def apply_suppressions(
    flags: pl.DataFrame,
    reviews: pl.LazyFrame,
    reviewed: pl.LazyFrame,
    not_new_risk: Sequence[str] = (),
) -> pl.DataFrame:
    """A `legitimate_purpose` decision quiets the same user–subject pair until it expires, unless
    the new flag shows a risk the reviewed one did not; either way the flag says so.

    `reviewed` is the stored flags (for the reasons each reviewed flag had when decided)."""
    decisions = (
        reviews.filter(pl.col("outcome") == "legitimate_purpose")
        .join(
            reviewed.select(
                "flag_id",
                known=pl.col("reasons").list.eval(pl.element().struct.field("code")),
            ),
            on="flag_id",
            how="left",
        )
        .group_by("user_id", "subject_id")
        .agg(
            pl.col("review_id", "reviewed_at", "suppress_until", "reviewer", "known")
            .sort_by(["reviewed_at", "review_id"])
            .last(),
            reviewed_flag=pl.col("flag_id").sort_by(["reviewed_at", "review_id"]).last(),
        )
        .collect()
    )
    if decisions.is_empty():
        return flags
    codes = pl.col("reasons").list.eval(pl.element().struct.field("code"))
    matched = flags.join(decisions, on=["user_id", "subject_id"], how="left").with_columns(
        covered=pl.col("review_id").is_not_null()
        & (pl.col("first_access_at") <= pl.col("suppress_until"))
        & (pl.col("flag_id") != pl.col("reviewed_flag")),
        new_risk=codes.list.set_difference(
            pl.concat_list(pl.col("known").fill_null([]), pl.lit(list(not_new_risk)))
        ),
    )
    when = pl.col("reviewed_at").dt.strftime("%Y-%m-%d")
    suppressed = pl.col("covered") & (pl.col("new_risk").list.len() == 0)
    noted = pl.col("covered") & (pl.col("new_risk").list.len() > 0)
    return matched.with_columns(
        alert=pl.when(suppressed).then(False).otherwise(pl.col("alert")),
        note=pl.when(suppressed)
        .then(
            fmt(
                "suppressed: legitimate purpose recorded {} by {} ({})",
                when,
                "reviewer",
                "review_id",
            )
        )
        .when(noted)
        .then(
            fmt(
                "legitimate purpose recorded {} ({}), but new risk: {}",
                when,
                "review_id",
                pl.col("new_risk").list.join(", "),
            )
        )
        .otherwise(pl.col("note")),
    ).select(flags.columns)
