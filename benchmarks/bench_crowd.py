"""Benchmark: the calibrated crowd indicator on an incident that links many people.

Not a test: it prints the seconds and peak memory (RSS) of one `crowd` run, in its own process.
An operation or a bulk import can link thousands of people to one incident; `teams` teams open it
on each of the look-back's days, and five other teams read one victim V on the scored day. With
`--read-today` the incident is also read on the scored day, so every person it links is a subject
of that day. Chance crowds are measured by person (score/indicators.py, `crowd`): people reached
through exactly the same records are measured once, so the incident's thousands of people cost
about what one does (adversary 19 measured 11.3 s and 974 MB for 10,000 people on a first
version that measured each of them).

    .venv/bin/python benchmarks/bench_crowd.py --people 20000 --read-today
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import fields
from datetime import date, timedelta

import polars as pl

from access_audit.score.explain import Inputs
from access_audit.score.indicators import Frame, crowd
from access_audit.score.lookback import day_lookups
from access_audit.score.rules import load_rules

DAY = date(2026, 11, 20)


def _read(user: str, record: str, day: date, n: int = 0) -> dict[str, object]:
    return {
        "system": "RMS",
        "event_id": f"{user}-{record}-{n}-{day}",
        "user_id": user,
        "record_type": "incident" if record.startswith("CR/") else "person",
        "record_id": record,
        "action": "view",
        "day": day,
        "explained": False,
    }


def run(people: int, days: int, teams: int, read_today: bool) -> tuple[float, float, int]:
    """Seconds and peak RSS (MB) of one `crowd` run, and its hits."""
    links = pl.LazyFrame(
        {"incident_id": ["CR/HUGE"] * people, "person_id": [f"P{k}" for k in range(people)]}
    )
    staff = pl.LazyFrame(
        {
            "user_id": [f"U{n}" for n in range(teams + 5)],
            "role": ["response_officer"] * (teams + 5),
            "team_id": [f"T{n}" for n in range(teams + 5)],
        }
    )
    first = 0 if read_today else 1
    rows = [
        _read(f"U{u}", "CR/HUGE", DAY - timedelta(days=k), k)
        for k in range(first, days + 1)
        for u in range(teams)
    ]
    rows += [_read(f"U{teams + u}", "V", DAY) for u in range(5)]
    events = pl.LazyFrame(rows)
    lookups = day_lookups(events.with_columns(contacts=pl.lit(0)))
    targets = events.filter(pl.col("day") == DAY)
    inputs = Inputs(
        **{
            f.name: {"staff": staff, "incident_persons": links}.get(f.name, pl.LazyFrame())
            for f in fields(Inputs)
        }
    )
    frame = Frame(inputs, load_rules(), targets, lookups)
    started = time.perf_counter()
    hits = crowd(frame, frame.rules.indicators["crowd"]).collect()
    took = time.perf_counter() - started
    return took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, hits.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000, help="people the incident links")
    parser.add_argument("--days", type=int, default=30, help="look-back days it is read on")
    parser.add_argument("--teams", type=int, default=10, help="teams that open it each day")
    parser.add_argument("--read-today", action="store_true", help="also read it on the scored day")
    args = parser.parse_args()
    took, peak, hits = run(args.people, args.days, args.teams, args.read_today)
    print(
        f"people={args.people} days={args.days} teams={args.teams} "
        f"read_today={args.read_today}: {took:.2f} s, peak {peak:.0f} MB, {hits} crowd hits"
    )


if __name__ == "__main__":
    main()
