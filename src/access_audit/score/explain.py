"""Explanations: every path from a user to a record that makes an access legitimate.

After Fabbri & LeFevre (PVLDB 2011): an access is explained when the database holds a path from the
user to the record at that time. Each explanation kind (rules.toml) turns one source of evidence
into *grants* — (user, record, valid from, valid to, kind, via) — and one join matches events to
grants. The cited-incident kind depends on the event's own justification, so it is matched per
event. All transforms are lazy; nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import polars as pl

from access_audit.score.rules import ExplanationKind, Rules, render
from access_audit.tables import EXPLANATIONS

UTC = pl.Datetime("us", "UTC")
FOREVER = datetime(9999, 1, 1)

GRANT_COLUMNS = ["user_id", "record_type", "record_id", "valid_from", "valid_to", "kind", "via"]
EXPLANATION_SCHEMA = EXPLANATIONS.schema()


@dataclass(frozen=True)
class Inputs:
    """The stores a scoring run reads, as LazyFrames (events already limited to the context)."""

    events: pl.LazyFrame
    staff: pl.LazyFrame
    persons: pl.LazyFrame
    incidents: pl.LazyFrame
    incident_persons: pl.LazyFrame
    assignments: pl.LazyFrame
    calls: pl.LazyFrame
    shifts: pl.LazyFrame
    associations: pl.LazyFrame
    training: pl.LazyFrame


def _hours(value: float) -> pl.Expr:
    return pl.duration(microseconds=int(value * 3_600_000_000))


def _window(kind: ExplanationKind, start: pl.Expr, end: pl.Expr) -> list[pl.Expr]:
    return [
        (start - _hours(kind.grace_before_hours)).alias("valid_from"),
        (
            end.fill_null(pl.lit(FOREVER).dt.replace_time_zone("UTC"))
            + _hours(kind.grace_after_hours)
        ).alias("valid_to"),
    ]


def _incident_and_people(
    frame: pl.LazyFrame, incident_persons: pl.LazyFrame, columns: list[str]
) -> pl.LazyFrame:
    """Grants on an incident extend to the incident record and every person it links."""
    incident = frame.select(
        *columns, record_type=pl.lit("incident"), record_id=pl.col("incident_id")
    )
    people = frame.join(
        incident_persons.select("incident_id", "person_id"), on="incident_id"
    ).select(*columns, record_type=pl.lit("person"), record_id=pl.col("person_id"))
    return pl.concat([incident, people])


def _assignment_grants(inputs: Inputs, kind: ExplanationKind, team: bool) -> pl.LazyFrame:
    assignments = inputs.assignments.filter(pl.col("team_id").is_not_null() == team)
    if team:
        members = inputs.staff.select("user_id", member_team="team_id")
        assignments = assignments.drop("user_id").join(
            members, left_on="team_id", right_on="member_team"
        )
    detail = render(
        kind.text, via=pl.col("incident_id"), role=pl.col("role"), team=pl.col("team_id")
    )
    base = assignments.select(
        "user_id",
        "incident_id",
        *_window(kind, pl.col("assigned_from"), pl.col("assigned_to")),
        kind=pl.lit(kind.name),
        via=pl.col("incident_id"),
        detail=detail,
    )
    return _incident_and_people(
        base, inputs.incident_persons, [*GRANT_COLUMNS[3:], "user_id", "detail"]
    )


def _call_grants(inputs: Inputs, kind: ExplanationKind) -> pl.LazyFrame:
    calls = inputs.calls.select(
        "user_id",
        "person_id",
        "incident_id",
        *_window(kind, pl.col("started_at"), pl.col("ended_at")),
        kind=pl.lit(kind.name),
        via=pl.col("call_id"),
        detail=render(kind.text, via=pl.col("call_id")),
    )
    keep = ["user_id", "valid_from", "valid_to", "kind", "via", "detail"]
    links = inputs.incident_persons.select("incident_id", "person_id")
    caller = calls.filter(pl.col("person_id").is_not_null())
    about = calls.filter(pl.col("incident_id").is_not_null())
    return pl.concat(
        [
            caller.select(*keep, record_type=pl.lit("person"), record_id="person_id"),
            about.select(*keep, record_type=pl.lit("incident"), record_id="incident_id"),
            # the people of the incident the call was about
            about.drop("person_id")
            .join(links, on="incident_id")
            .select(*keep, record_type=pl.lit("person"), record_id="person_id"),
            # the caller's own incidents (a victim calling about her report)
            caller.drop("incident_id")
            .join(links, on="person_id")
            .select(*keep, record_type=pl.lit("incident"), record_id="incident_id"),
        ]
    )


def _created_grants(inputs: Inputs, kind: ExplanationKind) -> pl.LazyFrame:
    events = inputs.events.filter(
        (pl.col("action") == "create") & (pl.col("record_type") == "incident")
    )
    valid_from, valid_to = _window(kind, pl.col("occurred_at"), pl.col("occurred_at"))
    if "day" in events.collect_schema().names():
        # A day is scored as it stands at its end: a creation on a later day never explains
        # it, however early its grace starts, so scoring days together or apart agrees.
        day_start = pl.col("day").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        valid_from = pl.max_horizontal(valid_from, day_start).alias("valid_from")
    created = events.select(
        "user_id",
        valid_from,
        valid_to,
        incident_id="record_id",
        kind=pl.lit(kind.name),
        via=pl.col("record_id"),
        detail=render(kind.text, via=pl.col("record_id")),
    )
    return _incident_and_people(
        created,
        inputs.incident_persons,
        ["user_id", "valid_from", "valid_to", "kind", "via", "detail"],
    )


def cited_incidents(events: pl.LazyFrame, pattern: str) -> pl.LazyFrame:
    """Each (event, incident reference) its justification cites."""
    return (
        events.filter(pl.col("justification").is_not_null())
        .select(
            "system",
            "event_id",
            cited=pl.col("justification").str.extract_all(pattern).list.unique(),
        )
        .explode("cited")
        .filter(pl.col("cited").is_not_null())
    )


def _cited_explanations(inputs: Inputs, kind: ExplanationKind) -> pl.LazyFrame:
    assert kind.pattern is not None
    cited = cited_incidents(inputs.events, kind.pattern)
    incidents = inputs.incidents.select(
        cited="incident_id",
        **{
            e.meta.output_name(): e for e in _window(kind, pl.col("opened_at"), pl.col("closed_at"))
        },
    )
    subjects = _incident_and_people(
        incidents.with_columns(incident_id=pl.col("cited")),
        inputs.incident_persons,
        ["cited", "valid_from", "valid_to"],
    )
    events = inputs.events.select("system", "event_id", "record_type", "record_id", "occurred_at")
    return (
        cited.join(events, on=["system", "event_id"])
        .join(subjects, on=["cited", "record_type", "record_id"])
        .filter(pl.col("occurred_at").is_between(pl.col("valid_from"), pl.col("valid_to")))
        .select(
            "system",
            "event_id",
            kind=pl.lit(kind.name),
            via="cited",
            detail=render(kind.text, via=pl.col("cited")),
            valid_from="valid_from",
            valid_to="valid_to",
        )
    )


def grants(inputs: Inputs, rules: Rules) -> pl.LazyFrame:
    """Every (user, record, time window) some explanation kind makes legitimate."""
    parts: list[pl.LazyFrame] = []
    for kind in rules.explanations:
        if kind.source == "user_assignment":
            parts.append(_assignment_grants(inputs, kind, team=False))
        elif kind.source == "team_assignment":
            parts.append(_assignment_grants(inputs, kind, team=True))
        elif kind.source == "call":
            parts.append(_call_grants(inputs, kind))
        elif kind.source == "created_incident":
            parts.append(_created_grants(inputs, kind))
    columns = [*GRANT_COLUMNS, "detail"]
    return pl.concat([p.select(columns) for p in parts])


def explain(inputs: Inputs, rules: Rules, targets: pl.LazyFrame) -> pl.LazyFrame:
    """Explanations of the target events: one row per (event, kind, via)."""
    events = targets.filter(pl.col("record_id").is_not_null()).select(
        "system", "event_id", "user_id", "record_type", "record_id", "occurred_at"
    )
    matched = (
        events.join(grants(inputs, rules), on=["user_id", "record_type", "record_id"])
        .filter(pl.col("occurred_at").is_between(pl.col("valid_from"), pl.col("valid_to")))
        .select(EXPLANATION_SCHEMA.names())
    )
    parts = [matched]
    for kind in rules.explanation("justification"):
        parts.append(
            _cited_explanations(replace(inputs, events=targets), kind).select(
                EXPLANATION_SCHEMA.names()
            )
        )
    # Two grants of one kind via one incident (a user assigned to it twice, in two roles) explain
    # an access once: the earliest window, so the kept row never depends on the rows' order.
    return (
        pl.concat(parts)
        .sort("valid_from", "valid_to", "detail", nulls_last=True)
        .unique(["system", "event_id", "kind", "via"], keep="first", maintain_order=True)
    )
