"""A queue built for a daily budget: one entry per user (or per subject) a day, strongest first.

An analyst reviews about 20 items a day. One user's many flags that day, or many users' flags
about one subject (a crowd), should take one place in that budget, not twenty: each user's flags of
a day form an entry led by their strongest flag, and entries led by the same subject merge. Entries
are ranked by their strongest flag; inside an entry, flags are strongest first. Pure frame
functions.
"""

from __future__ import annotations

import polars as pl

from access_audit.exprs import fmt

ORDER = ["score", "rule_score", "flag_id"]
DESCENDING = [True, True, False]


def budget_queue(flags: pl.LazyFrame, score_column: str = "score") -> pl.LazyFrame:
    """`flags` with `entry_id`, `entry_rank` (1 = first that day) and `rank_in_entry`."""
    order = [score_column, "rule_score", "flag_id"]
    # a flag with no user (an audit gap) is an entry of its own
    ranked = flags.sort(["day", *order], descending=[False, *DESCENDING]).with_columns(
        _position=pl.int_range(pl.len()).over("day"),
        _who=pl.coalesce(fmt("user:{}", "user_id"), fmt("flag:{}", "flag_id")),
    )
    leads = (
        ranked.group_by("day", "_who")
        .agg(pl.all().sort_by("_position").first())
        .select(
            "day",
            "_who",
            _lead_position="_position",
            _lead_subject=pl.when(pl.col("subject_id").is_not_null()).then(
                fmt("{}:{}", "subject_type", "subject_id")
            ),
        )
    )
    # users led by the same subject share one entry, named after its strongest flag
    entries = leads.with_columns(
        _key=pl.coalesce("_lead_subject", "_who"),
    ).with_columns(_entry_position=pl.col("_lead_position").min().over("day", "_key"))
    keyed = ranked.join(
        entries.select("day", "_who", "_entry_position"), on=["day", "_who"]
    ).with_columns(
        entry_rank=pl.col("_entry_position").rank("dense").over("day").cast(pl.Int64),
        rank_in_entry=pl.col("_position").rank("ordinal").over("day", "_entry_position"),
    )
    first_flag = keyed.filter(pl.col("rank_in_entry") == 1).select(
        "day", "_entry_position", entry_id="flag_id"
    )
    return (
        keyed.join(first_flag, on=["day", "_entry_position"])
        .with_columns(pl.col("rank_in_entry").cast(pl.Int64))
        .sort("day", "entry_rank", "rank_in_entry")
        .drop("_position", "_entry_position", "_who")
    )
