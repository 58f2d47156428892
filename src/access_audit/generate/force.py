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

from access_audit.generate import FORCE_TIMEZONE, names

TZ = FORCE_TIMEZONE
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

GAP_COLUMNS: dict[str, pl.DataType] = {
    "gap_id": pl.String(),
    "scenario": pl.String(),
    "system": pl.String(),
    "user_id": pl.String(),
    "starts_at": UTC,
    "ends_at": UTC,
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
    gaps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=GAP_COLUMNS))
    """Planted audit gaps: windows whose rows were deleted at the source (scenarios.py)."""
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


def choose(rng: np.random.Generator, pool: pl.Series, count: int) -> pl.Series:
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


def incident_people(force: Force, incidents: pl.DataFrame) -> pl.DataFrame:
    """Victims, suspects and witnesses, chosen by category (women for DA/SO victims)."""
    rng = force.rng
    pools = _person_pools(force)
    n = incidents.height
    category = incidents["category"].to_numpy()
    female_case = np.isin(category, FEMALE_VICTIM_CASES) & (rng.random(n) < 0.9)
    child_case = (category == "missing_person") & (rng.random(n) < 0.5)
    victim = np.where(
        female_case,
        choose(rng, pools["female_adult"], n).to_numpy(),
        np.where(
            child_case,
            choose(rng, pools["child"], n).to_numpy(),
            choose(rng, pools["adult"], n).to_numpy(),
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
        choose(rng, pools["male_adult"], n).to_numpy(),
        choose(rng, pools["adult"], n).to_numpy(),
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
                "person_id": choose(rng, pools["adult"], int(witnesses.sum())),
                "role": "witness",
                "known_at": known.gather(np.repeat(np.arange(n), witnesses)),
            }
        ),
    ]
    return pl.concat(parts).unique(["incident_id", "person_id"], keep="first", maintain_order=True)


def incident_ids(prefix: str, opened: pl.Series, first_number: int) -> pl.Series:
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
    ).with_columns(incident_id=incident_ids("CR", opened, 1))
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
    ).with_columns(incident_id=incident_ids("OP", op_opened, 1))
    people = incident_people(force, historic)
    members = rng.integers(60, 150, operations)
    pools = _person_pools(force)
    op_people = pl.DataFrame(
        {
            "incident_id": ops["incident_id"].gather(np.repeat(np.arange(operations), members)),
            "person_id": choose(rng, pools["adult"], int(members.sum())),
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
