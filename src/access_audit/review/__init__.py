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
from datetime import UTC, datetime, timedelta

import polars as pl

from access_audit.errors import AccessAuditError
from access_audit.store import Transaction
from access_audit.tables import REVIEWS, scan_stored

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


def record_review(
    txn: Transaction,
    flag_id: str,
    *,
    status: str,
    outcome: str | None,
    note: str,
    reviewer: str | None,
    purpose: str | None = None,
    suppress_days: int = 90,
    now: datetime | None = None,
) -> Review:
    """Append one decision on `flag_id` (which must exist) to the review history."""
    if status not in STATUSES:
        raise AccessAuditError(f"--status must be one of {', '.join(STATUSES)}, not '{status}'")
    if outcome is not None and outcome not in OUTCOMES:
        raise AccessAuditError(f"--outcome must be one of {', '.join(OUTCOMES)}, not '{outcome}'")
    if outcome is not None and status != "closed":
        raise AccessAuditError("an outcome is recorded when closing: use --status closed")
    if status == "closed" and outcome is None:
        raise AccessAuditError("closing a flag needs an --outcome")
    if outcome == "legitimate_purpose" and not (purpose or note.strip()):
        raise AccessAuditError("legitimate_purpose needs the purpose: give --purpose or --note")
    if not note.strip():
        raise AccessAuditError("--note must say why")
    flag = (
        scan_stored(txn.path, "flags")
        .filter(pl.col("flag_id") == flag_id)
        .select("flag_id", "user_id", "subject_id")
        .head(1)
        .collect()
    )
    if flag.is_empty():
        raise AccessAuditError(f"no flag {flag_id}")
    now = now or datetime.now(UTC)
    suppress = now + timedelta(days=suppress_days) if outcome == "legitimate_purpose" else None
    review = Review(
        review_id=f"R{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}",
        flag_id=flag_id,
        status=status,
        outcome=outcome,
        reviewer=reviewer or default_reviewer(),
        reviewed_at=now,
        suppress_until=suppress,
    )
    row = pl.DataFrame(
        {
            "review_id": [review.review_id],
            "flag_id": [flag_id],
            "user_id": [flag["user_id"][0]],
            "subject_id": [flag["subject_id"][0]],
            "status": [status],
            "outcome": [outcome],
            "purpose": [purpose],
            "note": [note],
            "reviewer": [review.reviewer],
            "reviewed_at": [now],
            "suppress_until": [suppress],
        },
        schema=REVIEWS.schema(),
    )
    txn.append("reviews", row)
    return review


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
    from access_audit.score.rules import fmt

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


def record_reviews(txn: Transaction, decisions: pl.DataFrame, now: datetime | None = None) -> int:
    """Append many decisions (flag_id, status, outcome, note, reviewer[, purpose]) at once; every
    row is checked first and a bad one fails the whole batch, naming it."""
    required = ["flag_id", "status", "outcome", "note", "reviewer"]
    missing = [c for c in required if c not in decisions.columns]
    if missing:
        raise AccessAuditError(f"decisions lack column(s) {', '.join(missing)}")
    checked = decisions.with_columns(
        problem=pl.when(~pl.col("status").is_in(STATUSES))
        .then(pl.lit("unknown status"))
        .when(pl.col("outcome").is_not_null() & ~pl.col("outcome").is_in(list(OUTCOMES)))
        .then(pl.lit("unknown outcome"))
        .when((pl.col("status") == "closed") != pl.col("outcome").is_not_null())
        .then(pl.lit("an outcome goes with status closed, and only then"))
        .when(pl.col("note").fill_null("").str.strip_chars() == "")
        .then(pl.lit("no note"))
    )
    bad = checked.filter(pl.col("problem").is_not_null())
    if not bad.is_empty():
        first = bad.row(0, named=True)
        raise AccessAuditError(
            f"{bad.height} bad decision(s), e.g. {first['flag_id']}: {first['problem']}"
        )
    flags = (
        scan_stored(txn.path, "flags").select("flag_id", "user_id", "subject_id").unique("flag_id")
    )
    joined = checked.lazy().join(flags, on="flag_id", how="left").collect()
    unknown = joined.filter(pl.col("user_id").is_null())
    if not unknown.is_empty():
        raise AccessAuditError(f"no flag {unknown['flag_id'][0]} ({unknown.height} unknown)")
    now = now or datetime.now(UTC)
    rows = (
        joined.with_columns(
            review_id=pl.format("R{}-{}", pl.lit(f"{now:%Y%m%d%H%M%S}"), pl.int_range(pl.len())),
            purpose=pl.col("purpose") if "purpose" in joined.columns else pl.lit(None, pl.String),
            reviewed_at=pl.lit(now),
            suppress_until=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
        )
        .select(REVIEWS.schema().names())
        .cast(REVIEWS.schema())
    )  # type: ignore[arg-type]
    txn.append("reviews", rows)
    return rows.height
