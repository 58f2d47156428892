"""Benchmark: a big force's night — `nightly` on the newest day's drop, after every earlier day is
loaded and scored (so the look-back's aggregates are stored, as on a real force's night).

Not a test: each phase runs in its own process and prints one JSON line with its wall time, CPU
seconds (user + sys) and peak memory (RSS, ru_maxrss) and what it did.

    .venv/bin/python benchmarks/bench_night.py --staff 45000 --days 33 --workdir /tmp/night45k

A 45,000-staff force cannot be generated for 31 days here (the generator holds the force in
memory: about 19 GiB). `--phases generate,replay,prepare,nightly --days 11 --copies 3` generates 11
days and replays them (benchmarks/replay.py: dates shifted, ids renamed) into 33 days of drops, the
newest the generated one: a 30-day look-back of replayed history, labelled so.

Phases: `generate` the force (Parquet drops); `replay` (optional, above); `prepare`: load every
drop but the newest and score them (not a target; this is the force's history); `nightly`: copy
the prepared home (the store by hard links: its files are written once and never changed) and run
`nightly` on the newest drop.
With --workdir, `--phases nightly` alone can be repeated to measure the same night again, e.g.
under /usr/bin/time -v or a benchmark harness that runs a command several times.
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
    import json, os, resource, shutil, sys, time
    from pathlib import Path
    phase, out, home, staff, days, seed, copies, here = sys.argv[1:9]
    result = {"phase": phase}
    started = time.perf_counter()
    if phase == "generate":
        from datetime import date, timedelta
        from access_audit.generate import generate_force
        # the newest drop is yesterday's, as many days back as the replayed copies need
        made = generate_force(Path(out), staff=int(staff), days=int(days), seed=int(seed),
                              start=date.today() - timedelta(days=int(days)),
                              file_format="parquet")
        result["accesses"] = made.rows["access_log"]
    elif phase == "replay":
        import polars as pl
        sys.path.insert(0, here)
        from replay import replay_drops
        generated = Path(out).with_name("generated")
        if not generated.exists():
            Path(out).rename(generated)
        drops = replay_drops(generated, Path(out), int(copies))
        result["drops"] = len(drops)
        result["accesses"] = (
            pl.scan_parquet(str(Path(out) / "*" / "access_log_*.parquet"))
            .select(pl.len()).collect().item()
        )
    else:
        from access_audit.workspace import Workspace
        drops = sorted(p for p in Path(out).iterdir() if p.is_dir())
        prepared = Path(home)
        if phase == "prepare":
            workspace = Workspace.open(prepared)
            assert workspace.ingest(drops[:-1]).ok
            report = workspace.score()
            result["accesses"] = report.events
            result["days"] = len(report.days)
        elif phase == "nightly":
            night = prepared.with_name(prepared.name + "-night")
            shutil.rmtree(night, ignore_errors=True)
            # (not the lock file: the copy is another home, with a lock of its own)
            shutil.copytree(prepared / "store", night / "store", copy_function=os.link,
                            ignore=shutil.ignore_patterns(".lock"))
            for item in prepared.iterdir():
                if item.name != "store":
                    copy = shutil.copytree if item.is_dir() else shutil.copy2
                    copy(item, night / item.name)
            started = time.perf_counter()
            report = Workspace.open(night).nightly(drops[-1:])
            assert report.ok
            assert report.score is not None
            result["accesses_scored"] = report.score.events
            result["days_scored"] = len(report.score.days)
            result["flags"] = report.score.flags
            result["alerts"] = report.score.alerts
    result["seconds"] = round(time.perf_counter() - started, 2)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 1)
    result["peak_mib"] = round(usage.ru_maxrss / 1024)
    print(json.dumps(result, default=str))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=45_000, help="Staff in the force.")
    parser.add_argument(
        "--days", type=int, default=33, help="Days of drops (the newest is the night measured)."
    )
    parser.add_argument("--seed", type=int, default=1, help="The generator's seed.")
    parser.add_argument(
        "--copies",
        type=int,
        default=1,
        help="With the `replay` phase: the generated days written this many times back to back "
        "(benchmarks/replay.py), for a look-back longer than the generator can make here.",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the data here.")
    parser.add_argument(
        "--phases",
        default="generate,prepare,nightly",
        help="Comma-separated phases to run (with --workdir, later phases can be re-run).",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="access-audit-night-") as scratch:
        root = args.workdir or Path(scratch)
        out, home = root / "drops", root / "home"
        extra = (str(args.copies), str(Path(__file__).resolve().parent))
        for phase in args.phases.split(","):
            print(json.dumps(run_phase(PHASE, phase, out, home, args, extra)), flush=True)


if __name__ == "__main__":
    main()
