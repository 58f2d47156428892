"""Risk indicators on every access, explained or not, each with the evidence an analyst reads.

One function per indicator, each a lazy transform returning (system, event_id, code, points,
evidence); `indicators` stacks the ones the rules enable. `targets` are the accesses being scored,
with an `explained` column; `lookups` is the look-back as lookups (score/lookback.py: one row per
user, record and day, the targets' days included).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import polars as pl

from access_audit.config import DEFAULT_PEER_RATIO
from access_audit.errors import AccessAuditError
from access_audit.score.explain import Inputs, cited_incidents
from access_audit.score.rules import Indicator, Rules, fmt
from access_audit.tables import INDICATORS

INDICATOR_SCHEMA = INDICATORS.schema()
VICTIM_MARKERS = ["domestic_abuse_victim", "sexual_offence_victim"]
VULNERABLE_MARKERS = ["vulnerable_adult", "child"]
_EXPLAINED_PERSON = pl.col("explained") & (pl.col("record_type") == "person")

Builder = Callable[["Frame", Indicator], pl.LazyFrame]


class Frame:
    """What the indicator functions share: inputs, rules, target accesses, look-back lookups."""

    def __init__(self, inputs: Inputs, rules: Rules, targets: pl.LazyFrame, lookups: pl.LazyFrame):
        self.inputs = inputs
        self.rules = rules
        self.targets = targets
        self.lookups = lookups
        self.people = targets.filter(pl.col("record_type") == "person")
        self.unexplained_people = self.people.filter(~pl.col("explained"))


def _out(
    frame: pl.LazyFrame,
    indicator: Indicator,
    evidence: pl.Expr | None = None,
    points: pl.Expr | None = None,
) -> pl.LazyFrame:
    return frame.select(
        "system",
        "event_id",
        code=pl.lit(indicator.name),
        points=(points if points is not None else pl.lit(indicator.weight)).cast(pl.Float64),
        evidence=(evidence if evidence is not None else pl.lit(None)).cast(pl.String),
    )


def _gap(delta: pl.Expr) -> pl.Expr:
    """A duration in words: '20 minutes', '5 hours', '3 days'."""
    minutes = delta.dt.total_minutes()
    return (
        pl.when(minutes < 120)
        .then(fmt("{} minutes", minutes))
        .when(minutes < 48 * 60)
        .then(fmt("{} hours", minutes // 60))
        .otherwise(fmt("{} days", minutes // 1440))
    )


def _readable_markers(markers: pl.Expr) -> pl.Expr:
    return markers.list.join(" and ").str.replace_all("_", " ")


def _with_markers(f: Frame, wanted: list[str]) -> pl.LazyFrame:
    persons = f.inputs.persons.select(
        record_id="person_id",
        hits=pl.col("markers").list.eval(pl.element().filter(pl.element().is_in(wanted))),
    ).filter(pl.col("hits").list.len() > 0)
    return f.people.join(persons, on="record_id")


def victim_subject(f: Frame, ind: Indicator) -> pl.LazyFrame:
    return _out(_with_markers(f, VICTIM_MARKERS), ind, _readable_markers(pl.col("hits")))


def vulnerable_subject(f: Frame, ind: Indicator) -> pl.LazyFrame:
    hits = _with_markers(f, VULNERABLE_MARKERS)
    return _out(hits, ind, _readable_markers(pl.col("hits")))


def public_figure(f: Frame, ind: Indicator) -> pl.LazyFrame:
    return _out(_with_markers(f, ["public_figure"]), ind)


def unexplained(f: Frame, ind: Indicator) -> pl.LazyFrame:
    return _out(f.targets.filter(pl.col("record_id").is_not_null()), ind)


def contact_details(f: Frame, ind: Indicator) -> pl.LazyFrame:
    return _out(f.targets.filter(pl.col("action") == "view_contact"), ind)


def print_export(f: Frame, ind: Indicator) -> pl.LazyFrame:
    return _out(f.targets.filter(pl.col("action").is_in(["print", "export"])), ind)


def met_on_duty(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """The user met the subject through work that has ended: a call, or an assignment."""
    call_grace = max((k.grace_after_hours for k in f.rules.explanation("call")), default=0.0)
    assign_grace = max(
        (k.grace_after_hours for k in f.rules.explanation("user_assignment")), default=0.0
    )
    events = f.unexplained_people.select(
        "system", "event_id", "user_id", "record_id", "occurred_at"
    )
    calls = f.inputs.calls.filter(pl.col("person_id").is_not_null()).select(
        "user_id",
        record_id="person_id",
        ended="ended_at",
        via="call_id",
        what=pl.lit("call"),
    )
    assignments = (
        f.inputs.assignments.filter(
            pl.col("user_id").is_not_null() & pl.col("assigned_to").is_not_null()
        )
        .join(f.inputs.incident_persons.select("incident_id", "person_id"), on="incident_id")
        .select(
            "user_id",
            record_id="person_id",
            ended="assigned_to",
            via="incident_id",
            what=pl.lit("assignment"),
        )
    )
    call_days = timedelta(days=ind.param("call_days"))
    assignment_days = timedelta(days=ind.param("assignment_days"))
    t, ended = pl.col("occurred_at"), pl.col("ended")
    matched = pl.concat(
        [
            events.join(calls, on=["user_id", "record_id"]).filter(
                (ended < t - timedelta(hours=call_grace)) & (ended > t - call_days)
            ),
            events.join(assignments, on=["user_id", "record_id"]).filter(
                (ended < t - timedelta(hours=assign_grace)) & (ended > t - assignment_days)
            ),
        ]
    )
    latest = matched.group_by("system", "event_id").agg(pl.all().sort_by(["ended", "via"]).last())
    evidence = (
        pl.when(pl.col("what") == "call")
        .then(fmt("{} after their call with the subject ({}) ended", _gap(t - ended), "via"))
        .otherwise(
            fmt(
                "{} after their assignment to {}, which links the subject, ended",
                _gap(t - ended),
                "via",
            )
        )
    )
    return _out(latest, ind, evidence)


def dormant_incident(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """The subject's incidents are all closed, the latest long ago."""
    activity = (
        f.inputs.incident_persons.select("incident_id", "person_id")
        .join(f.inputs.incidents.select("incident_id", "opened_at", "closed_at"), on="incident_id")
        .with_columns(
            last=pl.coalesce("closed_at", "opened_at"), open=pl.col("closed_at").is_null()
        )
        .group_by("person_id")
        .agg(
            pl.col("incident_id", "last", "closed_at").sort_by(["last", "incident_id"]).last(),
            any_open=pl.col("open").any(),
        )
        .filter(~pl.col("any_open"))
        .select(record_id="person_id", incident="incident_id", last="last")
    )
    dormant = timedelta(days=ind.param("dormant_days"))
    hits = f.unexplained_people.join(activity, on="record_id").filter(
        pl.col("last") < pl.col("occurred_at") - dormant
    )
    return _out(hits, ind, fmt("{} closed in {}", "incident", pl.col("last").dt.year()))


def unlinked_subject(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """The subject is a person on the system whom no incident and no call linked when they were
    looked up: nothing on record brought them into police work. Vetting, licensing and
    safeguarding read such people every day, so their peers' rates take the weight away; where
    peers never do, it is rare.

    A link counts if it was made no more than `grace_hours` after the lookup (work is recorded
    late): a call when it started; an incident's link when the incident was opened or, for a
    link first delivered after the home's first load, the day of the drop that first delivered
    it, whichever is later (an identical row delivered again keeps its first delivery). So an
    incident created the next week that names the person, or a person added afterwards to an old
    incident, does not clear the lookup; the links of the first load, which holds the force's
    history, are dated by their incidents. An incident missing from `incidents` links nobody. A
    person missing from `persons` is not judged (the reference data is incomplete, not the
    person unknown to police)."""
    grace = pl.duration(hours=float(ind.param("grace_hours")))
    known = f.inputs.persons.select(record_id="person_id").unique()
    opened = f.inputs.incidents.select("incident_id", "opened_at").unique("incident_id")
    rows = f.inputs.incident_persons.select("incident_id", "person_id", "as_of")
    first_load = rows.select(first=pl.col("as_of").min())
    delivered_later = pl.col("as_of") > pl.col("first")
    links = pl.concat(
        [
            rows.join(opened, on="incident_id")
            .join(first_load, how="cross")
            .select(
                record_id="person_id",
                linked_at=pl.when(delivered_later)
                .then(pl.max_horizontal("opened_at", "as_of"))
                .otherwise("opened_at"),
            ),
            f.inputs.calls.select(record_id="person_id", linked_at="started_at"),
        ]
    ).filter(pl.col("record_id").is_not_null() & pl.col("linked_at").is_not_null())
    earliest = links.group_by("record_id").agg(pl.col("linked_at").min())
    hits = (
        f.people.join(known, on="record_id", how="semi")
        .join(earliest, on="record_id", how="left")
        .filter(
            pl.col("linked_at").is_null() | (pl.col("linked_at") > pl.col("occurred_at") + grace)
        )
    )
    return _out(hits, ind)


def _staff_person(f: Frame) -> pl.LazyFrame:
    return f.people.join(
        f.inputs.staff.select(
            "user_id", own_person="person_id", own_surname="surname", own_postcode="postcode"
        ),
        on="user_id",
        how="left",
    )


def self_lookup(f: Frame, ind: Indicator) -> pl.LazyFrame:
    return _out(_staff_person(f).filter(pl.col("own_person") == pl.col("record_id")), ind)


def declared_association(f: Frame, ind: Indicator) -> pl.LazyFrame:
    declared = f.inputs.associations.select("user_id", "relationship", record_id="person_id")
    hits = f.people.join(declared, on=["user_id", "record_id"])
    return _out(hits, ind, pl.col("relationship").str.replace_all("_", " "))


def same_surname(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """Weighted by rarity: sharing 'Smith' says little, sharing a rare name says a lot."""
    persons = f.inputs.persons.select(
        record_id="person_id", surname=pl.col("surname").str.to_lowercase()
    )
    counts = persons.group_by("surname").agg(holders=pl.len())
    common, rare = float(ind.param("common_count")), float(ind.param("rare_count"))
    rarity = (
        (math.log(common) - pl.col("holders").cast(pl.Float64).log())
        / (math.log(common) - math.log(rare))
    ).clip(0.0, 1.0)
    hits = (
        _staff_person(f)
        .filter(~pl.col("explained"))
        .join(persons, on="record_id")
        .filter(pl.col("surname") == pl.col("own_surname").str.to_lowercase())
        .join(counts, on="surname")
        .with_columns(rarity=rarity)
        .filter(pl.col("rarity") > 0)
    )
    return _out(
        hits,
        ind,
        fmt("a surname held by {} people on the system", "holders"),
        pl.lit(ind.weight) * pl.col("rarity"),
    )


def same_postcode(f: Frame, ind: Indicator) -> pl.LazyFrame:
    persons = f.inputs.persons.select(record_id="person_id", postcode="postcode")
    hits = (
        _staff_person(f)
        .join(persons, on="record_id")
        .filter(
            pl.col("postcode").str.replace_all(" ", "").str.to_uppercase()
            == pl.col("own_postcode").str.replace_all(" ", "").str.to_uppercase()
        )
    )
    return _out(hits, ind)


def colleague(f: Frame, ind: Indicator) -> pl.LazyFrame:
    colleagues = f.inputs.staff.filter(pl.col("person_id").is_not_null()).select(
        record_id="person_id", colleague="user_id"
    )
    hits = f.people.join(colleagues, on="record_id").filter(
        pl.col("colleague") != pl.col("user_id")
    )
    return _out(hits, ind, fmt("staff {}", "colleague"))


def _about_persons(lookups: pl.LazyFrame, links: pl.LazyFrame, keep: list[str]) -> pl.LazyFrame:
    """Lookups (or accesses) as the persons they are about, with the columns `keep`: a person
    record is about that person; an incident record is about every person it links (browsing a
    murder is browsing its victim)."""
    return pl.concat(
        [
            lookups.filter(pl.col("record_type") == "person").select(*keep, subject="record_id"),
            lookups.filter(pl.col("record_type") == "incident")
            .join(links, left_on="record_id", right_on="incident_id")
            .select(*keep, subject="person_id"),
        ]
    )


def _unusual_reads(f: Frame) -> pl.LazyFrame:
    """(user_id, record_type, weight): how unusual an unexplained read of that kind of record is
    for the user: the share of their peers' lookups of it (team and role, else role) over the
    look-back that were explained. A bulk reader whose unit leaves most reads unexplained weighs
    little; a unit whose reads are nearly all recorded weighs nearly one."""
    staff = f.inputs.staff.select("user_id", "role", "team_id").unique("user_id", keep="first")
    lookups = f.lookups.select("user_id", "record_type", "explained").join(
        staff, on="user_id", how="left"
    )
    by_team = lookups.group_by("team_id", "role", "record_type").agg(
        team_share=pl.col("explained").mean()
    )
    by_role = lookups.group_by("role", "record_type").agg(role_share=pl.col("explained").mean())
    users = lookups.select("user_id", "record_type", "team_id", "role").unique()
    return (
        users.join(by_team, on=["team_id", "role", "record_type"], how="left", nulls_equal=True)
        .join(by_role, on=["role", "record_type"], how="left", nulls_equal=True)
        .select(
            "user_id",
            "record_type",
            weight=pl.when(pl.col("team_id").is_not_null())
            .then(pl.col("team_share"))
            .otherwise(pl.col("role_share"))
            .cast(pl.Float64),
        )
    )


_UNIT = pl.coalesce("team", pl.concat_str(pl.lit("user "), "user_id"))
"""A reader's unit in a crowd: their team, or themselves when they have none."""


def _carried(
    frame: pl.LazyFrame, window: int, lookup_days: pl.LazyFrame, back: bool = False
) -> pl.LazyFrame:
    """`frame`'s rows on each day of the `window` days starting at their own (or, `back`, ending
    at it), kept on the look-back's days: a read on a day belongs to that day's window and the
    next ones; a window on a day holds the reads of its days."""
    sign = -1 if back else 1
    return pl.concat(
        [frame.with_columns(day=pl.col("day") + pl.duration(days=sign * k)) for k in range(window)]
    ).join(lookup_days, on="day", how="semi")


def _audiences(
    seen: pl.LazyFrame, key: list[str], window: int, lookup_days: pl.LazyFrame, least: float
) -> pl.LazyFrame:
    """(key..., day, units, weighted, anchor_type, anchor_id): the unrelated teams that read each
    `key` (a subject) without explanation within `window` days up to each day, where they weigh
    at least `least`; `seen` holds (key..., day, unit, weight, record_type, record_id), `unit`
    a reader's team (or, with none, themselves: _UNIT). A team counts once, at its strongest
    reader's weight.
    The anchor is what the crowd was about: the record more than half of those teams read, if one
    did (the same reads of one incident reaching every person it links are one crowd), else the
    person `key` (a person on many incidents, each opened by another team). `key` is one column,
    a person."""
    record = ["record_type", "record_id"]

    def within(columns: list[str], frame: pl.LazyFrame) -> pl.LazyFrame:
        """`frame`'s reads by (key..., day, unit, columns...), each day's carried over the
        window's next days, at the strongest reader's weight."""
        per_day = frame.group_by(*key, "day", "unit", *columns).agg(
            pl.col("weight").fill_null(1.0).max()
        )
        return (
            _carried(per_day, window, lookup_days)
            .group_by(*key, "day", "unit", *columns)
            .agg(pl.col("weight").max())
        )

    teams = (
        within([], seen)
        .group_by(*key, "day")
        .agg(units=pl.len(), weighted=pl.col("weight").sum())
        .filter(pl.col("weighted") >= least)
        .cache()
    )
    # anchors only for the audiences large enough (few): the rest are never crowds
    large = teams.select(*key, "day")
    # (at most one record can hold more than half of a crowd's teams)
    dominant = (
        within(record, seen.join(large.select(*key).unique(), on=key, how="semi"))
        .join(teams.select(*key, "day", "units"), on=[*key, "day"])
        .group_by(*key, "day", *record)
        .agg(readers=pl.col("unit").n_unique(), units=pl.col("units").first())
        .filter(pl.col("readers") * 2 > pl.col("units"))
        .select(*key, "day", anchor_type="record_type", anchor_id="record_id")
    )
    return teams.join(dominant, on=[*key, "day"], how="left").with_columns(
        anchor_type=pl.col("anchor_type").fill_null(pl.lit("person")),
        anchor_id=pl.col("anchor_id").fill_null(pl.col(key[0])),
    )


def crowd(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """Users of many unrelated teams looked the subject up with no explanation within
    `window_days` up to the scored day.

    A crowd is curiosity shared by people with no common work, so users of one team count once (a
    safeguarding hub's whole team reading a referred child is one piece of work, not a crowd). The
    subject is a person, reached through their record or through an incident that links them.

    With `calibrate`, a crowd weighs as much as it is rarer than this force's chance crowds:
    `expected` is how many chance crowds a day drew an audience at least as large over the
    look-back before the scored day, and the indicator weighs chance_weight(expected). Chance
    crowds are measured as the crowd is, by person, through their record and every incident
    linking them (a person on twenty incidents is reached by many teams, each on its own work),
    and each is counted by its anchor, what it was about: the record more than half of its teams
    read, else the person. One chance crowd per anchor, at the largest audience anchored on it:
    five teams opening an incident that links 2,000 people is one crowd, however many of those
    people someone else also reads, and a crowd lasting ten days on one record is one crowd.
    Crowds anchored on the subject's own records (their person record, the incidents linking
    them) or on the subject are left out, so a crowd is never measured against itself (nor
    against the same readers reaching a witness through the same incident); half a crowd is
    added, so a size never seen is rare, not impossible. In each window, people reached through
    exactly the same records draw the same audience, so one stands for all of them. Where bulk
    readers (a crime-recording bureau, supervisors sampling reports) make five-team audiences
    daily, five teams is no evidence; where audiences of three are rare, five is full weight."""
    links = f.inputs.incident_persons.select("incident_id", "person_id").unique().cache()
    targets = _about_persons(
        f.targets.filter(pl.col("record_id").is_not_null()), links, ["system", "event_id", "day"]
    )
    unit = f.inputs.staff.select("user_id", team="team_id").unique("user_id", keep="first")
    unexplained = f.lookups.filter(pl.col("unexplained"))
    if ind.param("member_weight"):
        unexplained = unexplained.join(_unusual_reads(f), on=["user_id", "record_type"], how="left")
    else:
        unexplained = unexplained.with_columns(weight=pl.lit(1.0))
    # each reader's unit, once: their team, or themselves
    unexplained = unexplained.join(unit, on="user_id", how="left").with_columns(unit=_UNIT)
    calibrate = bool(ind.param("calibrate"))
    record = ["record_type", "record_id"]
    window = int(ind.param("window_days"))
    lookup_days = f.lookups.select("day").unique()
    least = ind.param("min_users")
    # a person whose records drew fewer teams than min_users between them over the whole
    # look-back (most people) can never hold a crowd: left out first, before any window
    record_teams = unexplained.group_by(*record).agg(teams=pl.col("unit").n_unique())
    possible = (
        _about_persons(record_teams, links, ["teams"])
        .group_by("subject")
        .agg(pl.col("teams").sum())
        .filter(pl.col("teams") >= least)
        .select("subject")
        .cache()
    )
    possible_links = links.join(possible, left_on="person_id", right_on="subject", how="semi")
    # the records that reached each person in each window (read within `window` days up to the
    # day): people reached through exactly the same records in a window draw exactly the same
    # audience there, so the first of them stands for all (10,000 people on one incident are
    # measured once a day, even if each of them is also read on their own some day); with
    # `calibrate` everyone is measured, for chance, else only the scored subjects
    read_days = unexplained.select(*record, "day").unique()
    windows = _carried(read_days, window, lookup_days).unique()
    stands_for = (
        _about_persons(windows, possible_links, [*record, "day"])
        .join(possible, on="subject", how="semi")
        .group_by("subject", "day")
        .agg(records=pl.struct(*record).hash().sum())
        .with_columns(stands_for=pl.col("subject").min().over("day", "records"))
        .select("subject", "day", "stands_for")
        .cache()
    )
    if not calibrate:
        scored_days = targets.select("subject", "day").unique()
        measured = stands_for.join(scored_days, on=["subject", "day"], how="semi")
    else:
        measured = stands_for
    measured = measured.select(subject="stands_for", day="day").unique().cache()
    # the reads behind the measured windows: only the measured people's, on the windows' days
    needed = _carried(measured, window, lookup_days, back=True).unique()
    keep = ["day", "unit", "weight", *record]
    seen = pl.concat(
        [
            unexplained.filter(pl.col("record_type") == "person")
            .join(needed, left_on=["record_id", "day"], right_on=["subject", "day"], how="semi")
            .select(*keep, subject="record_id"),
            needed.join(links, left_on="subject", right_on="person_id")
            .join(
                unexplained.filter(pl.col("record_type") == "incident"),
                left_on=["incident_id", "day"],
                right_on=["record_id", "day"],
            )
            .select(*keep[:3], "record_type", record_id="incident_id", subject="subject"),
        ]
    ).cache()
    # a person read by fewer teams than min_users over those days can never hold a crowd there,
    # so is left out before the windows are counted (weights are at most 1)
    readers = (
        seen.group_by("subject")
        .agg(teams=pl.col("unit").n_unique())
        .filter(pl.col("teams") >= least)
    )
    seen = seen.join(readers.select("subject"), on="subject", how="semi").cache()
    audiences = (
        _audiences(seen, ["subject"], window, lookup_days, least)
        .join(measured, on=["subject", "day"], how="semi")
        .cache()
    )
    # read several times below: computed once
    found = (
        targets.join(stands_for, on=["subject", "day"])
        .join(audiences.rename({"subject": "stands_for"}), on=["stands_for", "day"])
        .cache()
    )
    hits = found.group_by("system", "event_id", "day").agg(pl.col("units").max())
    evidence = fmt(
        "users of {} unrelated teams looked this subject up without explanation within {} days",
        "units",
        pl.lit(window),
    )
    if not calibrate:
        return _out(hits, ind, evidence)
    scored = found.select("day").unique()
    # each anchor once per scored day, at the largest audience anchored on it on a day before
    earlier = (
        scored.join(
            audiences.select(
                crowd_day="day", record_type="anchor_type", record_id="anchor_id", size="weighted"
            ),
            how="cross",
        )
        .filter(pl.col("crowd_day") < pl.col("day"))
        .group_by("day", *record)
        .agg(pl.col("size").max())
        .cache()
    )
    prior_days = (
        scored.join(lookup_days.select(crowd_day="day"), how="cross")
        .filter(pl.col("crowd_day") < pl.col("day"))
        .group_by("day")
        .agg(prior_days=pl.len())
    )
    # crowds as large: all of them (by distinct size, so the count is linear in the crowds),
    # less those anchored on the subject's own records
    sizes = found.select("day", "weighted").unique()
    as_large = (
        sizes.join(earlier, on="day")
        .filter(pl.col("size") >= pl.col("weighted"))
        .group_by("day", "weighted")
        .agg(all_large=pl.len())
    )
    found_subjects = found.select("subject").unique()
    # their person record, the incidents linking them, and whoever stood for them (a crowd with
    # no dominant record is anchored on the person measured)
    own_records = pl.concat(
        [
            found_subjects.select("subject", record_type=pl.lit("person"), record_id="subject"),
            links.join(found_subjects, left_on="person_id", right_on="subject").select(
                subject="person_id", record_type=pl.lit("incident"), record_id="incident_id"
            ),
            stands_for.join(found_subjects, on="subject").select(
                "subject", record_type=pl.lit("person"), record_id="stands_for"
            ),
        ]
    ).unique()
    own_large = (
        found.select("day", "subject", "weighted")
        .unique()
        .join(own_records, on="subject")
        .join(earlier, on=["day", *record])
        .filter(pl.col("size") >= pl.col("weighted"))
        .group_by("day", "subject", "weighted")
        .agg(own=pl.len())
    )
    calibrated = (
        found.join(as_large, on=["day", "weighted"], how="left")
        .join(own_large, on=["day", "subject", "weighted"], how="left")
        .join(prior_days, on="day", how="left")
        .with_columns(chance=pl.col("all_large").fill_null(0) - pl.col("own").fill_null(0))
        .with_columns(expected=(pl.col("chance") + 0.5) / pl.col("prior_days"))
        .with_columns(
            # nothing before the day to measure chance by: the crowd stands as found
            weight=pl.when(pl.col("prior_days").fill_null(0) > 0)
            .then(chance_weight(pl.col("expected"), f.rules))
            .otherwise(1.0)
        )
        .filter(pl.col("weight") > 0)
        # an access about several subjects (an incident) counts its strongest crowd
        .sort("weight", "units", "subject", descending=[True, True, False])
        .group_by("system", "event_id", "day")
        .agg(pl.all().first())
    )
    evidence = pl.concat_str(
        evidence,
        pl.when(pl.col("prior_days").fill_null(0) > 0)
        .then(
            fmt(
                # in brackets, so the peer sentence after it reads on from the crowd itself
                " ({} over the {} before)",
                pl.when(pl.col("chance") == 0)
                .then(pl.lit("no other crowd as large formed in this force"))
                .otherwise(fmt("other crowds as large formed {}", _how_often(pl.col("expected")))),
                pl.when(pl.col("prior_days") == 1)
                .then(pl.lit("day"))
                .otherwise(pl.format("{} days", pl.col("prior_days"))),
            )
        )
        .otherwise(pl.lit("")),
    )
    return _out(calibrated, ind, evidence, pl.lit(ind.weight) * pl.col("weight"))


def repeated(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """The same user, the same subject, no explanation, on several days up to this one."""
    pairs = f.unexplained_people.select("user_id", "record_id").unique()
    days = (
        f.lookups.filter((pl.col("record_type") == "person") & pl.col("unexplained"))
        .join(pairs, on=["user_id", "record_id"], how="semi")
        .select("user_id", "record_id", "day")
        .sort("day")
        .with_columns(n_days=pl.int_range(1, pl.len() + 1).over("user_id", "record_id"))
    )
    hits = f.unexplained_people.join(days, on=["user_id", "record_id", "day"]).filter(
        pl.col("n_days") >= ind.param("min_days")
    )
    return _out(hits, ind, pl.col("n_days").cast(pl.String))


def off_shift(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """Outside the user's rostered shift (only for users the rota covers)."""
    grace = timedelta(hours=ind.param("grace_hours"))
    shifts = f.inputs.shifts.select("user_id", "starts_at", "ends_at").sort("starts_at")
    rostered = shifts.select("user_id").unique()
    events = (
        f.targets.filter(~pl.col("explained") & pl.col("record_id").is_not_null())
        .join(rostered, on="user_id")
        .with_columns(probe=pl.col("occurred_at") + grace)
        .sort("probe")
    )
    joined = events.join_asof(
        shifts, left_on="probe", right_on="starts_at", by="user_id", check_sortedness=False
    )
    hits = joined.filter(
        pl.col("ends_at").is_null() | (pl.col("occurred_at") > pl.col("ends_at") + grace)
    )
    return _out(hits, ind)


def cited_unlinked(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """The justification cites an incident that does not link the record (or does not exist)."""
    pattern = next((k.pattern for k in f.rules.explanation("justification") if k.pattern), None)
    if pattern is None:
        return pl.LazyFrame(schema=INDICATOR_SCHEMA)
    cited = cited_incidents(f.targets, pattern)
    events = f.targets.select("system", "event_id", "record_type", "record_id")
    links = pl.concat(
        [
            f.inputs.incident_persons.select(
                cited="incident_id", record_type=pl.lit("person"), record_id="person_id"
            ),
            f.inputs.incidents.select(
                cited="incident_id", record_type=pl.lit("incident"), record_id="incident_id"
            ),
        ]
    )
    per_event = cited.join(events, on=["system", "event_id"])
    # citing the very incident opened links it, whether or not the incidents table holds it yet
    linked = pl.concat(
        [
            per_event.join(links, on=["cited", "record_type", "record_id"], how="semi"),
            per_event.filter(
                (pl.col("record_type") == "incident") & (pl.col("record_id") == pl.col("cited"))
            ),
        ]
    )
    unlinked = per_event.join(
        linked.select("system", "event_id"), on=["system", "event_id"], how="anti"
    )
    grouped = unlinked.group_by("system", "event_id").agg(
        cited=pl.col("cited").sort().str.join(", ")
    )
    return _out(grouped, ind, pl.col("cited"))


def chance_weight(expected: pl.Expr, rules: Rules) -> pl.Expr:
    """How much an indicator measured against chance counts, from `expected`: how many such
    findings chance alone makes a day in this force. clip(ln(1 / expected) / ln([peers]
    full_weight_ratio), 0, 1): one a day or more is no evidence; a tenth of one a day or less (at
    the default ratio of 10) is full weight. The same scale as the peer weights (score/peers.py)."""
    ratio = float(rules.peers["full_weight_ratio"])
    return ((1.0 / expected).log() / math.log(ratio)).clip(0.0, 1.0)


def _nbinom_tail(batch: pl.Series) -> pl.Series:
    """P(X >= count) for X negative binomial with mean `mu` and 1/size `inv_size`: a struct
    Series (count, mu, inv_size) -> Float64. For count >= 1 it is the regularised incomplete
    beta I_q(count, size) with q = mu / (size + mu) (scipy.special, far lighter to import than
    scipy.stats, whose nbinom.sf gives the same values)."""
    from scipy.special import betainc

    count = batch.struct.field("count").to_numpy().astype("float64")
    mu = batch.struct.field("mu").to_numpy().astype("float64")
    size = 1.0 / batch.struct.field("inv_size").to_numpy().astype("float64")
    return pl.Series(betainc(count, size, mu / (size + mu)), dtype=pl.Float64)


def explained_excess(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """Explained, but far more contact-detail views of one subject than the role's: measured
    against chance (`model = "chance"`, _excess_by_chance) or a fixed multiple of the role's
    pooled rate (`model = "ratio"`, _excess_by_ratio)."""
    if ind.param("model") == "ratio":
        return _excess_by_ratio(f, ind)
    return _excess_by_chance(f, ind)


def _explained_pairs(f: Frame) -> pl.LazyFrame:
    """(user_id, record_id, count, days, role): each (user, person) pair's explained contact
    views over the look-back and its days of explained access, for users with a role (a user
    missing from staff has no peers to be measured against)."""
    roles = (
        f.inputs.staff.select("user_id", "role")
        .unique("user_id", keep="first")
        .filter(pl.col("role").is_not_null())
    )
    return (
        f.lookups.filter(_EXPLAINED_PERSON)
        .group_by("user_id", "record_id")
        .agg(count=pl.col("contacts").sum().cast(pl.Int64), days=pl.len().cast(pl.Int64))
        .join(roles, on="user_id", how="inner")
    )


def _contact_views_of(f: Frame, pairs: pl.LazyFrame, *columns: str) -> pl.LazyFrame:
    """The scored explained contact views of the `pairs`, with their `columns`."""
    return f.people.filter(pl.col("explained") & (pl.col("action") == "view_contact")).join(
        pairs.select("user_id", "record_id", *columns), on=["user_id", "record_id"]
    )


def _excess_by_ratio(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """At least `min_count` contact views of one subject at `peer_ratio` times the role's pooled
    rate (contact views per day of explained access to a subject), at full weight."""
    set_ratio = ind.params.get("peer_ratio")
    peer_ratio = float(set_ratio) if set_ratio is not None else DEFAULT_PEER_RATIO
    pairs = _explained_pairs(f).with_columns(rate=pl.col("count") / pl.col("days"))
    medians = pairs.group_by("role").agg(median=pl.col("count").sum() / pl.col("days").sum())
    excessive = pairs.join(medians, on="role").filter(
        (pl.col("count") >= ind.param("min_count"))
        & (pl.col("rate") >= peer_ratio * pl.col("median"))
    )
    hits = _contact_views_of(f, excessive, "count", "days", "role", "median")
    evidence = fmt(
        "opened the subject's contact details {} times on {} of explained access; a {} "
        "with an explained subject does so {} times a day",
        "count",
        _days(pl.col("days")),
        pl.col("role").str.replace_all("_", " "),
        pl.col("median").round(2),
    )
    return _out(hits, ind, evidence)


def _days(days: pl.Expr) -> pl.Expr:
    """'1 day', '3 days'."""
    return pl.when(days == 1).then(pl.lit("1 day")).otherwise(pl.format("{} days", days))


_SUMS = ("n", "c", "dd", "x2", "xd", "d2")


def _pair_sums(pairs: pl.LazyFrame, by: list[str]) -> pl.LazyFrame:
    """Integer sums of the pairs' counts (x) and days (d) by `by`: n, c = sum x, dd = sum d,
    x2, xd, d2, and the users behind them. Counts beyond a million count as a million."""
    x = pl.col("count").clip(upper_bound=1_000_000)
    d = pl.col("days")
    sums = {
        "n": pl.len().cast(pl.Int64),
        "c": x.sum(),
        "dd": d.sum(),
        "x2": (x * x).sum(),
        "xd": (x * d).sum(),
        "d2": (d * d).sum(),
        "users": pl.col("user_id").n_unique().cast(pl.Int64),
    }
    return pairs.group_by(by).agg(**sums) if by else pairs.select(**sums)


def _excess_reference(pairs: pl.LazyFrame, min_count: int, min_role_users: int) -> pl.LazyFrame:
    """The pairs with `min_count` views or more, each with its reference: the pairs of *other
    users* of its role, or of the force when fewer than `min_role_users` other users of the role
    have pairs or none of them opens contact details. Columns ref_n, ref_c, ref_dd, ref_x2,
    ref_xd, ref_d2 and `peers` (the role, or null for the force)."""
    own = _pair_sums(pairs, ["user_id"]).with_columns(mine=pl.lit(1, dtype=pl.Int64))
    role = _pair_sums(pairs, ["role"])
    force = _pair_sums(pairs, [])
    joined = (
        pairs.filter(pl.col("count") >= min_count)
        .join(role, on="role", how="left")
        .join(
            own.select(pl.col("user_id"), pl.exclude("user_id").name.suffix("_own")),
            on="user_id",
            how="left",
        )
        .join(force.select(pl.all().name.suffix("_force")), how="cross")
    )
    less_own = {
        name: pl.col(name).fill_null(0) - pl.col(f"{name}_own").fill_null(0) for name in _SUMS
    }
    other_users = pl.col("users").fill_null(0) - pl.col("mine_own").fill_null(0)
    use_role = (other_users >= min_role_users) & (less_own["c"] > 0)
    return joined.with_columns(
        peers=pl.when(use_role).then(pl.col("role")).otherwise(pl.lit(None, dtype=pl.String)),
        **{
            f"ref_{name}": pl.when(use_role)
            .then(less_own[name])
            .otherwise(pl.col(f"{name}_force") - pl.col(f"{name}_own").fill_null(0))
            for name in _SUMS
        },
    )


def _excess_chance(
    pairs: pl.LazyFrame, ind: Indicator, lookback_days: pl.LazyFrame
) -> pl.LazyFrame:
    """The pairs of at least `min_count` views, each with `in_lookback` (how many of its
    reference pairs would reach its count by chance over the look-back) and `expected` (a day)."""
    rate = pl.col("pooled_rate")
    return (
        _excess_reference(pairs, int(ind.param("min_count")), int(ind.param("min_role_users")))
        .filter(pl.col("ref_n") > 0)
        .with_columns(pooled_rate=pl.col("ref_c") / pl.col("ref_dd"))
        .with_columns(
            mu=rate * pl.col("days"),
            # method of moments, Var = mu + mu^2 / size, at least a Poisson's spread
            inv_size=pl.when(rate > 0)
            .then(
                (
                    pl.col("ref_x2")
                    - 2 * rate * pl.col("ref_xd")
                    + rate**2 * pl.col("ref_d2")
                    - rate * pl.col("ref_dd")
                )
                / (rate**2 * pl.col("ref_d2"))
            )
            .otherwise(1.0)
            .clip(1e-6),
        )
        .with_columns(
            # no reference pair opens contact details: any count is beyond chance
            tail=pl.when(pl.col("mu") > 0)
            .then(
                pl.struct("count", "mu", "inv_size").map_batches(
                    _nbinom_tail, return_dtype=pl.Float64
                )
            )
            .otherwise(0.0)
        )
        .join(lookback_days, how="cross")
        .with_columns(in_lookback=pl.col("ref_n") * pl.col("tail"))
        .with_columns(expected=pl.col("in_lookback") / pl.col("lookback_days"))
    )


def _excess_by_chance(f: Frame, ind: Indicator) -> pl.LazyFrame:
    """Explained, but far more contact-detail views of one subject than chance gives the role.

    Each (user, subject) pair's explained contact views over the look-back are compared with an
    overdispersed count model of its reference pairs: negative binomial, its mean their pooled
    rate times the pair's days of explained access, its dispersion fitted by moments over them (a
    disclosure officer who rereads whole case files has a wide spread, a detective a narrow one).
    The reference is the pairs of the role's *other users* (a user's own pairs never hide each
    other), or of the force's other users when fewer than `min_role_users` other users of the
    role have pairs or none opens contact details. One colleague's extreme pair widens the spread
    for the whole role, but it is weighed itself: hiding an excess that way takes a colleague
    willing to be flagged (a second pass without the exceptional pairs was tried: in a role whose
    pairs are genuinely heavy-tailed it weighed pairs the first pass found ordinary). A pair is
    weighed only when fewer than one of its reference pairs would reach its count by chance over
    the look-back; it then weighs chance_weight of how many would a day. A user with no role
    (missing from staff) is never weighed. The moments come from integer sums, so the points do
    not depend on the order of the rows (a re-score of unchanged data changes no bit)."""
    lookback_days = f.lookups.filter(_EXPLAINED_PERSON).select(
        pl.col("day").n_unique().alias("lookback_days")
    )
    # read by the sums and the scored pairs: computed once, not once per reader
    pairs = _explained_pairs(f).cache()
    candidates = (
        _excess_chance(pairs, ind, lookback_days)
        .filter(pl.col("in_lookback") < 1.0)
        .with_columns(weight=chance_weight(pl.col("expected"), f.rules))
        .filter(pl.col("weight") > 0)
    )
    hits = _contact_views_of(
        f, candidates, "count", "days", "peers", "pooled_rate", "expected", "weight"
    )
    others = (
        pl.when(pl.col("peers").is_not_null())
        .then(pl.format("other {} pairs", pl.col("peers").str.replace_all("_", " ")))
        .otherwise(pl.lit("other pairs in the force"))
    )
    evidence = fmt(
        "opened the subject's contact details {} times on {} of explained access; {} (a user "
        "and an explained subject) average {} a day, and chance makes a pair that extreme {}",
        "count",
        _days(pl.col("days")),
        others,
        pl.col("pooled_rate").round(2),
        _how_often(pl.col("expected")),
    )
    return _out(hits, ind, evidence, pl.lit(ind.weight) * pl.col("weight"))


def _how_often(expected: pl.Expr) -> pl.Expr:
    """How often chance makes something, from `expected` a day: 'less than once in 100 days',
    'about once in 7 days', 'about 2.5 times a day'."""
    return (
        pl.when(expected < 0.01)
        .then(pl.lit("less than once in 100 days"))
        .when((1 / expected).round(0) > 1)
        .then(pl.format("about once in {} days", (1 / expected).round(0).cast(pl.Int64)))
        .when(expected < 1.05)
        .then(pl.lit("about once a day"))
        .otherwise(pl.format("about {} times a day", expected.round(1)))
    )


BUILDERS: dict[str, Builder] = {
    "unexplained": unexplained,
    "victim_subject": victim_subject,
    "vulnerable_subject": vulnerable_subject,
    "public_figure": public_figure,
    "contact_details": contact_details,
    "print_export": print_export,
    "met_on_duty": met_on_duty,
    "dormant_incident": dormant_incident,
    "unlinked_subject": unlinked_subject,
    "self_lookup": self_lookup,
    "declared_association": declared_association,
    "same_surname": same_surname,
    "same_postcode": same_postcode,
    "colleague": colleague,
    "crowd": crowd,
    "repeated": repeated,
    "off_shift": off_shift,
    "cited_unlinked": cited_unlinked,
    "explained_excess": explained_excess,
}


def indicators(
    inputs: Inputs, rules: Rules, targets: pl.LazyFrame, lookups: pl.LazyFrame
) -> pl.LazyFrame:
    """Every indicator the rules declare, on the target accesses it applies to, against the
    look-back's `lookups` (score/lookback.py)."""
    parts = []
    for name, indicator in rules.indicators.items():
        builder = BUILDERS.get(name)
        if builder is None:
            raise AccessAuditError(f"rules: indicator {name} has no builder")
        scope = targets
        if indicator.when == "unexplained":
            scope = targets.filter(~pl.col("explained"))
        elif indicator.when == "explained":
            scope = targets.filter(pl.col("explained"))
        frame = Frame(inputs, rules, scope, lookups)
        parts.append(builder(frame, indicator).select(INDICATOR_SCHEMA.names()))
    if not parts:
        return pl.LazyFrame(schema=INDICATOR_SCHEMA)
    return pl.concat(parts)
