"""Benchmark: audit-gap detection on generated forces (issue 7).

Not a test: for each seed it generates a force (with its planted audit gaps), runs `nightly` over
every drop, and prints one JSON line: planted gaps caught (and as alerts), false audit-gap flags,
the days judged, and the wall time of finding the gaps over the nightly re-score window.

    .venv/bin/python benchmarks/bench_audit_gaps.py --staff 300 --days 28 --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from access_audit.generate import generate_force
from access_audit.score.audit_gaps import find_audit_gaps
from access_audit.workspace import Workspace


def measure(staff: int, days: int, seed: int, folder: Path) -> dict[str, object]:
    force = generate_force(folder / "force", staff=staff, days=days, seed=seed)
    workspace = Workspace.open(folder / "home")
    workspace.nightly(force.drops)
    result = workspace.evaluate(force.truth_path)
    rules = workspace.rules
    window = workspace.stored_days()[-rules.reexplain_days :]
    started = time.perf_counter()
    find_audit_gaps(workspace.scan, window, rules, workspace.config.ingest.timezone)
    return {
        "staff": staff,
        "days": days,
        "seed": seed,
        **(result.gaps or {}),
        "days_judged": result.overall["days"],
        "seconds_for_rescore_window": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--staff", type=int, default=300)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(measure(args.staff, args.days, seed, Path(folder))), flush=True)


if __name__ == "__main__":
    main()
