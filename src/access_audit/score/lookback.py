"""The look-back as small per-day aggregates, so a scored day reads them instead of 30 days of
accesses.

Every quantity the scoring takes from the look-back is a sum over days of something one day's
accesses determine once they are explained, because its unit — a *lookup*, a user opening one
record on one day — never spans two days:

* ``lookback_lookups``: one row per lookup (user, record type, record, day) with whether any of
  its rows were unexplained or explained, whether an unexplained row opened contact details, and
  how many explained person rows did. Crowds (users per subject-day), repeated access (days per
  user-subject pair), explained-but-excessive contact views (pair contact counts) and the pattern
  features (counts per user of unexplained person lookups, of young women, of contact views) are
  sums or distinct counts over these rows.
* ``lookback_users``: per user and day, the lookups in each indicator scope (unexplained,
  explained, any): the denominators of the peer rates.
* ``lookback_hits``: per user, day and indicator, the lookups carrying it: the numerators.
* ``lookback_sources``: per day, the access-event files the day's aggregates were built from. A
  day whose files changed since (a late drop loaded by `ingest` alone) or that has no aggregates
  yet (a home made by an earlier version) is rebuilt from its accesses, its stored explanations
  and its stored indicators — exactly what the look-back read before the aggregates existed.

They are written beside the flags, in the same transaction, whenever a day is scored. Each
function here is a pure transform of Polars frames; reading and writing stay in `score/run.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from access_audit.tables import StoredTable, register

LOOKUP = ["user_id", "record_type", "record_id", "day"]

LOOKUPS = register(
    StoredTable(
        "lookback_lookups",
        lambda: pl.Schema(
            {
                "user_id": pl.String(),
                "record_type": pl.String(),
                "record_id": pl.String(),
                "unexplained": pl.Boolean(),
                "explained": pl.Boolean(),
                "contact": pl.Boolean(),
                "contacts": pl.Int64(),
            }
        ),
        partition_by="day",
        partition_dtype=pl.Date(),
        description="The look-back's lookups (a user opening a record on a day): whether "
        "explained, unexplained, contact details opened unexplained, explained contact views.",
    )
)

USER_DAYS = register(
    StoredTable(
        "lookback_users",
        lambda: pl.Schema(
            {
                "user_id": pl.String(),
                "unexplained": pl.Int64(),
                "explained": pl.Int64(),
                "any": pl.Int64(),
            }
        ),
        partition_by="day",
        partition_dtype=pl.Date(),
        description="Each user's lookups per day in each indicator scope: peer rates' "
        "denominators.",
    )
)

HITS = register(
    StoredTable(
        "lookback_hits",
        lambda: pl.Schema({"user_id": pl.String(), "code": pl.String(), "k": pl.Int64()}),
        partition_by="day",
        partition_dtype=pl.Date(),
        description="Each user's lookups per day carrying each indicator: peer rates' numerators.",
    )
)

SOURCES = register(
    StoredTable(
        "lookback_sources",
        lambda: pl.Schema({"source": pl.String(), "rules_version": pl.String()}),
        partition_by="day",
        partition_dtype=pl.Date(),
        description="The access-event files each day's look-back aggregates were built from, "
        "and the rules that scored the day (null: rebuilt, or stored by an earlier version).",
    )
)

AGGREGATE_TABLES = (LOOKUPS.name, USER_DAYS.name, HITS.name, SOURCES.name)


def day_lookups(events: pl.LazyFrame) -> pl.LazyFrame:
    """Accesses (with their `explained` flag) as lookups: one row per (user, record, day)."""
    contact = pl.col("action") == "view_contact"
    explained = pl.col("explained")
    return (
        events.filter(pl.col("record_id").is_not_null())
        .group_by(LOOKUP)
        .agg(
            unexplained=(~explained).any(),
            explained=explained.any(),
            contact=(contact & ~explained).any(),
            contacts=(contact & explained & (pl.col("record_type") == "person"))
            .sum()
            .cast(pl.Int64),
        )
    )


def user_days(lookups: pl.LazyFrame) -> pl.LazyFrame:
    """Each user's lookups per day in each scope an indicator's peer rate is taken over."""
    return lookups.group_by("user_id", "day").agg(
        unexplained=pl.col("unexplained").sum().cast(pl.Int64),
        explained=pl.col("explained").sum().cast(pl.Int64),
        any=pl.len().cast(pl.Int64),
    )


def user_day_hits(found: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """Each user's lookups per day carrying each indicator. `found` is (system, event_id, code)."""
    keyed = events.select("system", "event_id", *LOOKUP)
    return (
        found.select("system", "event_id", "code")
        .join(keyed, on=["system", "event_id"])
        .select(*LOOKUP, "code")
        .unique()
        .group_by("user_id", "day", "code")
        .agg(k=pl.len().cast(pl.Int64))
    )


@dataclass
class Lookback:
    """The aggregates of some days, in memory."""

    lookups: pl.DataFrame
    users: pl.DataFrame
    hits: pl.DataFrame

    @staticmethod
    def empty() -> Lookback:
        return Lookback(
            pl.DataFrame(schema=LOOKUPS.full_schema()),
            pl.DataFrame(schema=USER_DAYS.full_schema()),
            pl.DataFrame(schema=HITS.full_schema()),
        )

    @staticmethod
    def of(events: pl.DataFrame, found: pl.LazyFrame | None = None) -> Lookback:
        """The aggregates of explained accesses and of the indicators `found` on them
        (system, event_id, code); no hits without them."""
        lookups = day_lookups(events.lazy()).collect()
        hits = (
            pl.DataFrame(schema=HITS.full_schema())
            if found is None
            else user_day_hits(found, events.lazy()).collect()
        )
        return Lookback(
            lookups.select(LOOKUPS.full_schema().names()),
            user_days(lookups.lazy()).collect().select(USER_DAYS.full_schema().names()),
            hits.select(HITS.full_schema().names()),
        )

    def plus(self, other: Lookback) -> Lookback:
        return Lookback(
            pl.concat([self.lookups, other.lookups]),
            pl.concat([self.users, other.users]),
            pl.concat([self.hits, other.hits]),
        )

    def between(self, first: date, last: date) -> Lookback:
        """The days from `first` to `last`, both included."""
        within = pl.col("day").is_between(first, last)
        return Lookback(
            self.lookups.filter(within), self.users.filter(within), self.hits.filter(within)
        )

    def only(self, days: Sequence[date]) -> Lookback:
        wanted = pl.col("day").is_in(list(days))
        return Lookback(
            self.lookups.filter(wanted), self.users.filter(wanted), self.hits.filter(wanted)
        )

    def window(self, day: date, lookback_days: int) -> Lookback:
        """What scoring `day` reads: the `lookback_days` before it and the day itself."""
        return self.between(day - timedelta(days=lookback_days), day)

    def tables(self) -> dict[str, pl.DataFrame]:
        return {LOOKUPS.name: self.lookups, USER_DAYS.name: self.users, HITS.name: self.hits}


Scan = Callable[[str], pl.LazyFrame]
Rebuild = Callable[[Sequence[date]], Lookback]


def read_lookback(
    scan: Scan,
    days: Sequence[date],
    sources: dict[date, str],
    rebuild: Rebuild,
) -> tuple[Lookback, list[date]]:
    """The stored aggregates of `days`; those of a day whose access-event files (`sources`) are
    not the ones its aggregates were built from, or that has none, come from `rebuild`. Returns
    them and the days rebuilt."""
    if not days:
        return Lookback.empty(), []
    wanted = pl.col("day").is_in(list(days))
    built = scan(SOURCES.name).filter(wanted).select("day", "source").collect()
    recorded = dict(zip(built["day"].to_list(), built["source"].to_list(), strict=True))
    stale = [d for d in days if d in sources and recorded.get(d) != sources[d]]
    fresh = [d for d in days if d in sources and d not in stale]
    in_fresh = pl.col("day").is_in(fresh)
    stored = Lookback(
        scan(LOOKUPS.name).filter(in_fresh).collect(),
        scan(USER_DAYS.name).filter(in_fresh).collect(),
        scan(HITS.name).filter(in_fresh).collect(),
    )
    if not stale:
        return stored, []
    return stored.plus(rebuild(stale)), stale


def source_rows(
    days: Sequence[date], sources: dict[date, str], scored: dict[date, str]
) -> pl.DataFrame:
    """The `lookback_sources` rows recording what the aggregates of `days` were built from, and
    the rules version of the days `scored` this run (a day only rebuilt keeps none: its stored
    indicators are whatever rules scored it)."""
    known = [d for d in days if d in sources]
    return pl.DataFrame(
        {
            "source": [sources[d] for d in known],
            "rules_version": [scored.get(d) for d in known],
            "day": known,
        },
        schema=SOURCES.full_schema(),
    )


def scored_under_other_rules(
    scan: Scan, days: Sequence[date], stored: Sequence[date], rules_version: str, lookback: int
) -> list[date]:
    """The stored days in the look-back of `days` (not among them) that other rules scored, or
    an earlier version that did not record its rules: their stored indicators are another rule
    set's, so a run scores them first and `days` read aggregates of the rules they are scored by.
    """
    if not days:
        return []
    first, asked = min(days) - timedelta(days=lookback), set(days)
    window = [d for d in stored if first <= d < max(days) and d not in asked]
    if not window:
        return []
    recorded = (
        scan(SOURCES.name)
        .filter(pl.col("day").is_in(window) & (pl.col("rules_version") == rules_version))
        .select("day")
        .collect()["day"]
    )
    same = set(recorded.to_list())
    return [d for d in window if d not in same]
