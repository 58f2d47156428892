"""Peers by job within a team, and crowds of unrelated teams: on tiny inline frames."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, date, datetime, timedelta

import polars as pl

from access_audit.config import parse_config
from access_audit.score.explain import Inputs
from access_audit.score.indicators import Frame, crowd, unlinked_subject
from access_audit.score.lookback import day_lookups
from access_audit.score.peers import peer_rates, peer_weighted
from access_audit.score.rules import Rules, load_rules

DAY = date(2026, 11, 20)


def _inputs(**tables: pl.LazyFrame) -> Inputs:
    """Every store a scoring run reads: the ones given, the rest empty."""
    return Inputs(**{f.name: tables.get(f.name, pl.LazyFrame()) for f in fields(Inputs)})


def _access(
    user: str, n: int, record: str, *, explained: bool, day: date = DAY
) -> dict[str, object]:
    kind = "incident" if record.startswith("CR/") else "person"
    return {
        "system": "RMS",
        "event_id": f"{user}-{record}-{n}-{day}",
        "user_id": user,
        "record_type": kind,
        "record_id": record,
        "action": "view",
        "day": day,
        "explained": explained,
    }


def test_a_supervisors_peers_are_supervisors_not_the_call_handlers_of_their_team() -> None:
    """Team CCR holds call handlers, whose lookups are all explained, and two supervisors, who
    sample crime reports half the time; supervisors elsewhere do the same. S1's peers are the
    supervisors (S2, then the role), not the call handlers."""
    staff = pl.LazyFrame(
        {
            "user_id": ["C1", "C2", "C3", "S1", "S2", "S3", "S4"],
            "role": ["call_handler"] * 3 + ["supervisor"] * 4,
            "team_id": ["CCR"] * 5 + ["CID", "CID"],
        }
    )
    rows = []
    for user in ("C1", "C2", "C3"):
        rows += [_access(user, n, f"P{user}{n}", explained=True) for n in range(40)]
    for user in ("S1", "S2", "S3", "S4"):
        rows += [_access(user, n, f"P{user}{n}", explained=n % 2 == 0) for n in range(20)]
    context = pl.LazyFrame(rows)
    history = context.filter(~pl.col("explained")).select(
        "system", "event_id", code=pl.lit("unexplained")
    )
    rules = load_rules(parse_config({"peers": {"peer_prior_lookups": 5.0}}))
    rates = peer_rates(history, context, staff, rules).filter(pl.col("code") == "unexplained")
    by_user = {r["user_id"]: r for r in rates.collect().to_dicts()}
    # S1's peers: S2 (10 of 20 unexplained), shrunk towards the supervisors force-wide (half)
    assert 0.45 < by_user["S1"]["peer_rate"] < 0.55
    assert by_user["S1"]["peers"] == "team CCR (supervisor)"
    # the call handlers' peers are the call handlers: none unexplained
    assert by_user["C1"]["peer_rate"] < 0.1


def _crowd_frame(rows: list[dict[str, object]], staff: pl.LazyFrame, today: list[str]) -> Frame:
    """The crowd indicator over `rows` (the look-back and the day), scoring `today`'s events."""
    links = pl.LazyFrame({"incident_id": ["CR/1", "CR/1"], "person_id": ["V", "W"]})
    inputs = _inputs(staff=staff, incident_persons=links)
    events = pl.LazyFrame(rows)
    lookups = day_lookups(events.with_columns(contacts=pl.lit(0)))
    targets = events.filter(pl.col("event_id").is_in(today) & ~pl.col("explained"))
    return Frame(inputs, load_rules(), targets, lookups)


def test_a_crowd_counts_unrelated_teams_over_a_week_through_the_incident() -> None:
    """Five users of five teams, over two days, reading the victim V or the incident CR/1 that
    links her: a crowd on the second day, for the incident's reader and the person's alike."""
    staff = pl.LazyFrame(
        {"user_id": [f"U{n}" for n in range(5)], "team_id": [f"T{n}" for n in range(5)]}
    )
    rows = [
        _access("U0", 0, "V", explained=False, day=DAY - timedelta(days=1)),
        _access("U1", 0, "CR/1", explained=False, day=DAY - timedelta(days=1)),
        _access("U2", 0, "V", explained=False, day=DAY - timedelta(days=1)),
        _access("U3", 0, "CR/1", explained=False, day=DAY),
        _access("U4", 0, "V", explained=False, day=DAY),
    ]
    today = [str(r["event_id"]) for r in rows[3:]]
    frame = _crowd_frame(rows, staff, today)
    as_found = load_rules(parse_config({"indicators": {"crowd": {"calibrate": False}}}))
    hits = crowd(frame, as_found.indicators["crowd"]).collect().sort("event_id")
    assert hits["event_id"].to_list() == sorted(today)
    assert hits["points"].to_list() == [25.0, 25.0]
    assert (
        hits["evidence"].to_list()
        == ["users of 5 unrelated teams looked this subject up without explanation within 2 days"]
        * 2
    )
    # measured against chance (the default) with one day before it: no audience as large that
    # day, so half a subject a day, and ln 2 / ln 10 of the weight
    hits = crowd(frame, frame.rules.indicators["crowd"]).collect().sort("event_id")
    assert [round(p, 2) for p in hits["points"]] == [7.53, 7.53]
    assert (
        hits["evidence"].to_list()
        == [
            "users of 5 unrelated teams looked this subject up without explanation within 2 days "
            "(no other crowd as large formed in this force over the day before)"
        ]
        * 2
    )


def _audience(subject: str, teams: range, day: date) -> list[dict[str, object]]:
    """Users U<team> of teams T<team> reading `subject` without explanation on `day`."""
    return [
        _access(f"U{n}", hash((subject, day)) % 1000, subject, explained=False, day=day)
        for n in teams
    ]


def test_a_crowd_weighs_as_much_as_it_is_rarer_than_the_forces_chance_crowds() -> None:
    """Today five teams read V. Where a five-team audience formed around two subjects on each of
    the ten days before (bulk readers), five teams happens by chance twice a day: no evidence,
    no hit. Where none formed, it is rarer than one in twenty days: full weight (25 points).
    Where one formed on one of the ten days, about 0.15 a day: part weight. Switched off
    (`calibrate = false`), the crowd stands at full weight whatever the look-back holds."""
    staff = pl.LazyFrame(
        {"user_id": [f"U{n}" for n in range(9)], "team_id": [f"T{n}" for n in range(9)]}
    )
    today = _audience("V", range(5), DAY)
    today_ids = [str(r["event_id"]) for r in today]
    quiet = [
        r
        for back in range(1, 11)
        for r in _audience(f"Q{back}", range(2), DAY - timedelta(days=back))
    ]
    busy = [
        r
        for back in range(1, 11)
        for subject in (f"B{back}", f"C{back}")
        for r in _audience(subject, range(4, 9), DAY - timedelta(days=back))
    ]
    once = _audience("O", range(4, 9), DAY - timedelta(days=5))

    def points(rows: list[dict[str, object]], calibrate: bool = True) -> list[float]:
        frame = _crowd_frame(rows, staff, today_ids)
        rules = load_rules(parse_config({"indicators": {"crowd": {"calibrate": calibrate}}}))
        found = crowd(frame, rules.indicators["crowd"]).collect()
        return sorted(found["points"].to_list())

    assert points(quiet + today) == [25.0] * 5
    assert points(busy + today) == []
    part = points(quiet + once + today)
    assert len(part) == 5 and 0 < part[0] < 25.0
    assert points(busy + today, calibrate=False) == [25.0] * 5


def test_a_teams_readers_count_once_and_a_crowd_older_than_the_window_is_gone() -> None:
    staff = pl.LazyFrame(
        {
            "user_id": [f"U{n}" for n in range(6)],
            "team_id": ["MASH"] * 5 + ["T5"],
        }
    )
    # the whole hub reads a referred child: one team, and a user of another
    hub = [_access(f"U{n}", 0, "V", explained=False) for n in range(6)]
    frame = _crowd_frame(hub, staff, [str(r["event_id"]) for r in hub])
    assert crowd(frame, frame.rules.indicators["crowd"]).collect().is_empty()
    # five teams, but four of them two days before: outside the window
    teams = staff.with_columns(team_id=pl.format("T{}", pl.int_range(pl.len())))
    old = [_access(f"U{n}", 0, "V", explained=False, day=DAY - timedelta(days=2)) for n in range(4)]
    rows = [*old, _access("U4", 0, "V", explained=False)]
    frame = _crowd_frame(rows, teams, [str(rows[-1]["event_id"])])
    assert crowd(frame, frame.rules.indicators["crowd"]).collect().is_empty()


def test_weighed_by_their_peers_bulk_readers_do_not_make_a_crowd() -> None:
    """Six teams read V unexplained the same day. Where every team records nine in ten of its
    person lookups, each weighs 0.9 and the six make a crowd (5.4 >= 5). Where two of them are
    bulk-reading units that record none, they weigh nothing: 3.6, no crowd. Unweighted, both are
    crowds."""
    staff = pl.LazyFrame(
        {
            "user_id": [f"U{n}" for n in range(6)],
            "role": ["response_officer"] * 6,
            "team_id": [f"T{n}" for n in range(6)],
        }
    )
    links = pl.LazyFrame({"incident_id": ["CR/1"], "person_id": ["V"]})
    weighed = load_rules(parse_config({"indicators": {"crowd": {"member_weight": True}}}))

    def hits(bulk: set[str], rules: Rules) -> list[str]:
        rows = []
        for n in range(6):
            user = f"U{n}"
            rows += [_access(user, k, f"P{user}{k}", explained=user not in bulk) for k in range(9)]
            rows.append(_access(user, 0, "V", explained=False))
        events = pl.LazyFrame(rows)
        lookups = day_lookups(events.with_columns(contacts=pl.lit(0)))
        targets = events.filter(pl.col("record_id") == "V")
        frame = Frame(_inputs(staff=staff, incident_persons=links), rules, targets, lookups)
        found = crowd(frame, rules.indicators["crowd"]).collect()
        return sorted(found["event_id"].str.split("-").list.first())

    everyone = [f"U{n}" for n in range(6)]
    assert hits(set(), weighed) == everyone
    assert hits({"U4", "U5"}, weighed) == []
    assert hits({"U4", "U5"}, load_rules()) == everyone


def test_explained_excess_counts_contact_views_against_the_roles_rate_and_says_day_or_days() -> (
    None
):
    """D1 opens P1's contact details 12 times on one day of explained access; the detectives'
    pooled rate is about one a day, so every one of those views is hit, and the evidence says
    "on 1 day" (it said "on 1 days"); D2's one view a day on two days is not."""
    from access_audit.score.indicators import explained_excess

    staff = pl.LazyFrame(
        {"user_id": ["D1", "D2", "D3", "D4"], "role": ["detective"] * 4, "team_id": ["CID"] * 4}
    )
    rows = []
    for n in range(12):
        rows.append({**_access("D1", n, "P1", explained=True), "action": "view_contact"})
    for user in ("D2", "D3", "D4"):
        for back in range(2):
            for subject in range(5):
                day = DAY - timedelta(days=back)
                rows.append(
                    {
                        **_access(user, subject, f"P{user}{subject}", explained=True, day=day),
                        "action": "view_contact",
                    }
                )
    events = pl.LazyFrame(rows)
    targets = events.filter(pl.col("day") == DAY)
    frame = Frame(_inputs(staff=staff), load_rules(), targets, day_lookups(events))
    rules = load_rules()
    hits = explained_excess(frame, rules.indicators["explained_excess"]).collect()
    assert hits.height == 12
    assert set(hits["event_id"].str.split("-").list.first()) == {"D1"}
    evidence = hits["evidence"][0]
    assert evidence.startswith(
        "opened the subject's contact details 12 times on 1 day of explained access"
    )
    # three other detectives are fewer than min_role_users: measured against the force's pairs
    assert "other pairs in the force (a user and an explained subject) average 1.0 a day" in (
        evidence
    )


def test_explained_excess_is_measured_against_the_spread_of_the_roles_pairs() -> None:
    """The same 14 contact views of one subject over 7 days. Among detectives whose other pairs
    are viewed about once a day, evenly, it is far beyond chance: full weight. Among disclosure
    officers who reread whole case files (pairs viewed 0 to 20 times on 7 days), the role's
    spread makes it chance: more than one of their other pairs would reach 14 by chance over the
    look-back, so it is not weighed at all."""
    from access_audit.score.indicators import explained_excess

    def found(role: str, spread: list[int]) -> pl.DataFrame:
        users = [f"X{n}" for n in range(len(spread) + 1)]
        staff = pl.LazyFrame(
            {"user_id": users, "role": [role] * len(users), "team_id": ["T"] * len(users)}
        )
        rows = []
        for user, views in [("X0", 14), *zip(users[1:], spread, strict=True)]:
            for n in range(views):
                day = DAY - timedelta(days=n % 7)
                rows.append(
                    {
                        **_access(user, n, f"P{user}", explained=True, day=day),
                        "action": "view_contact",
                    }
                )
            for back in range(7):  # a day of explained access even without a contact view
                rows.append(
                    _access(
                        user, 100 + back, f"P{user}", explained=True, day=DAY - timedelta(days=back)
                    )
                )
        events = pl.LazyFrame(rows)
        targets = events.filter(pl.col("day") == DAY)
        rules = load_rules(parse_config({"indicators": {"explained_excess": {"model": "chance"}}}))
        frame = Frame(_inputs(staff=staff), rules, targets, day_lookups(events))
        return explained_excess(frame, rules.indicators["explained_excess"]).collect()

    narrow = found("detective", [7, 6, 8, 7, 7, 6, 8, 7, 7, 7] * 3)
    assert not narrow.is_empty()
    assert set(narrow["event_id"].str.split("-").list.first()) == {"X0"}
    assert set(narrow["points"].to_list()) == {40.0}
    wide = found("disclosure_officer", [0, 1, 20, 2, 0, 18, 3, 0, 16, 1] * 3)
    assert wide.filter(pl.col("event_id").str.starts_with("X0-")).is_empty()


def test_the_negative_binomial_tail_is_poissons_without_overdispersion_and_wider_with_it() -> None:
    """P(X >= x): with almost no overdispersion it is the Poisson tail; with more, the tail at
    the same mean is heavier."""
    import math

    from access_audit.score.indicators import _nbinom_tail

    def poisson_tail(x: int, mu: float) -> float:
        return 1.0 - sum(math.exp(-mu) * mu**j / math.factorial(j) for j in range(x))

    batch = pl.DataFrame(
        {"count": [8, 14, 14], "mu": [1.3, 6.3, 6.3], "inv_size": [1e-9, 1e-9, 1.5]}
    ).select(pl.struct("count", "mu", "inv_size"))
    tails = _nbinom_tail(batch.to_series()).to_list()
    assert math.isclose(tails[0], poisson_tail(8, 1.3), rel_tol=1e-6)
    assert math.isclose(tails[1], poisson_tail(14, 6.3), rel_tol=1e-6)
    assert tails[2] > 5 * tails[1]


NOON = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)


def _at(when: datetime) -> pl.Expr:
    return pl.lit(when, dtype=pl.Datetime("us", "UTC"))


def _incidents(opened: dict[str, datetime]) -> pl.LazyFrame:
    return pl.LazyFrame(
        {"incident_id": list(opened), "opened_at": list(opened.values())},
        schema={"incident_id": pl.String, "opened_at": pl.Datetime("us", "UTC")},
    )


def _calls(started: dict[str, datetime | None]) -> pl.LazyFrame:
    """Calls with (person id: start); a None person is a call with nobody linked."""
    return pl.LazyFrame(
        {
            "call_id": [f"C{n}" for n in range(len(started))],
            "person_id": [p or None for p in started],
            "started_at": list(started.values()),
        },
        schema={
            "call_id": pl.String,
            "person_id": pl.String,
            "started_at": pl.Datetime("us", "UTC"),
        },
    )


def _unlinked_frame(
    rows: list[dict[str, object]],
    *,
    links: dict[str, str] | None = None,
    opened: dict[str, datetime] | None = None,
    calls: pl.LazyFrame | None = None,
    delivered: dict[str, datetime] | None = None,
) -> Frame:
    """P1 is linked by incident CR/1 (opened a year before), P2 by a call the day before, P3 by
    nothing; P4 is not in `persons`. The lookups happen at noon on DAY. Every link arrived with
    the home's first load (a month before) unless `delivered` (person: drop day) says later."""
    links = links if links is not None else {"P1": "CR/1"}
    first_load = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) - timedelta(days=30)
    arrived = [(delivered or {}).get(person, first_load) for person in links]
    inputs = _inputs(
        persons=pl.LazyFrame({"person_id": ["P1", "P2", "P3"]}),
        incident_persons=pl.LazyFrame(
            {"incident_id": list(links.values()), "person_id": list(links), "as_of": arrived},
            schema={
                "incident_id": pl.String,
                "person_id": pl.String,
                "as_of": pl.Datetime("us", "UTC"),
            },
        ),
        incidents=_incidents(opened if opened is not None else {"CR/1": NOON - timedelta(365)}),
        calls=calls
        if calls is not None
        else _calls({"P2": NOON - timedelta(days=1), "": NOON - timedelta(days=1)}),
    )
    events = pl.LazyFrame(rows).with_columns(occurred_at=_at(NOON))
    return Frame(inputs, load_rules(), events, day_lookups(events.with_columns(contacts=pl.lit(0))))


def _unlinked_ids(frame: Frame) -> list[str]:
    indicator = frame.rules.indicators["unlinked_subject"]
    return sorted(unlinked_subject(frame, indicator).collect()["event_id"])


def test_unlinked_subject_is_a_known_person_no_incident_or_call_links() -> None:
    """Of four unexplained lookups only P3's is about a person on the system whom nothing links;
    P4 is missing from the reference data, which says nothing about the person."""
    rows = [_access("R1", 0, p, explained=False) for p in ("P1", "P2", "P3", "P4", "CR/1")]
    frame = _unlinked_frame(rows)
    indicator = frame.rules.indicators["unlinked_subject"]
    hits = unlinked_subject(frame, indicator).collect()
    assert hits["event_id"].to_list() == [f"R1-P3-0-{DAY}"]
    assert hits["points"].to_list() == [20.0]
    assert indicator.when == "unexplained"
    assert indicator.param("grace_hours") == 24


def test_a_link_made_after_the_lookup_does_not_clear_unlinked_subject() -> None:
    """Work is recorded late, so a call that started, or an incident opened, within a day after
    the lookup links the person; one made later (an insider naming P3 on an incident the next
    week, or any call with her) does not erase what the lookup was, and nor does an incident
    missing from `incidents`."""
    rows = [_access("R1", 0, "P3", explained=False)]
    p3 = [f"R1-P3-0-{DAY}"]
    hour_later = _calls({"P2": NOON, "P3": NOON + timedelta(hours=2)})
    assert _unlinked_ids(_unlinked_frame(rows, calls=hour_later)) == []
    week_later = _calls({"P2": NOON, "P3": NOON + timedelta(days=7)})
    assert _unlinked_ids(_unlinked_frame(rows, calls=week_later)) == p3
    for opened, expected in ((NOON + timedelta(hours=20), []), (NOON + timedelta(days=2), p3)):
        frame = _unlinked_frame(
            rows, links={"P1": "CR/1", "P3": "CR/9"}, opened={"CR/1": NOON, "CR/9": opened}
        )
        assert _unlinked_ids(frame) == expected
    unknown_incident = _unlinked_frame(rows, links={"P1": "CR/1", "P3": "CR/404"})
    assert _unlinked_ids(unknown_incident) == p3
    # named on an incident opened a year ago, in a drop a week later: the link dates from then
    # (adversary 18b); delivered in the next day's drop, it counts
    old_case = {"P1": "CR/1", "P3": "CR/1"}
    for drop, expected in ((NOON + timedelta(days=7), p3), (NOON + timedelta(hours=12), [])):
        frame = _unlinked_frame(rows, links=old_case, delivered={"P3": drop})
        assert _unlinked_ids(frame) == expected


def test_unlinked_subject_counts_for_response_officers_and_little_for_vetting() -> None:
    """Vetting officers look up people whom nothing links in half their lookups, response
    officers never: one such lookup weighs nearly nothing for V1 and in full for R1."""
    staff = pl.LazyFrame(
        {
            "user_id": ["V1", "V2", "V3", "R1", "R2", "R3"],
            "role": ["vetting_officer"] * 3 + ["response_officer"] * 3,
            "team_id": ["VET"] * 3 + ["HAR-A"] * 3,
        }
    )
    linked = [f"L{n}" for n in range(40)]
    rows = []
    for user in ("V2", "V3"):
        rows += [
            _access(user, n, f"U{user}{n}" if n % 2 else linked[n], explained=False)
            for n in range(40)
        ]
    for user in ("R2", "R3"):
        rows += [_access(user, n, linked[n], explained=False) for n in range(40)]
    rows += [_access("V1", 0, "UV1", explained=False), _access("R1", 0, "UR1", explained=False)]
    rows += [_access(u, n, linked[n], explained=False) for u in ("V1", "R1") for n in (1, 2, 3)]
    people = sorted({str(r["record_id"]) for r in rows})
    inputs = _inputs(
        staff=staff,
        persons=pl.LazyFrame({"person_id": people}),
        incident_persons=pl.LazyFrame(
            {"incident_id": ["CR/1"] * 40, "person_id": linked, "as_of": [NOON] * 40},
            schema={
                "incident_id": pl.String,
                "person_id": pl.String,
                "as_of": pl.Datetime("us", "UTC"),
            },
        ),
        incidents=_incidents({"CR/1": NOON - timedelta(days=30)}),
        calls=_calls({}),
    )
    events = pl.LazyFrame(rows).with_columns(occurred_at=_at(NOON))
    rules = load_rules(parse_config({"peers": {"peer_prior_lookups": 5.0}}))
    frame = Frame(inputs, rules, events, day_lookups(events.with_columns(contacts=pl.lit(0))))
    history = unlinked_subject(frame, rules.indicators["unlinked_subject"]).select(
        "system", "event_id", code=pl.lit("unlinked_subject")
    )
    found = unlinked_subject(frame, rules.indicators["unlinked_subject"]).filter(
        pl.col("event_id").is_in([f"V1-UV1-0-{DAY}", f"R1-UR1-0-{DAY}"])
    )
    weighted = peer_weighted(found, history, events, events, staff, rules).collect()
    points = dict(zip(weighted["event_id"].str.slice(0, 2), weighted["points"], strict=True))
    assert points["R1"] == 20.0
    assert points["V1"] < 2.0
