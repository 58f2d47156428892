"""Explanation coverage of a scored home, before and after mined explanations.

Not a test: reads a home's stores (after `nightly` or `score`) and prints, over every stored day,
the share of accesses that open a record which a recorded path explains, and the share explained
or weakly explained by a mined kind (score/mined.py): overall, for first accesses (a user's first
access to a subject in the stored log) and by role. The anchor is the EBA's > 94%.

    .venv/bin/python benchmarks/mined_coverage.py path/to/home [more homes]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from access_audit.score import coverage
from access_audit.workspace import Workspace


def home_coverage(home: Path) -> pl.DataFrame:
    workspace = Workspace.open(home)
    keys = ["system", "event_id"]
    explained = workspace.scan("explanations").select(keys).unique()
    events = (
        workspace.scan("access_events")
        .filter(pl.col("record_id").is_not_null())
        .select(*keys, "user_id", "record_type", "record_id", "occurred_at", "day")
        .join(explained.with_columns(explained=pl.lit(True)), on=keys, how="left")
        .with_columns(pl.col("explained").fill_null(False))
        .collect()
    )
    weak = workspace.scan("weak_explanations").collect()
    # every stored day as one: a first access is the first in the whole stored log
    return coverage(events, events.lazy().head(0), workspace.scan("staff"), weak)


def table(name: str, frame: pl.DataFrame) -> str:
    lines = [
        f"\n{name}: explanation coverage (accesses that open a record)",
        "| scope | accesses | explained | with mined |",
        "|---|---|---|---|",
    ]
    for row in frame.to_dicts():
        lines.append(
            f"| {row['group']} | {row['accesses']} | {row['share']:.1%} "
            f"| {row['share_with_mined']:.1%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("homes", type=Path, nargs="+")
    args = parser.parse_args()
    for home in args.homes:
        print(table(str(home), home_coverage(home)))


if __name__ == "__main__":
    main()
