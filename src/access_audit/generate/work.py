"""The force at work: incidents reported and assigned, cases worked on shift, calls to the desk,
analysts' research, custody checks, and the residue of lawful lookups nobody recorded.

Every function adds audit rows (and the calls and assignments that explain them) to a `Force`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from access_audit.generate.force import (
    DAY,
    DETECTIVE_CASES,
    HOUR,
    NEW_CATEGORIES,
    RESIDUE_PER_SHIFT,
    UTC,
    Force,
    choose,
    events,
    incident_ids,
    incident_people,
    local_to_utc,
    seconds,
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
        incident_id=incident_ids("CR", opened, 500_000),
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
    people = incident_people(force, new)
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
    _during_calls(force, with_names, CALL_HANDLER_STEPS)
    handler = [
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


# What the call taker opens while the caller is on the line: (seconds after the call started,
# action, record type, the call's column naming the record; None: a search for the surname).
CallStep = tuple[int, str, str, str | None]
CALL_HANDLER_STEPS: tuple[CallStep, ...] = (
    (20, "search", "person", None),
    (45, "view", "person", "person_id"),
)
DESK_STEPS: tuple[CallStep, ...] = (
    (20, "search", "person", None),
    (60, "view", "person", "person_id"),
    (120, "view", "incident", "incident_id"),
)


def _during_calls(force: Force, calls: pl.DataFrame, steps: tuple[CallStep, ...]) -> None:
    started = pl.col("started_at")
    for offset, action, record_type, column in steps:
        record = (
            pl.col("surname").alias("search_text")
            if column is None
            else pl.col(column).alias("record_id")
        )
        force.add_events(
            events(
                calls.select("user_id", record, occurred_at=started + seconds(offset)),
                system="RMS",
                action=action,
                record_type=record_type,
                reason_code="call",
            )
        )


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
    _during_calls(force, named, DESK_STEPS)
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
        record_id=choose(rng, general, residue.height),
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
