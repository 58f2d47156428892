"""Write a generated force as daily export drops (the format of shared/spec/export-bundle.md).

Rows go to the drop of the local day they became known. Timestamps are written as the force's
systems would: local wall-clock time without an offset, except in the repeated autumn hour
(where a bare local time is ambiguous, so the offset is written) and for CAD and telephony, which
export UTC with `Z`. The access log is split over two files per drop. Upserted tables keep, per
drop, the newest version of each key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from access_audit.generate.force import TZ, UTC, Force, seconds
from access_audit.private_files import private_folder, replacing, write_private_text

ASSOCIATION_SCHEMA = {
    "user_id": pl.String,
    "person_id": pl.String,
    "relationship": pl.String,
    "declared_at": pl.Date,
}
LATE_AUDIT_SHARE = 0.01
PAGES_PER_VIEW = 1.5
NAIVE = "%Y-%m-%dT%H:%M:%S"
GAPS_TRUTH = "gaps_truth.csv"


def local_text(column: str) -> pl.Expr:
    """A UTC timestamp as the export writes it: naive local time, with the offset when ambiguous."""
    local = pl.col(column).dt.convert_time_zone(TZ)
    naive = local.dt.replace_time_zone(None)
    earliest = naive.dt.replace_time_zone(TZ, ambiguous="earliest", non_existent="null")
    latest = naive.dt.replace_time_zone(TZ, ambiguous="latest", non_existent="null")
    return (
        pl.when(earliest != latest)
        .then(local.dt.strftime(NAIVE + "%:z"))
        .otherwise(local.dt.strftime(NAIVE))
    )


def utc_text(column: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone("UTC").dt.strftime(NAIVE + "Z")


def _drop_day(force: Force) -> pl.Expr:
    first, last = force.start, force.start + timedelta(days=force.days - 1)
    day = pl.col("known_at").dt.convert_time_zone(TZ).dt.date()
    return day.clip(pl.lit(first), pl.lit(last)).alias("_day")


def _page_views(force: Force, frame: pl.DataFrame) -> pl.DataFrame:
    """Records systems audit every screen: opening a record is followed by a few more views of its
    tabs within a minute or two. Each extra row keeps its original's episode (truth follows)."""
    views = frame.filter(pl.col("action") == "view")
    extra = force.rng.poisson(PAGES_PER_VIEW, views.height)
    repeated = views.gather(np.repeat(np.arange(views.height), extra))
    offsets = force.rng.uniform(5, 120, repeated.height)
    return pl.concat(
        [
            frame,
            repeated.with_columns(
                occurred_at=pl.col("occurred_at") + seconds(offsets),
                known_at=pl.col("known_at") + seconds(offsets),
            ),
        ]
    )


def _access_log(force: Force) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All audit rows with event ids, workstations and (rarely) late delivery; and the truth."""
    rng = force.rng
    frame = _page_views(force, pl.concat(force.event_parts)).filter(
        pl.col("occurred_at") < force.last_utc()
    )
    frame = frame.sort(
        ["occurred_at", "user_id", "system", "action", "record_id"],
        nulls_last=True,
        maintain_order=True,
    )
    late = pl.Series(rng.random(frame.height) < LATE_AUDIT_SHARE)
    frame = frame.with_columns(
        known_at=pl.when(late)
        .then(pl.col("occurred_at") + pl.duration(hours=26))
        .otherwise(pl.col("occurred_at")),
        event_id=pl.format(
            "{}-{}",
            "system",
            (pl.int_range(1, pl.len() + 1).over("system")).cast(pl.String).str.zfill(9),
        ),
    )
    staff = force.staff.select(
        "user_id",
        workstation=pl.when(pl.col("role").is_in(["response_officer", "pcso"]))
        .then(pl.format("MDT-{}", pl.col("user_id").str.slice(1)))
        .otherwise(pl.format("WS-{}-{}", "team_id", pl.col("user_id").str.slice(-2))),
    )
    frame = frame.join(staff, on="user_id", how="left", maintain_order="left")
    truth = (
        frame.filter(pl.col("episode_id").is_not_null())
        .select(
            "episode_id",
            "scenario",
            "user_id",
            person_id=pl.when(pl.col("record_type") == "person").then("record_id"),
            system="system",
            event_id="event_id",
        )
        .sort("episode_id", "event_id")
    )
    return frame, truth


def _tables(
    force: Force, log: pl.DataFrame
) -> dict[str, tuple[pl.DataFrame, tuple[str, ...] | None]]:
    """Each table as text columns plus `known_at`, and its upsert key (None: append)."""
    system = pl.col("system")
    access = log.select(
        "event_id",
        occurred_at=pl.when(system == "CAD")
        .then(utc_text("occurred_at"))
        .otherwise(local_text("occurred_at")),
        user_id="user_id",
        system="system",
        action="action",
        record_type="record_type",
        record_id="record_id",
        search_text="search_text",
        reason_code="reason_code",
        justification="justification",
        workstation="workstation",
        known_at="known_at",
    )
    first = force.first_utc() - timedelta(days=1)
    staff = force.staff.select(
        "user_id",
        "surname",
        "forenames",
        "sex",
        "role",
        "team_id",
        "postcode",
        "person_id",
        pl.col("employed_from").cast(pl.String),
        pl.col("employed_to").cast(pl.String),
        known_at=pl.lit(first, dtype=UTC),
    )
    persons = force.persons.select(
        "person_id",
        "surname",
        "forenames",
        "sex",
        pl.col("date_of_birth").cast(pl.Date).cast(pl.String),
        "postcode",
        "markers",
        known_at=pl.lit(first, dtype=UTC),
    )
    incidents = force.incidents.select(
        "incident_id",
        "category",
        local_text("opened_at").alias("opened_at"),
        local_text("closed_at").alias("closed_at"),
        "known_at",
    )
    links = force.incident_persons.select("incident_id", "person_id", "role", "known_at")
    assignments = _assignment_versions(force)
    calls = force.calls.sort("started_at", "user_id").select(
        call_id=pl.format("C{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(8)),
        user_id="user_id",
        started_at=utc_text("started_at"),
        ended_at=utc_text("ended_at"),
        direction="direction",
        person_id="person_id",
        incident_id="incident_id",
        known_at="known_at",
    )
    shifts = force.shifts.select(
        "user_id",
        starts_at=local_text("starts_at"),
        ends_at=local_text("ends_at"),
        known_at="known_at",
    )
    associations = force.associations.select(
        "user_id",
        "person_id",
        "relationship",
        pl.col("declared_at").cast(pl.String),
        known_at=pl.lit(first, dtype=UTC),
    )
    training = force.training.select(
        "user_id",
        "course",
        pl.col("completed_at").cast(pl.String),
        known_at=pl.lit(first, dtype=UTC),
    )
    return {
        "access_log": (access, None),
        "staff": (staff, ("user_id",)),
        "persons": (persons, ("person_id",)),
        "incidents": (incidents, ("incident_id",)),
        "incident_persons": (links, ("incident_id", "person_id", "role")),
        "assignments": (
            assignments,
            ("incident_id", "user_id", "team_id", "role", "assigned_from"),
        ),
        "calls": (calls, ("call_id",)),
        "shifts": (shifts, ("user_id", "starts_at")),
        "associations": (associations, ("user_id", "person_id")),
        "training": (training, ("user_id", "course", "completed_at")),
    }


def _assignment_versions(force: Force) -> pl.DataFrame:
    """An assignment is exported when recorded, open-ended if it ends later; its end comes later."""
    rows = force.assignments
    ends_later = pl.col("assigned_to").is_not_null() & (pl.col("assigned_to") > pl.col("known_at"))
    opened = rows.with_columns(assigned_to=pl.when(~ends_later).then("assigned_to"))
    ended = rows.filter(ends_later).with_columns(
        known_at=pl.col("assigned_to") + pl.duration(minutes=30)
    )
    return pl.concat([opened, ended]).select(
        "incident_id",
        "user_id",
        "team_id",
        "role",
        assigned_from=local_text("assigned_from"),
        assigned_to=local_text("assigned_to"),
        known_at="known_at",
    )


def _write(frame: pl.DataFrame, path: Path, file_format: str) -> None:
    """One export file, owner-only (it names staff and victims) even where it replaces one."""
    frame = frame.cast(pl.String)
    with replacing(path) as temporary:
        if file_format == "csv":
            frame.write_csv(temporary)
        elif file_format == "parquet":
            frame.write_parquet(temporary)
        else:
            frame.write_ndjson(temporary)


def write_force(
    force: Force,
    out: Path,
    file_format: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Path], Path, dict[str, int]]:
    """Write drops OUT/YYYY-MM-DD/ and OUT/truth.csv; returns drops, truth path, rows per table."""
    private_folder(out)
    log, truth = _access_log(force)
    tables = _tables(force, log)
    by_day: dict[str, dict[object, pl.DataFrame]] = {}
    rows: dict[str, int] = {}
    for name, (table, key) in tables.items():
        frame = table.with_columns(_drop_day(force)).sort("_day", "known_at", maintain_order=True)
        if key is not None:
            frame = frame.unique([*key, "_day"], keep="last", maintain_order=True)
        rows[name] = frame.height
        by_day[name] = {
            group[0]: part.drop("_day", "known_at")
            for group, part in frame.partition_by("_day", as_dict=True).items()
        }
    drops = []
    for index in range(force.days):
        day = force.start + timedelta(days=index)
        folder = private_folder(out / day.isoformat())
        for name, parts in by_day.items():
            part = parts.get(day)
            if part is None or part.is_empty():
                continue
            if name == "access_log":
                rms = pl.col("system") == "RMS"
                _write(
                    part.filter(rms), folder / f"access_log_{day}_part1.{file_format}", file_format
                )
                _write(
                    part.filter(~rms), folder / f"access_log_{day}_part2.{file_format}", file_format
                )
            else:
                _write(part, folder / f"{name}.{file_format}", file_format)
        drops.append(folder)
        if progress:
            progress(index + 1)
    truth_path = out / "truth.csv"
    with replacing(truth_path) as temporary:
        truth.write_csv(temporary)
    gaps = force.gaps.sort("gap_id").with_columns(
        utc_text("starts_at").alias("starts_at"), utc_text("ends_at").alias("ends_at")
    )
    with replacing(out / GAPS_TRUTH) as temporary:
        gaps.write_csv(temporary)
    write_private_text(
        out / "force.json",
        json.dumps(
            {
                "start": force.start.isoformat(),
                "days": force.days,
                "staff": force.staff.height,
                "timezone": TZ,
            },
            indent=2,
        )
        + "\n",
    )
    return drops, truth_path, rows
