"""Benchmark: generate a synthetic force, ingest all its drops, then ingest them all again.

Not a test: it prints wall time, peak memory (RSS) and row counts per phase. Each phase runs in its
own process so its peak memory is its own.

    .venv/bin/python benchmarks/bench_ingest.py --staff 3000 --days 30
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
from pathlib import Path

from phases import run_phase

PHASE = textwrap.dedent(
    """
    import json, resource, sys, time
    from datetime import date
    from pathlib import Path
    phase, out, home, staff, days, seed = sys.argv[1:7]
    started = time.perf_counter()
    if phase == "generate":
        from access_audit.generate import generate_force
        result = generate_force(Path(out), staff=int(staff), days=int(days), seed=int(seed))
        counts = result.rows
    else:
        from access_audit.workspace import Workspace
        workspace = Workspace.open(home)
        drops = sorted(p for p in Path(out).iterdir() if p.is_dir())
        report = workspace.ingest(drops)
        assert report.ok, report.failed
        counts = {t.table: t.rows for t in workspace.status().tables}
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"phase": phase, "seconds": seconds, "peak_mib": peak_mib, "rows": counts}))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.workdir or Path(scratch)
        out, home = root / "drops", root / "home"
        results = [
            run_phase(PHASE, "generate", out, home, args),
            run_phase(PHASE, "ingest", out, home, args),
            run_phase(PHASE, "ingest", out, home, args),
        ]
    first, second = results[1]["rows"], results[2]["rows"]
    for result, label in zip(results, ("generate", "ingest", "ingest again"), strict=True):
        print(f"{label:>13}: {result['seconds']:7.1f} s  peak {result['peak_mib']:7.0f} MiB")
    print(f"rows generated: {json.dumps(results[0]['rows'])}")
    print(f"rows stored:    {json.dumps(first)}")
    print(f"second ingest changed nothing: {first == second}")


if __name__ == "__main__":
    main()
