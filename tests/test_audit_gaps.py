"""Audit gaps (issue 7): holes in a system's audit log and users whose rows vanish from a system."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from access_audit.config import parse_config
from access_audit.errors import AccessAuditError
from access_audit.evaluate import evaluate, evaluate_gaps
from access_audit.generate import generate_force
from access_audit.report import build_report
from access_audit.report.formats import render_html, render_text
from access_audit.review import apply_suppressions
from access_audit.score import Scored
from access_audit.score.audit_gaps import audit_gap_flags
from access_audit.score.explain import EXPLANATION_SCHEMA
from access_audit.score.flags import FLAG_EVENT_SCHEMA, FLAG_SCHEMA
from access_audit.score.indicators import INDICATOR_SCHEMA
from access_audit.score.rules import Rules, load_rules
from access_audit.score.run import _cleared
from access_audit.tables import REVIEWS
from access_audit.workspace import Workspace

START = datetime(2026, 10, 1, tzinfo=UTC)  # a Thursday
TARGET = date(2026, 10, 15)  # also a Thursday: two weeks of baseline behind it
TZ = "Europe/London"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def steady_log(days: int = 15, every: str = "2m", system: str = "RMS", user: str = "U1"):
    """`system` audited steadily (30 rows an hour at '2m') for `days` days from START."""
    instants = pl.datetime_range(
        START, START + timedelta(days=days), every, eager=True, time_zone="UTC", closed="left"
    )
    return pl.DataFrame({"occurred_at": instants}).with_columns(
        system=pl.lit(system), user_id=pl.lit(user), day=pl.col("occurred_at").dt.date()
    )


def daily_shifts(users: list[str], days: int = 15, start_hour: int = 0, hours: int = 24):
    rows = [
        {
            "user_id": user,
            "starts_at": START + timedelta(days=d, hours=start_hour),
            "ends_at": START + timedelta(days=d, hours=start_hour + hours),
        }
        for user in users
        for d in range(days)
    ]
    return pl.DataFrame(
        rows,
        schema={
            "user_id": pl.String,
            "starts_at": FLAG_SCHEMA["first_access_at"],
            "ends_at": FLAG_SCHEMA["first_access_at"],
        },
    )


def gaps(events: pl.DataFrame, shifts: pl.DataFrame, rules: Rules | None = None) -> pl.DataFrame:
    horizon = events["occurred_at"].max()
    assert isinstance(horizon, datetime)
    return audit_gap_flags(
        events.lazy(), shifts.lazy(), [TARGET], horizon, rules or load_rules(), TZ
    ).collect()


def without(events: pl.DataFrame, start: datetime, end: datetime, **match: str) -> pl.DataFrame:
    inside = pl.col("occurred_at").is_between(start, end, closed="left")
    for column, value in match.items():
        inside = inside & (pl.col(column) == value)
    return events.filter(~inside)


def test_missing_hours_on_a_system_become_one_scored_audit_gap_with_readable_evidence() -> None:
    log = without(steady_log(), at(TARGET, 10), at(TARGET, 13))
    found = gaps(log, daily_shifts(["U1", "U2"]))
    assert found.height == 1
    flag = found.row(0, named=True)
    assert flag["flag_id"] == "F20261015-gap-RMS-1000"
    assert (flag["kind"], flag["subject_type"], flag["subject_id"]) == (
        "audit_gap",
        "system",
        "RMS",
    )
    assert flag["user_id"] is None
    assert (flag["first_access_at"], flag["last_access_at"]) == (at(TARGET, 10), at(TARGET, 13))
    assert flag["day"] == TARGET and flag["event_count"] == 0
    assert flag["points"] == 50.0 and flag["score"] == 71.3 and flag["alert"]
    assert flag["reasons"] == [
        {
            "code": "audit_gap_system",
            "text": "RMS: no audit rows 11:00–14:00 (Europe/London) on 2026-10-15 although 2 staff "
            "were on shift; usual volume 30±5 per hour (100% missing)",
            "weight": 1.0,
        }
    ]
    assert found.schema == FLAG_SCHEMA


def test_a_steady_log_and_a_gap_on_another_day_raise_nothing_for_the_target_day() -> None:
    assert gaps(steady_log(), daily_shifts(["U1"])).is_empty()
    earlier = TARGET - timedelta(days=3)
    other_day = without(steady_log(), at(earlier, 10), at(earlier, 13))
    assert gaps(other_day, daily_shifts(["U1"])).is_empty()


def test_a_system_missing_a_whole_day_while_another_goes_on_is_one_gap_for_the_day() -> None:
    rms = steady_log().filter(pl.col("day") != TARGET)
    found = gaps(pl.concat([rms, steady_log(system="PNC")]), daily_shifts(["U1"]))
    assert found["flag_id"].to_list() == ["F20261015-gap-RMS-0000"]
    # the store's latest row (PNC, 23:58) leaves 23:00 unassessed: it may still be arriving
    assert found["last_access_at"].item() == at(TARGET, 23)


def test_a_volume_collapse_is_a_gap_scored_by_the_share_missing() -> None:
    log = steady_log()
    thinned = log.filter(
        ~pl.col("occurred_at").is_between(at(TARGET, 9), at(TARGET, 17), closed="left")
        | (pl.col("occurred_at").dt.minute() < 6)  # 3 of the hour's 30 rows survive
    )
    found = gaps(thinned, daily_shifts(["U1"]))
    assert found["flag_id"].to_list() == ["F20261015-gap-RMS-0900"]
    assert found["event_count"].item() == 24
    assert found["points"].item() == 45.0  # 90% missing of the 50 points a full hole carries
    assert (
        found["reasons"]
        .item()[0]["text"]
        .startswith("RMS: only 24 audit rows 10:00–18:00 (Europe/London) on 2026-10-15")
    )


def test_hours_the_rota_leaves_thin_are_expected_to_be_quiet() -> None:
    """On the target day only a tenth of the usual staff were rostered 10:00-13:00 and the log
    fell to a tenth: no one deleted anything (the generator's rota produced this before the
    baseline followed staff on shift)."""
    log = steady_log(every="12s")  # 300 rows an hour
    thin = without(log, at(TARGET, 10), at(TARGET, 13)).vstack(
        log.filter(
            pl.col("occurred_at").is_between(at(TARGET, 10), at(TARGET, 13), "left")
        ).gather_every(10)
    )
    staff = [f"U{n}" for n in range(10)]
    shifts = (
        daily_shifts(staff)
        .filter(~((pl.col("starts_at").dt.date() == TARGET) & (pl.col("user_id") != "U0")))
        .vstack(
            daily_shifts(staff[1:], days=1).with_columns(
                starts_at=pl.lit(at(TARGET, 0)), ends_at=pl.lit(at(TARGET, 10))
            )
        )
        .vstack(
            daily_shifts(staff[1:], days=1).with_columns(
                starts_at=pl.lit(at(TARGET, 13)), ends_at=pl.lit(at(TARGET, 23, 59))
            )
        )
    )
    assert gaps(thin.sort("occurred_at"), shifts).is_empty()
    # the same collapse with the usual staff rostered is a gap
    assert gaps(thin.sort("occurred_at"), daily_shifts(staff)).height == 1


def test_a_day_whose_rota_was_not_exported_is_still_assessed() -> None:
    log = without(steady_log(), at(TARGET, 10), at(TARGET, 13))
    shifts = daily_shifts(["U1", "U2"]).filter(pl.col("starts_at").dt.date() != TARGET)
    assert gaps(log, shifts)["flag_id"].to_list() == ["F20261015-gap-RMS-1000"]


def test_small_systems_and_the_incomplete_latest_hour_are_never_assessed() -> None:
    small = without(steady_log(every="10m"), at(TARGET, 10), at(TARGET, 13))  # 6 rows an hour
    assert gaps(small, daily_shifts(["U1"])).is_empty()
    # the store's latest row is at 10:00:30 on the target day: 10:00 is still arriving
    cut = steady_log().filter(pl.col("occurred_at") <= at(TARGET, 10))
    assert gaps(cut, daily_shifts(["U1"])).is_empty()


def analyst_log(vanish: bool, elsewhere: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """U7 works 08:00-16:00 every day: 20 PND rows and 40 RMS rows a shift; the log runs on."""
    shifts = daily_shifts(["U7"], start_hour=8, hours=8)
    pnd = steady_log(every="24m", system="PND", user="U7").filter(
        pl.col("occurred_at").dt.hour().is_between(8, 15)
    )
    rms = steady_log(every="12m", system="RMS", user="U7").filter(
        pl.col("occurred_at").dt.hour().is_between(8, 15)
    )
    if vanish:
        pnd = without(pnd, at(TARGET, 8), at(TARGET, 16))
    if not elsewhere:
        rms = without(rms, at(TARGET, 8), at(TARGET, 16))
    # a colleague's few rows all day: the store's latest row is after U7's shift ended
    colleague = steady_log(every="10m", system="RMS", user="U1")
    return pl.concat([pnd, rms, colleague]).sort("occurred_at"), shifts


def test_a_user_whose_rows_vanish_from_one_system_during_a_working_shift_is_flagged() -> None:
    log, shifts = analyst_log(vanish=True)
    found = gaps(log, shifts)
    assert found["flag_id"].to_list() == ["F20261015-U7-gap-PND-0800"]
    flag = found.row(0, named=True)
    assert (flag["user_id"], flag["subject_id"], flag["alert"]) == ("U7", "PND", True)
    assert flag["reasons"][0]["code"] == "audit_gap_user"
    assert flag["reasons"][0]["text"] == (
        "U7 made no PND accesses in their shift 2026-10-15 09:00–17:00 (Europe/London) while "
        "making 40 on other systems; usual 20±4 per shift over 14 shifts"
    )


@pytest.mark.parametrize(
    "case", ["no vanish", "no activity elsewhere (leave)", "no shift recorded"]
)
def test_a_user_is_not_flagged_without_both_a_shift_and_work_elsewhere(case: str) -> None:
    log, shifts = analyst_log(
        vanish=case != "no vanish", elsewhere=case != "no activity elsewhere (leave)"
    )
    if case == "no shift recorded":
        shifts = shifts.filter(pl.col("starts_at").dt.date() != TARGET)
    assert gaps(log, shifts).filter(pl.col("user_id").is_not_null()).is_empty()


def test_audit_gap_settings_come_from_one_table_the_home_can_override() -> None:
    config = parse_config({"audit_gaps": {"min_hourly_volume": 40}})
    rules = load_rules(config)
    assert rules.audit_gaps["min_hourly_volume"] == 40
    log = without(steady_log(), at(TARGET, 10), at(TARGET, 13))  # 30 rows an hour
    assert gaps(log, daily_shifts(["U1"]), rules).is_empty()
    with pytest.raises(AccessAuditError, match=r"\[audit_gaps\] min_volume: unknown setting"):
        load_rules(parse_config({"audit_gaps": {"min_volume": 5}}))


def _gap_flag(**values: object) -> dict[str, object]:
    base: dict[str, object] = {name: None for name in FLAG_SCHEMA}
    base.update(
        flag_id="F20261015-gap-RMS-1000",
        kind="audit_gap",
        subject_type="system",
        subject_id="RMS",
        first_access_at=at(TARGET, 10),
        last_access_at=at(TARGET, 13),
        score=99.0,
        rule_score=99.0,
        points=50.0,
        alert=True,
        reasons=[{"code": "audit_gap_system", "text": "RMS: 0 audit rows", "weight": 1.0}],
        event_count=0,
        unexplained_count=0,
        day=TARGET,
    )
    base.update(values)
    return base


def test_evaluate_keeps_gap_flags_out_of_the_access_ranking_and_judges_them_on_windows() -> None:
    episode = _gap_flag(
        flag_id="F1", kind="episode", user_id="U1", subject_id="P1", score=70.0, rule_score=70.0
    )
    stray = _gap_flag(flag_id="F20261015-gap-PNC-0100", subject_id="PNC")
    flags = pl.DataFrame([_gap_flag(), stray, episode], schema=FLAG_SCHEMA)
    flag_events = pl.DataFrame(
        {"flag_id": ["F1"], "system": ["RMS"], "event_id": ["E1"], "day": [TARGET]},
        schema=FLAG_EVENT_SCHEMA,
    )
    events = pl.DataFrame({"system": ["RMS", "RMS"], "event_id": ["E1", "E2"], "day": [TARGET] * 2})
    truth = pl.DataFrame(
        {
            "episode_id": ["EP1"],
            "scenario": ["self"],
            "user_id": ["U1"],
            "person_id": ["P1"],
            "system": ["RMS"],
            "event_id": ["E1"],
        }
    )
    planted = pl.DataFrame(
        {
            "gap_id": ["GAP001", "GAP002"],
            "scenario": ["system_hole", "user_vanish"],
            "system": ["RMS", "PND"],
            "user_id": [None, "U9"],
            "starts_at": [at(TARGET, 11), at(TARGET, 8)],
            "ends_at": [at(TARGET, 12), at(TARGET, 16)],
        }
    )
    result = evaluate(flags, flag_events, events, truth, budget=1, gaps=planted)
    assert result.overall["flags"] == 1 and result.overall["mean_precision_at_k"] == 1.0
    assert result.gaps == {
        "planted_gaps": 2,
        "gaps_caught": 1,
        "gaps_caught_as_alerts": 1,
        "gap_flags": 2,
        "false_gap_flags": 1,
        "false_gap_flags_per_day": 1.0,
    }
    assert evaluate_gaps(flags, planted.clear(), events["day"])["false_gap_flags"] == 2


def test_the_report_counts_audit_gaps_and_a_system_gap_has_no_training_row() -> None:
    """A system's gap has no user: it used to reach the training table as a `None` user, which
    the HTML page could not escape."""
    flags = pl.DataFrame([_gap_flag()], schema=FLAG_SCHEMA).lazy()
    empty = pl.LazyFrame(schema=REVIEWS.schema())
    training = pl.LazyFrame(
        schema={"user_id": pl.String, "course": pl.String, "completed_at": pl.Date}
    )
    events = pl.LazyFrame({"day": [TARGET]})  # the day has data: only its gap is missing
    report = build_report(
        TARGET, TARGET, flags, empty, training, events, pl.LazyFrame(), load_rules()
    )
    assert (report.raised, report.audit_gaps, report.training.height) == (1, 1, 0)
    assert "audit gaps raised (missing audit trail): 1" in render_text(report)
    assert "<td>Audit gaps raised (missing audit trail)</td><td>1</td>" in render_html(report)


def test_the_generator_plants_gaps_the_nightly_run_finds_and_the_view_shows(
    tmp_path: Path,
) -> None:
    force = generate_force(tmp_path / "force", staff=150, days=12, seed=3)
    planted = pl.read_csv(force.out / "gaps_truth.csv", infer_schema=False)
    assert planted["scenario"].to_list() == ["system_hole", "user_vanish"]
    truth = pl.read_csv(force.truth_path, infer_schema=False)
    assert not truth.is_empty()  # the access truth is untouched by the gap scenarios

    workspace = Workspace.open(tmp_path / "home")
    report = workspace.nightly(force.drops)
    assert report.score is not None and report.score.audit_gaps == 2
    assert workspace.runs()[-1]["score"]["audit_gaps"] == 2
    log = workspace.scan("access_events").collect()
    for gap in planted.to_dicts():
        start, end = (datetime.fromisoformat(gap[k]) for k in ("starts_at", "ends_at"))
        inside = log.filter(
            (pl.col("system") == gap["system"])
            & pl.col("occurred_at").is_between(start, end, closed="left")
        )
        if gap["user_id"]:
            inside = inside.filter(pl.col("user_id") == gap["user_id"])
        planted_rows = inside.join(
            truth.select("system", "event_id"), on=["system", "event_id"], how="anti"
        )
        # page views of a record opened just before the window may land in it; nothing else
        assert planted_rows.filter(pl.col("action") != "view").is_empty()

    system_gap = workspace.flags(min_score=0).filter(pl.col("user_id").is_null())
    detail = workspace.flag_detail(system_gap.filter(pl.col("kind") == "audit_gap")["flag_id"][0])
    assert detail is not None and detail.events.is_empty() and detail.training.is_empty()

    result = workspace.evaluate(force.truth_path)
    assert result.gaps is not None
    assert result.gaps["gaps_caught_as_alerts"] == 2 and result.gaps["false_gap_flags"] == 0
    with duckdb.connect(str(workspace.database_path), read_only=True) as db:
        rows = db.sql("SELECT system, user_id, alert FROM audit_gaps ORDER BY system").fetchall()
    assert rows == [("PND", planted["user_id"][1], True), ("RMS", None, True)]


def test_a_gap_whose_rows_arrive_late_is_kept_cleared_with_a_note_that_says_so() -> None:
    """Re-scoring after the missing rows were delivered no longer raises the gap: the earlier
    alert is kept, cleared, and its note says the rows arrived (not "0 of 0 accesses")."""
    previous = pl.DataFrame([_gap_flag()], schema=FLAG_SCHEMA)
    rescored = Scored(
        days=[TARGET],
        explanations=pl.DataFrame(schema=EXPLANATION_SCHEMA),
        indicators=pl.DataFrame(schema=INDICATOR_SCHEMA),
        flags=pl.DataFrame(schema=FLAG_SCHEMA),
        flag_events=pl.DataFrame(schema=FLAG_EVENT_SCHEMA),
        coverage=pl.DataFrame(),
    )
    carried, events = _cleared(
        previous,
        pl.DataFrame(schema=FLAG_EVENT_SCHEMA),
        rescored,
        at(TARGET + timedelta(1), 3),
        "rules-000000000000",
    )
    assert carried["flag_id"].to_list() == ["F20261015-gap-RMS-1000"]
    assert carried["note"].item() == (
        "no longer a gap (the missing audit rows arrived late, or the settings changed)"
    )
    assert carried["cleared_at"].item() == at(TARGET + timedelta(1), 3)
    assert not carried["alert"].item() and events.is_empty()


def test_a_change_of_role_closed_as_legitimate_quiets_that_users_later_gaps_on_that_system() -> (
    None
):
    """A user who stops using a system is flagged on their next shifts until their own median
    follows; closing the first as a legitimate purpose suppresses the rest (not other systems)."""
    first = _gap_flag(flag_id="F20261015-U7-gap-PND-0800", user_id="U7", subject_id="PND")
    reviewed = pl.DataFrame([first], schema=FLAG_SCHEMA)
    decision = pl.LazyFrame(
        {
            "review_id": ["R1"],
            "flag_id": [first["flag_id"]],
            "user_id": ["U7"],
            "subject_id": ["PND"],
            "status": ["closed"],
            "outcome": ["legitimate_purpose"],
            "purpose": ["moved from intelligence to response"],
            "note": [None],
            "reviewer": ["DS Rowe"],
            "reviewed_at": [at(TARGET, 18)],
            "suppress_until": [at(TARGET + timedelta(days=90), 0)],
        }
    )
    later = pl.DataFrame(
        [
            _gap_flag(
                flag_id=f"F20261016-U7-gap-{system}-0800",
                user_id="U7",
                subject_id=system,
                first_access_at=at(TARGET + timedelta(days=1), 8),
                day=TARGET + timedelta(days=1),
            )
            for system in ("PND", "PNC")
        ],
        schema=FLAG_SCHEMA,
    )
    quieted = apply_suppressions(later, decision, reviewed.lazy())
    assert quieted["alert"].to_list() == [False, True]
    assert (
        quieted["note"][0] == "suppressed: legitimate purpose recorded 2026-10-15 by DS Rowe (R1)"
    )
