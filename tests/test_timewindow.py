"""--since / --until parsing, in the force's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from access_audit.errors import AccessAuditError
from access_audit.timewindow import parse_day, parse_window

NOW = datetime(2026, 7, 15, 9, 30, tzinfo=UTC)  # 10:30 in London (BST)


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("today", datetime(2026, 7, 14, 23, 0, tzinfo=UTC)),
        ("yesterday", datetime(2026, 7, 13, 23, 0, tzinfo=UTC)),
        ("7d", datetime(2026, 7, 8, 9, 30, tzinfo=UTC)),
        ("12h", datetime(2026, 7, 14, 21, 30, tzinfo=UTC)),
        ("2w", datetime(2026, 7, 1, 9, 30, tzinfo=UTC)),
        ("2026-07-01", datetime(2026, 6, 30, 23, 0, tzinfo=UTC)),
        ("2026-07-01T12:00", datetime(2026, 7, 1, 11, 0, tzinfo=UTC)),
        ("2026-07-01T12:00:00Z", datetime(2026, 7, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_since_forms(since: str, expected: datetime) -> None:
    window = parse_window(since, None, timezone="Europe/London", now=NOW)
    assert window.start == expected
    assert window.end is None


def test_winter_dates_start_at_gmt_midnight() -> None:
    window = parse_window("2026-12-01", "2026-12-02", timezone="Europe/London", now=NOW)
    assert window.start == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("last tuesday", None, "--since: 'last tuesday' is not today"),
        ("today", "yesterday", "--until must be later than --since"),
        (None, "2026-13-01", "--until: '2026-13-01'"),
    ],
)
def test_bad_windows_are_clear_errors(since, until, message) -> None:
    with pytest.raises(AccessAuditError, match=message):
        parse_window(since, until, timezone="Europe/London", now=NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", date(2026, 7, 15)),
        ("yesterday", date(2026, 7, 14)),
        ("7d", date(2026, 7, 8)),
        ("2026-07-01", date(2026, 7, 1)),
        # 23:30 UTC is already the next day in London (BST)
        ("2026-07-01T23:30:00Z", date(2026, 7, 2)),
    ],
)
def test_report_days_take_the_same_words_as_since(text: str, expected: date) -> None:
    assert parse_day(text, timezone="Europe/London", option="--from", now=NOW) == expected


def test_a_bad_day_names_its_option() -> None:
    with pytest.raises(AccessAuditError, match="--to: '31/12/2026' is not today, yesterday"):
        parse_day("31/12/2026", timezone="Europe/London", option="--to", now=NOW)
