"""The synthetic force: people, rota, incidents and the legitimate work recorded in the audit log.

Everything is drawn from one numpy Generator in a fixed order and built column-wise with polars,
so a seed gives byte-identical drops and 3,000 staff over 30 days take seconds. Times are UTC
(`Datetime("us", "UTC")`); every row carries `known_at`, the moment it reached the exporting system,
which decides the drop it is delivered in (assignments are often recorded late; a few audit rows
arrive a day late).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from access_audit.generate import names

TZ = "Europe/London"
UTC = pl.Datetime("us", "UTC")
SECOND = 1_000_000
HOUR = 3600
DAY = 86400

ROLE_SHARES = {
    "response_officer": 0.33,
    "detective": 0.14,
    "pcso": 0.08,
    "call_handler": 0.12,
    "victim_enquiry_desk": 0.03,
    "analyst": 0.04,
    "supervisor": 0.09,
    "custody": 0.06,
    "staff": 0.11,
}
TEAM_SIZE = {"analyst": 6, "victim_enquiry_desk": 8}
TEAM_PREFIX = {
    "response_officer": "RESP",
    "detective": "CID",
    "pcso": "NHP",
    "call_handler": "CTRL",
    "victim_enquiry_desk": "VED",
    "analyst": "INTEL",
    "custody": "CUST",
    "staff": "ADMIN",
}
SHARE_MALE = {
    "response_officer": 0.7,
    "detective": 0.6,
    "pcso": 0.55,
    "call_handler": 0.35,
    "victim_enquiry_desk": 0.5,
    "analyst": 0.4,
    "supervisor": 0.7,
    "custody": 0.6,
    "staff": 0.35,
}
# Unrecorded but legitimate person lookups per shift (street checks, enquiries nobody wrote down).
RESIDUE_PER_SHIFT = {
    "response_officer": 2.0,
    "detective": 0.8,
    "pcso": 0.8,
    "call_handler": 0.4,
    "victim_enquiry_desk": 0.3,
    "analyst": 0.5,
    "supervisor": 0.3,
    "custody": 0.5,
    "staff": 0.2,
}
HISTORIC_CATEGORIES = {
    "domestic_abuse": 0.2,
    "sexual_offence": 0.06,
    "assault": 0.16,
    "theft": 0.2,
    "burglary": 0.12,
    "missing_person": 0.06,
    "antisocial_behaviour": 0.12,
    "fraud": 0.08,
}
NEW_CATEGORIES = {
    "domestic_abuse": 0.16,
    "sexual_offence": 0.05,
    "assault": 0.15,
    "theft": 0.2,
    "burglary": 0.1,
    "missing_person": 0.05,
    "antisocial_behaviour": 0.17,
    "traffic": 0.12,
}
DETECTIVE_CASES = ("domestic_abuse", "sexual_offence", "assault", "burglary", "missing_person")
FEMALE_VICTIM_CASES = ("domestic_abuse", "sexual_offence")
EVENT_COLUMNS: dict[str, pl.DataType] = {
    "occurred_at": UTC,
    "known_at": UTC,
    "user_id": pl.String(),
    "system": pl.String(),
    "action": pl.String(),
    "record_type": pl.String(),
    "record_id": pl.String(),
    "search_text": pl.String(),
    "reason_code": pl.String(),
    "justification": pl.String(),
    "episode_id": pl.String(),
    "scenario": pl.String(),
}


def seconds(values: np.ndarray | float | int) -> pl.Series:
    """A Duration series of whole seconds (or one duration repeated), for adding to datetimes."""
    array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return pl.Series(np.round(array * SECOND).astype(np.int64)).cast(pl.Duration("us"))


def local_to_utc(naive: pl.Expr) -> pl.Expr:
    """Local wall-clock times to UTC: the earlier of a repeated hour; a skipped hour moves on."""
    moved = (naive + pl.duration(hours=1)).dt.replace_time_zone(
        TZ, ambiguous="earliest", non_existent="null"
    )
    return (
        naive.dt.replace_time_zone(TZ, ambiguous="earliest", non_existent="null")
        .fill_null(moved)
        .dt.convert_time_zone("UTC")
    )


def empty_events() -> pl.DataFrame:
    return pl.DataFrame(schema=EVENT_COLUMNS)


def events(frame: pl.DataFrame, **constants: str | None) -> pl.DataFrame:
    """Conform a frame of audit rows to EVENT_COLUMNS, filling constants and missing columns."""
    columns = []
    for name, dtype in EVENT_COLUMNS.items():
        if name in constants:
            columns.append(pl.lit(constants[name], dtype=dtype).alias(name))
        elif name in frame.columns:
            columns.append(pl.col(name).cast(dtype))
        elif name == "known_at":
            columns.append(pl.col("occurred_at").cast(dtype).alias(name))
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(columns)


@dataclass
class Force:
    """A generated force, still in memory: the tables of the export bundle plus planted truth."""

    start: date
    days: int
    rng: np.random.Generator
    staff: pl.DataFrame = field(default_factory=pl.DataFrame)
    persons: pl.DataFrame = field(default_factory=pl.DataFrame)
    incidents: pl.DataFrame = field(default_factory=pl.DataFrame)
    incident_persons: pl.DataFrame = field(default_factory=pl.DataFrame)
    assignments: pl.DataFrame = field(default_factory=pl.DataFrame)
    calls: pl.DataFrame = field(default_factory=pl.DataFrame)
    shifts: pl.DataFrame = field(default_factory=pl.DataFrame)
    associations: pl.DataFrame = field(default_factory=pl.DataFrame)
    training: pl.DataFrame = field(default_factory=pl.DataFrame)
    event_parts: list[pl.DataFrame] = field(default_factory=list)
    duty: pl.DataFrame = field(default_factory=pl.DataFrame)
    case_work: pl.DataFrame = field(default_factory=pl.DataFrame)
    surnames: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    surname_weights: np.ndarray = field(default_factory=lambda: np.array([]))

    @property
    def period_start(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day)

    @property
    def first_instant(self) -> pl.Expr:
        return local_to_utc(pl.lit(self.period_start, dtype=pl.Datetime("us")))

    def first_utc(self) -> datetime:
        value = pl.select(self.first_instant).item()
        assert isinstance(value, datetime)
        return value

    def last_utc(self) -> datetime:
        end = self.period_start + timedelta(days=self.days)
        value = pl.select(local_to_utc(pl.lit(end, dtype=pl.Datetime("us")))).item()
        assert isinstance(value, datetime)
        return value

    def add_events(self, frame: pl.DataFrame) -> None:
        self.event_parts.append(frame)

    # -- picking people -------------------------------------------------------------------------

    def users_with_role(self, role: str) -> pl.Series:
        return self.staff.filter(pl.col("role") == role)["user_id"]

    def on_duty(self, times: pl.Series, role: str) -> pl.Series:
        """For each time, a random member of `role` whose shift covers it (any of them if none)."""
        count = len(times)
        pool = self.users_with_role(role)
        queries = pl.DataFrame(
            {
                "i": np.arange(count),
                "hour": times.dt.truncate("1h"),
                "pick": self.rng.integers(0, 1 << 30, count),
                "fallback": pool.gather(self.rng.integers(0, len(pool), count)),
            }
        )
        duty = self.duty.filter(pl.col("role") == role).drop("role")
        joined = queries.join(duty, on="hour", how="left", maintain_order="left")
        users = pl.col("users")
        return joined.select(
            pl.when(users.is_null())
            .then(pl.col("fallback"))
            .otherwise(users.list.get(pl.col("pick") % users.list.len()))
        ).to_series()

    def snap_to_shift(self, work: pl.DataFrame, earliest: str) -> pl.DataFrame:
        """Move each `occurred_at` into the user's latest shift, unless that is before `earliest`.

        Work planned at a random moment is done when the person is at work: the same fraction of
        their last shift that started before the planned moment.
        """
        shifts = self.shifts.select("user_id", "starts_at", "ends_at").sort("starts_at")
        frac = self.rng.random(len(work))
        snapped = (
            work.with_columns(_frac=pl.Series(frac), _i=pl.int_range(pl.len()))
            .sort("occurred_at")
            .join_asof(
                shifts,
                left_on="occurred_at",
                right_on="starts_at",
                by="user_id",
                strategy="backward",
                check_sortedness=False,
            )
            .sort("_i")
        )
        inside = pl.col("occurred_at") <= pl.col("ends_at")
        moved = pl.col("starts_at") + (pl.col("ends_at") - pl.col("starts_at")) * pl.col("_frac")
        return snapped.with_columns(
            occurred_at=pl.when(pl.col("starts_at").is_null() | inside)
            .then(pl.col("occurred_at"))
            .when(moved >= pl.col(earliest))
            .then(moved)
            .otherwise(pl.col("occurred_at"))
        ).drop("_frac", "_i", "starts_at", "ends_at")


def build_staff(force: Force, count: int) -> np.ndarray:
    """Staff with roles, teams, home postcodes; returns the postcode pool for persons."""
    rng = force.rng
    counts = {role: max(2, int(share * count)) for role, share in ROLE_SHARES.items()}
    counts["response_officer"] += count - sum(counts.values())
    roles = np.concatenate([np.full(n, role) for role, n in counts.items()])
    team = np.empty(len(roles), dtype=object)
    for role, prefix in TEAM_PREFIX.items():
        where = np.flatnonzero(roles == role)
        size = TEAM_SIZE.get(role, 10)
        team[where] = [f"{prefix}{k // size + 1:02d}" for k in range(len(where))]
    supervised = np.unique(team[np.isin(roles, ["response_officer", "detective", "pcso"])])
    where = np.flatnonzero(roles == "supervisor")
    team[where] = supervised[np.arange(len(where)) % len(supervised)]
    male = rng.random(len(roles)) < np.vectorize(SHARE_MALE.__getitem__)(roles)
    surnames, weights = names.surname_pool(rng, rare=max(2000, count * 4))
    pool = names.postcodes(rng, max(200, count * 3))
    frame = pl.DataFrame(
        {
            "user_id": [f"U{i:05d}" for i in range(1, len(roles) + 1)],
            "surname": rng.choice(surnames, len(roles), p=weights),
            "forenames": np.where(
                male,
                rng.choice(names.MALE_FORENAMES, len(roles)),
                rng.choice(names.FEMALE_FORENAMES, len(roles)),
            ),
            "sex": np.where(male, "M", "F"),
            "role": roles,
            "team_id": team.astype(str),
            "postcode": rng.choice(pool, len(roles)),
            "has_person": rng.random(len(roles)) < 0.4,
        }
    )
    years = rng.integers(100, 9000, len(roles))
    frame = frame.with_columns(
        employed_from=pl.lit(force.start) - pl.duration(days=pl.lit(pl.Series(years))),
        employed_to=pl.lit(None, dtype=pl.Date),
    )
    force.staff = frame
    force.surnames, force.surname_weights = surnames, weights
    return pool


def _adult_age(rng: np.random.Generator, count: int) -> np.ndarray:
    return np.clip(rng.gamma(4.0, 9.0, count) + 16, 18, 95).astype(np.int64)


def _forenames(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    count = len(male)
    return np.where(
        male,
        rng.choice(names.MALE_FORENAMES, count),
        rng.choice(names.FEMALE_FORENAMES, count),
    )


def build_persons(force: Force, pool: np.ndarray) -> None:
    """The records system's people, plus each member of staff's own record, relative, neighbour and
    former partner (the targets of personal misuse, and hard negatives when looked up lawfully)."""
    rng, staff = force.rng, force.staff
    count = max(3000, 30 * staff.height)
    male = rng.random(count) < 0.5
    child = rng.random(count) < 0.15
    age = np.where(child, rng.integers(0, 18, count), _adult_age(rng, count))
    general = pl.DataFrame(
        {
            "surname": rng.choice(force.surnames, count, p=force.surname_weights),
            "forenames": _forenames(rng, male),
            "sex": np.where(male, "M", "F"),
            "age": age,
            "postcode": rng.choice(pool, count),
            "owner": pl.Series([None] * count, dtype=pl.String),
            "kind": pl.Series(["general"] * count),
        }
    )
    n = staff.height
    rel_male = rng.random(n) < 0.5
    neighbour_male = rng.random(n) < 0.5
    ex_male = staff["sex"].to_numpy() == "F"
    ex_surname = np.where(
        rng.random(n) < 0.4,
        staff["surname"].to_numpy(),
        rng.choice(force.surnames, n, p=force.surname_weights),
    )
    linked = [
        staff.filter("has_person").select(
            "surname", "forenames", "sex", "postcode", owner="user_id", kind=pl.lit("self")
        ),
        staff.select(
            "surname",
            forenames=pl.Series(_forenames(rng, rel_male)),
            sex=pl.Series(np.where(rel_male, "M", "F")),
            postcode="postcode",
            owner="user_id",
            kind=pl.lit("relative"),
        ),
        staff.select(
            surname=pl.Series(rng.choice(force.surnames, n, p=force.surname_weights)),
            forenames=pl.Series(_forenames(rng, neighbour_male)),
            sex=pl.Series(np.where(neighbour_male, "M", "F")),
            postcode="postcode",
            owner="user_id",
            kind=pl.lit("neighbour"),
        ),
        staff.select(
            surname=pl.Series(ex_surname),
            forenames=pl.Series(_forenames(rng, ex_male)),
            sex=pl.Series(np.where(ex_male, "M", "F")),
            postcode=pl.Series(rng.choice(pool, n)),
            owner="user_id",
            kind=pl.lit("ex_partner"),
        ),
    ]
    linked_frame = pl.concat(linked).with_columns(
        age=pl.Series(rng.integers(20, 60, sum(f.height for f in linked)))
    )
    persons = pl.concat([general, linked_frame.select(general.columns)])
    total = persons.height
    birthdays = rng.integers(0, 365, total)
    persons = persons.with_columns(
        person_id=pl.format("P{}", pl.int_range(1, total + 1).cast(pl.String).str.zfill(7)),
        date_of_birth=pl.lit(force.start)
        - pl.duration(days=pl.col("age") * 365 + pl.Series(birthdays) + pl.col("age") // 4),
        vulnerable=(pl.col("kind") == "general")
        & (pl.col("age") >= 18)
        & pl.Series(rng.random(total) < 0.04),
        public_figure=(pl.col("kind") == "general")
        & (pl.col("age") >= 25)
        & pl.Series(rng.random(total) < max(0.0008, 3 / count)),
    )
    force.persons = persons
    own = persons.filter(pl.col("kind") == "self").select(user_id="owner", person_id="person_id")
    force.staff = staff.join(own, on="user_id", how="left", maintain_order="left")


def _choose(rng: np.random.Generator, pool: pl.Series, count: int) -> pl.Series:
    return pool.gather(rng.integers(0, len(pool), count))


def _person_pools(force: Force) -> dict[str, pl.Series]:
    general = force.persons.filter(pl.col("kind") == "general")
    adults = general.filter(pl.col("age") >= 18)
    return {
        "female_adult": adults.filter(pl.col("sex") == "F")["person_id"],
        "male_adult": adults.filter(pl.col("sex") == "M")["person_id"],
        "adult": adults["person_id"],
        "child": general.filter(pl.col("age") < 18)["person_id"],
        "young_female": adults.filter((pl.col("sex") == "F") & (pl.col("age") <= 30))["person_id"],
    }


def _incident_people(force: Force, incidents: pl.DataFrame) -> pl.DataFrame:
    """Victims, suspects and witnesses, chosen by category (women for DA/SO victims)."""
    rng = force.rng
    pools = _person_pools(force)
    n = incidents.height
    category = incidents["category"].to_numpy()
    female_case = np.isin(category, FEMALE_VICTIM_CASES) & (rng.random(n) < 0.9)
    child_case = (category == "missing_person") & (rng.random(n) < 0.5)
    victim = np.where(
        female_case,
        _choose(rng, pools["female_adult"], n).to_numpy(),
        np.where(
            child_case,
            _choose(rng, pools["child"], n).to_numpy(),
            _choose(rng, pools["adult"], n).to_numpy(),
        ),
    )
    suspect_rate = np.select(
        [category == "domestic_abuse", category == "sexual_offence", category == "assault"],
        [0.95, 0.8, 0.7],
        0.3,
    )
    has_suspect = rng.random(n) < suspect_rate
    male_suspect = np.isin(category, FEMALE_VICTIM_CASES) | (rng.random(n) < 0.8)
    suspect = np.where(
        male_suspect,
        _choose(rng, pools["male_adult"], n).to_numpy(),
        _choose(rng, pools["adult"], n).to_numpy(),
    )
    witnesses = rng.poisson(0.5, n)
    ids = incidents["incident_id"]
    known = incidents["known_at"]
    parts = [
        pl.DataFrame(
            {"incident_id": ids, "person_id": victim, "role": "victim", "known_at": known}
        ),
        pl.DataFrame(
            {"incident_id": ids, "person_id": suspect, "role": "suspect", "known_at": known}
        ).filter(pl.Series(has_suspect)),
        pl.DataFrame(
            {
                "incident_id": ids.gather(np.repeat(np.arange(n), witnesses)),
                "person_id": _choose(rng, pools["adult"], int(witnesses.sum())),
                "role": "witness",
                "known_at": known.gather(np.repeat(np.arange(n), witnesses)),
            }
        ),
    ]
    return pl.concat(parts).unique(["incident_id", "person_id"], keep="first", maintain_order=True)


def _incident_ids(prefix: str, opened: pl.Series, first_number: int) -> pl.Series:
    numbers = pl.int_range(first_number, first_number + len(opened), eager=True)
    return pl.select(
        pl.format(
            "{}/{}/{}", pl.lit(prefix), opened.dt.year(), numbers.cast(pl.String).str.zfill(6)
        )
    ).to_series()


def build_history(force: Force) -> None:
    """Closed incidents of the last ten years and the intelligence operations now running."""
    rng = force.rng
    first = force.first_utc()
    count = 8 * force.staff.height
    ago = rng.uniform(30, 3650, count)
    length = np.minimum(rng.lognormal(np.log(20), 1.2, count), ago - 1)
    opened = pl.Series([first] * count, dtype=UTC) - seconds(ago * DAY)
    categories = list(HISTORIC_CATEGORIES)
    probs = np.array(list(HISTORIC_CATEGORIES.values()))
    historic = pl.DataFrame(
        {
            "opened_at": opened,
            "category": rng.choice(categories, count, p=probs / probs.sum()),
            "closed_at": opened + seconds(length * DAY),
            "known_at": pl.Series([first] * count, dtype=UTC) - seconds(DAY),
        }
    ).with_columns(incident_id=_incident_ids("CR", opened, 1))
    operations = max(2, force.staff.height // 500)
    op_opened = pl.Series([first] * operations, dtype=UTC) - seconds(
        rng.uniform(30, 300, operations) * DAY
    )
    ops = pl.DataFrame(
        {
            "opened_at": op_opened,
            "category": "operation",
            "closed_at": pl.Series([None] * operations, dtype=UTC),
            "known_at": pl.Series([first] * operations, dtype=UTC) - seconds(DAY),
        }
    ).with_columns(incident_id=_incident_ids("OP", op_opened, 1))
    people = _incident_people(force, historic)
    members = rng.integers(60, 150, operations)
    pools = _person_pools(force)
    op_people = pl.DataFrame(
        {
            "incident_id": ops["incident_id"].gather(np.repeat(np.arange(operations), members)),
            "person_id": _choose(rng, pools["adult"], int(members.sum())),
            "role": rng.choice(["suspect", "other"], int(members.sum()), p=[0.7, 0.3]),
            "known_at": ops["known_at"].gather(np.repeat(np.arange(operations), members)),
        }
    ).unique(["incident_id", "person_id"], keep="first", maintain_order=True)
    force.incidents = pl.concat([historic, ops], how="diagonal")
    force.incident_persons = pl.concat([people, op_people])
    analyst_teams = force.staff.filter(pl.col("role") == "analyst")["team_id"].unique(
        maintain_order=True
    )
    force.assignments = pl.DataFrame(
        {
            "incident_id": ops["incident_id"],
            "user_id": pl.Series([None] * operations, dtype=pl.String),
            "team_id": analyst_teams.gather(np.arange(operations) % len(analyst_teams)),
            "role": "analyst",
            "assigned_from": ops["opened_at"],
            "assigned_to": pl.Series([None] * operations, dtype=UTC),
            "known_at": ops["known_at"],
        }
    )


def build_shifts(force: Force) -> None:
    """The rota: response teams on 4-on-4-off days and nights, 24/7 desks on three shifts,
    neighbourhood teams on days and lates, everyone else in the office on weekdays."""
    rng, staff = force.rng, force.staff
    teams = staff["team_id"].unique(maintain_order=True)
    phases = pl.DataFrame({"team_id": teams, "phase": rng.integers(0, 84, len(teams))})
    days = pl.DataFrame(
        {"d": np.arange(-1, force.days)},
    ).with_columns(day=pl.lit(force.start) + pl.duration(days=pl.col("d")))
    grid = (
        staff.select("user_id", "role", "team_id")
        .with_columns(office_hour=pl.Series(rng.choice([8, 9], staff.height)))
        .join(phases, on="team_id", how="left", maintain_order="left")
        .join(days, how="cross")
        .with_columns(k=pl.col("d") + pl.col("phase"))
    )
    role, team, k = pl.col("role"), pl.col("team_id"), pl.col("k")
    pattern = (
        pl.when(
            (role == "response_officer") | ((role == "supervisor") & team.str.starts_with("RESP"))
        )
        .then(pl.lit("rota4"))
        .when((role == "pcso") | ((role == "supervisor") & team.str.starts_with("NHP")))
        .then(pl.lit("pcso"))
        .when(role.is_in(["call_handler", "victim_enquiry_desk", "custody"]))
        .then(pl.lit("247"))
        .otherwise(pl.lit("office"))
    )
    grid = grid.with_columns(pattern=pattern)
    p = pl.col("pattern")
    on = (
        pl.when(p == "rota4")
        .then((k // 4) % 2 == 0)
        .when(p == "office")
        .then(pl.col("day").dt.weekday() <= 5)
        .otherwise(k % 7 < 5)
    )
    hour = (
        pl.when(p == "rota4")
        .then(pl.when((k // 8) % 2 == 1).then(22).otherwise(7))
        .when(p == "pcso")
        .then(pl.when((k // 7) % 2 == 1).then(14).otherwise(8))
        .when(p == "247")
        .then(pl.when((k // 7) % 3 == 0).then(6).when((k // 7) % 3 == 1).then(14).otherwise(22))
        .otherwise(pl.col("office_hour"))
    )
    length = pl.when(p == "rota4").then(10).when(p == "pcso").then(9).otherwise(8)
    shifts = (
        grid.filter(on)
        .with_columns(hour=hour, length=length)
        .with_columns(
            starts_at=local_to_utc(
                pl.col("day").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))
            )
        )
        .with_columns(ends_at=pl.col("starts_at") + pl.duration(hours=pl.col("length")))
        .select("user_id", "role", "starts_at", "ends_at", known_at="starts_at")
    )
    force.shifts = shifts
    force.duty = (
        shifts.with_columns(
            hour=pl.datetime_ranges(
                pl.col("starts_at").dt.truncate("1h"),
                pl.col("ends_at") - pl.duration(microseconds=1),
                "1h",
            )
        )
        .explode("hour")
        .group_by("role", "hour", maintain_order=True)
        .agg(users="user_id")
    )


def _uniform_between(rng: np.random.Generator, frame: pl.DataFrame, low: str, high: str) -> pl.Expr:
    frac = pl.Series(rng.random(frame.height))
    return pl.col(low) + (pl.col(high) - pl.col(low)) * frac


def _late(
    rng: np.random.Generator, count: int, typical_hours: float, late_share: float
) -> pl.Series:
    """How long after the fact a row is recorded: minutes to hours, sometimes a day or two."""
    delay = rng.exponential(typical_hours * HOUR, count)
    delay += np.where(rng.random(count) < late_share, rng.uniform(12, 40, count) * HOUR, 0)
    return seconds(delay)


def build_new_incidents(force: Force) -> None:
    """Incidents reported during the period: a call, a CAD record, attending and investigating
    officers (assignments recorded late), closure."""
    rng, staff = force.rng, force.staff
    last = force.last_utc()
    count = max(force.days * 3, int(rng.poisson(0.06 * staff.height * force.days)))
    weights = np.array([2, 1.5, 1, 1, 1, 1.5, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 5, 5, 4, 3])
    naive = (
        pl.Series([force.period_start] * count, dtype=pl.Datetime("us"))
        + seconds(rng.integers(0, force.days, count) * DAY)
        + seconds(rng.choice(24, count, p=weights / weights.sum()) * HOUR)
        + seconds(rng.integers(0, 3600, count))
    )
    opened = pl.select(local_to_utc(pl.lit(naive))).to_series().sort()
    categories = list(NEW_CATEGORIES)
    probs = np.array(list(NEW_CATEGORIES.values()))
    category = rng.choice(categories, count, p=probs / probs.sum())
    minor = np.isin(category, ["antisocial_behaviour", "traffic", "theft"])
    duration = rng.lognormal(np.where(minor, np.log(1.5), np.log(7)), 1.0)
    new = pl.DataFrame({"opened_at": opened, "category": category}).with_columns(
        incident_id=_incident_ids("CR", opened, 500_000),
        closed=pl.col("opened_at") + seconds(duration * DAY),
        known_at=pl.col("opened_at"),
    )
    new = new.with_columns(
        closed_at=pl.when(pl.col("closed") <= last).then(pl.col("closed")),
    )
    closures_count = new.height - new["closed_at"].null_count()
    closures = new.filter(pl.col("closed_at").is_not_null()).with_columns(
        known_at=pl.col("closed_at") + _late(rng, closures_count, 1, 0.0)
    )
    columns = ["incident_id", "category", "opened_at", "closed_at", "known_at"]
    force.incidents = pl.concat(
        [
            force.incidents.select(columns),
            new.with_columns(closed_at=pl.lit(None, dtype=UTC)).select(columns),
            closures.select(columns),
        ]
    )
    people = _incident_people(force, new)
    force.incident_persons = pl.concat([force.incident_persons, people])
    _calls_for_incidents(force, new, people)
    _assignments_for_incidents(force, new)


def _calls_for_incidents(force: Force, new: pl.DataFrame, people: pl.DataFrame) -> None:
    rng = force.rng
    n = new.height
    victims = people.filter(pl.col("role") == "victim").select("incident_id", "person_id")
    calls = new.join(victims, on="incident_id", how="left", maintain_order="left").with_columns(
        started_at=pl.col("opened_at") - seconds(rng.uniform(60, 600, n)),
        ended_at=pl.col("opened_at") + seconds(rng.uniform(60, 480, n)),
    )
    calls = calls.with_columns(user_id=force.on_duty(calls["started_at"], "call_handler"))
    force.calls = calls.select(
        "user_id",
        "started_at",
        "ended_at",
        "person_id",
        "incident_id",
        direction=pl.lit("inbound"),
        known_at="ended_at",
    )
    surnames = force.persons.select("person_id", "surname")
    with_names = calls.join(surnames, on="person_id", how="left", maintain_order="left")
    t = pl.col("started_at")
    contact = pl.Series(rng.random(n) < 0.3)
    update = pl.Series(rng.random(n) < 0.5)
    update_delay = seconds(rng.uniform(60, 400, n))
    handler = [
        events(
            with_names.select("user_id", occurred_at=t + seconds(20), search_text="surname"),
            system="RMS",
            action="search",
            record_type="person",
            reason_code="call",
        ),
        events(
            with_names.select("user_id", occurred_at=t + seconds(45), record_id="person_id"),
            system="RMS",
            action="view",
            record_type="person",
            reason_code="call",
        ),
        events(
            with_names.filter(contact).select(
                "user_id", occurred_at=t + seconds(70), record_id="person_id"
            ),
            system="RMS",
            action="view_contact",
            record_type="person",
            reason_code="call",
        ),
        events(
            calls.select("user_id", occurred_at="opened_at", record_id="incident_id"),
            system="CAD",
            action="create",
            record_type="incident",
        ),
        events(
            calls.filter(update).select(
                "user_id",
                occurred_at=pl.col("opened_at") + update_delay.filter(update),
                record_id="incident_id",
            ),
            system="CAD",
            action="update",
            record_type="incident",
        ),
    ]
    for part in handler:
        force.add_events(part)


def _assignments_for_incidents(force: Force, new: pl.DataFrame) -> None:
    rng = force.rng
    n = new.height
    attended = pl.Series(rng.random(n) < np.where(new["category"] == "traffic", 0.5, 0.9))
    arrive = new["opened_at"] + seconds(rng.uniform(5, 40, n) * 60)
    attending = new.select("incident_id", "closed_at").with_columns(
        work_from=arrive,
        user_id=force.on_duty(arrive, "response_officer"),
        role=pl.lit("attending_officer"),
    )
    attending = attending.with_columns(
        work_to=pl.col("work_from") + seconds(rng.uniform(3, 9, n) * HOUR)
    ).filter(attended)
    detective_case = new["category"].is_in(DETECTIVE_CASES)
    picked_up = new["opened_at"] + seconds(rng.uniform(6, 40, n) * HOUR)
    by_detective = new.select("incident_id", "closed_at").with_columns(
        work_from=picked_up,
        user_id=force.on_duty(picked_up, "detective"),
        role=pl.lit("officer_in_charge"),
        work_to=pl.col("closed_at"),
    )
    by_detective = by_detective.filter(detective_case)
    by_attender = attending.filter(
        ~pl.col("incident_id").is_in(by_detective["incident_id"].implode())
    ).with_columns(role=pl.lit("officer_in_charge"), work_to=pl.col("closed_at"))
    people = pl.concat([attending, by_detective, by_attender.select(attending.columns)])
    teams = force.staff.select("user_id", "team_id")
    team_cases = (
        by_detective.join(teams, on="user_id", how="left", maintain_order="left")
        .filter(pl.Series(rng.random(by_detective.height) < 0.4))
        .with_columns(user_id=pl.lit(None, dtype=pl.String), role=pl.lit("investigator"))
    )
    people = people.with_columns(team_id=pl.lit(None, dtype=pl.String))
    combined = pl.concat([people, team_cases.select(people.columns)])
    m = combined.height
    recorded = combined["work_from"] + _late(rng, m, 1.5, 0.2)
    combined = combined.with_columns(
        assigned_from=recorded,
        assigned_to=pl.when(pl.col("work_to").is_not_null()).then(
            pl.max_horizontal("work_to", recorded + seconds(HOUR))
        ),
    ).with_columns(known_at=pl.col("assigned_from") + _late(rng, m, 0.3, 0.1))
    force.assignments = pl.concat([force.assignments, combined.select(force.assignments.columns)])
    force.case_work = combined


def _session_events(force: Force, sessions: pl.DataFrame) -> None:
    """What one sitting with a case looks like: the incident, most of its people, sometimes the
    victim's contact details, an update; detectives now and then print."""
    rng = force.rng
    n = sessions.height
    cites = pl.Series(rng.random(n) < 0.2)
    sessions = sessions.with_columns(
        justification=pl.when(cites).then(pl.format("Enquiries re {}", "incident_id")),
        reason_code=pl.lit("investigation"),
    )
    force.add_events(
        events(
            sessions.select(
                "user_id", "occurred_at", "justification", "reason_code", record_id="incident_id"
            ),
            system="RMS",
            action="view",
            record_type="incident",
        )
    )
    update = pl.Series(rng.random(n) < 0.5)
    force.add_events(
        events(
            sessions.filter(update).select(
                "user_id",
                "reason_code",
                occurred_at=pl.col("occurred_at")
                + seconds(rng.uniform(300, 1800, n)).filter(update),
                record_id="incident_id",
            ),
            system="RMS",
            action="update",
            record_type="incident",
        )
    )
    printed = pl.Series(rng.random(n) < 0.03)
    force.add_events(
        events(
            sessions.filter(printed).select(
                "user_id",
                "reason_code",
                occurred_at=pl.col("occurred_at") + seconds(900),
                record_id="incident_id",
            ),
            system="RMS",
            action="print",
            record_type="incident",
        )
    )
    linked = sessions.join(force.incident_persons.drop("known_at"), on="incident_id", how="inner")
    m = linked.height
    linked = linked.with_columns(
        occurred_at=pl.col("occurred_at") + seconds(rng.uniform(10, 600, m))
    )
    viewed = linked.filter(pl.Series(rng.random(m) < 0.7))
    force.add_events(
        events(
            viewed.select(
                "user_id", "occurred_at", "justification", "reason_code", record_id="person_id"
            ),
            system="RMS",
            action="view",
            record_type="person",
        )
    )
    contact = linked.filter((pl.col("role") == "victim") & pl.Series(rng.random(m) < 0.25))
    force.add_events(
        events(
            contact.select(
                "user_id",
                "reason_code",
                occurred_at=pl.col("occurred_at") + seconds(30),
                record_id="person_id",
            ),
            system="RMS",
            action="view_contact",
            record_type="person",
        )
    )


def build_case_work(force: Force) -> None:
    """Assigned officers work their cases on shift; team supervisors and colleagues look in."""
    rng = force.rng
    last = force.last_utc()
    work = force.case_work.with_columns(
        work_to=pl.min_horizontal(pl.col("work_to").fill_null(last), pl.lit(last, dtype=UTC))
    ).filter(pl.col("work_to") > pl.col("work_from"))
    span = work.select(
        ((pl.col("work_to") - pl.col("work_from")).dt.total_seconds() / DAY).alias("span")
    )["span"].to_numpy()
    personal = work["user_id"].is_not_null().to_numpy()
    oic = (work["role"] == "officer_in_charge").to_numpy()
    rate = np.where(oic, 1.5, 0.0) * span + np.where(personal & ~oic, 1.0, 0.0)
    sessions = np.where(personal, 1 + rng.poisson(np.minimum(rate, 40)), 0)
    team_rows = work.filter(pl.col("team_id").is_not_null())
    supervisors = force.staff.filter(pl.col("role") == "supervisor").select(
        "team_id", member="user_id"
    )
    colleagues = force.staff.filter(pl.col("role") != "supervisor").select(
        "team_id", member="user_id"
    )
    team_work = pl.concat(
        [
            team_rows.join(supervisors, on="team_id").with_columns(
                sessions=(
                    pl.lit(1) + (pl.col("work_to") - pl.col("work_from")).dt.total_days() // 4
                ).cast(pl.Int64)
            ),
            team_rows.join(colleagues, on="team_id").with_columns(sessions=pl.lit(1, pl.Int64)),
        ]
    )
    team_work = team_work.filter(
        pl.Series(rng.random(team_work.height) < 0.15) | (pl.col("sessions") > 1)
    ).with_columns(user_id="member")
    planned = pl.concat(
        [
            work.with_columns(sessions=pl.Series(sessions)).select(
                "user_id", "incident_id", "work_from", "work_to", "sessions"
            ),
            team_work.select("user_id", "incident_id", "work_from", "work_to", "sessions"),
        ]
    ).filter(pl.col("sessions") > 0)
    repeated = planned.select(pl.all().repeat_by("sessions")).explode(planned.columns)
    repeated = repeated.with_columns(
        occurred_at=_uniform_between(rng, repeated, "work_from", "work_to")
    )
    _session_events(force, force.snap_to_shift(repeated, "work_from"))


def build_desk_calls(force: Force) -> None:
    """Victims calling the victim-enquiry desk about their old reports; some call again and again.
    The desk reads the caller's record and report during the call."""
    rng = force.rng
    count = max(5, int(rng.poisson(0.012 * force.staff.height * force.days)))
    victims = (
        force.incident_persons.filter(pl.col("role") == "victim")
        .join(
            force.incidents.filter(pl.col("closed_at").is_not_null()).unique("incident_id"),
            on="incident_id",
        )
        .filter(
            pl.col("category").is_in(["domestic_abuse", "sexual_offence", "assault", "burglary"])
        )
        .filter(pl.col("opened_at") < force.first_utc())
        .select("incident_id", "person_id")
        .unique(maintain_order=True)
    )
    repeaters = victims.gather(rng.integers(0, victims.height, max(5, count // 15)))
    repeat = rng.random(count) < 0.3
    callers = pl.concat(
        [
            repeaters.gather(rng.integers(0, repeaters.height, int(repeat.sum()))),
            victims.gather(rng.integers(0, victims.height, int((~repeat).sum()))),
        ]
    )
    naive = (
        pl.Series([force.period_start] * count, dtype=pl.Datetime("us"))
        + seconds(rng.integers(0, force.days, count) * DAY)
        + seconds(rng.uniform(8, 20, count) * HOUR)
    )
    started = pl.select(local_to_utc(pl.lit(naive))).to_series()
    length = rng.uniform(180, 1200, count)
    calls = callers.with_columns(
        started_at=started,
        ended_at=started + seconds(length),
        user_id=force.on_duty(started, "victim_enquiry_desk"),
        known_at=started + seconds(length),
        stated=pl.Series(rng.random(count) < 0.75),
    )
    force.calls = pl.concat(
        [
            force.calls,
            calls.select(
                "user_id",
                "started_at",
                "ended_at",
                "person_id",
                incident_id=pl.when("stated").then("incident_id"),
                direction=pl.lit("inbound"),
                known_at="known_at",
            ),
        ]
    )
    named = calls.join(
        force.persons.select("person_id", "surname"),
        on="person_id",
        how="left",
        maintain_order="left",
    )
    t = pl.col("started_at")
    force.add_events(
        events(
            named.select("user_id", occurred_at=t + seconds(20), search_text="surname"),
            system="RMS",
            action="search",
            record_type="person",
            reason_code="call",
        )
    )
    force.add_events(
        events(
            named.select("user_id", occurred_at=t + seconds(60), record_id="person_id"),
            system="RMS",
            action="view",
            record_type="person",
            reason_code="call",
        )
    )
    force.add_events(
        events(
            named.select("user_id", occurred_at=t + seconds(120), record_id="incident_id"),
            system="RMS",
            action="view",
            record_type="incident",
            reason_code="call",
        )
    )
    contact = pl.Series(rng.random(count) < 0.35)
    force.add_events(
        events(
            named.filter(contact).select(
                "user_id",
                occurred_at=t + seconds(150 + rng.random(count) * (length - 150)).filter(contact),
                record_id="person_id",
            ),
            system="RMS",
            action="view_contact",
            record_type="person",
            reason_code="call",
        )
    )


def _shift_moments(force: Force, shifts: pl.DataFrame, per_shift: np.ndarray) -> pl.DataFrame:
    """`per_shift[i]` random moments inside shift i, as (user_id, role, occurred_at)."""
    index = np.repeat(np.arange(shifts.height), per_shift)
    picked = shifts[index]
    return picked.with_columns(
        occurred_at=_uniform_between(force.rng, picked, "starts_at", "ends_at")
    )


def build_routine(force: Force) -> None:
    """Analysts' bulk research on operations, custody checks, searches, and the residue of lawful
    lookups nobody justified (street checks, enquiries), spread over everyone's shifts."""
    rng = force.rng
    shifts = force.shifts.filter(pl.col("starts_at") < force.last_utc())
    # analysts: their team's operations, dozens of subjects a shift
    analysts = shifts.filter(pl.col("role") == "analyst").join(
        force.staff.select("user_id", "team_id"), on="user_id", maintain_order="left"
    )
    op_people = (
        force.assignments.filter(pl.col("role") == "analyst")
        .select("team_id", "incident_id")
        .join(force.incident_persons.select("incident_id", "person_id"), on="incident_id")
        .group_by("team_id", maintain_order=True)
        .agg("person_id", "incident_id")
    )
    research = _shift_moments(force, analysts, rng.poisson(30, analysts.height)).join(
        op_people, on="team_id", maintain_order="left"
    )
    pick = pl.Series(rng.integers(0, 1 << 30, research.height))
    research = research.with_columns(
        record_id=pl.col("person_id").list.get(pick % pl.col("person_id").list.len()),
        incident=pl.col("incident_id").list.get(pick % pl.col("incident_id").list.len()),
    )
    systems = pl.Series(rng.choice(["RMS", "PND"], research.height, p=[0.7, 0.3]))
    force.add_events(
        events(
            research.select("user_id", "occurred_at", "record_id", system=systems),
            action="view",
            record_type="person",
            reason_code="intelligence",
        )
    )
    exports = research.filter(pl.Series(rng.random(research.height) < 0.01))
    force.add_events(
        events(
            exports.select("user_id", "occurred_at", record_id="incident"),
            system="RMS",
            action="export",
            record_type="incident",
            reason_code="intelligence",
        )
    )
    # custody: suspects of new incidents brought in
    suspects = (
        force.incident_persons.filter(pl.col("role") == "suspect")
        .join(
            force.incidents.filter(pl.col("opened_at") >= force.first_utc()).unique("incident_id"),
            on="incident_id",
        )
        .select("incident_id", "person_id", "opened_at")
    )
    suspects = suspects.filter(pl.Series(rng.random(suspects.height) < 0.4))
    booked = suspects["opened_at"] + seconds(rng.uniform(1, 12, suspects.height) * HOUR)
    cited = pl.Series(rng.random(suspects.height) < 0.8)
    force.add_events(
        events(
            suspects.select(
                occurred_at=booked,
                user_id=force.on_duty(booked, "custody"),
                record_id="person_id",
                justification=pl.when(cited).then(
                    pl.format("Custody record, arrested re {}", "incident_id")
                ),
            ),
            system="RMS",
            action="view",
            record_type="person",
            reason_code="custody",
        )
    )
    # residue of lawful but unrecorded lookups, and plain searches
    rates = shifts["role"].replace_strict(RESIDUE_PER_SHIFT, return_dtype=pl.Float64).to_numpy()
    residue = _shift_moments(force, shifts, rng.poisson(rates))
    general = force.persons.filter(pl.col("kind") == "general")["person_id"]
    street = residue["role"].is_in(["response_officer", "pcso"]).to_numpy()
    residue = residue.with_columns(
        record_id=_choose(rng, general, residue.height),
        system=pl.Series(np.where(street & (rng.random(residue.height) < 0.7), "PNC", "RMS")),
        action=pl.Series(np.where(rng.random(residue.height) < 0.08, "view_contact", "view")),
        reason_code=pl.Series(
            np.where(
                street, "stop_check", rng.choice(["enquiry", "intelligence", ""], residue.height)
            )
        ).replace("", None),
    )
    force.add_events(
        events(
            residue.select(
                "user_id", "occurred_at", "record_id", "system", "action", "reason_code"
            ),
            record_type="person",
        )
    )
    searches = _shift_moments(force, shifts, rng.poisson(12, shifts.height))
    force.add_events(
        events(
            searches.select(
                "user_id",
                "occurred_at",
                search_text=pl.Series(
                    rng.choice(force.surnames, searches.height, p=force.surname_weights)
                ),
            ),
            system="RMS",
            action="search",
            record_type="person",
        )
    )


def finish_markers(force: Force) -> None:
    """Markers as the records system holds them at the end of the period."""
    victims = force.incident_persons.filter(pl.col("role") == "victim").join(
        force.incidents.unique("incident_id").select("incident_id", "category"), on="incident_id"
    )
    da = victims.filter(pl.col("category") == "domestic_abuse")["person_id"].implode()
    so = victims.filter(pl.col("category") == "sexual_offence")["person_id"].implode()
    pid = pl.col("person_id")
    force.persons = force.persons.with_columns(
        markers=pl.concat_list(
            pl.when(pl.col("age") < 18).then(pl.lit("child")),
            pl.when("vulnerable").then(pl.lit("vulnerable_adult")),
            pl.when(pid.is_in(da)).then(pl.lit("domestic_abuse_victim")),
            pl.when(pid.is_in(so)).then(pl.lit("sexual_offence_victim")),
            pl.when("public_figure").then(pl.lit("public_figure")),
            pl.when(pl.col("kind") == "self").then(pl.lit("staff_member")),
        )
        .list.drop_nulls()
        .list.join(";")
        .replace("", None)
    )


def build_training(force: Force) -> None:
    """Training records: most staff did APSP and data-protection training, some long ago."""
    rng, staff = force.rng, force.staff
    parts = []
    for course, share in (("APSP", 0.8), ("data_protection", 0.95), ("code_of_ethics", 0.7)):
        took = pl.Series(rng.random(staff.height) < share)
        ago = pl.Series(rng.integers(20, 1500, staff.height))
        parts.append(
            staff.select(
                "user_id",
                course=pl.lit(course),
                completed_at=pl.lit(force.start) - pl.duration(days=pl.lit(ago)),
            ).filter(took)
        )
    force.training = pl.concat(parts).with_columns(pl.col("completed_at").cast(pl.Date))
