"""Indicators and their weights from peer base rates, on tiny inline frames."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, timedelta

import polars as pl
import pytest

from access_audit.config import parse_config
from access_audit.score.explain import Inputs
from access_audit.score.peers import peer_rates, peer_sentence, peer_weighted
from access_audit.score.rules import Rules, load_rules

DAY = date(2026, 11, 20)
STAFF = pl.LazyFrame(
    {
        "user_id": ["V1", "V2", "V3", "R1", "R2", "R3"],
        "role": ["vetting_officer"] * 3 + ["response_officer"] * 3,
        "team_id": ["VET"] * 3 + ["HAR-A"] * 3,
    }
)


def _lookups(user: str, colleague: int, other: int) -> list[dict[str, object]]:
    """`colleague` lookups of staff members' records and `other` of the public, unexplained."""
    rows = []
    for n in range(colleague + other):
        rows.append(
            {
                "system": "RMS",
                "event_id": f"{user}-{n}",
                "user_id": user,
                "record_type": "person",
                "record_id": f"{'S' if n < colleague else 'P'}{user}{n}",
                "action": "view",
                "day": DAY,
                "explained": False,
            }
        )
    return rows


def _force() -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Vetting officers look up colleagues in half their lookups; response officers almost
    never (R1 once today, in four)."""
    rows = (
        _lookups("V1", 5, 5)
        + _lookups("V2", 5, 5)
        + _lookups("V3", 5, 5)
        + _lookups("R1", 1, 3)
        + _lookups("R2", 0, 40)
        + _lookups("R3", 0, 40)
    )
    context = pl.LazyFrame(rows)
    colleague = context.filter(pl.col("record_id").str.starts_with("S")).select(
        "system", "event_id", code=pl.lit("colleague")
    )
    return context, colleague


def _rules(**peers: object) -> Rules:
    """The default rules with light shrinkage, as a force of six staff needs."""
    return load_rules(parse_config({"peers": {"peer_prior_lookups": 5.0, **peers}}))


def _found(history: pl.LazyFrame, user: str) -> pl.LazyFrame:
    return (
        history.filter(pl.col("event_id") == f"{user}-0")
        .with_columns(points=pl.lit(35.0), evidence=pl.lit("staff X"))
        .select("system", "event_id", "code", "points", "evidence")
    )


def test_peer_rate_leaves_the_user_out_and_falls_back_from_team_to_role() -> None:
    context, history = _force()
    rules = _rules()
    rates = peer_rates(history, context, STAFF, rules).collect()
    colleague = {r["user_id"]: r for r in rates.filter(pl.col("code") == "colleague").to_dicts()}
    # V1's peers (V2, V3): 10 of 20 lookups, shrunk a little towards the role and the force
    assert 0.4 < colleague["V1"]["peer_rate"] < 0.5
    assert colleague["V1"]["peers"] == "team VET (vetting officer)"
    # R1's peers (R2, R3): none of their 80 lookups
    assert colleague["R1"]["peer_rate"] < 0.05
    assert colleague["R2"]["peer_rate"] > colleague["R1"]["peer_rate"]  # R1's one counts for R2


def test_a_colleague_lookup_counts_in_full_for_response_and_little_for_vetting() -> None:
    context, history = _force()
    rules = _rules()
    targets = context
    vetting = peer_weighted(_found(history, "V1"), history, context, targets, STAFF, rules)
    response = peer_weighted(_found(history, "R1"), history, context, targets, STAFF, rules)
    vetting_row = vetting.collect().to_dicts()[0]
    response_row = response.collect().to_dicts()[0]
    assert response_row["points"] == pytest.approx(35.0)
    assert vetting_row["points"] < 1.0
    assert (response_row["today_hits"], response_row["today_lookups"]) == (1, 4)
    sentence = pl.DataFrame([response_row]).select(peer_sentence(_rules())).item()
    assert sentence == (
        "; the same holds for less than 0.1% of unexplained lookups by team HAR-A (response "
        "officer), and for 1 of the 4 unexplained lookups they made today"
    )


def _habits(
    earlier_hits: dict[str, int], today_hits: int, code: str = "crowd"
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """Four response officers (R4 in team HAR-B), ten unexplained lookups a day over four earlier
    days, of which `earlier_hits` carry `code`; today R1 and R4 make four lookups each, of which
    `today_hits` carry it. Returns the accesses, the hits and the staff."""
    staff = pl.LazyFrame(
        {
            "user_id": ["R1", "R2", "R3", "R4"],
            "role": ["response_officer"] * 4,
            "team_id": ["HAR-A"] * 3 + ["HAR-B"],
        }
    )
    rows, hit = [], []
    for user, hits in earlier_hits.items():
        for n in range(40):
            day = DAY - timedelta(days=1 + n // 10)
            rows.append(_lookup(user, f"{user}-e{n}", day))
            if n < hits:
                hit.append(f"{user}-e{n}")
    for user in ("R1", "R4"):
        for n in range(4):
            rows.append(_lookup(user, f"{user}-t{n}", DAY))
            if n < today_hits:
                hit.append(f"{user}-t{n}")
    context = pl.LazyFrame(rows)
    history = context.filter(pl.col("event_id").is_in(hit)).select(
        "system", "event_id", code=pl.lit(code)
    )
    return context, history, staff


CROWD_HABITS = {"R1": 0, "R2": 1, "R3": 1, "R4": 10}
"""A crowd caught R2 and R3 once each in the look-back, R4 ten times; today R1 and R4 once."""


def _lookup(user: str, event: str, day: date) -> dict[str, object]:
    return {
        "system": "RMS",
        "event_id": event,
        "user_id": user,
        "record_type": "person",
        "record_id": f"P{event}",
        "action": "view",
        "day": day,
        "explained": False,
    }


def _points(
    user_rate: str, habits: dict[str, int] = CROWD_HABITS, today_hits: int = 1
) -> dict[str, dict[str, object]]:
    """The points of R1's and R4's first hit today (25 before peers), by user."""
    context, history, staff = _habits(habits, today_hits)
    targets = context.filter(pl.col("day") == DAY)
    found = (
        history.join(targets.select("system", "event_id"), on=["system", "event_id"])
        .with_columns(points=pl.lit(25.0), evidence=pl.lit("crowd"))
        .select("system", "event_id", "code", "points", "evidence")
    )
    out = peer_weighted(found, history, context, targets, staff, _rules(user_rate=user_rate))
    return {r["event_id"].split("-")[0]: r for r in out.collect().to_dicts()}


def test_over_the_look_back_one_rare_hit_among_many_lookups_is_the_peers_rate() -> None:
    """On its day R1's one crowd hit in four lookups is several times the peers' 3%; over the
    look-back it is one in 44, the peers' own rate, and counts for nothing. R4, caught in crowds
    eleven times in 44 lookups, counts in (almost) full either way."""
    day, lookback = _points("day"), _points("lookback")
    assert day["R1"]["points"] > 10.0
    assert lookback["R1"]["points"] == pytest.approx(0.0)
    assert lookback["R4"]["points"] > 0.9 * 25.0
    assert lookback["R4"]["points"] > day["R4"]["points"]
    r1 = lookback["R1"]
    assert (r1["window_hits"], r1["window_lookups"], r1["today_hits"], r1["today_lookups"]) == (
        1,
        44,
        1,
        4,
    )
    sentence = pl.DataFrame([r1]).select(peer_sentence(_rules())).item()
    assert sentence.endswith(
        "by team HAR-A (response officer), and for 1 of the 44 unexplained lookups they made in "
        "the look-back and today (1 of 4 today)"
    )
    day_sentence = pl.DataFrame([day["R1"]]).select(peer_sentence(_rules())).item()
    assert day_sentence.endswith("and for 1 of the 4 unexplained lookups they made today")


def test_adaptive_takes_the_day_only_when_it_holds_enough_lookups_to_measure_the_rate() -> None:
    """A rare indicator (peers 3%: four lookups would show 0.12 hits) is measured over the
    look-back; a common one (peers half their lookups: two hits in four) on the day, where R1's
    four of four today stands out more than their 24 of 44 over the look-back."""
    rare = _points("adaptive")
    assert rare["R1"]["user_rate"] == "lookback"
    assert rare["R1"]["points"] == pytest.approx(_points("lookback")["R1"]["points"])
    half = {"R1": 20, "R2": 20, "R3": 20, "R4": 20}
    common = _points("adaptive", half, today_hits=4)
    day = _points("day", half, today_hits=4)
    lookback = _points("lookback", half, today_hits=4)
    assert common["R1"]["user_rate"] == "day"
    assert common["R1"]["points"] == pytest.approx(day["R1"]["points"])
    assert day["R1"]["points"] > lookback["R1"]["points"] + 1.0


def test_peer_weights_can_be_switched_off() -> None:
    context, history = _force()
    rules = _rules(enabled=False)
    out = peer_weighted(_found(history, "V1"), history, context, context, STAFF, rules).collect()
    assert out["points"].to_list() == [35.0]
    assert out["peer_rate"].to_list() == [None]


def test_a_pattern_flag_lists_the_subjects_behind_its_figure() -> None:
    from access_audit.score.patterns import patterns

    people, rows = [], []
    for u in range(10):
        skewed = 18 if u == 0 else 2
        for n in range(20):
            person = f"P{u}-{n}"
            young_woman = n < skewed
            people.append(
                {
                    "person_id": person,
                    "sex": "F" if young_woman else "M",
                    "date_of_birth": date(2002, 1, 1) if young_woman else date(1960, 1, 1),
                }
            )
            rows.append(
                {
                    "system": "RMS",
                    "event_id": f"E{u}-{n}",
                    "user_id": f"U{u}",
                    "occurred_at": None,
                    "action": "view",
                    "record_type": "person",
                    "record_id": person,
                    "day": DAY,
                    "explained": False,
                }
            )
    context = pl.LazyFrame(rows).with_columns(
        occurred_at=pl.lit(DAY).cast(pl.Datetime("us", "UTC"))
    )
    staff = pl.LazyFrame({"user_id": [f"U{u}" for u in range(10)], "role": ["response"] * 10})
    flags, events = patterns(context, context, pl.LazyFrame(people), staff, load_rules())
    assert flags["user_id"].to_list() == ["U0"]
    text = flags["reasons"][0][0]["text"]
    behind = ", ".join(sorted(f"P0-{n}" for n in range(18)))
    assert text.endswith(f"the subjects: {behind}")
    assert flags["pattern_subjects"].to_list() == [sorted(f"P0-{n}" for n in range(18))]
    assert flags["pattern_lookback_days"].to_list() == [load_rules().lookback_days]
    assert events.height == 18


def _inputs(**tables: pl.LazyFrame) -> Inputs:
    """Every store a scoring run reads: the ones given, the rest empty."""
    return Inputs(**{f.name: tables.get(f.name, pl.LazyFrame()) for f in fields(Inputs)})


def test_cited_unlinked_accepts_the_incident_opened_even_before_its_row_arrives() -> None:
    from access_audit.score.indicators import Frame, cited_unlinked

    targets = pl.LazyFrame(
        {
            "system": ["RMS"] * 3,
            "event_id": ["E1", "E2", "E3"],
            "record_type": ["incident", "incident", "person"],
            "record_id": ["CR/2026/023781", "CR/2026/000001", "P1"],
            "justification": ["Attended CR/2026/023781"] * 3,
            "explained": [False] * 3,
        }
    )
    inputs = _inputs(
        incidents=pl.LazyFrame(schema={"incident_id": pl.String}),
        incident_persons=pl.LazyFrame(schema={"incident_id": pl.String, "person_id": pl.String}),
    )
    rules = load_rules()
    frame = Frame(inputs, rules, targets, targets)
    hits = cited_unlinked(frame, rules.indicators["cited_unlinked"]).collect()
    # E1 opens the incident it cites; E2 and E3 open records the citation does not link
    assert sorted(hits["event_id"]) == ["E2", "E3"]
    assert set(hits["evidence"]) == {"CR/2026/023781"}


def test_an_episode_whose_indicators_peers_find_normal_has_weights_not_nan() -> None:
    from datetime import datetime

    from access_audit.score.flags import episodes

    at = datetime(2026, 11, 20, 10, 0)
    targets = pl.LazyFrame(
        {
            "system": ["RMS"],
            "event_id": ["E1"],
            "user_id": ["V1"],
            "record_type": ["person"],
            "record_id": ["P1"],
            "day": [DAY],
            "occurred_at": [at],
            "explained": [False],
        }
    ).with_columns(pl.col("occurred_at").dt.replace_time_zone("UTC"))
    found = pl.LazyFrame(
        {
            "system": ["RMS"],
            "event_id": ["E1"],
            "code": ["unexplained"],
            "points": [0.0],  # what a unit that leaves most lookups unexplained gets
            "evidence": [None],
        },
        schema_overrides={"evidence": pl.String},
    )
    flags, _ = episodes(targets, found, load_rules())
    flag = flags.collect().row(0, named=True)
    assert flag["score"] == 0.0
    assert [r["weight"] for r in flag["reasons"]] == [0.0]


def test_every_declared_indicator_has_a_builder_and_an_unknown_one_is_refused() -> None:
    """The settings model lists the indicators (an unknown one in rules.toml or a home's file is
    refused when loaded); each must have code that computes it, or it would score nothing."""
    from access_audit.config import IndicatorsSettings, parse_config
    from access_audit.errors import AccessAuditError
    from access_audit.score.indicators import BUILDERS

    assert set(IndicatorsSettings.model_fields) <= set(BUILDERS)
    moon = {"weight": 5, "when": "any", "text": "full moon"}
    with pytest.raises(AccessAuditError, match=r"\[indicators.moon_phase\]: unknown table"):
        parse_config({"indicators": {"moon_phase": moon}})


def _skewed_force(users: int) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """`users` response officers whose unexplained lookups hold varying shares of young women
    and of contact views (U000 far more than the rest)."""
    people, rows = [], []
    for u in range(users):
        for n in range(20):
            person = f"P{u}-{n}"
            young = n < (16 if u == 0 else (u * 7) % 6)
            people.append(
                {
                    "person_id": person,
                    "sex": "F" if young else "M",
                    "date_of_birth": date(2002, 1, 1) if young else date(1960, 1, 1),
                }
            )
            rows.append(
                {
                    "system": "RMS",
                    "event_id": f"E{u}-{n}",
                    "user_id": f"U{u:03d}",
                    "action": "view_contact" if n < (u * 5) % 4 else "view",
                    "record_type": "person",
                    "record_id": person,
                    "day": DAY,
                    "explained": False,
                }
            )
    context = pl.LazyFrame(rows).with_columns(
        occurred_at=pl.lit(DAY).cast(pl.Datetime("us", "UTC"))
    )
    staff = pl.LazyFrame(
        {"user_id": [f"U{u:03d}" for u in range(users)], "role": ["response"] * users}
    )
    return context, pl.LazyFrame(people), staff


def test_pattern_flags_are_the_same_on_every_run_whatever_the_order_of_the_rows() -> None:
    """MinCovDet's estimate depends on the order of its rows; the users are put in one order
    first, so two runs (or the same accesses stored in another order) flag identically."""
    import numpy as np
    from sklearn.covariance import MinCovDet

    from access_audit.score.patterns import PRIOR, patterns

    context, people, staff = _skewed_force(60)
    rules = load_rules()
    runs = []
    for seed in range(4):
        shuffled = context.collect().sample(fraction=1.0, shuffle=True, seed=seed).lazy()
        runs.append(patterns(shuffled, shuffled, people, staff, rules)[0])
    assert runs[0]["user_id"].to_list() == ["U000"]
    for run in runs[1:]:
        assert run.equals(runs[0])
    # and the centre is the model of the users in id order
    per_user = (
        context.group_by("user_id")
        .agg(
            n=pl.len(),
            k_contact=(pl.col("action") == "view_contact").sum(),
            k_young=pl.col("record_id")
            .is_in(people.filter(pl.col("sex") == "F").select("person_id").collect().to_series())
            .sum(),
        )
        .sort("user_id")
        .collect()
    )
    shares = [
        (per_user[k] + PRIOR * per_user[k].sum() / per_user["n"].sum()) / (per_user["n"] + PRIOR)
        for k in ("k_young", "k_contact")
    ]
    centre = MinCovDet(random_state=0).fit(np.column_stack(shares)).location_[0]
    text = runs[0]["reasons"][0][0]["text"]
    assert f"peers' robust centre is {round(centre * 100, 1)}%" in text
    # the window named is the one counted: the look-back and the day itself
    first = DAY - timedelta(days=rules.lookback_days)
    assert f"in the {rules.lookback_days + 1} days {first:%Y-%m-%d} to {DAY:%Y-%m-%d} " in text
    # and the unit it counts: a subject on a day, not a subject (it said "subjects")
    assert "lookups they made without explanation (a subject on a day)" in text


def test_the_unchecked_robust_fit_is_scikit_learns_to_the_bit() -> None:
    import numpy as np

    from access_audit.score.robust import min_cov_det

    rng = np.random.default_rng(7)
    for rows in (40, 700):  # FastMCD works on subsets above 500 rows
        matrix = np.clip(rng.normal(0.2, 0.05, (rows, 2)), 0, 1)
        matrix[:3] = 0.9  # a few far from the rest
        fast, checked = min_cov_det(matrix), min_cov_det(matrix, checked=True)
        assert np.array_equal(fast[0], checked[0]) and np.array_equal(fast[1], checked[1])


def test_an_unknown_user_rate_is_refused_when_the_rules_load() -> None:
    from access_audit.errors import AccessAuditError

    with pytest.raises(AccessAuditError, match="user_rate"):
        parse_config({"peers": {"user_rate": "week"}})
