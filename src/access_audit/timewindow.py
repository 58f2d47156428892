"""Times as analysts type them: today, yesterday, 7d, 12h, or an ISO date/time.

One parser for every command: `flag --since`/`--until` take instants (`parse_window`), `report
--from`/`--to` take days (`parse_day`), and both accept the same words."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from access_audit.errors import InputError

_RELATIVE = re.compile(r"^(\d+)\s*([dhw])$")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True)
class TimeWindow:
    """A half-open UTC interval [start, end)."""

    start: datetime | None
    end: datetime | None


def parse_instant(text: str, *, timezone: str, now: datetime, option: str) -> datetime:
    """One point in time. Days (today, yesterday, a date) start at local midnight.

    ``option`` names the input as its command-line option (``--since``); the error, an
    ``InputError``, can name it as a form labels it. An instant outside the years 1 to 9999
    (``10000000000000h`` ago) is a one-line error."""
    try:
        return _parse_instant(text, timezone=timezone, now=now, option=option)
    except OverflowError:
        raise InputError(
            _named(option) + ": '{given}' is out of range (before the year 1 or after 9999)",
            given=text,
        ) from None


def _parse_instant(text: str, *, timezone: str, now: datetime, option: str) -> datetime:
    value = text.strip().lower()
    zone = zoneinfo.ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    if value in ("now", ""):
        return now
    if value in ("today", "yesterday"):
        day = local_now.date() - timedelta(days=1 if value == "yesterday" else 0)
        return _local_midnight(day, zone)
    relative = _RELATIVE.match(value)
    if relative:
        return now - int(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        if len(value) == 10:
            return _local_midnight(date.fromisoformat(value), zone)
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            _named(option) + ": '{given}' is not today, yesterday, a span like 7d or 12h, or an "
            "ISO date",
            given=text,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def parse_window(
    since: str | None, until: str | None, *, timezone: str, now: datetime | None = None
) -> TimeWindow:
    moment = now or datetime.now(UTC)
    start = parse_instant(since, timezone=timezone, now=moment, option="--since") if since else None
    end = parse_instant(until, timezone=timezone, now=moment, option="--until") if until else None
    if start is not None and end is not None and end <= start:
        raise InputError("{until} must be later than {since}")
    return TimeWindow(start, end)


def parse_day(text: str, *, timezone: str, option: str, now: datetime | None = None) -> date:
    """A calendar day in the force's time zone: today, yesterday, 7d (seven days ago), an ISO
    date, or the local day of an ISO date/time."""
    moment = now or datetime.now(UTC)
    instant = parse_instant(text, timezone=timezone, now=moment, option=option)
    try:
        return instant.astimezone(zoneinfo.ZoneInfo(timezone)).date()
    except OverflowError:
        raise InputError(_named(option) + ": '{given}' is out of range", given=text) from None


def _named(option: str) -> str:
    """An ``InputError`` placeholder for the input a command-line option names (``--since``:
    ``{since}``)."""
    return "{" + option.removeprefix("--").replace("-", "_") + "}"


def _local_midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
