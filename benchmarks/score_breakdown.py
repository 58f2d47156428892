"""Where a full re-score's CPU goes, step by step, without cProfile's overhead.

Not a test: it wraps the scoring stage's step functions with process-time timers (CPU seconds of
all the process's threads, so Polars' own threads count), runs `score` over every stored day of
HOME, and prints each step's calls, CPU and wall seconds, costliest first. The steps nest (a fit
runs inside `score_day`), so the rows do not add up. Run it on a copy: the re-score commits.

    cp -al HOME /tmp/copy && .venv/bin/python benchmarks/score_breakdown.py /tmp/copy
"""

from __future__ import annotations

import argparse
import functools
import importlib
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

STEPS = {
    # module where the step is looked up when called -> the step functions timed there
    "access_audit.score": [
        "score_day",
        "day_aggregates",
        "fit_models",
        "anchored_models",
        "coverage",
        "patterns_from",
        "day_inputs",
        "read_lookback",
    ],
    "access_audit.score.anchors": ["fit_patterns", "collaborative_groups"],
    "access_audit.score.patterns": ["min_cov_det"],
    "access_audit.score.run": ["find_audit_gaps", "_write_chunk", "_write_lookback", "_cleared"],
    "access_audit.store": ["_holds_exactly"],
}
METHODS = {"access_audit.store.Transaction": ["replace_partitions"]}

Totals = defaultdict[str, list[float]]


def _timed(label: str, step: Callable[..., Any], totals: Totals) -> Callable[..., Any]:
    @functools.wraps(step)
    def timed(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return step(*args, **kwargs)
        finally:
            total = totals[label]
            total[0] += 1
            total[1] += time.process_time() - cpu
            total[2] += time.perf_counter() - wall

    return timed


def instrument(totals: Totals) -> None:
    for module_name, names in STEPS.items():
        module = importlib.import_module(module_name)
        for name in names:
            setattr(module, name, _timed(name, getattr(module, name), totals))
    for path, names in METHODS.items():
        module_name, class_name = path.rsplit(".", 1)
        owner = getattr(importlib.import_module(module_name), class_name)
        for name in names:
            setattr(owner, name, _timed(name, getattr(owner, name), totals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", help="the workspace folder to re-score (a copy: it commits)")
    args = parser.parse_args()
    totals: Totals = defaultdict(lambda: [0.0, 0.0, 0.0])
    instrument(totals)
    from access_audit.workspace import Workspace

    cpu, wall = time.process_time(), time.perf_counter()
    report = Workspace.open(args.home).score()
    print(
        f"score: {time.process_time() - cpu:.1f} CPU-s, {time.perf_counter() - wall:.1f} s wall; "
        f"{report.events} accesses, {report.flags} flags, {report.alerts} alerts"
    )
    print(f"{'step':24s} {'calls':>6s} {'CPU-s':>8s} {'wall s':>8s}")
    for label, (calls, step_cpu, step_wall) in sorted(totals.items(), key=lambda t: -t[1][1]):
        print(f"{label:24s} {int(calls):6d} {step_cpu:8.2f} {step_wall:8.2f}")


if __name__ == "__main__":
    main()
