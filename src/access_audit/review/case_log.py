"""The case log (``audit/cases.jsonl``): assignments and decisions on cases, hash-chained.

Like the review log (``review/log.py``) it holds human decisions, so it lives apart from the stores
the nightly job rebuilds, and recording one makes no store generation. Each line is one event:

- ``assign``: ``assignee`` and ``due`` (a date), by ``analyst``;
- ``decision``: ``status``, ``outcome``, ``purpose`` and ``note``, by ``analyst``, with the
  ``flag_ids`` it was recorded on and the ``review_ids`` of those per-flag decisions in the review
  log (the flags' own state, which `flag` and `explain` show).

Every line has every field (``None`` where it does not apply), plus ``recorded_at`` and the
operating account (``recorded_uid``, ``recorded_login``) as the review log has.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from access_audit.errors import AccessAuditError
from access_audit.ledger import Ledger, utc_text
from access_audit.review.log import AUDIT_FOLDER, TIMESTAMP_FORMAT, operating_account
from access_audit.tables import UTC_DATETIME

CASES_LOG = "cases.jsonl"
ACTIONS = ("assign", "decision")
CASE_LOG_SCHEMA = pl.Schema(
    {
        "case_id": pl.String(),
        "action": pl.String(),
        "recorded_at": UTC_DATETIME,
        "analyst": pl.String(),
        "assignee": pl.String(),
        "due": pl.Date(),
        "status": pl.String(),
        "outcome": pl.String(),
        "purpose": pl.String(),
        "note": pl.String(),
        "flag_ids": pl.List(pl.String()),
        "review_ids": pl.List(pl.String()),
        "recorded_uid": pl.Int64(),
        "recorded_login": pl.String(),
    }
)
"""The case log as a frame (and, in DuckDB, the ``case_log`` view)."""


def case_ledger(home: Path) -> Ledger:
    return Ledger(home / AUDIT_FOLDER / CASES_LOG, "cases")


def case_event(
    case_id: str,
    action: str,
    now: datetime,
    analyst: str,
    *,
    assignee: str | None = None,
    due: date | None = None,
    status: str | None = None,
    outcome: str | None = None,
    purpose: str | None = None,
    note: str | None = None,
    flag_ids: Sequence[str] = (),
    review_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """One line of the case log (the chain fields are added by the ledger)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown case action {action!r}")
    account = operating_account()
    return {
        "case_id": case_id,
        "action": action,
        "recorded_at": utc_text(now),
        "analyst": analyst,
        "assignee": assignee,
        "due": due.isoformat() if due is not None else None,
        "status": status,
        "outcome": outcome,
        "purpose": purpose,
        "note": note,
        "flag_ids": list(flag_ids),
        "review_ids": list(review_ids),
        "recorded_uid": account["uid"],
        "recorded_login": account["login"],
    }


def read_case_log(log: bytes) -> pl.LazyFrame:
    """The case log's complete lines as a frame (``CASE_LOG_SCHEMA``), in the order written;
    repair lines (a torn write moved aside) are left out."""
    text_schema: dict[str, pl.DataType] = {
        name: pl.List(pl.String()) if isinstance(dtype, pl.List) else pl.String()
        for name, dtype in CASE_LOG_SCHEMA.items()
    }
    text_schema["recorded_uid"] = pl.Int64()
    try:
        raw = pl.read_ndjson(io.BytesIO(log), schema=text_schema)
    except pl.exceptions.PolarsError:
        raise AccessAuditError(
            f"{CASES_LOG} has a line that is not JSON: `access-audit verify` names it"
        ) from None
    return (
        raw.lazy()
        .filter(pl.col("case_id").is_not_null())
        .with_columns(
            pl.col("recorded_at").str.to_datetime(
                TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False
            ),
            pl.col("due").str.to_date("%Y-%m-%d", strict=False),
        )
        .cast(CASE_LOG_SCHEMA)  # type: ignore[arg-type]
    )
