"""The pure validation transforms, on tiny inline frames."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from access_audit.ingest.normalise import (
    TimeRules,
    apply_parsed,
    normalise,
    parse_timestamp,
    split_rejected,
)
from access_audit.schema import ACCESS_LOG, ASSIGNMENTS, PERSONS, TableSpec


def _raw(spec: TableSpec, rows: list[dict[str, str | None]]) -> pl.LazyFrame:
    frame = pl.DataFrame(rows, schema={c: pl.String for c in spec.column_names}, orient="row")
    return frame.with_columns(
        pl.lit("f.csv").alias("source_file"),
        pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("source_line"),
        pl.lit(None, dtype=pl.String).alias("extra"),
    ).lazy()


def _parse(frame: pl.DataFrame, rules: TimeRules) -> pl.DataFrame:
    parsed = parse_timestamp("t", rules)
    return (
        apply_parsed(frame.lazy(), [parsed])
        .select(value=parsed.value, issue=parsed.problem)
        .collect()
    )


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected", "problem"),
    [
        ("2026-07-01T10:00:00Z", _utc(2026, 7, 1, 10), None),
        ("2026-07-01T10:00:00+01:00", _utc(2026, 7, 1, 9), None),
        ("2026-07-01 10:00:00-0230", _utc(2026, 7, 1, 12, 30), None),
        ("2026-07-01T10:00", _utc(2026, 7, 1, 9), None),  # BST: local 10:00 is 09:00 UTC
        ("2026-12-01T10:00:00.250", _utc(2026, 12, 1, 10, 0, 0, 250000), None),  # GMT
        ("  2026-12-01T10:00:00  ", _utc(2026, 12, 1, 10), None),
        ("2026-10-25T01:30:00", None, "ambiguous_local_time"),
        ("2026-10-25T01:30:00+01:00", _utc(2026, 10, 25, 0, 30), None),
        ("2026-10-25T01:30:00Z", _utc(2026, 10, 25, 1, 30), None),
        ("2026-03-29T01:30:00", None, "nonexistent_local_time"),
        ("2026-02-30T10:00:00", None, "bad_timestamp"),
        ("21/11/2026 10:00", None, "bad_timestamp"),
        ("", None, None),
        (None, None, None),
    ],
)
def test_timestamps_become_utc_instants(text, expected, problem) -> None:
    out = _parse(pl.DataFrame({"t": [text]}, schema={"t": pl.String}), TimeRules())
    assert out["value"][0] == expected
    assert out["issue"][0] == problem


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("earliest", _utc(2026, 10, 25, 0, 30)), ("latest", _utc(2026, 10, 25, 1, 30))],
)
def test_ambiguous_autumn_hour_can_be_resolved_by_configuration(policy, expected) -> None:
    out = _parse(pl.DataFrame({"t": ["2026-10-25 01:30:00"]}), TimeRules("Europe/London", policy))
    assert out.row(0) == (expected, None)


def test_other_time_zone_is_honoured() -> None:
    out = _parse(pl.DataFrame({"t": ["2026-07-01T10:00:00"]}), TimeRules("America/New_York"))
    assert out["value"][0] == _utc(2026, 7, 1, 14)


def test_access_rows_are_trimmed_cased_and_checked() -> None:
    rows = [
        {
            "event_id": " E1 ",
            "occurred_at": "2026-11-21T10:00:00Z",
            "user_id": "U1 ",
            "system": "rms",
            "action": "VIEW",
            "record_type": "Person",
            "record_id": " P1",
        },
        {
            "event_id": "E2",
            "occurred_at": "2026-11-21T10:00:00Z",
            "user_id": "U1",
            "system": "RMS",
            "action": "peek",
            "record_type": "person",
            "record_id": "P1",
        },
        {
            "event_id": "E3",
            "occurred_at": "2026-11-21T10:00:00Z",
            "user_id": "",
            "system": "RMS",
            "action": "search",
            "record_type": "person",
            "record_id": None,
        },
        {
            "event_id": "E4",
            "occurred_at": "2026-11-21T10:00:00Z",
            "user_id": "U1",
            "system": "RMS",
            "action": "view",
            "record_type": "person",
            "record_id": "  ",
        },
    ]
    good, rejected = split_rejected(normalise(_raw(ACCESS_LOG, rows), ACCESS_LOG, TimeRules()))
    good_rows = good.collect()
    assert good_rows.select(
        "event_id", "user_id", "system", "action", "record_type", "record_id"
    ).row(0) == ("E1", "U1", "RMS", "view", "person", "P1")
    assert good_rows.height == 1
    problems = rejected.collect().select("source_line", "column", "reason", "raw_value").rows()
    assert sorted(problems) == [
        (3, "action", "invalid_choice", "peek"),
        (4, "user_id", "missing_value", ""),
        (5, "record_id", "missing_record_id", "  "),
    ]


def test_assignments_need_exactly_one_assignee() -> None:
    base = {
        "incident_id": "I1",
        "role": "investigator",
        "assigned_from": "2026-11-21T10:00:00Z",
        "assigned_to": None,
    }
    rows = [
        {**base, "user_id": "U1", "team_id": None},
        {**base, "user_id": "U1", "team_id": "T1"},
        {**base, "user_id": None, "team_id": None},
        {**base, "user_id": None, "team_id": "T1"},
    ]
    good, rejected = split_rejected(normalise(_raw(ASSIGNMENTS, rows), ASSIGNMENTS, TimeRules()))
    assert good.collect().height == 2
    assert rejected.collect().select("source_line", "reason").rows() == [
        (3, "assignee_both_or_neither"),
        (4, "assignee_both_or_neither"),
    ]


def test_persons_markers_and_dates() -> None:
    rows = [
        {
            "person_id": "P1",
            "surname": "Adams",
            "forenames": "Ann",
            "sex": "f",
            "date_of_birth": "1990-02-03",
            "postcode": "ab1 2cd",
            "markers": "Domestic_Abuse_Victim; vulnerable_adult;;custom",
        },
        {
            "person_id": "P2",
            "surname": "Brown",
            "forenames": None,
            "sex": "X",
            "date_of_birth": "1990-02-30",
            "postcode": None,
            "markers": None,
        },
    ]
    good, rejected = split_rejected(normalise(_raw(PERSONS, rows), PERSONS, TimeRules()))
    person = good.collect().row(0, named=True)
    assert person["markers"] == ["domestic_abuse_victim", "vulnerable_adult", "custom"]
    assert person["date_of_birth"] == date(1990, 2, 3)
    assert person["sex"] == "F"
    assert person["postcode"] == "AB1 2CD"
    assert sorted(rejected.collect().select("column", "reason").rows()) == [
        ("date_of_birth", "bad_date"),
        ("sex", "invalid_choice"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0001-01-01", None),
        ("9999-12-31", None),
        ("0000-01-01", "bad_date"),  # year 0: no calendar date, and Python cannot hold it
        ("+10000-01-01", "bad_date"),
        ("2026-1-2", "bad_date"),
    ],
)
def test_dates_are_four_digit_years_from_one(text: str, problem: str | None) -> None:
    rows = [{"person_id": "P1", "surname": "Adams", "date_of_birth": text}]
    raw = _raw(PERSONS, [{c: r.get(c) for c in PERSONS.column_names} for r in rows])
    good, rejected = split_rejected(normalise(raw, PERSONS, TimeRules()))
    reasons = rejected.collect().select("reason").to_series().to_list()
    assert reasons == ([problem] if problem else [])
    assert good.collect().height == (0 if problem else 1)


def test_the_window_rejects_instants_outside_it_and_keeps_the_edges() -> None:
    rules = TimeRules(earliest=_utc(2000, 1, 1), latest=_utc(2026, 11, 28))
    frame = pl.DataFrame(
        {
            "t": [
                "1999-12-31T23:59:59Z",
                "2000-01-01T00:00:00Z",
                "2026-11-28T00:00:00Z",
                "2100-01-01T00:00Z",
            ]
        }
    )
    out = _parse(frame, rules)
    assert out["issue"].to_list() == ["implausible_timestamp", None, None, "implausible_timestamp"]
    assert out["value"].to_list() == [None, _utc(2000, 1, 1), _utc(2026, 11, 28), None]
