"""Audit gaps (issue 7): an insider who deletes their own trail at the source leaves a hole.

Two tests over the whole audit log (searches included), against robust baselines from the
look-back ([audit_gaps] lookback_days before each scored day, never the day itself):

* **system hours** — per system and UTC hour, the number of audit rows, against the median and
  MAD of the same local hour-of-day on the same kind of day (weekday or weekend) in the look-back,
  scaled down when fewer staff than usual were rostered in that hour (a thin rota is quiet, not
  a hole). An hour is low when it holds at most `max_share` of that expectation *and* sits
  `min_z` robust standard deviations below it (the spread is never taken below the Poisson
  sqrt(median)). Hours whose median is under `min_hourly_volume` are never assessed, so small
  systems and quiet nights do not spam. Consecutive low hours of a system on one UTC day make one
  flag: a missing hour, a missing day or a collapse in volume.
* **user vanish** — per user, shift and system, the user's audit rows in the shift against the
  median of their own earlier shifts (`user_max_share`, `user_min_z`). A user whose rows on one
  system vanish while the same shift shows them at work on other systems is flagged. Requiring a
  recorded shift *and* activity elsewhere keeps leave, sickness and training days out (no rows
  anywhere). A change of role that ends a user's use of a system is flagged on their next shifts
  until their own median follows; closing the first as a legitimate purpose quiets that user's
  gaps on that system like any reviewed pair ([reviews] suppress_days).

Hours at or after the hour of the store's latest audit row are not assessed: the newest drop's
UTC day is still incomplete until the next one arrives (the re-explain window re-assesses it).

Score: the flag's points are the kind's weight times the share of the expected rows that are
missing, on the same scale as every other flag (100 * (1 - exp(-points / scale))). With the
default weights a complete hole (50 points, score 71) or a user's vanished system (45 points,
score 68) is an alert; a partial collapse is one when about three quarters of the rows are gone.
An audit gap has no accesses to hold, so it has no flag events; its evidence is in the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from access_audit.score.flags import FLAG_SCHEMA, score_from_points
from access_audit.score.rules import Rules, fmt

Scan = Callable[[str], pl.LazyFrame]
MODEL_VERSION = "audit-gap-1"
KIND = "audit_gap"
MAD_TO_SD = 1.4826
HOUR = pl.duration(hours=1)
UTC_HOUR = pl.Datetime("us", "UTC")


# ---- local calendar keys --------------------------------------------------------------------


def with_local_keys(frame: pl.LazyFrame, instant: str, timezone: str) -> pl.LazyFrame:
    """The local hour-of-day and kind of day (weekend or not) of each UTC `instant`."""
    local = pl.col(instant).dt.convert_time_zone(timezone)
    return frame.with_columns(
        local_hour=local.dt.hour(),
        weekend=local.dt.weekday() >= 6,
    )


def robust_spread(median: pl.Expr, mad: pl.Expr) -> pl.Expr:
    """The robust standard deviation, never below the Poisson sqrt(median) of counted rows."""
    return pl.max_horizontal(MAD_TO_SD * mad, median.sqrt(), pl.lit(1.0))


def _low(observed: pl.Expr, settings: dict[str, Any]) -> pl.Expr:
    deficit = pl.col("expected") - observed
    low: pl.Expr = (
        (pl.col("expected") >= settings["min_volume"])
        & (observed <= settings["max_share"] * pl.col("expected"))
        & (deficit >= settings["min_z"] * pl.col("spread"))
        & (pl.col("samples") >= settings["min_samples"])
    )
    return low


def _day_windows(days: Sequence[date], lookback_days: int) -> pl.LazyFrame:
    return pl.LazyFrame({"target_day": list(days)}, schema={"target_day": pl.Date}).with_columns(
        baseline_from=pl.col("target_day") - pl.duration(days=lookback_days)
    )


# ---- system hours ---------------------------------------------------------------------------


def hourly_on_shift(shifts: pl.LazyFrame) -> pl.LazyFrame:
    """How many distinct staff were rostered for any part of each UTC hour."""
    return (
        shifts.filter(pl.col("ends_at") > pl.col("starts_at"))
        .select(
            "user_id",
            hour=pl.datetime_ranges(
                pl.col("starts_at").dt.truncate("1h"),
                pl.col("ends_at") - pl.duration(microseconds=1),
                "1h",
            ),
        )
        .explode("hour")
        .group_by("hour")
        .agg(on_shift=pl.col("user_id").n_unique().cast(pl.Int64))
    )


def hourly_volume(events: pl.LazyFrame, shifts: pl.LazyFrame, horizon: datetime) -> pl.LazyFrame:
    """Audit rows per system and UTC hour, zero-filled from the system's first hour up to (not
    including) the hour of `horizon` (an hour with no row is an hour, not a missing row), with
    the staff on shift in that hour."""
    counted = (
        events.with_columns(hour=pl.col("occurred_at").dt.truncate("1h"))
        .group_by("system", "hour")
        .agg(events=pl.len().cast(pl.Int64))
    )
    last = pl.lit(horizon.replace(minute=0, second=0, microsecond=0), dtype=UTC_HOUR)
    grid = (
        counted.group_by("system")
        .agg(first=pl.col("hour").min())
        .filter(pl.col("first") < last)
        .select("system", hour=pl.datetime_ranges(pl.col("first"), last - HOUR, "1h"))
        .explode("hour")
    )
    return (
        grid.join(counted, on=["system", "hour"], how="left")
        .join(hourly_on_shift(shifts), on="hour", how="left")
        .with_columns(
            pl.col("events", "on_shift").fill_null(0),
            day=pl.col("hour").dt.date(),
        )
        .sort("system", "hour")
    )


def hour_baselines(
    volume: pl.LazyFrame, days: Sequence[date], lookback_days: int, timezone: str
) -> pl.LazyFrame:
    """For each target day, system, kind of day and local hour: the look-back's median rows,
    robust spread, median staff on shift and number of sample hours (the target day itself is
    never its own baseline)."""
    keyed = with_local_keys(volume, "hour", timezone)
    return (
        _day_windows(days, lookback_days)
        .join(keyed, how="cross")
        .filter(pl.col("day").is_between(pl.col("baseline_from"), pl.col("target_day"), "left"))
        .group_by("target_day", "system", "weekend", "local_hour")
        .agg(
            expected=pl.col("events").median(),
            mad=(pl.col("events") - pl.col("events").median()).abs().median(),
            usual_on_shift=pl.col("on_shift").median(),
            samples=pl.len(),
        )
        .with_columns(spread=robust_spread(pl.col("expected"), pl.col("mad")))
        .drop("mad")
    )


def _rostered_share() -> pl.Expr:
    """The hour's staff on shift as a share of its usual (at most 1): an hour the rota leaves
    thin is expected to be quiet. A day with no shift recorded at all (no rota exported, or a
    force that exports none) is not taken for a day nobody worked: its share is 1."""
    rota_known = pl.col("on_shift").max().over("system", "day") > 0
    return (
        pl.when(rota_known & (pl.col("usual_on_shift") > 0))
        .then((pl.col("on_shift") / pl.col("usual_on_shift")).clip(upper_bound=1.0))
        .otherwise(1.0)
    )


def low_hours(
    volume: pl.LazyFrame,
    days: Sequence[date],
    settings: dict[str, Any],
    timezone: str,
) -> pl.LazyFrame:
    """The target days' hours far below their baseline, scaled to the staff rostered."""
    baselines = hour_baselines(volume, days, settings["lookback_days"], timezone)
    targets = with_local_keys(volume.filter(pl.col("day").is_in(list(days))), "hour", timezone)
    thresholds = {
        "min_volume": settings["min_hourly_volume"],
        "max_share": settings["max_share"],
        "min_z": settings["min_z"],
        "min_samples": settings["min_baseline_hours"],
    }
    share = _rostered_share()
    return (
        targets.join(
            baselines,
            left_on=["day", "system", "weekend", "local_hour"],
            right_on=["target_day", "system", "weekend", "local_hour"],
        )
        .with_columns(
            expected=pl.col("expected") * share,
            spread=robust_spread(pl.col("expected") * share, pl.lit(0.0)).clip(
                lower_bound=pl.col("spread") * share
            ),
        )
        .filter(_low(pl.col("events"), thresholds))
    )


def gap_runs(low: pl.LazyFrame) -> pl.LazyFrame:
    """Consecutive low hours of one system on one UTC day, as one window each."""
    new_run = (pl.col("hour") - pl.col("hour").shift(1).over("system", "day")) != HOUR
    return (
        low.sort("system", "hour")
        .with_columns(run=new_run.fill_null(True).cast(pl.Int32).cum_sum().over("system", "day"))
        .group_by("system", "day", "run")
        .agg(
            starts_at=pl.col("hour").min(),
            ends_at=pl.col("hour").max() + HOUR,
            hours=pl.len(),
            observed=pl.col("events").sum(),
            expected=pl.col("expected").sum(),
            usual=pl.col("expected").mean(),
            usual_spread=pl.col("spread").mean(),
            on_shift=pl.col("on_shift").max(),
        )
        .drop("run")
    )


def _local(instant: str, timezone: str, pattern: str) -> pl.Expr:
    return pl.col(instant).dt.convert_time_zone(timezone).dt.strftime(pattern)


def _how_many(column: str) -> pl.Expr:
    return pl.when(pl.col(column) == 0).then(pl.lit("no")).otherwise(fmt("only {}", pl.col(column)))


def system_gap_flags(runs: pl.LazyFrame, rules: Rules, timezone: str) -> pl.LazyFrame:
    """One audit_gap flag per window, its subject the system."""
    weight = float(rules.audit_gaps["system_weight"])
    missing = (1 - pl.col("observed") / pl.col("expected")).clip(0.0, 1.0)
    text = fmt(
        "{}: {} audit rows {}–{} ({}) on {} although {} staff were on shift; usual volume "
        "{}±{} per hour ({}% missing)",
        "system",
        _how_many("observed"),
        _local("starts_at", timezone, "%H:%M"),
        _local("ends_at", timezone, "%H:%M"),
        pl.lit(timezone),
        _local("starts_at", timezone, "%Y-%m-%d"),
        "on_shift",
        pl.col("usual").round(0).cast(pl.Int64),
        pl.col("usual_spread").round(0).cast(pl.Int64),
        (missing * 100).round(0).cast(pl.Int64),
    )
    identity = fmt(
        "F{}-gap-{}-{}",
        pl.col("day").dt.strftime("%Y%m%d"),
        "system",
        pl.col("starts_at").dt.strftime("%H%M"),
    )
    return _as_flags(
        runs.with_columns(points=(weight * missing).round(2), text=text),
        identity,
        user=pl.lit(None, dtype=pl.String),
        code="audit_gap_system",
        rules=rules,
    )


# ---- user vanish ----------------------------------------------------------------------------


def shift_volumes(events: pl.LazyFrame, shifts: pl.LazyFrame, horizon: datetime) -> pl.LazyFrame:
    """Each user's audit rows per shift and system they use, zero-filled, with the rows the same
    shift holds on their other systems. Shifts not over by `horizon` are left out."""
    ended = (
        shifts.filter(pl.col("ends_at") <= horizon)
        .select("user_id", "starts_at", "ends_at")
        .unique()
    )
    placed = (
        events.select("user_id", "system", "occurred_at")
        .sort("occurred_at")
        .join_asof(
            ended.sort("starts_at"),
            left_on="occurred_at",
            right_on="starts_at",
            by="user_id",
            strategy="backward",
            check_sortedness=False,
        )
        .filter(pl.col("occurred_at") < pl.col("ends_at"))
    )
    counted = placed.group_by("user_id", "starts_at", "system").agg(events=pl.len().cast(pl.Int64))
    systems = events.select("user_id", "system").unique()
    return (
        ended.join(systems, on="user_id")
        .join(counted, on=["user_id", "starts_at", "system"], how="left")
        .with_columns(pl.col("events").fill_null(0))
        .with_columns(
            elsewhere=pl.col("events").sum().over("user_id", "starts_at") - pl.col("events"),
            day=pl.col("starts_at").dt.date(),
        )
    )


def vanished(volumes: pl.LazyFrame, days: Sequence[date], settings: dict[str, Any]) -> pl.LazyFrame:
    """Target-day shifts where a user's rows on a system fell far below their own usual while
    the same shift shows them working on other systems."""
    history = volumes.select("user_id", "system", "day", past="events")
    baselines = (
        volumes.filter(pl.col("day").is_in(list(days)))
        .with_columns(baseline_from=pl.col("day") - pl.duration(days=settings["lookback_days"]))
        .join(history, on=["user_id", "system"], suffix="_past")
        .filter(pl.col("day_past").is_between(pl.col("baseline_from"), pl.col("day"), "left"))
        .group_by("user_id", "system", "starts_at")
        .agg(
            expected=pl.col("past").median(),
            mad=(pl.col("past") - pl.col("past").median()).abs().median(),
            samples=pl.len(),
        )
        .with_columns(spread=robust_spread(pl.col("expected"), pl.col("mad")))
    )
    thresholds = {
        "min_volume": settings["min_user_shift_volume"],
        "max_share": settings["user_max_share"],
        "min_z": settings["user_min_z"],
        "min_samples": settings["min_user_shifts"],
    }
    return volumes.join(baselines, on=["user_id", "system", "starts_at"]).filter(
        _low(pl.col("events"), thresholds) & (pl.col("elsewhere") >= settings["min_other_volume"])
    )


def user_gap_flags(found: pl.LazyFrame, rules: Rules, timezone: str) -> pl.LazyFrame:
    """One audit_gap flag per user, shift and system, its subject the system."""
    weight = float(rules.audit_gaps["user_weight"])
    missing = (1 - pl.col("events") / pl.col("expected")).clip(0.0, 1.0)
    text = fmt(
        "{} made {} {} accesses in their shift {} {}–{} ({}) while making {} on other systems; "
        "usual {}±{} per shift over {} shifts",
        "user_id",
        _how_many("events"),
        "system",
        _local("starts_at", timezone, "%Y-%m-%d"),
        _local("starts_at", timezone, "%H:%M"),
        _local("ends_at", timezone, "%H:%M"),
        pl.lit(timezone),
        "elsewhere",
        pl.col("expected").round(0).cast(pl.Int64),
        pl.col("spread").round(0).cast(pl.Int64),
        "samples",
    )
    identity = fmt(
        "F{}-{}-gap-{}-{}",
        pl.col("day").dt.strftime("%Y%m%d"),
        "user_id",
        "system",
        pl.col("starts_at").dt.strftime("%H%M"),
    )
    frame = found.with_columns(
        points=(weight * missing).round(2), text=text, observed=pl.col("events")
    )
    return _as_flags(frame, identity, user=pl.col("user_id"), code="audit_gap_user", rules=rules)


# ---- flags ----------------------------------------------------------------------------------


def _as_flags(
    frame: pl.LazyFrame, identity: pl.Expr, *, user: pl.Expr, code: str, rules: Rules
) -> pl.LazyFrame:
    score = score_from_points(pl.col("points"), rules.scale)
    return frame.select(
        flag_id=identity,
        kind=pl.lit(KIND),
        user_id=user,
        subject_type=pl.lit("system"),
        subject_id="system",
        person_id=pl.lit(None, dtype=pl.String),
        first_access_at="starts_at",
        last_access_at="ends_at",
        score=score,
        rule_score=score,
        points="points",
        alert=score >= rules.alert_threshold,
        reasons=pl.concat_list(pl.struct(code=pl.lit(code), text="text", weight=pl.lit(1.0))),
        event_count=pl.col("observed").cast(pl.Int64),
        unexplained_count=pl.lit(0, dtype=pl.Int64),
        model_version=pl.lit(MODEL_VERSION),
        note=pl.lit(None, dtype=pl.String),
        rules_version=pl.lit(rules.version),
        cleared_at=pl.lit(None, dtype=FLAG_SCHEMA["cleared_at"]),
        pattern_subjects=pl.lit(None, dtype=FLAG_SCHEMA["pattern_subjects"]),
        pattern_lookback_days=pl.lit(None, dtype=FLAG_SCHEMA["pattern_lookback_days"]),
        day="day",
    )


def audit_gap_flags(
    events: pl.LazyFrame,
    shifts: pl.LazyFrame,
    days: Sequence[date],
    horizon: datetime,
    rules: Rules,
    timezone: str,
) -> pl.LazyFrame:
    """Every audit_gap flag of the target `days`: system windows and vanished users.

    `events` is the audit log (system, user_id, occurred_at, day) covering the look-back;
    `horizon` the latest audit row in the store."""
    settings = rules.audit_gaps
    volume = hourly_volume(events, shifts, horizon)
    runs = gap_runs(low_hours(volume, days, settings, timezone))
    systems = system_gap_flags(runs, rules, timezone)
    users = user_gap_flags(
        vanished(shift_volumes(events, shifts, horizon), days, settings), rules, timezone
    )
    flags = pl.concat([systems, users]).select(list(FLAG_SCHEMA))
    return flags.cast(FLAG_SCHEMA)  # type: ignore[arg-type]


def find_audit_gaps(scan: Scan, days: Sequence[date], rules: Rules, timezone: str) -> pl.DataFrame:
    """The scoring stage's edge for audit gaps: read the look-back, return the days' flags."""
    days = sorted(set(days))
    if not days:
        return pl.DataFrame(schema=FLAG_SCHEMA)
    lookback = int(rules.audit_gaps["lookback_days"])
    log = scan("access_events")
    horizon = log.select(pl.col("occurred_at").max()).collect().item()
    if horizon is None:
        return pl.DataFrame(schema=FLAG_SCHEMA)
    # a night shift that started the day before a target day still counts toward that day's rows
    first = days[0] - timedelta(days=lookback + 1)
    events = log.filter(pl.col("day").is_between(first, days[-1] + timedelta(days=1))).select(
        "system", "user_id", "occurred_at", "day"
    )
    shifts = scan("shifts").filter(
        pl.col("ends_at").dt.date().is_between(first, days[-1] + timedelta(days=1))
    )
    flags = audit_gap_flags(events, shifts, days, horizon, rules, timezone)
    return flags.collect().sort("day", "flag_id")
