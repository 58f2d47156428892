"""explained_excess against chance and crowd calibration, on the cases an adversarial trial found
wrong in their first version (small roles weighed at their own mean, users missing from staff
pooled into a nameless role, points that changed with the order of the rows, a crowd measured
against its own earlier days, a role's rate that included the flagged pair). Frames are built
inline as look-back lookups (score/lookback.py: one row per user, record and day)."""

from __future__ import annotations

import random
from dataclasses import fields
from datetime import date, timedelta

import polars as pl

from access_audit.config import parse_config
from access_audit.score.explain import Inputs
from access_audit.score.indicators import Frame, crowd, explained_excess
from access_audit.score.rules import load_rules

DAY = date(2026, 11, 20)
Pair = tuple[str, str, list[int]]
"""(user, subject, contact views per day of explained access: index 0 is DAY, 1 the day before)"""


def _inputs(**tables: pl.LazyFrame) -> Inputs:
    return Inputs(**{f.name: tables.get(f.name, pl.LazyFrame()) for f in fields(Inputs)})


def _spread(total: int, days: int) -> list[int]:
    """`total` contact views spread as evenly as they go over `days` days of explained access."""
    return [total // days + (1 if k < total % days else 0) for k in range(days)]


def _excess(
    pairs: list[Pair],
    roles: dict[str, str],
    *,
    lookback_days: int = 30,
    model: str = "chance",
    shuffle_seed: int | None = None,
) -> pl.DataFrame:
    """explained_excess over `pairs`, scoring DAY's contact views. A user of another role reads one
    subject on every day of the look-back, so the look-back has `lookback_days` days."""
    look: list[dict[str, object]] = []
    targets: list[dict[str, object]] = []
    for user, subject, per_day in [*pairs, ("PAD", "PADP", [0] * lookback_days)]:
        for back, views in enumerate(per_day):
            day = DAY - timedelta(days=back)
            look.append(
                {
                    "user_id": user,
                    "record_type": "person",
                    "record_id": subject,
                    "day": day,
                    "unexplained": False,
                    "explained": True,
                    "contact": False,
                    "contacts": views,
                }
            )
            if back == 0:
                targets += [
                    {
                        "system": "RMS",
                        "event_id": f"{user}|{subject}|{n}",
                        "user_id": user,
                        "record_type": "person",
                        "record_id": subject,
                        "action": "view_contact",
                        "day": day,
                        "explained": True,
                    }
                    for n in range(min(views, 20))
                ]
    everyone = {**roles, "PAD": "pad"}
    staff = pl.LazyFrame(
        {"user_id": list(everyone), "role": list(everyone.values())},
        schema={"user_id": pl.String, "role": pl.String},
    ).with_columns(team_id=pl.lit("T"))
    lookups = pl.DataFrame(look)
    if shuffle_seed is not None:
        lookups = lookups.sample(fraction=1.0, shuffle=True, seed=shuffle_seed)
    rules = load_rules(parse_config({"indicators": {"explained_excess": {"model": model}}}))
    frame = Frame(_inputs(staff=staff), rules, pl.LazyFrame(targets), lookups.lazy())
    return explained_excess(frame, rules.indicators["explained_excess"]).collect()


def _points(found: pl.DataFrame, user: str) -> float:
    mine = found.filter(pl.col("event_id").str.starts_with(f"{user}|"))
    return float(mine["points"].max()) if mine.height else 0.0  # type: ignore[arg-type]


# ---- small roles: a pair is measured against the role's other users, else the force's ----


def _force(n: int = 100, total: int = 10, days: int = 7) -> tuple[list[Pair], dict[str, str]]:
    """The rest of the force: `n` response officers, each reading one subject's contact details
    `total` +- 2 times over `days` days (a narrow spread around 1.4 a day)."""
    pairs: list[Pair] = [(f"F{i}", f"FP{i}", _spread(total - 2 + i % 5, days)) for i in range(n)]
    return pairs, {f"F{i}": "response_officer" for i in range(n)}


def test_a_lone_pair_is_measured_against_the_force() -> None:
    """The only firearms-licensing officer opens one applicant's contact details 8 times over 7
    days. The role has no other users, so the pair is measured against the force's pairs (about
    10 in 7 days): ordinary, not weighed (the first version gave it the full 40 points, its
    expected count per day being one pair's tail over 30 days). Against a force that never opens
    contact details, 30 views are beyond chance."""
    force, force_roles = _force()
    pairs: list[Pair] = [*force, ("S1", "A1", _spread(8, 7))]
    roles = force_roles | {"S1": "firearms_licensing"}
    assert _points(_excess(pairs, roles, model="ratio"), "S1") == 0.0
    assert _points(_excess(pairs, roles), "S1") == 0.0
    quiet: list[Pair] = [(f"Q{i}", f"QP{i}", [0] * 7) for i in range(20)]
    lone = _excess(
        [*quiet, ("S1", "A1", _spread(30, 7))],
        {f"Q{i}": "staff" for i in range(20)} | {"S1": "firearms_licensing"},
    )
    assert _points(lone, "S1") == 40.0
    assert (
        "other pairs in the force (a user and an explained subject) average 0.0 a day"
        in (lone["evidence"][0])
    )


def test_a_pair_below_its_roles_mean_is_not_weighed() -> None:
    """Ten analysts (and the rest of the force); nine read their subject's contact details 20
    times in 7 days, X only 8. X is the least of the role: more than one of the other pairs would
    reach 8 by chance, so X is not weighed (the first version gave 19 points: even a tail
    probability of 1 made 'about 0.3 of the role's pairs a day' over a 30-day look-back)."""
    force, force_roles = _force()
    pairs: list[Pair] = [*force, *[(f"S{i}", f"P{i}", _spread(20, 7)) for i in range(9)]]
    pairs.append(("X", "V", _spread(8, 7)))
    roles = force_roles | {f"S{i}": "analyst" for i in range(9)} | {"X": "analyst"}
    assert _points(_excess(pairs, roles, model="ratio"), "X") == 0.0
    assert _points(_excess(pairs, roles), "X") == 0.0


def test_a_small_role_whose_pairs_are_all_alike_has_no_excess() -> None:
    """Five analysts each read one subject's contact details 10 times in 7 days, as the rest of
    the force does: none is weighed (the first version weighed each at 40)."""
    force, force_roles = _force()
    pairs: list[Pair] = [*force, *[(f"S{i}", f"P{i}", _spread(10, 7)) for i in range(5)]]
    roles = force_roles | {f"S{i}": "analyst" for i in range(5)}
    assert _excess(pairs, roles, model="ratio").is_empty()
    assert _excess(pairs, roles).filter(pl.col("event_id").str.starts_with("S")).is_empty()


def test_a_pair_forty_percent_above_its_only_peer_is_measured_against_the_force() -> None:
    """A role of two: the other pair has 10 views in 7 days, X 14. One peer gives no spread to
    speak of (the first version fell back to Poisson on it and gave X a full-weight alert); with
    fewer than min_role_users other users the pair is measured against the force, where 14 in 7
    days is ordinary."""
    force, force_roles = _force(total=12)
    pairs: list[Pair] = [*force, ("S", "P", _spread(10, 7)), ("X", "V", _spread(14, 7))]
    roles = force_roles | {"S": "vetting", "X": "vetting"}
    assert _points(_excess(pairs, roles, model="ratio"), "X") == 0.0
    assert _points(_excess(pairs, roles), "X") == 0.0


# ---- one user's or one colleague's heavy pairs do not hide an excess; a role that never opens
# contact details ----


def test_a_role_whose_other_pairs_view_no_contacts_still_weighs_a_huge_excess() -> None:
    """50 analysts open their subjects' records but never their contact details; X opens one
    subject's contact details 500 times in 3 days: measured against the force (where nobody opens
    any), it is beyond chance and weighed (the first corrected version never weighed a pair whose
    role's other pairs had no views, though the ratio model gives the full 40)."""
    pairs: list[Pair] = [(f"D{i}", f"P{i}", [0] * 5) for i in range(50)]
    pairs.append(("X", "V", _spread(500, 3)))
    roles = {f"D{i}": "analyst" for i in range(50)} | {"X": "analyst"}
    assert _points(_excess(pairs, roles, model="ratio"), "X") == 40.0
    assert _points(_excess(pairs, roles), "X") > 0.0


def test_a_colleagues_heavy_pair_that_widens_the_spread_is_weighed_itself() -> None:
    """200 detectives at 0.8 views a day; X's 60 views in 10 days are weighed in full. One
    colleague's heavy pair (400 views over 10 days) widens the role's spread enough to hide X's,
    but is weighed in full itself: masking an excess takes a colleague willing to be flagged. (A
    second pass leaving exceptional pairs out of the spread unmasked X, but in a role whose pairs
    are genuinely heavy-tailed it weighed pairs the first pass found ordinary: not kept.)"""
    pairs: list[Pair] = [
        (f"D{i}", f"P{i}", _spread(int(0.8 * (1 + i % 30)), 1 + i % 30)) for i in range(200)
    ]
    roles = {f"D{i}": "detective" for i in range(200)} | {"X": "detective"}
    excess = ("X", "V", _spread(60, 10))
    heavy = ("D0", "HEAVY", _spread(400, 10))
    assert _points(_excess([*pairs, excess], roles), "X") == 40.0
    with_heavy = _excess([*pairs, excess, heavy], roles)
    assert _points(with_heavy.filter(pl.col("event_id").str.contains("HEAVY")), "D0") == 40.0


def test_an_insiders_own_heavy_pairs_do_not_hide_each_other_and_the_target() -> None:
    """The same 200 detectives. X also reads ten assigned subjects' contact details 200 times
    each over 20 days. Each pair is measured against other users' pairs only, so X's ten decoys
    cannot widen the spread for each other or for X's 60 views of V in 10 days (measured against
    the role's other pairs, none of the eleven was weighed; the ratio model weighs all eleven)."""
    pairs: list[Pair] = [
        (f"D{i}", f"P{i}", _spread(int(0.8 * (1 + i % 30)), 1 + i % 30)) for i in range(200)
    ]
    roles = {f"D{i}": "detective" for i in range(200)} | {"X": "detective"}
    decoys: list[Pair] = [("X", f"DEC{j}", _spread(200, 20)) for j in range(10)]
    mine = [*pairs, ("X", "V", _spread(60, 10)), *decoys]
    assert _points(_excess(mine, roles, model="ratio"), "X") == 40.0
    assert _points(_excess(mine, roles), "X") > 0.0


# ---- heavy-tailed roles, and colleagues' heavy pairs and the fallback to the force ----


def _disclosure_unit(seed: int = 1) -> tuple[list[Pair], dict[str, str]]:
    """The force's 100 response officers plus 30 disclosure officers, 8 subjects each, every
    pair's 7-day contact views drawn from ONE legitimate heavy-tailed law (3 x Pareto(2)):
    no pair is anomalous by construction."""
    rnd = random.Random(seed)
    pairs, roles = _force()
    pairs = list(pairs)
    for i in range(30):
        roles[f"D{i}"] = "disclosure_officer"
        for j in range(8):
            pairs.append((f"D{i}", f"DS{i}_{j}", _spread(int(rnd.paretovariate(2.0) * 3), 7)))
    return pairs, roles


def _weighed_pairs(found: pl.DataFrame, prefix: str) -> set[str]:
    mine = found.filter(pl.col("event_id").str.starts_with(prefix))
    return set(mine["event_id"].str.extract(r"^([^|]*\|[^|]*)").to_list())


def test_a_heavy_tailed_role_is_weighed_no_more_than_by_the_old_rule() -> None:
    """240 disclosure-officer pairs whose 7-day contact views all come from one heavy-tailed law
    (3 x Pareto(2)): none is anomalous by construction. The chance model weighs no more of them
    than the old ratio rule (a second pass that left the exceptional pairs out of the spread
    weighed 9 against ratio's 5: not kept)."""
    pairs, roles = _disclosure_unit()
    weighed = _weighed_pairs(_excess(pairs, roles), "D")
    ratio = _weighed_pairs(_excess(pairs, roles, model="ratio"), "D")
    assert len(weighed) <= len(ratio), (sorted(weighed), sorted(ratio))


def _analysts(a0_views: int) -> tuple[list[Pair], dict[str, str]]:
    """A role of 9 intelligence analysts: A1-A7 with 5 light pairs each (0-3 views a week), A0
    with one pair of `a0_views`, and the insider X; plus the force's 100 response officers."""
    rnd = random.Random(1)
    pairs, roles = _force()
    pairs = list(pairs)
    for i in range(1, 8):
        roles[f"A{i}"] = "intel_analyst"
        for j in range(5):
            pairs.append((f"A{i}", f"AS{i}_{j}", _spread(rnd.randint(0, 3), 7)))
    roles |= {"A0": "intel_analyst", "X": "intel_analyst"}
    pairs.append(("A0", "AS0", _spread(a0_views, 7)))
    return pairs, roles


def test_a_colleagues_heavy_pair_cannot_push_the_role_onto_the_force() -> None:
    """X reads a victim 15 times in 7 days in a role of 9 analysts: 40 points whether colleague
    A0's one pair has 2 views or 20 (when a second pass dropped exceptional pairs from the role's
    count, A0's 20 pushed both onto the force and neither was weighed)."""
    pairs, roles = _analysts(2)
    insider = [("X", "VICTIM", _spread(15, 7))]
    assert _points(_excess(pairs + insider, roles), "X") == 40.0
    pairs, roles = _analysts(20)
    found = _excess(pairs + insider, roles)
    assert _points(found, "X") > 0.0, f"X {_points(found, 'X')}, A0 {_points(found, 'A0')}"


def test_a_colleagues_heavy_pair_cannot_make_a_large_role_look_contact_free() -> None:
    """A role of 21 whose members otherwise never open contact details: X reading a victim 15
    times in 7 days is weighed whether colleague A0's one pair has 3 views or 20 (when a second
    pass left both heavy pairs out, the role looked contact-free, fell back to the force and
    neither was weighed)."""

    def role(a0_views: int) -> tuple[list[Pair], dict[str, str]]:
        pairs, roles = _force()
        pairs = list(pairs)
        for i in range(1, 20):
            roles[f"A{i}"] = "intel_analyst"
            pairs += [(f"A{i}", f"AS{i}_{j}", [0] * 7) for j in range(5)]
        roles |= {"A0": "intel_analyst", "X": "intel_analyst"}
        return [*pairs, ("A0", "AS0", _spread(a0_views, 7))], roles

    insider = [("X", "VICTIM", _spread(15, 7))]
    pairs, roles = role(3)
    assert _points(_excess(pairs + insider, roles), "X") == 40.0
    pairs, roles = role(20)
    found = _excess(pairs + insider, roles)
    assert _points(found, "X") > 0.0, f"X {_points(found, 'X')}, A0 {_points(found, 'A0')}"


# ---- users missing from staff (no role) ----


def test_users_missing_from_staff_are_not_pooled_into_a_role_with_no_evidence() -> None:
    """Thirty users absent from the staff file read one subject once a day; X (also absent) reads
    V 40 times in 2 days. A user with no role has no peers to be measured against: no hit, and
    never a hit with no evidence (the first version pooled unknown users into one nameless role
    and gave X 40 points with an empty sentence)."""
    pairs: list[Pair] = [(f"U{i}", f"P{i}", _spread(7, 7)) for i in range(30)]
    pairs.append(("X", "V", _spread(40, 2)))
    found = _excess(pairs, {"S": "detective"})
    assert found["evidence"].null_count() == 0


# ---- the same points whatever the order of the rows ----


def test_explained_excess_points_do_not_depend_on_row_order() -> None:
    """The same look-back in another row order (the store's files promise none) gives the same
    points to the last bit: a re-score compares stored files, and any changed bit commits a new
    generation. The role's moments are sums of integers (the first version summed floats in
    whatever order the group-by left them: 35.92830566500812 against 35.928305665008125, and
    every `access-audit score` of unchanged data committed anew)."""
    pairs: list[Pair] = [
        (f"D{i}", f"P{i}", _spread(3 + (i * 7) % 11, 1 + (i * 5) % 13)) for i in range(200)
    ]
    pairs.append(("X", "V", _spread(29, 4)))
    roles: dict[str, str] = {f"D{i}": "detective" for i in range(200)} | {"X": "detective"}
    seen = {
        tuple(_excess(pairs, roles, shuffle_seed=seed).sort("event_id")["points"].to_list())
        for seed in range(12)
    }
    assert len(seen) == 1


# ---- a crowd is not measured against its own earlier days ----


def _crowd_points(days: int, calibrate: bool) -> list[float]:
    """V read without explanation by five new teams a day for `days` days up to DAY; on the ten
    days before DAY the rest of the force never drew an audience above two teams."""
    staff = pl.LazyFrame(
        {"user_id": [f"U{n}" for n in range(40)], "team_id": [f"T{n}" for n in range(40)]}
    )
    rows: list[dict[str, object]] = []

    def read(user: int, subject: str, day: date) -> None:
        rows.append(
            {
                "system": "RMS",
                "event_id": f"U{user}-{subject}-{day}",
                "user_id": f"U{user}",
                "record_type": "person",
                "record_id": subject,
                "action": "view",
                "day": day,
                "explained": False,
            }
        )

    for back in range(days):
        for n in range(5 * back, 5 * back + 5):
            read(n, "V", DAY - timedelta(days=back))
    for back in range(1, 11):
        for n in (38, 39):
            read(n, f"Q{back}", DAY - timedelta(days=back))
    events = pl.LazyFrame(rows)
    from access_audit.score.lookback import day_lookups

    lookups = day_lookups(events.with_columns(contacts=pl.lit(0)))
    targets = events.filter((pl.col("day") == DAY) & (pl.col("record_id") == "V"))
    rules = load_rules(parse_config({"indicators": {"crowd": {"calibrate": calibrate}}}))
    links = pl.LazyFrame({"incident_id": ["CR/1"], "person_id": ["W"]})
    frame = Frame(_inputs(staff=staff, incident_persons=links), rules, targets, lookups)
    return sorted(crowd(frame, rules.indicators["crowd"]).collect()["points"].to_list())


def test_a_sustained_crowd_is_not_calibrated_against_its_own_earlier_days() -> None:
    """A victim read by five new teams every day for six days (30 teams), where no other subject
    drew more than two teams: 25 points calibrated or not, on the first day as on the sixth. A
    crowd is measured against other subjects' audiences only (the first version counted V's own
    earlier days and gave 8.7 on the sixth: the longer a crowd grew, the more it looked like
    chance)."""
    assert _crowd_points(1, calibrate=True) == [25.0] * 5
    assert _crowd_points(6, calibrate=False) == [25.0] * 5
    assert _crowd_points(6, calibrate=True) == [25.0] * 5


# ---- the evidence gives the other pairs' rate ----


def test_the_roles_rate_in_the_evidence_is_the_peers_not_the_users_own() -> None:
    """Thirty detectives read their subject once a day; X reads V 1,000 times in one day. The
    evidence gives the other pairs' rate, 1.0 a day (the first version pooled X's own pair in and
    said 5.73: the bigger the excess, the more ordinary the role looked)."""
    pairs: list[Pair] = [(f"D{i}", f"P{i}", _spread(7, 7)) for i in range(30)]
    pairs.append(("X", "V", [1000]))
    roles = {f"D{i}": "detective" for i in range(30)} | {"X": "detective"}
    evidence = _excess(pairs, roles)["evidence"][0]
    assert "average 1.0 a day" in evidence
