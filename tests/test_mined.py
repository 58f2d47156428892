"""Mined explanations (score/mined.py) on tiny inline frames: each kind explains what it should,
only weakly (never as much as an assignment), never removes a risk reason, can be switched off,
and learns nothing from the scored day itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from access_audit.config import MinedSettings, parse_config
from access_audit.errors import AccessAuditError
from access_audit.score import score_days
from access_audit.score.explain import Inputs
from access_audit.score.flags import episodes
from access_audit.score.mined import (
    MINERS,
    label_propagation,
    mine,
    similarity_edges,
    weak_sentence,
    weakened,
)
from access_audit.score.rules import Rules, load_rules
from access_audit.tables import stored_table

DAY = date(2026, 11, 20)
SMALL = {"min_support": 3, "min_users": 2}
"""Thresholds a force of a few staff can reach (the defaults suit hundreds)."""


def _rules(**mined: Any) -> Rules:
    on = {"enabled": True}  # two kinds are off by default (rules.toml says why)
    overrides: dict[str, Any] = {
        "unit_incident_type": {**on, **SMALL},
        "teammate_same_day": {**on, **SMALL},
        "unit_reason_code": {**on, **SMALL},
        "collaborative_group": {**on, "min_members": 2, "min_openers": 1},
    }
    for kind, values in mined.items():
        overrides[kind] = {**overrides.get(kind, {}), **values}
    return load_rules(parse_config({"mined": overrides, "scoring": {"lookback_days": 10}}))


def _only(kind: str, **values: Any) -> Rules:
    """Rules with one mined kind on and the others off."""
    off = {k: {"enabled": False} for k in MINERS if k != kind}
    return _rules(**off, **{kind: values})


def _at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


class Log:
    """A tiny access log: rows as the scoring context holds them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        user: str,
        record: str,
        day: date,
        explained: bool,
        reason: str | None = None,
        record_type: str = "person",
        minute: int = 0,
    ) -> str:
        event_id = f"E{len(self.rows)}"
        self.rows.append(
            {
                "system": "RMS",
                "event_id": event_id,
                "user_id": user,
                "occurred_at": _at(day, 10, minute),
                "action": "view",
                "record_type": record_type,
                "record_id": record,
                "justification": None,
                "reason_code": reason,
                "day": day,
                "explained": explained,
            }
        )
        return event_id

    def frame(self) -> pl.LazyFrame:
        return pl.LazyFrame(
            self.rows,
            schema={
                "system": pl.String,
                "event_id": pl.String,
                "user_id": pl.String,
                "occurred_at": pl.Datetime("us", "UTC"),
                "action": pl.String,
                "record_type": pl.String,
                "record_id": pl.String,
                "justification": pl.String,
                "reason_code": pl.String,
                "day": pl.Date,
                "explained": pl.Boolean,
            },
        )


def _table(name: str, rows: list[dict[str, Any]] | None = None) -> pl.LazyFrame:
    schema = stored_table(name).full_schema()
    if not rows:
        return pl.LazyFrame(schema=schema)
    frame = pl.LazyFrame(rows)
    missing = [c for c in schema.names() if c not in frame.collect_schema().names()]
    return frame.with_columns(pl.lit(None).alias(c) for c in missing).select(
        [pl.col(c).cast(schema[c]) for c in schema.names()]
    )


STAFF = [
    {"user_id": "M1", "role": "safeguarding", "team_id": "MASH", "surname": "Ames"},
    {"user_id": "M2", "role": "safeguarding", "team_id": "MASH", "surname": "Bell"},
    {"user_id": "M3", "role": "safeguarding", "team_id": "MASH", "surname": "Cole"},
    {"user_id": "R1", "role": "response_officer", "team_id": "RESP-A", "surname": "Dunn"},
    {"user_id": "R2", "role": "response_officer", "team_id": "RESP-A", "surname": "Eden"},
    {"user_id": "R3", "role": "response_officer", "team_id": "RESP-A", "surname": "Ford"},
]


def _inputs(
    log: Log,
    incidents: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None,
    staff: list[dict[str, Any]] | None = None,
) -> Inputs:
    return Inputs(
        events=log.frame(),
        staff=_table("staff", staff or STAFF),
        persons=_table("persons"),
        incidents=_table("incidents", incidents),
        incident_persons=_table("incident_persons", links),
        assignments=_table("assignments"),
        calls=_table("calls"),
        shifts=_table("shifts"),
        associations=_table("associations"),
        training=_table("training"),
    )


def _weak(log: Log, rules: Rules, **tables: Any) -> dict[str, dict[str, Any]]:
    """event_id -> its weak explanation row, for the accesses of DAY."""
    out = mine(_inputs(log, **tables), rules, log.frame(), [DAY]).collect()
    assert out["event_id"].is_unique().all()
    return {row["event_id"]: row for row in out.to_dicts()}


def _kinds(log: Log, rules: Rules, **tables: Any) -> set[str]:
    """The kinds that weakly explain some access of DAY."""
    return set(mine(_inputs(log, **tables), rules, log.frame(), [DAY]).collect()["kind"])


def _before(n: int) -> date:
    return DAY - timedelta(days=n)


# -- each kind explains what it should ------------------------------------------------------------
def _safeguarding_force() -> tuple[Log, list[dict[str, Any]], list[dict[str, Any]]]:
    """MASH opens people linked to child-protection incidents; response opens burglaries."""
    log = Log()
    incidents = [
        {"incident_id": "CP1", "category": "child_protection", "opened_at": _at(_before(9))},
        {"incident_id": "CP2", "category": "child_protection", "opened_at": _at(_before(9))},
        {"incident_id": "BG1", "category": "burglary", "opened_at": _at(_before(9))},
    ]
    links = (
        [{"incident_id": "CP1", "person_id": f"C{n}", "role": "victim"} for n in range(6)]
        + [{"incident_id": "CP2", "person_id": "CNEW", "role": "victim"}]
        + [{"incident_id": "BG1", "person_id": f"B{n}", "role": "victim"} for n in range(6)]
    )
    for n in range(6):
        log.add(("M1", "M2", "M3")[n % 3], f"C{n}", _before(1 + n % 3), explained=False)
        log.add(("R1", "R2", "R3")[n % 3], f"B{n}", _before(1 + n % 3), explained=True)
    return log, incidents, links


def test_unit_incident_type_explains_a_units_speciality_and_no_one_elses() -> None:
    log, incidents, links = _safeguarding_force()
    mash = log.add("M1", "CNEW", DAY, explained=False)
    response = log.add("R1", "CNEW", DAY, explained=False)
    weak = _weak(log, _only("unit_incident_type"), incidents=incidents, links=links)
    assert set(weak) == {mash}
    row = weak[mash]
    assert (row["kind"], row["via"]) == ("unit_incident_type", "child_protection")
    assert row["support"] == 6
    assert row["confidence"] == pytest.approx(1.0)
    assert row["strength"] == pytest.approx(0.5)
    assert "users of MASH open records linked to child_protection incidents" in row["detail"]
    assert "6 lookups by 3 users" in row["detail"]
    assert response not in weak


def test_unit_incident_type_needs_the_link_before_the_access() -> None:
    log, incidents, links = _safeguarding_force()
    late = [{"incident_id": "CP9", "category": "child_protection", "opened_at": _at(DAY, 18)}]
    links = [*links, {"incident_id": "CP9", "person_id": "CLATE", "role": "victim"}]
    event = log.add("M1", "CLATE", DAY, explained=False)
    weak = _weak(log, _only("unit_incident_type"), incidents=incidents + late, links=links)
    assert event not in weak


def test_teammate_same_day_explains_co_working_in_a_team_that_records_it() -> None:
    log = Log()
    for n in range(4):  # the look-back: RESP-A's co-lookups are recorded
        log.add("R1", f"X{n}", _before(n + 1), explained=True)
        log.add(("R2", "R3")[n % 2], f"X{n}", _before(n + 1), explained=True, minute=5)
    log.add("R1", "P1", DAY, explained=True)
    helped = log.add("R2", "P1", DAY, explained=False, minute=30)
    alone = log.add("R3", "P2", DAY, explained=False)
    other_team = log.add("M1", "P1", DAY, explained=False)
    weak = _weak(log, _only("teammate_same_day"))
    assert set(weak) == {helped}
    assert weak[helped]["via"] == "R1"
    assert weak[helped]["support"] == 8  # each of the 4 pairs, both ways
    assert "teammate R1 in RESP-A opened it the same day" in weak[helped]["detail"]
    assert alone not in weak and other_team not in weak


def test_teammate_same_day_needs_the_team_to_record_its_co_working() -> None:
    log = Log()
    for n in range(4):  # co-lookups in the look-back were mostly not recorded
        log.add("R1", f"X{n}", _before(n + 1), explained=True)
        log.add(("R2", "R3")[n % 2], f"X{n}", _before(n + 1), explained=n == 0, minute=5)
    log.add("R1", "P1", DAY, explained=True)
    helped = log.add("R2", "P1", DAY, explained=False, minute=30)
    assert helped not in _weak(log, _only("teammate_same_day"))


def test_unit_reason_code_explains_a_code_the_unit_records_consistently() -> None:
    log = Log()
    for n in range(6):
        log.add(("R1", "R2", "R3")[n % 3], f"X{n}", _before(n + 1), True, reason="Enquiries")
        log.add(("R1", "R2")[n % 2], f"Y{n}", _before(n + 1), n == 0, reason="Stop check")
    coded = log.add("R1", "P1", DAY, explained=False, reason="Enquiries")
    unrecorded_code = log.add("R2", "P2", DAY, explained=False, reason="Stop check")
    other_unit = log.add("M1", "P3", DAY, explained=False, reason="Enquiries")
    no_code = log.add("R3", "P4", DAY, explained=False)
    weak = _weak(log, _only("unit_reason_code"))
    assert set(weak) == {coded}
    assert (weak[coded]["via"], weak[coded]["support"]) == ("Enquiries", 6)
    assert "reason code Enquiries, which RESP-A's recorded accesses" in weak[coded]["detail"]
    assert not {unrecorded_code, other_unit, no_code} & set(weak)


def _two_groups(log: Log) -> None:
    """A1-A3 share records A*, B1-B3 share records B*, over the look-back."""
    for group in ("A", "B"):
        for n in range(4):
            for member in (1, 2, 3):
                log.add(f"{group}{member}", f"{group}-rec{n}", _before(n + 1), explained=False)


def test_label_propagation_finds_the_two_groups_deterministically() -> None:
    log = Log()
    _two_groups(log)
    opened = log.frame().select("user_id", "record_type", "record_id").unique()
    edges = similarity_edges(opened, 2, 25, 10).collect().sort("user_id", "other")
    groups = label_propagation(edges, 20)
    assert dict(groups.iter_rows()) == {
        "A1": "A1",
        "A2": "A1",
        "A3": "A1",
        "B1": "B1",
        "B2": "B1",
        "B3": "B1",
    }
    shuffled = edges.sample(fraction=1.0, shuffle=True, seed=3)
    assert label_propagation(shuffled, 20).equals(groups)


def test_collaborative_group_explains_its_working_set_only() -> None:
    log = Log()
    _two_groups(log)
    own_set = log.add("A1", "A-rec0", DAY, explained=False)
    other_set = log.add("A1", "B-rec0", DAY, explained=False)
    new_record = log.add("A2", "NEW", DAY, explained=False)
    weak = _weak(log, _only("collaborative_group", min_members=3, min_openers=2))
    assert set(weak) == {own_set}
    assert weak[own_set]["via"] == "A1" and weak[own_set]["support"] == 2
    assert "collaborative group A1 (3 users): 2 other members" in weak[own_set]["detail"]
    assert other_set not in weak and new_record not in weak


def test_popular_records_make_no_group() -> None:
    log = Log()
    for n in range(3):
        for user in ("A1", "B1", "C1"):
            log.add(user, f"famous{n}", _before(n + 1), explained=False)
    opened = log.frame().select("user_id", "record_type", "record_id").unique()
    assert similarity_edges(opened, 2, 2, 10).collect().is_empty()
    assert similarity_edges(opened, 2, 3, 10).collect().height == 6


# -- nothing is learned from the scored day -------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(MINERS))
def test_a_template_of_the_scored_day_alone_explains_nothing(kind: str) -> None:
    """Everything that makes each template is moved onto the scored day: nothing is mined."""
    log, incidents, links = _safeguarding_force()
    today = Log()
    for row in log.rows:
        today.add(row["user_id"], row["record_id"], DAY, row["explained"], minute=1)
    for n in range(4):
        today.add("R1", f"X{n}", DAY, explained=True, reason="Enquiries")
        today.add("R2", f"X{n}", DAY, explained=True, reason="Enquiries", minute=5)
        today.add("R3", f"X{n}", DAY, explained=True, reason="Enquiries", minute=6)
    today.add("R1", "P1", DAY, explained=True)
    probes = [
        today.add("M1", "CNEW", DAY, explained=False),
        today.add("R2", "P1", DAY, explained=False, minute=30, reason="Enquiries"),
        today.add("M1", "C0", DAY, explained=False, minute=40),
    ]
    weak = _weak(today, _only(kind), incidents=incidents, links=links)
    assert not set(probes) & set(weak)


def test_the_same_template_from_the_day_before_does_explain() -> None:
    """The counterpart of the test above: the same accesses a day earlier do make templates."""
    log, incidents, links = _safeguarding_force()
    for n in range(4):
        log.add("R1", f"X{n}", _before(1), explained=True, reason="Enquiries")
        log.add("R2", f"X{n}", _before(1), explained=True, reason="Enquiries", minute=5)
        log.add("R3", f"X{n}", _before(1), explained=True, reason="Enquiries", minute=6)
    log.add("R1", "P1", DAY, explained=True)
    probes = {
        "unit_incident_type": log.add("M1", "CNEW", DAY, explained=False),
        "teammate_same_day": log.add("R2", "P1", DAY, explained=False, minute=30),
        "unit_reason_code": log.add("R3", "P9", DAY, explained=False, reason="Enquiries"),
        "collaborative_group": log.add("R3", "B0", DAY, explained=False, minute=40),
    }
    for kind, event_id in probes.items():
        weak = _weak(log, _only(kind), incidents=incidents, links=links)
        assert event_id in weak, kind


# -- weaker than an assignment; never removes a risk reason; can be switched off -------------------
def test_a_weak_explanation_halves_only_the_absence_of_explanation() -> None:
    found = pl.LazyFrame(
        {
            "system": ["RMS"] * 4,
            "event_id": ["E1"] * 4,
            "code": ["unexplained", "repeated", "colleague", "victim_subject"],
            "points": [10.0, 15.0, 35.0, 12.0],
            "evidence": [None, "2", "staff S9", "domestic abuse victim"],
        }
    )
    weak = pl.LazyFrame(
        {
            "system": ["RMS", "RMS"],
            "event_id": ["E1", "E1"],
            "kind": ["collaborative_group", "unit_reason_code"],
            "detail": ["group", "code"],
            "strength": [0.3, 0.5],
        }
    )
    out = weakened(found, weak, _rules()).collect()
    points = dict(zip(out["code"], out["points"], strict=True))
    assert points == {
        "unexplained": 5.0,
        "repeated": 7.5,
        "colleague": 35.0,
        "victim_subject": 12.0,
    }
    weakly = dict(zip(out["code"], out["weakly"], strict=True))
    assert weakly["unexplained"] == "code" and weakly["colleague"] is None
    text = out.filter(pl.col("code") == "unexplained").select(weak_sentence()).item()
    assert text == "; weakly explained: code"


def test_strength_must_stay_below_an_assignments() -> None:
    with pytest.raises(AccessAuditError, match=r"\[mined.unit_reason_code\] strength"):
        load_rules(parse_config({"mined": {"unit_reason_code": {"strength": 1.0}}}))
    with pytest.raises(AccessAuditError, match=r"names no indicator"):
        load_rules(parse_config({"mined": {"discounted": ["nonsense"]}}))


def test_every_mined_setting_has_a_miner() -> None:
    assert set(MinedSettings.model_fields) - {"discounted"} == set(MINERS)


def _scan(tables: dict[str, pl.LazyFrame]) -> Callable[[str], pl.LazyFrame]:
    def scan(name: str) -> pl.LazyFrame:
        return tables.get(name, _table(name))

    return scan


def _colleague_case(assigned: bool) -> Callable[[str], pl.LazyFrame]:
    """R1 looks up P9, a colleague's own record, with the reason code RESP-A always records;
    `assigned`: R1 is also assigned to the incident that links P9."""
    staff = [*STAFF, {"user_id": "S9", "role": "staff", "surname": "Gray", "person_id": "P9"}]
    rows, explanations = [], []
    for n in range(6):
        day = _before(n + 1)
        event_id = f"H{n}"
        rows.append(
            {
                "system": "RMS",
                "event_id": event_id,
                "user_id": ("R1", "R2", "R3")[n % 3],
                "occurred_at": _at(day),
                "action": "view",
                "record_type": "person",
                "record_id": f"X{n}",
                "reason_code": "Enquiries",
                "day": day,
            }
        )
        explanations.append({"system": "RMS", "event_id": event_id, "kind": "assigned", "day": day})
    rows.append({**rows[0], "event_id": "T1", "occurred_at": _at(DAY), "day": DAY})
    rows[-1]["record_id"] = "P9"
    incidents = [{"incident_id": "I1", "category": "theft", "opened_at": _at(_before(20))}]
    links = [{"incident_id": "I1", "person_id": "P9", "role": "witness"}]
    assignments = [
        {
            "incident_id": "I1",
            "user_id": "R1",
            "role": "officer_in_charge",
            "assigned_from": _at(_before(2)),
        }
    ]
    return _scan(
        {
            "access_events": _table("access_events", rows),
            "explanations": _table("explanations", explanations),
            "staff": _table("staff", staff),
            "persons": _table("persons", [{"person_id": "P9", "surname": "Gray"}]),
            "incidents": _table("incidents", incidents),
            "incident_persons": _table("incident_persons", links),
            "assignments": _table("assignments", assignments if assigned else []),
        }
    )


def _score(assigned: bool, rules: Rules) -> tuple[float, dict[str, float], pl.DataFrame]:
    scored = score_days(_colleague_case(assigned), [DAY], rules)
    flags = scored.flags.filter(pl.col("subject_id") == "P9")
    if flags.is_empty():
        return 0.0, {}, scored.weak_explanations
    reasons = {r["code"]: r["text"] for r in flags["reasons"][0]}
    points = dict(
        scored.indicators.filter(pl.col("event_id") == "T1").select("code", "points").iter_rows()
    )
    assert set(points) == set(reasons)
    return float(flags["score"][0]), points, scored.weak_explanations


def test_mined_is_weaker_than_an_assignment_and_keeps_the_colleague_reason() -> None:
    on = _only("unit_reason_code")
    off = _rules(**{k: {"enabled": False} for k in MINERS})
    plain, plain_points, none = _score(assigned=False, rules=off)
    mined, mined_points, weak = _score(assigned=False, rules=on)
    assigned, _, _ = _score(assigned=True, rules=on)
    assert none.is_empty()
    assert weak.select("event_id", "kind").rows() == [("T1", "unit_reason_code")]
    assert assigned < mined < plain
    assert set(mined_points) == set(plain_points) >= {"unexplained", "colleague"}
    assert mined_points["colleague"] == plain_points["colleague"]
    assert mined_points["unexplained"] == pytest.approx(plain_points["unexplained"] / 2)


def test_the_reason_says_what_weakly_explained_it() -> None:
    scored = score_days(_colleague_case(False), [DAY], _only("unit_reason_code"))
    reasons = {r["code"]: r["text"] for r in scored.flags["reasons"][0]}
    assert "; weakly explained: reason code Enquiries" in reasons["unexplained"]
    assert "weakly explained" not in reasons["colleague"]
    coverage = {r["scope"]: r for r in scored.coverage.to_dicts()}
    assert (coverage["overall"]["explained"], coverage["overall"]["with_mined"]) == (0, 1)


@pytest.mark.parametrize("kind", sorted(MINERS))
def test_each_kind_can_be_switched_off(kind: str) -> None:
    log, incidents, links = _safeguarding_force()
    for n in range(4):
        log.add("R1", f"X{n}", _before(1), explained=True, reason="Enquiries")
        log.add("R2", f"X{n}", _before(1), explained=True, reason="Enquiries", minute=5)
        log.add("R3", f"X{n}", _before(1), explained=True, reason="Enquiries", minute=6)
    log.add("R1", "P1", DAY, explained=True)
    log.add("M1", "CNEW", DAY, explained=False)
    log.add("R2", "P1", DAY, explained=False, minute=30)
    log.add("R3", "P9", DAY, explained=False, reason="Enquiries")
    log.add("R3", "B0", DAY, explained=False, minute=40)
    tables = {"incidents": incidents, "links": links}
    kinds = _kinds(log, _rules(), **tables)
    assert kind in kinds
    assert _kinds(log, _rules(**{kind: {"enabled": False}}), **tables) == kinds - {kind}


def test_episodes_carry_the_weak_sentence_on_the_discounted_reason_only() -> None:
    targets = pl.LazyFrame(
        {
            "system": ["RMS"],
            "event_id": ["E1"],
            "user_id": ["R1"],
            "record_type": ["person"],
            "record_id": ["P1"],
            "day": [DAY],
            "occurred_at": [_at(DAY)],
            "explained": [False],
        }
    )
    found = pl.LazyFrame(
        {
            "system": ["RMS", "RMS"],
            "event_id": ["E1", "E1"],
            "code": ["unexplained", "same_surname"],
            "points": [10.0, 20.0],
            "evidence": [None, "Gray"],
        }
    )
    weak = pl.LazyFrame(
        {
            "system": ["RMS"],
            "event_id": ["E1"],
            "kind": ["unit_incident_type"],
            "detail": ["users of RESP-A open records linked to theft incidents"],
            "strength": [0.5],
        }
    )
    flags, _ = episodes(targets, weakened(found, weak, _rules()), _rules())
    reasons = {r["code"]: r for r in flags.collect()["reasons"][0]}
    assert reasons["unexplained"]["text"].endswith(
        "; weakly explained: users of RESP-A open records linked to theft incidents"
    )
    assert reasons["same_surname"]["text"] == "the subject shares their surname (Gray)"
    assert reasons["same_surname"]["weight"] == pytest.approx(0.8)


def test_only_mutual_strongest_ties_make_edges() -> None:
    """A and B share three records, A and C two: with one neighbour each, C's strongest tie (A)
    is not mutual (A's is B), so only A-B is kept."""
    log = Log()
    for n in range(3):
        log.add("A", f"ab{n}", _before(1), explained=False)
        log.add("B", f"ab{n}", _before(1), explained=False)
    for n in range(2):
        log.add("A", f"ac{n}", _before(1), explained=False)
        log.add("C", f"ac{n}", _before(1), explained=False)
    opened = log.frame().select("user_id", "record_type", "record_id").unique()
    edges = similarity_edges(opened, 2, 25, 1).collect().sort("user_id")
    assert edges.select("user_id", "other").rows() == [("A", "B"), ("B", "A")]
    assert similarity_edges(opened, 2, 25, 2).collect().height == 4


def test_explain_shows_a_weak_explanation_with_its_support() -> None:
    from rich.console import Console

    from access_audit.render import event_detail_json, render_event_detail
    from access_audit.review.detail import event_detail

    access = {
        "system": "RMS",
        "event_id": "E1",
        "user_id": "A1",
        "occurred_at": _at(DAY),
        "action": "view",
        "record_type": "person",
        "record_id": "P1",
        "day": DAY,
    }
    weak = {
        "system": "RMS",
        "event_id": "E1",
        "kind": "collaborative_group",
        "via": "A1",
        "detail": "in the working set of collaborative group A1 (4 users): 3 other members",
        "strength": 0.5,
        "support": 3,
        "confidence": 1.0,
        "day": DAY,
    }
    detail = event_detail(
        "RMS:E1",
        _table("access_events", [access]),
        _table("explanations"),
        _table("indicators"),
        _table("flags"),
        _table("flag_events"),
        weak=_table("weak_explanations", [weak]),
    )
    assert detail is not None
    console = Console(record=True, width=300)
    render_event_detail(console, detail)
    text = console.export_text()
    assert "explained by: nothing" in text
    assert (
        "weakly explained by: in the working set of collaborative group A1 (4 users): 3 other "
        "members (collaborative_group, support 3, strength 0.50)"
    ) in text
    assert '"support": 3' in event_detail_json(detail)
