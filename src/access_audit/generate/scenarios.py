"""Planted misuse: the patterns of the IOPC case, the FOI's dismissals and public misconduct cases.

Each scenario is one entry in SCENARIOS (name, how many per 1,000 staff per 30 days, builder). A
builder plants `count` episodes into the force — audit rows, and where the pattern needs them, the
call, assignment or declared association that makes it realistic — and returns the planted rows,
tagged with episode and scenario. Episodes are few (tens), so builders work episode by episode; the
rows they write go through the same vectorised writer as everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from access_audit.generate.force import (
    GAP_COLUMNS,
    NEW_CATEGORIES,
    UTC,
    Force,
    events,
    local_to_utc,
)

Row = dict[str, object]


@dataclass(frozen=True)
class Scenario:
    name: str
    per_thousand_staff_month: float
    build: Callable[[Force, int, list[str]], list[Row]]
    description: str


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=float(value))


def _row(
    episode: str,
    scenario: str,
    user: str,
    at: datetime,
    action: str,
    record: str,
    *,
    record_type: str = "person",
    system: str = "RMS",
    justification: str | None = None,
    reason_code: str | None = None,
) -> Row:
    return {
        "occurred_at": at,
        "user_id": user,
        "system": system,
        "action": action,
        "record_type": record_type,
        "record_id": record,
        "justification": justification,
        "reason_code": reason_code,
        "episode_id": episode,
        "scenario": scenario,
    }


class NothingToPlantError(Exception):
    """A scenario needs something this force does not hold (too few staff, days or incidents)."""


def _pick(force: Force, values: list[str] | pl.Series) -> str:
    seq = list(values)
    if not seq:
        raise NothingToPlantError
    return str(seq[int(force.rng.integers(0, len(seq)))])


def _any_row(rng: np.random.Generator, frame: pl.DataFrame) -> dict[str, Any]:
    """One row of ``frame`` drawn at random (NothingToPlantError if it is empty)."""
    if frame.is_empty():
        raise NothingToPlantError
    return frame.row(int(rng.integers(0, frame.height)), named=True)


def _shift(force: Force, user: str, first_day: float, last_day: float) -> tuple[datetime, datetime]:
    """A random shift of `user` starting between `first_day` and `last_day` days into the period."""
    begin = force.first_utc() + timedelta(days=first_day)
    end = force.first_utc() + timedelta(days=max(last_day, first_day + 1))
    mine = force.shifts.filter(
        (pl.col("user_id") == user) & pl.col("starts_at").is_between(begin, end)
    )
    if mine.is_empty():
        start = begin + timedelta(hours=float(force.rng.uniform(0, 24)))
        return start, start + timedelta(hours=8)
    row = mine.row(int(force.rng.integers(0, mine.height)))
    return row[2], row[3]


def _staff(force: Force, role: str | None = None, sex: str | None = None) -> pl.DataFrame:
    staff = force.staff
    if role:
        staff = staff.filter(pl.col("role") == role)
    if sex and not staff.filter(pl.col("sex") == sex).is_empty():
        staff = staff.filter(pl.col("sex") == sex)
    return staff


def _days(force: Force) -> float:
    return float(force.days)


def _person_of(force: Force, owner: str, kind: str) -> str:
    return str(
        force.persons.filter((pl.col("owner") == owner) & (pl.col("kind") == kind))["person_id"][0]
    )


def _cases(force: Force, categories: tuple[str, ...]) -> pl.DataFrame:
    """Cases worked by a named officer in charge, with their female victim and final closure."""
    incidents = force.incidents.sort("known_at").unique("incident_id", keep="last")
    victims = force.incident_persons.filter(pl.col("role") == "victim").join(
        force.persons.filter(pl.col("sex") == "F").select("person_id", "age"), on="person_id"
    )
    return (
        force.case_work.filter(
            (pl.col("role") == "officer_in_charge") & pl.col("user_id").is_not_null()
        )
        .select("incident_id", "user_id", "work_from")
        .join(
            incidents.select("incident_id", "category", "opened_at", "closed_at"), on="incident_id"
        )
        .filter(pl.col("category").is_in(categories))
        .join(victims.select("incident_id", "person_id", "age"), on="incident_id")
        .sort("incident_id")
    )


def _first_nonempty(*frames: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """The first of the candidate sets that has rows (small forces may lack the ideal case)."""
    frame = pl.DataFrame()
    for make in frames:
        frame = make()
        if not frame.is_empty():
            return frame
    raise ValueError("the force is too small to plant this scenario")


def pc_b(force: Force, count: int, ids: list[str]) -> list[Row]:
    """The IOPC case: a victim-enquiry desk officer reads an old domestic-incident report while the
    victim is on the phone (lawful), then takes her number after the call and again days later."""
    rng, rows = force.rng, []
    first = force.first_utc()
    old_victims = (
        force.incident_persons.filter(pl.col("role") == "victim")
        .join(force.incidents.filter(pl.col("category") == "domestic_abuse"), on="incident_id")
        .join(
            force.persons.filter(pl.col("sex") == "F").select("person_id", "surname"),
            on="person_id",
        )
        .sort("incident_id")
    )
    victims = _first_nonempty(
        lambda: old_victims.filter(pl.col("opened_at") < first - timedelta(days=4 * 365)),
        lambda: old_victims,
    )
    desk = _staff(force, "victim_enquiry_desk", "M")
    calls = []
    for episode in ids:
        user = _pick(force, desk["user_id"])
        victim = _any_row(rng, victims)
        shift_start, _ = _shift(force, user, 0.5, _days(force) - 4)
        started = shift_start + _minutes(rng.uniform(60, 300))
        ended = started + _minutes(rng.uniform(6, 15))
        calls.append(
            {
                "user_id": user,
                "started_at": started,
                "ended_at": ended,
                "person_id": victim["person_id"],
                "incident_id": None,
                "direction": "inbound",
                "known_at": ended,
            }
        )
        lawful = [
            (started + _minutes(0.5), "search", None),
            (started + _minutes(1), "view", victim["person_id"]),
            (started + _minutes(2.5), "view", victim["incident_id"]),
        ]
        for at, action, record in lawful:
            row = _row("", "", user, at, action, record or "", reason_code="call")
            row.update(
                episode_id=None,
                scenario=None,
                record_type="incident" if record == victim["incident_id"] else "person",
                record_id=record,
                search_text=victim["surname"] if action == "search" else None,
            )
            rows.append(row)
        after = ended + _minutes(rng.uniform(12, 45))
        rows.append(_row(episode, "pc_b", user, after, "view_contact", victim["person_id"]))
        later_start, _ = _shift(force, user, (ended - first).days + 2.5, (ended - first).days + 3.5)
        later = max(later_start, ended + timedelta(days=2)) + _minutes(rng.uniform(30, 200))
        rows.append(_row(episode, "pc_b", user, later, "view", victim["person_id"]))
        rows.append(
            _row(episode, "pc_b", user, later + _minutes(1.5), "view_contact", victim["person_id"])
        )
    _add_calls(force, calls)
    return rows


def post_closure_pursuit(force: Force, count: int, ids: list[str]) -> list[Row]:
    """An officer in charge keeps looking up the victim of his own case after it closed."""
    rng, rows = force.rng, []
    first = force.first_utc()
    cases = _first_nonempty(
        lambda: _cases(force, ("domestic_abuse", "sexual_offence")).filter(
            pl.col("closed_at").is_between(first, force.last_utc() - timedelta(days=3))
        ),
        lambda: _cases(force, ("domestic_abuse", "sexual_offence")),
        lambda: _cases(force, tuple(NEW_CATEGORIES)),
    )
    for episode in ids:
        case = _any_row(rng, cases)
        closed = case["closed_at"] or force.last_utc() - timedelta(days=3)
        at = closed + timedelta(days=float(rng.uniform(1, 2.5)))
        for k in range(int(rng.integers(3, 7))):
            action = "view_contact" if k % 2 else "view"
            rows.append(
                _row(
                    episode, "post_closure_pursuit", case["user_id"], at, action, case["person_id"]
                )
            )
            at += timedelta(hours=float(rng.uniform(6, 40)))
    return rows


def pcso_contacts(force: Force, count: int, ids: list[str]) -> list[Row]:
    """A PCSO attends incidents, then collects the contact details of the young women he met."""
    rng, rows = force.rng, []
    first = force.first_utc()
    women = (
        force.incident_persons.filter(pl.col("role").is_in(["victim", "witness"]))
        .join(
            force.incidents.filter(pl.col("opened_at") >= first).unique("incident_id"),
            on="incident_id",
        )
        .join(
            force.persons.filter((pl.col("sex") == "F") & pl.col("age").is_between(18, 35)),
            on="person_id",
        )
        .filter(pl.col("opened_at") < force.last_utc() - timedelta(days=3))
        .select("incident_id", "person_id", "opened_at")
        .sort("incident_id", "person_id")
    )
    pcsos = _staff(force, "pcso", "M")
    assignments = []
    for episode in ids:
        user = _pick(force, pcsos["user_id"])
        for _ in range(int(rng.integers(3, 6))):
            met = _any_row(rng, women)
            arrived = met["opened_at"] + _minutes(rng.uniform(20, 90))
            left = arrived + timedelta(hours=float(rng.uniform(1, 3)))
            assignments.append(
                {
                    "incident_id": met["incident_id"],
                    "user_id": user,
                    "team_id": None,
                    "role": "attending_officer",
                    "assigned_from": arrived,
                    "assigned_to": left,
                    "known_at": left,
                }
            )
            lawful = _row("", "", user, arrived + _minutes(10), "view", met["person_id"])
            lawful.update(episode_id=None, scenario=None)
            rows.append(lawful)
            at = left + timedelta(days=float(rng.uniform(1, 4)), hours=float(rng.uniform(0, 6)))
            rows.append(
                _row(
                    episode,
                    "pcso_contacts",
                    user,
                    at,
                    "view_contact",
                    met["person_id"],
                    system="PNC",
                )
            )
    force.assignments = pl.concat(
        [force.assignments, pl.DataFrame(assignments, schema=force.assignments.schema)]
    )
    return rows


def call_handler_followup(force: Force, count: int, ids: list[str]) -> list[Row]:
    """A call handler looks up a vulnerable woman who called, days after the call."""
    rng, rows = force.rng, []
    handlers = force.staff.filter(pl.col("role") == "call_handler").select("user_id")
    calls = (
        force.calls.join(handlers, on="user_id")
        .join(
            force.persons.filter((pl.col("sex") == "F") & (pl.col("age") >= 18)).select(
                "person_id"
            ),
            on="person_id",
        )
        .filter(pl.col("ended_at") < force.last_utc() - timedelta(days=3))
        .sort("started_at", "user_id")
    )
    targets = []
    for episode in ids:
        call = _any_row(rng, calls)
        targets.append(call["person_id"])
        at = call["ended_at"] + timedelta(days=float(rng.uniform(1.5, 3)))
        for action in ("view", "view_contact"):
            rows.append(
                _row(
                    episode, "call_handler_followup", call["user_id"], at, action, call["person_id"]
                )
            )
            at += _minutes(rng.uniform(1, 20))
    force.persons = force.persons.with_columns(
        vulnerable=pl.col("vulnerable") | pl.col("person_id").is_in(targets)
    )
    return rows


def _personal(
    kind: str, scenario: str, visits: tuple[int, int], contact: float
) -> Callable[[Force, int, list[str]], list[Row]]:
    def build(force: Force, count: int, ids: list[str]) -> list[Row]:
        rng, rows = force.rng, []
        owners = force.persons.filter(pl.col("kind") == kind)["owner"].sort()
        for episode in ids:
            user = _pick(force, owners)
            target = _person_of(force, user, kind)
            start, end = _shift(force, user, 0, _days(force) - 1)
            at = start + (end - start) * float(rng.uniform(0.1, 0.9))
            for _ in range(int(rng.integers(*visits))):
                action = "view_contact" if rng.random() < contact else "view"
                rows.append(_row(episode, scenario, user, at, action, target))
                at += timedelta(hours=float(rng.uniform(0.05, 30)))
            if kind == "ex_partner" and rng.random() < 0.6:
                force.associations = pl.concat(
                    [
                        force.associations,
                        pl.DataFrame(
                            {
                                "user_id": [user],
                                "person_id": [target],
                                "relationship": ["former_partner"],
                                "declared_at": [
                                    force.start - timedelta(days=int(rng.integers(60, 900)))
                                ],
                            },
                            schema=force.associations.schema,
                        ),
                    ]
                )
        return rows

    return build


def colleague(force: Force, count: int, ids: list[str]) -> list[Row]:
    """A member of staff looks up a colleague's own person record."""
    rng, rows = force.rng, []
    records = force.staff.filter(pl.col("person_id").is_not_null())
    for episode in ids:
        target = _any_row(rng, records)
        others = force.staff.filter(
            (pl.col("user_id") != target["user_id"]) & (pl.col("sex") != target["sex"])
        )
        same_team = others.filter(pl.col("team_id") == target["team_id"])
        user = _pick(force, (same_team if not same_team.is_empty() else others)["user_id"])
        start, end = _shift(force, user, 0, _days(force) - 1)
        at = start + (end - start) * float(rng.uniform(0.1, 0.9))
        for k in range(int(rng.integers(1, 4))):
            rows.append(
                _row(
                    episode,
                    "colleague",
                    user,
                    at,
                    "view_contact" if k else "view",
                    target["person_id"],
                )
            )
            at += timedelta(hours=float(rng.uniform(0.02, 20)))
    return rows


def celebrity_crowd(force: Force, count: int, ids: list[str]) -> list[Row]:
    """A public figure is in the news: many unrelated users look them up within a day or two."""
    rng, rows = force.rng, []
    figures = force.persons.filter(pl.col("public_figure"))["person_id"].sort()
    for episode in ids:
        target = _pick(force, figures)
        when = force.first_utc() + timedelta(days=float(rng.uniform(0.5, _days(force) - 2)))
        crowd = force.staff["user_id"].sample(
            int(rng.integers(12, 26)), seed=int(rng.integers(1 << 30))
        )
        for user in crowd.sort():
            at = when + timedelta(hours=float(rng.exponential(10)))
            rows.append(_row(episode, "celebrity_crowd", user, at, "view", target))
    return rows


def criminal_associate(force: Force, count: int, ids: list[str]) -> list[Row]:
    """An officer checks suspects for a criminal associate, citing an unrelated incident."""
    rng, rows = force.rng, []
    first = force.first_utc()
    suspects = (
        force.incident_persons.filter(pl.col("role") == "suspect")["person_id"].unique().sort()
    )
    covers = force.incidents.filter(pl.col("opened_at") >= first)["incident_id"].unique().sort()
    officers = force.staff.filter(pl.col("role").is_in(["response_officer", "detective"]))
    for episode in ids:
        user = _pick(force, officers["user_id"])
        cover = _pick(force, covers)
        start, end = _shift(force, user, 0, _days(force) - 2)
        at = start + (end - start) * float(rng.uniform(0.1, 0.9))
        for _ in range(int(rng.integers(3, 7))):
            target = _pick(force, suspects)
            rows.append(
                _row(
                    episode,
                    "criminal_associate",
                    user,
                    at,
                    "view",
                    target,
                    justification=f"Enquiries re {cover}",
                    reason_code="investigation",
                )
            )
            if rng.random() < 0.5:
                rows.append(
                    _row(
                        episode,
                        "criminal_associate",
                        user,
                        at + _minutes(2),
                        "view_contact",
                        target,
                        reason_code="investigation",
                    )
                )
            at += _minutes(rng.uniform(3, 400))
    return rows


def skewed_user(force: Force, count: int, ids: list[str]) -> list[Row]:
    """A user whose unexplained street checks quietly skew toward young women: no single lookup
    stands out, the pattern over weeks does."""
    rng, rows = force.rng, []
    young = force.persons.filter(
        (pl.col("kind") == "general") & (pl.col("sex") == "F") & pl.col("age").is_between(18, 30)
    )["person_id"]
    officers = _staff(force, "response_officer", "M")
    for episode in ids:
        user = _pick(force, officers["user_id"])
        shifts = force.shifts.filter(
            (pl.col("user_id") == user) & (pl.col("starts_at") < force.last_utc())
        )
        per_shift = rng.poisson(1.3, shifts.height)
        for (start, end), k in zip(
            shifts.select("starts_at", "ends_at").rows(), per_shift, strict=False
        ):
            for _ in range(int(k)):
                at = start + (end - start) * float(rng.uniform(0, 1))
                rows.append(
                    _row(
                        episode,
                        "skewed_user",
                        user,
                        at,
                        "view",
                        _pick(force, young),
                        system="PNC",
                        reason_code="stop_check",
                    )
                )
    return rows


def excess_access(force: Force, count: int, ids: list[str]) -> list[Row]:
    """An assigned officer opens the victim's contact details far more than the case needs."""
    rng, rows = force.rng, []
    last = force.last_utc()
    cases = _first_nonempty(
        lambda: _cases(force, ("domestic_abuse", "sexual_offence")).filter(
            pl.col("work_from") < last - timedelta(days=5)
        ),
        lambda: _cases(force, ("domestic_abuse", "sexual_offence")),
        lambda: _cases(force, tuple(NEW_CATEGORIES)),
    )
    for episode in ids:
        case = _any_row(rng, cases)
        end = min(case["closed_at"] or last, last)
        span = (end - case["work_from"]).total_seconds()
        for _ in range(int(rng.integers(15, 30))):
            at = case["work_from"] + timedelta(seconds=float(rng.uniform(0.05, 1)) * span)
            rows.append(
                _row(
                    episode,
                    "excess_access",
                    case["user_id"],
                    at,
                    "view_contact",
                    case["person_id"],
                    reason_code="investigation",
                )
            )
    return rows


def _add_calls(force: Force, calls: list[Row]) -> None:
    if calls:
        force.calls = pl.concat([force.calls, pl.DataFrame(calls, schema=force.calls.schema)])


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("pc_b", 2, pc_b, "desk officer takes a caller's number after her call"),
    Scenario("post_closure_pursuit", 2, post_closure_pursuit, "OIC pursues a victim after closure"),
    Scenario("pcso_contacts", 1.5, pcso_contacts, "PCSO collects contact details of women met"),
    Scenario("call_handler_followup", 2, call_handler_followup, "call handler looks up a caller"),
    Scenario("self", 1.5, _personal("self", "self", (1, 3), 0.3), "own record"),
    Scenario("family", 1.5, _personal("relative", "family", (1, 4), 0.3), "a relative"),
    Scenario("neighbour", 1.5, _personal("neighbour", "neighbour", (1, 3), 0.6), "a neighbour"),
    Scenario("ex_partner", 2, _personal("ex_partner", "ex_partner", (2, 5), 0.5), "former partner"),
    Scenario("colleague", 1.5, colleague, "a colleague's own record"),
    Scenario("celebrity_crowd", 0.5, celebrity_crowd, "many users look up a public figure"),
    Scenario("criminal_associate", 1.5, criminal_associate, "suspects checked for an associate"),
    Scenario("skewed_user", 0.5, skewed_user, "street checks skewed toward young women"),
    Scenario("excess_access", 1.5, excess_access, "assigned officer over-reads contact details"),
)


# ---- audit gaps (issue 7): rows deleted at the source ------------------------------------------
# A gap scenario removes rows instead of adding them, so its truth is a window, not events: it is
# written to gaps_truth.csv (gap_id, scenario, system, user_id, starts_at, ends_at; UTC), which
# `evaluate` reads beside truth.csv. Rows of planted misuse episodes are never deleted, so every
# other scenario's truth stands.

# Baselines need earlier days of the same kind: gaps are planted from this day of the period on.
GAP_FIRST_DAY = 7
# A user's vanished shift held at least this many PND lookups (each writes a few rows).
MIN_VANISHED_ROWS = 6


@dataclass(frozen=True)
class GapScenario:
    name: str
    per_thousand_staff_month: float
    build: Callable[[Force, list[str]], list[Row]]
    description: str


def _gap_days(force: Force) -> list[int]:
    """Weekdays of the period late enough to have a baseline (none in a short period)."""
    return [
        d
        for d in range(GAP_FIRST_DAY, force.days - 1)
        if (force.start + timedelta(days=d)).weekday() < 5
    ]


def system_hole(force: Force, ids: list[str]) -> list[Row]:
    """Someone with administrative access purges RMS's audit rows for a few working hours."""
    rng, gaps = force.rng, []
    days = _gap_days(force)
    for gap in ids:
        day = days[int(rng.integers(0, len(days)))]
        local = force.period_start + timedelta(days=day, hours=int(rng.integers(9, 15)))
        hours = int(rng.integers(2, 5))
        starts = pl.select(local_to_utc(pl.lit(local, dtype=pl.Datetime("us")))).item()
        gaps.append(
            {
                "gap_id": gap,
                "scenario": "system_hole",
                "system": "RMS",
                "user_id": None,
                "starts_at": starts,
                "ends_at": starts + timedelta(hours=hours),
            }
        )
    return gaps


def user_vanish(force: Force, ids: list[str]) -> list[Row]:
    """An analyst deletes their own PND trail for one shift; their RMS work that shift remains."""
    rng, gaps = force.rng, []
    first = force.first_utc()
    days = _gap_days(force)
    shifts = force.shifts.filter(
        (pl.col("role") == "analyst") & ((pl.col("starts_at") - first).dt.total_days().is_in(days))
    )
    # only a shift with a PND trail worth deleting: analysts whose team has no operation use none
    pnd = pl.concat(force.event_parts).filter(pl.col("system") == "PND")
    shifts = (
        shifts.join(pnd.select("user_id", "occurred_at"), on="user_id")
        .filter(pl.col("occurred_at").is_between("starts_at", "ends_at", closed="left"))
        .group_by("user_id", "starts_at", "ends_at")
        .agg(rows=pl.len())
        .filter(pl.col("rows") >= MIN_VANISHED_ROWS)
        .sort("starts_at", "user_id")
    )
    if shifts.is_empty():
        return []  # a force too small to have an analyst with a PND trail
    for gap in ids:
        shift = _any_row(rng, shifts)
        gaps.append(
            {
                "gap_id": gap,
                "scenario": "user_vanish",
                "system": "PND",
                "user_id": shift["user_id"],
                "starts_at": shift["starts_at"],
                "ends_at": shift["ends_at"],
            }
        )
    return gaps


GAP_SCENARIOS: tuple[GapScenario, ...] = (
    GapScenario("system_hole", 0.5, system_hole, "RMS audit rows purged for a few hours"),
    GapScenario("user_vanish", 1, user_vanish, "an analyst deletes their own PND trail"),
)


def delete_in_windows(log: pl.DataFrame, gaps: pl.DataFrame) -> pl.DataFrame:
    """The audit rows outside every gap window (a window with a user deletes only theirs); rows
    of planted misuse episodes are kept."""
    indexed = log.with_row_index("_row")
    doomed = (
        indexed.filter(pl.col("episode_id").is_null())
        .select("_row", "system", "user_id", "occurred_at")
        .join(
            gaps.select("system", gap_user="user_id", gap_from="starts_at", gap_to="ends_at"),
            on="system",
        )
        .filter(
            (pl.col("occurred_at") >= pl.col("gap_from"))
            & (pl.col("occurred_at") < pl.col("gap_to"))
            & (pl.col("gap_user").is_null() | (pl.col("gap_user") == pl.col("user_id")))
        )
        .select("_row")
    )
    return indexed.join(doomed, on="_row", how="anti", maintain_order="left").drop("_row")


def plant_gaps(force: Force) -> int:
    """Plant the gap scenarios (none when the period is too short for a baseline)."""
    scale = force.staff.height / 1000 * force.days / 30
    if not _gap_days(force):
        force.gaps = pl.DataFrame(schema=GAP_COLUMNS)
        return 0
    windows: list[Row] = []
    for scenario in GAP_SCENARIOS:
        count = max(1, round(scenario.per_thousand_staff_month * scale))
        first = len(windows) + 1
        try:
            windows += scenario.build(force, [f"GAP{n:03d}" for n in range(first, first + count)])
        except NothingToPlantError:
            continue
    force.gaps = pl.DataFrame(windows, schema=GAP_COLUMNS)
    force.event_parts = [delete_in_windows(pl.concat(force.event_parts), force.gaps)]
    return len(windows)


def plant(force: Force) -> int:
    """Plant every scenario (at least one episode each, where the force holds what it needs),
    then the audit gaps; returns the number of episodes planted."""
    scale = force.staff.height / 1000 * force.days / 30
    next_id = 1
    for scenario in SCENARIOS:
        count = max(1, round(scenario.per_thousand_staff_month * scale))
        ids = [f"EP{n:04d}" for n in range(next_id, next_id + count)]
        next_id += count
        try:
            rows = scenario.build(force, count, ids)
        except NothingToPlantError:
            continue
        if not rows:
            continue  # e.g. the crowd scenario in a force with no public figure
        frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
            pl.col("occurred_at").cast(UTC)
        )
        force.add_events(events(frame))
    plant_gaps(force)
    # what the truth file will hold: an audit gap may have deleted a whole short episode
    return pl.concat(force.event_parts).get_column("episode_id").drop_nulls().n_unique()
