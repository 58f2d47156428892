"""`access-audit generate`: a synthetic force in the export-bundle format, with planted misuse.

`generate_force` builds the force in memory (`force.py`: people, rota, history; `work.py`: the
period's incidents and legitimate work), plants the misuse scenarios (`scenarios.py`), and writes
one drop per day plus `truth.csv` (`write.py`). The same seed gives the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from access_audit.errors import AccessAuditError

DEFAULT_START = date(2026, 10, 12)
MIN_STAFF = 40
# so that follow-up lookups of a planted episode fit in the period
MIN_DAYS = 3
# the synthetic force's local time (force.TZ); here, not in force.py, so --help stays fast
FORCE_TIMEZONE = "Europe/London"
# [ingest] max_days_after_drop's default: a drop dated later than today plus this is refused
FUTURE_DAYS_ALLOWED = 7

FileFormat = Literal["csv", "parquet", "jsonl"]


@dataclass(frozen=True)
class GenerateResult:
    out: Path
    drops: list[Path]
    truth_path: Path
    rows: dict[str, int]
    episodes: int
    seconds: float


def generate_force(
    out: Path,
    *,
    staff: int,
    days: int,
    seed: int,
    start: date | None = None,
    file_format: FileFormat = "csv",
    progress: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Generate `days` daily drops for a force of `staff` people into `out`."""
    import numpy as np
    import polars as pl

    from access_audit.generate import force as f
    from access_audit.generate import scenarios, write
    from access_audit.generate import work as w

    if staff < MIN_STAFF:
        raise AccessAuditError(f"--staff must be at least {MIN_STAFF} to staff every role")
    if days < MIN_DAYS:
        raise AccessAuditError(f"--days must be at least {MIN_DAYS} so that follow-up lookups fit")
    first = start or DEFAULT_START
    last_allowed = datetime.now(UTC).date() + timedelta(days=FUTURE_DAYS_ALLOWED)
    if (last_allowed - first).days < days - 1:
        raise AccessAuditError(
            f"--start {first}: the last drop would be dated after {last_allowed} (today plus "
            f"{FUTURE_DAYS_ALLOWED} days), and ingest refuses drops from the future; choose an "
            "earlier --start"
        )
    if out.exists() and any(out.iterdir()):
        raise AccessAuditError(f"{out} is not empty; choose a new folder for the synthetic force")
    began = time.perf_counter()
    force = f.Force(start=first, days=days, rng=np.random.default_rng(seed))
    force.associations = pl.DataFrame(schema=write.ASSOCIATION_SCHEMA)
    steps: list[Callable[[], object]] = [
        lambda: f.build_persons(force, f.build_staff(force, staff)),
        lambda: f.build_history(force),
        lambda: f.build_shifts(force),
        lambda: w.build_new_incidents(force),
        lambda: w.build_case_work(force),
        lambda: w.build_desk_calls(force),
        lambda: w.build_routine(force),
        lambda: w.build_training(force),
        lambda: scenarios.plant(force),
        lambda: w.finish_markers(force),
    ]
    total = len(steps) + days
    for done, step in enumerate(steps, start=1):
        step()
        if progress:
            progress(done, total)
    drops, truth_path, rows = write.write_force(
        force,
        out,
        file_format,
        progress=(lambda day: progress(len(steps) + day, total)) if progress else None,
    )
    # The episodes the truth file holds: one planted near the period's end may fall outside it.
    planted = pl.scan_csv(truth_path).select(pl.col("episode_id").n_unique()).collect().item()
    return GenerateResult(
        out=out,
        drops=drops,
        truth_path=truth_path,
        rows=rows,
        episodes=int(planted),
        seconds=time.perf_counter() - began,
    )


__all__ = [
    "DEFAULT_START",
    "FORCE_TIMEZONE",
    "MIN_DAYS",
    "MIN_STAFF",
    "GenerateResult",
    "generate_force",
]
