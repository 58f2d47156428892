"""Benchmark: what integrity costs. A synthetic force loaded one nightly run per drop (so the store
has a generation per day, hard-linked), then `verify` full and quick, and the check `nightly` makes
before it builds.

Not a test: it prints wall times and sizes. Each verify phase runs in a fresh process (imports
included, as on the command line), with the files in the page cache from the runs before.

    .venv/bin/python benchmarks/bench_verify.py --staff 1000 --days 14
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

from phases import run_phase

PHASE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    phase, out, home, staff, days, seed = sys.argv[1:7]
    started = time.perf_counter()
    detail = {}
    if phase == "generate":
        from access_audit.generate import generate_force
        generate_force(Path(out), staff=int(staff), days=int(days), seed=int(seed))
    elif phase == "nightly":
        from access_audit.workspace import Workspace
        workspace = Workspace.open(home)
        for drop in sorted(p for p in Path(out).iterdir() if p.is_dir()):
            assert workspace.nightly([drop]).ok
        files = [p for p in (Path(home) / "store").rglob("*.parquet")]
        detail = {"generations": len(workspace.store.generations()),
                  "unique_files": len({p.stat().st_ino for p in files})}
    elif phase == "check_before_build":
        from access_audit.workspace import Workspace
        Workspace.open(home).store.check_current("full")
    else:
        from access_audit.workspace import Workspace
        report = Workspace.open(home).verify(quick=phase == "verify_quick")
        assert report.ok, report.checks
        detail = {"files_read": report.files_read, "mb_read": round(report.bytes_read / 1e6, 1)}
    seconds = time.perf_counter() - started
    print(json.dumps({"phase": phase, "seconds": seconds, **detail}))
    """
)

PHASES = ("generate", "nightly", "verify_full", "verify_quick", "check_before_build")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=1000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.workdir or Path(scratch)
        for phase in PHASES:
            result = run_phase(PHASE, phase, root / "drops", root / "home", args)
            extra = ", ".join(
                f"{k} {v}" for k, v in result.items() if k not in ("phase", "seconds")
            )
            print(f"{phase:<20} {float(str(result['seconds'])):8.2f} s  {extra}")


if __name__ == "__main__":
    main()
