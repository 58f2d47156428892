"""The review queue: flags selected by the time of their accesses, with their events, reasons and
current review state; and the detail of one flag or one access. Pure frame functions."""

from __future__ import annotations

from datetime import datetime

import polars as pl

# Times in every machine-readable output (flag JSON and CSV, explain JSON): ISO 8601, UTC, "Z".
ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"

QUEUE_COLUMNS = [
    "flag_id",
    "kind",
    "user_id",
    "person_id",
    "subject_type",
    "subject_id",
    "score",
    "rule_score",
    "alert",
    "first_access_at",
    "last_access_at",
    "day",
    "events",
    "reasons",
    "status",
    "outcome",
    "note",
    "review_note",
    "cleared_at",
    "model_version",
    "rules_version",
]


def current_reviews(reviews: pl.LazyFrame) -> pl.LazyFrame:
    """Each flag's latest decision (review history is append-only), with its note as
    ``review_note`` (a flag's own ``note`` is the system's)."""
    latest = ["reviewed_at", "review_id"]
    return reviews.group_by("flag_id").agg(
        pl.col("status", "outcome", "reviewed_at", "reviewer").sort_by(latest).last(),
        review_note=pl.col("note").sort_by(latest).last(),
    )


def select_flags(
    flags: pl.LazyFrame,
    flag_events: pl.LazyFrame,
    reviews: pl.LazyFrame,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    min_score: float | None = None,
    status: str | None = None,
    user: str | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Flags whose accesses fall in [since, until), best first, with events and review state;
    only `user`'s flags when given."""
    selected = flags
    if user is not None:
        selected = selected.filter(pl.col("user_id") == user)
    if since is not None:
        selected = selected.filter(pl.col("last_access_at") >= since)
    if until is not None:
        selected = selected.filter(pl.col("first_access_at") < until)
    if min_score is not None:
        selected = selected.filter(pl.col("score") >= min_score)
    selected = selected.join(current_reviews(reviews), on="flag_id", how="left").with_columns(
        status=pl.col("status").fill_null("open")
    )
    if status is not None:
        selected = selected.filter(pl.col("status") == status)
    # ties (a learned model's saturated scores) fall back to the rules' score
    selected = selected.sort(
        ["score", "rule_score", "last_access_at", "flag_id"], descending=[True, True, True, False]
    )
    if limit is not None:
        selected = selected.head(limit)
    chosen = selected.collect()
    events = (
        flag_events.join(chosen.lazy().select("flag_id"), on="flag_id", how="semi")
        .sort("system", "event_id")
        .group_by("flag_id")
        .agg(events=pl.struct("system", "event_id"))
        .collect()
    )
    return chosen.join(events, on="flag_id", how="left", maintain_order="left").select(
        QUEUE_COLUMNS
    )


def flag_records(queue: pl.DataFrame) -> list[dict[str, object]]:
    """The queue as JSON-ready dicts (timestamps as ISO 8601 text)."""
    return queue.with_columns(
        pl.col("first_access_at", "last_access_at", "cleared_at").dt.strftime(ISO_UTC),
        pl.col("day").cast(pl.String),
    ).to_dicts()


def flat_flags(queue: pl.DataFrame) -> pl.DataFrame:
    """The queue with one text value per cell, for CSV: times as ISO 8601 with `Z` (as in the
    JSON), events as `system:event_id` separated by spaces, reasons' texts joined by `; `."""
    return queue.with_columns(
        pl.col("first_access_at", "last_access_at", "cleared_at").dt.strftime(ISO_UTC),
        events=pl.col("events")
        .list.eval(
            pl.concat_str(
                pl.element().struct.field("system"),
                pl.lit(":"),
                pl.element().struct.field("event_id"),
            )
        )
        .list.join(" "),
        reasons=pl.col("reasons").list.eval(pl.element().struct.field("text")).list.join("; "),
    )
