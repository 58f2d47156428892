"""The budget queue: one entry per user (or per subject) a day, strongest evidence first."""

from __future__ import annotations

from datetime import date

import polars as pl

from access_audit.evaluate import evaluate
from access_audit.review.grouping import budget_queue

DAY = date(2026, 11, 20)


def _flags(rows: list[tuple[str, str, str | None, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "flag_id": [r[0] for r in rows],
            "user_id": [r[1] for r in rows],
            "kind": ["episode" if r[2] else "pattern" for r in rows],
            "subject_type": ["person" if r[2] else None for r in rows],
            "subject_id": [r[2] for r in rows],
            "score": [r[3] for r in rows],
            "rule_score": [r[3] for r in rows],
            "alert": [r[3] >= 60 for r in rows],
            "reasons": [[{"code": "unexplained", "text": "t", "weight": 1.0}] for _ in rows],
            "day": [DAY] * len(rows),
        }
    )


FLAGS = _flags(
    [
        ("a1", "A", "P1", 90.0),
        ("a2", "A", "P2", 85.0),
        ("a3", "A", "P3", 80.0),
        ("c1", "C", "X", 75.0),
        ("b1", "B", "P9", 70.0),
        ("e1", "E", None, 65.0),  # a user-level pattern flag: no subject
        ("d1", "D", "X", 60.0),
    ]
)


def test_one_user_takes_one_place_and_a_crowd_subject_one_place() -> None:
    queue = budget_queue(FLAGS.lazy()).collect()
    entries = queue.select("flag_id", "entry_id", "entry_rank", "rank_in_entry").rows()
    assert entries == [
        ("a1", "a1", 1, 1),
        ("a2", "a1", 1, 2),
        ("a3", "a1", 1, 3),
        ("c1", "c1", 2, 1),
        ("d1", "c1", 2, 2),
        ("b1", "b1", 3, 1),
        ("e1", "e1", 4, 1),
    ]


def test_flags_with_no_user_each_keep_their_own_entry() -> None:
    """An audit gap has no user: it must reach the grouped queue, once per gap, never merged."""
    gaps = _flags([("g1", "A", None, 95.0), ("g2", "A", None, 50.0)]).with_columns(
        user_id=pl.lit(None, dtype=pl.String)
    )
    queue = budget_queue(pl.concat([FLAGS, gaps]).lazy()).collect()
    assert queue.height == FLAGS.height + 2
    entries = dict(queue.select("flag_id", "entry_id").rows())
    assert entries["g1"] == "g1"
    assert entries["g2"] == "g2"
    assert queue.filter(pl.col("flag_id") == "g1")["entry_rank"].item() == 1


def test_grouped_evaluation_counts_entries_against_the_budget() -> None:
    events = pl.DataFrame(
        {
            "system": ["RMS"] * 7,
            "event_id": ["a1", "a2", "a3", "c1", "b1", "e1", "d1"],
            "day": [DAY] * 7,
        }
    )
    flag_events = events.select("system", "event_id", flag_id="event_id")
    truth = pl.DataFrame(
        {
            "episode_id": ["EP1"],
            "scenario": ["neighbour_dispute"],
            "user_id": ["B"],
            "person_id": ["P9"],
            "system": ["RMS"],
            "event_id": ["b1"],
        }
    )
    by_flag = evaluate(FLAGS, flag_events, events, truth, budget=3)
    by_entry = evaluate(FLAGS, flag_events, events, truth, budget=3, grouped=True)
    assert by_flag.overall["caught_within_budget"] == 0  # user A's three flags fill the budget
    assert by_entry.overall["caught_within_budget"] == 1
    assert by_entry.overall["top_k_flags"] == 3 and by_entry.overall["top_k_legitimate"] == 2
    assert by_flag.false_positives.row(0) == ("(unknown)", "unexplained", 3)
