"""Make a long history out of a generated force's drops by replaying them: a benchmark's input, not
a synthetic force of its own.

`access-audit generate` holds the whole force in memory (about 0.12 GiB per thousand staff-days at
10,000 staff), so a year of a large force cannot be generated on this machine. A backfill
benchmark needs the volume, not new behaviour: `replay_drops` writes COPIES back-to-back copies of
the N generated days, copy k (0 = the oldest) dated (COPIES - 1 - k) * N days earlier than the
original, which is the last. Each earlier copy is the same force's work again, with:

- every timestamp shifted by whole days (re-written as the export writes it: local wall-clock
  text, with the offset in the repeated autumn hour; CAD and telephony in UTC with `Z`);
- the ids a copy would share with another copy renamed with a suffix `~r<k>`: the access log's
  event ids, incident ids (in incidents, their people, assignments, calls and the access log's
  incident lookups) and call ids. Staff, persons, associations and training are the force's own
  and are written again unchanged (a re-sent row of an upserted table changes nothing).

Each drop is read, rewritten and written alone, so memory is one drop's.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from access_audit.generate.force import TZ
from access_audit.generate.write import NAIVE, local_text, utc_text
from access_audit.private_files import private_folder, replacing

UTC = pl.Datetime("us", "UTC")
TIMESTAMPS = {
    "access_log": ("occurred_at",),
    "incidents": ("opened_at", "closed_at"),
    "assignments": ("assigned_from", "assigned_to"),
    "calls": ("started_at", "ended_at"),
    "shifts": ("starts_at", "ends_at"),
}
INCIDENT_TABLES = ("incidents", "incident_persons", "assignments", "calls")


def _table(path: Path) -> str:
    return "access_log" if path.name.startswith("access_log_") else path.name.split(".")[0]


def _shifted(column: str, days: int) -> tuple[pl.Expr, pl.Expr]:
    """An export timestamp `days` later: the instant (as `_instant`), then the text the export
    gives for it, in the column's own form. UTC (`Z`) text moves by days of 24 hours; local text
    keeps its wall-clock time (so a row stays in its drop's local day), one hour later when that
    time does not exist (the spring gap)."""
    text = pl.col(column)
    zulu = text.str.strptime(UTC, NAIVE + "Z", strict=False) + pl.duration(days=days)
    wall = text.str.slice(0, 19).str.strptime(pl.Datetime("us"), NAIVE, strict=False)
    wall = wall + pl.duration(days=days)
    local = pl.coalesce(
        wall.dt.replace_time_zone(TZ, ambiguous="earliest", non_existent="null"),
        (wall + pl.duration(hours=1)).dt.replace_time_zone(
            TZ, ambiguous="earliest", non_existent="null"
        ),
    ).dt.convert_time_zone("UTC")
    in_utc = text.str.ends_with("Z")
    instant = pl.when(in_utc).then(zulu).otherwise(local).alias("_instant")
    written = (
        pl.when(text.is_null())
        .then(None)
        .when(in_utc)
        .then(utc_text("_instant"))
        .otherwise(local_text("_instant"))
        .alias(column)
    )
    return instant, written


def _rewrite(frame: pl.DataFrame, table: str, days: int, copy: int) -> pl.DataFrame:
    suffix = f"~r{copy}"
    for column in TIMESTAMPS.get(table, ()):
        instant, written = _shifted(column, days)
        frame = frame.with_columns(instant).with_columns(written).drop("_instant")
    renamed: list[pl.Expr] = []
    if table == "access_log":
        incident = pl.col("record_type") == "incident"
        renamed += [
            pl.col("event_id") + suffix,
            pl.when(incident).then(pl.col("record_id") + suffix).otherwise("record_id"),
        ]
    if table in INCIDENT_TABLES:
        renamed.append(pl.col("incident_id") + suffix)
    if table == "calls":
        renamed.append(pl.col("call_id") + suffix)
    return frame.with_columns(renamed) if renamed else frame


def replay_drops(
    source: Path,
    target: Path,
    copies: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write COPIES replays of SOURCE's daily drops (folders named YYYY-MM-DD) into TARGET."""
    originals = sorted(p for p in source.iterdir() if p.is_dir())
    if not originals:
        raise SystemExit(f"{source}: no drops to replay")
    days = len(originals)
    private_folder(target)
    written: list[Path] = []
    total = copies * days
    for copy in range(copies):
        back = (copies - 1 - copy) * days
        for drop in originals:
            day = date.fromisoformat(drop.name) - timedelta(days=back)
            folder = private_folder(target / day.isoformat())
            for path in sorted(drop.iterdir()):
                name = path.name.replace(drop.name, day.isoformat())
                with replacing(folder / name) as temporary:
                    if back == 0:
                        shutil.copyfile(path, temporary)
                    else:
                        frame = _rewrite(pl.read_parquet(path), _table(path), -back, copy)
                        frame.write_parquet(temporary)
            written.append(folder)
            if progress:
                progress(len(written), total)
    return written
