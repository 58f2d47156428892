"""Benchmark: explain + score every stored day of one force, Polars vs Spark local[2], side by side.

Not a test: it prints wall time and peak memory per run, each run in its own process, and whether
the two engines' flags agree (ids, alerts, largest score difference).

    .venv/bin/python benchmarks/bench_scale.py --staff 10000 --days 70 --repeat 3   # ~10M accesses

Phases: generate the force (Parquet drops); ingest it into one home; then `--repeat` times each,
alternating, `Workspace.score()` with the polars engine and with the spark engine (the home's
[spark] master, local[2] by default). Every run re-scores every day, so each does the same work
whatever ran before it. Peak memory is the whole process tree's resident set (the Python driver,
Spark's JVM and its Python workers), sampled every 0.1 s. Spark's time is given with and without
starting its session (the JVM), which a long-lived driver pays once.

Then, in the same run, the big force's night (benchmarks/bench_night.py: `nightly` on the newest
drop of a `--night-staff` force whose look-back is stored; by default 45,000 staff, 11 generated
days replayed 3 times, so a 30-day look-back of replayed history), `--repeat` times, medians
printed beside the engines' table. `--no-night` leaves it out; with `--skip-setup` and a
`--night-workdir` already prepared, only the night itself runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import textwrap
from pathlib import Path

import bench_night
from phases import TREE_SAMPLER, run_phase

ENGINES = ("polars", "spark")

PHASE = TREE_SAMPLER + textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    phase, out, home, staff, days, seed = sys.argv[1:7]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    started = time.perf_counter()
    result = {"phase": phase}
    if phase == "generate":
        from access_audit.generate import generate_force
        # ending today: ingest refuses drops dated more than a week ahead
        from datetime import date, timedelta
        made = generate_force(Path(out), staff=int(staff), days=int(days), seed=int(seed),
                              start=date.today() - timedelta(days=int(days)),
                              file_format="parquet")
        result["accesses"] = made.rows["access_log"]
    else:
        import polars as pl
        from access_audit.workspace import Workspace
        workspace = Workspace.open(home)
        if phase == "ingest":
            drops = sorted(p for p in Path(out).iterdir() if p.is_dir())
            assert workspace.ingest(drops).ok
        else:
            engine = phase.split("-")[0]
            if engine == "spark":
                from access_audit.score.spark import spark_session
                spark_session(workspace.config.spark)
                result["session_seconds"] = time.perf_counter() - started
            scoring = time.perf_counter()
            report = workspace.score(engine=engine)
            result["score_seconds"] = time.perf_counter() - scoring
            result["events"] = report.events
            result["days"] = len(report.days)
            result["flags"] = report.flags
            result["alerts"] = report.alerts
            flags = workspace.scan("flags").select("flag_id", "alert", "score").collect()
            flags.write_parquet(Path(home).parent / f"flags-{engine}.parquet")
    sampling.set()
    result["seconds"] = time.perf_counter() - started
    rss_now, result["cpu_seconds"] = tree_usage()
    result["peak_mib"] = max(peak[0], rss_now) / 2**20
    print(json.dumps(result, default=str))
    """
)


def _median(runs: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(str(r[key])) for r in runs)


def _agreement(root: Path) -> str:
    import polars as pl

    a, b = (pl.read_parquet(root / f"flags-{e}.parquet").sort("flag_id") for e in ENGINES)
    same_ids = a["flag_id"].to_list() == b["flag_id"].to_list()
    if not same_ids:
        return f"flags differ: {a.height} (polars) vs {b.height} (spark)"
    same_alerts = a["alert"].to_list() == b["alert"].to_list()
    gap = (a["score"] - b["score"]).abs().max()
    return (
        f"same {a.height} flag ids; alerts {'identical' if same_alerts else 'DIFFER'} "
        f"({int(a['alert'].sum())}); largest score difference {gap}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=10_000, help="Staff of the force scored.")
    parser.add_argument("--days", type=int, default=70, help="Days of the force scored.")
    parser.add_argument("--seed", type=int, default=1, help="The generator's seed.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per engine (medians quoted).")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the data here.")
    parser.add_argument(
        "--skip-setup", action="store_true", help="Reuse --workdir's generated, ingested home."
    )
    parser.add_argument(
        "--driver-memory",
        default="4g",
        help="[spark.options] spark.driver.memory of the home (local mode: the JVM's heap).",
    )
    parser.add_argument("--no-night", action="store_true", help="Leave out the big force's night.")
    parser.add_argument(
        "--night-staff", type=int, default=45_000, help="Staff of the big force whose night runs."
    )
    parser.add_argument(
        "--night-days", type=int, default=11, help="Days generated for the big force."
    )
    parser.add_argument(
        "--night-copies",
        type=int,
        default=3,
        help="The big force's generated days replayed this many times (a longer look-back than "
        "the generator can hold in memory; 1: no replay).",
    )
    parser.add_argument(
        "--night-workdir",
        type=Path,
        default=None,
        help="Keep the big force here (default: a `night` folder in --workdir).",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="access-audit-bench-") as scratch:
        root = args.workdir or Path(scratch)
        out, home = root / "drops", root / "home"
        setup = [] if args.skip_setup else ["generate", "ingest"]
        home.mkdir(parents=True, exist_ok=True)
        (home / "access-audit.toml").write_text(
            f'[spark.options]\n"spark.driver.memory" = "{args.driver_memory}"\n', encoding="utf-8"
        )
        for phase in setup:
            print(json.dumps(run_phase(PHASE, phase, out, home, args)), flush=True)
        runs: dict[str, list[dict[str, object]]] = {engine: [] for engine in ENGINES}
        for attempt in range(args.repeat):
            for engine, done in runs.items():
                result = run_phase(PHASE, f"{engine}-{attempt}", out, home, args)
                print(json.dumps(result), flush=True)
                done.append(result)
        polars, spark = runs["polars"], runs["spark"]
        events = polars[0]["events"]
        print(
            f"\nexplain + score, every day: {events:,} accesses, {polars[0]['days']} days, "
            f"{args.staff:,} staff; medians of {args.repeat} runs each, one process per run"
        )
        print(f"{'':34}{'polars':>12}{'spark local[2]':>18}")
        rows = [
            ("wall time, s", "seconds", "seconds"),
            ("CPU (user + sys, process tree), s", "cpu_seconds", "cpu_seconds"),
            ("  of which scoring, s", "score_seconds", "score_seconds"),
            ("peak memory (process tree), MiB", "peak_mib", "peak_mib"),
        ]
        for label, left, right in rows:
            print(f"{label:34}{_median(polars, left):>12.1f}{_median(spark, right):>18.1f}")
        print(f"{'  Spark session start, s':34}{'':>12}{_median(spark, 'session_seconds'):>18.1f}")
        print(_agreement(root))
        if not args.no_night:
            _night(args, args.night_workdir or root / "night")


def _night(args: argparse.Namespace, root: Path) -> None:
    """The big force's night (bench_night's phases), `--repeat` times; medians printed."""
    night = argparse.Namespace(staff=args.night_staff, days=args.night_days, seed=args.seed)
    out, home = root / "drops", root / "home"
    extra = (str(args.night_copies), str(Path(__file__).resolve().parent))
    replay = ["replay"] if args.night_copies > 1 else []
    setup = [] if args.skip_setup and home.exists() else ["generate", *replay, "prepare"]
    for phase in setup:
        print(json.dumps(run_phase(bench_night.PHASE, phase, out, home, night, extra)), flush=True)
    nights = []
    for _ in range(args.repeat):
        result = run_phase(bench_night.PHASE, "nightly", out, home, night, extra)
        print(json.dumps(result), flush=True)
        nights.append(result)
    replayed = (
        f"{args.night_days} generated days replayed {args.night_copies} times"
        if args.night_copies > 1
        else f"{args.night_days} generated days"
    )
    print(
        f"\nthe big force's night: {args.night_staff:,} staff ({replayed}); `nightly` on the "
        f"newest drop re-scores {nights[0]['accesses_scored']:,} accesses over "
        f"{nights[0]['days_scored']} days; medians of {args.repeat} runs (the target for 45,000 "
        "staff: ≤ 60 s, ≤ 4 GB)"
    )
    for label, key in (
        ("wall time, s", "seconds"),
        ("CPU (user + sys), s", "cpu_seconds"),
        ("peak memory, MiB", "peak_mib"),
    ):
        print(f"{label:34}{_median(nights, key):>12.1f}")


if __name__ == "__main__":
    main()
