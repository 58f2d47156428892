"""Benchmark: how long recording one review takes on a generated home.

Not a test: it prints the median and the slowest of N reviews, each through a freshly opened
`Workspace` (as every CLI call opens one), then the same through the `access-audit review`
command as a real subprocess (interpreter start-up and imports included).

    .venv/bin/python benchmarks/bench_review.py --staff 1000 --days 14 --reviews 30
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from access_audit.generate import generate_force
from access_audit.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=1000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reviews", type=int, default=30)
    parser.add_argument("--cli-reviews", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="access-audit-bench-") as scratch:
        root = Path(scratch)
        made = generate_force(
            root / "drops", staff=args.staff, days=args.days, seed=args.seed, file_format="parquet"
        )
        home = root / "home"
        started = time.perf_counter()
        assert Workspace.open(home).nightly(made.drops).ok
        print(f"home built: {made.rows} rows, {time.perf_counter() - started:.1f}s", flush=True)
        flag_ids = Workspace.open(home).flags(min_score=0)["flag_id"].to_list()
        generation = Workspace.open(home).generation()

        library, library_cpu = [], []
        for number in range(args.reviews):
            started, cpu = time.perf_counter(), time.process_time()
            Workspace.open(home).review(
                flag_ids[number % len(flag_ids)],
                status="under_review",
                outcome=None,
                note=f"benchmark decision {number}",
                reviewer="bench",
            )
            library.append(time.perf_counter() - started)
            library_cpu.append(time.process_time() - cpu)

        command = [sys.executable, "-m", "access_audit", "--home", str(home), "review"]
        cli, cli_cpu = [], []
        for number in range(args.cli_reviews):
            started, cpu = time.perf_counter(), _children_cpu()
            subprocess.run(
                [*command, flag_ids[number], "--status", "under_review", "--note", "bench"],
                check=True,
                capture_output=True,
            )
            cli.append(time.perf_counter() - started)
            cli_cpu.append(_children_cpu() - cpu)

        assert Workspace.open(home).generation() == generation, "a review made a generation"
        print(
            f"{len(flag_ids)} flags; Workspace.open(home).review(...): median "
            f"{_ms(library)} ms wall ({_ms(library_cpu)} ms CPU), slowest "
            f"{max(library) * 1000:.0f} ms, over {args.reviews} reviews"
        )
        print(
            f"`access-audit review` subprocess: median {_ms(cli)} ms wall ({_ms(cli_cpu)} ms "
            f"CPU), slowest {max(cli) * 1000:.0f} ms, over {args.cli_reviews} (start-up included)"
        )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.0f}"


if __name__ == "__main__":
    main()
