"""Benchmark: a backfill — months of one force's drops ingested, then explained and scored, chunked,
by the Polars engine and by Spark local[2], side by side.

Not a test: each phase runs in its own process and prints one JSON line with its wall time, CPU
seconds (user + sys) and peak resident memory, both of the whole process tree (the Python driver,
Spark's JVM and its Python workers).

    .venv/bin/python benchmarks/bench_backfill.py --staff 10000 --days 70 --copies 3   # ~29M

The input is REPLAYED, not generated whole: `access-audit generate` holds a force in memory (8.4
GiB for 10,000 staff × 70 days), so a year of a large force cannot be made on this machine. The
force's STAFF × DAYS drops are generated once (or taken from --source) and written COPIES times
back to back (benchmarks/replay.py: timestamps shifted by whole days, event, incident and call
ids renamed per copy), so the history is COPIES × DAYS days of the same force's work.

Phases: `generate` the force (unless --source); `replay` it; `ingest` every drop into one home,
--batch-days drops per `Workspace.ingest` call (each its own transaction, as a backfill run in
parts would); then, --repeat times each, alternating, `Workspace.score()` of every day with each
engine ([scoring] chunk_days days per chunk; the home's [spark] master, local[2] by default). Every
score run re-scores every day, so each does the same work whatever ran before it. The summary gives
the measured figures and a projection to --project accesses from them (labelled as such).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import textwrap
from pathlib import Path

from phases import TREE_SAMPLER, run_phase

ENGINES = ("polars", "spark")

PHASE = TREE_SAMPLER + textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    phase, out, home, staff, days, seed, copies, batch_days, source, here, own = sys.argv[1:12]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    started = time.perf_counter()
    result = {"phase": phase}
    root = Path(out)
    base = Path(source) if source else root / "base"
    if phase == "generate":
        from datetime import date, timedelta
        from access_audit.generate import generate_force
        # the newest drop is yesterday's (ingest refuses drops dated more than a week ahead)
        made = generate_force(base, staff=int(staff), days=int(days), seed=int(seed),
                              start=date.today() - timedelta(days=int(days)),
                              file_format="parquet")
        result["accesses"] = made.rows["access_log"]
    elif phase == "replay":
        import polars as pl
        sys.path.insert(0, here)
        from replay import replay_drops
        drops = replay_drops(base, root / "drops", int(copies))
        result["drops"] = len(drops)
        result["first"], result["last"] = drops[0].name, drops[-1].name
        result["accesses"] = (
            pl.scan_parquet(str(root / "drops" / "*" / "access_log_*.parquet"))
            .select(pl.len()).collect().item()
        )
    else:
        from access_audit.workspace import Workspace
        workspace = Workspace.open(home)
        if phase == "ingest":
            drops = sorted(p for p in (root / "drops").iterdir() if p.is_dir())
            size = int(batch_days)
            batches, batch_cpu, rejected = [], [], 0
            for first in range(0, len(drops), size):
                began, cpu_began = time.perf_counter(), tree_usage()[1]
                report = workspace.ingest(drops[first : first + size])
                assert report.ok, report.failed
                rejected += sum(
                    load.rejected_rows for drop in report.loaded for load in drop.tables.values()
                )
                batches.append(round(time.perf_counter() - began, 1))
                batch_cpu.append(round(tree_usage()[1] - cpu_began, 1))
            result["drops"] = len(drops)
            result["batch_seconds"] = batches
            # CPU (user + sys) per batch: wall time is noise on a shared machine
            result["batch_cpu_seconds"] = batch_cpu
            result["rejected_rows"] = rejected
        else:
            engine = phase.split("-")[0]
            if own == "1":
                # this engine's own copy of the ingested home (the store by hard links: its files
                # are written once, never changed), so that both engines can score at once
                import shutil
                mine = Path(home).with_name(f"home-{engine}")
                shutil.rmtree(mine, ignore_errors=True)
                shutil.copytree(Path(home) / "store", mine / "store", copy_function=os.link,
                                ignore=shutil.ignore_patterns(".lock"))
                for item in Path(home).iterdir():
                    if item.name != "store":
                        copy = shutil.copytree if item.is_dir() else shutil.copy2
                        copy(item, mine / item.name)
                started = time.perf_counter()
                workspace = Workspace.open(mine)
            if engine == "spark":
                from access_audit.score.spark import spark_session
                spark_session(workspace.config.spark)
                result["session_seconds"] = round(time.perf_counter() - started, 1)
            scoring = time.perf_counter()
            marks = []
            # each step as it ends, so that a run cut short still shows its pace and memory
            steps = root / f"steps-{phase}.jsonl"
            steps.unlink(missing_ok=True)
            def progress(what: str, done: int, total: int) -> None:
                now = time.perf_counter()
                if what == "scoring days":  # (Spark also reports its passes)
                    marks.append(now)
                rss, cpu = tree_usage()
                step = {"step": what, "done": done, "of": total,
                        "seconds": round(now - scoring, 1), "cpu_seconds": round(cpu, 1),
                        "peak_mib": round(max(peak[0], rss) / 2**20)}
                with steps.open("a") as lines:
                    lines.write(json.dumps(step) + "\\n")
            report = workspace.score(engine=engine, progress=progress)
            result["score_seconds"] = time.perf_counter() - scoring
            result["chunk_seconds"] = [
                round(b - a, 1) for a, b in zip([scoring, *marks[:-1]], marks)
            ]
            result["events"] = report.events
            result["days"] = len(report.days)
            result["flags"] = report.flags
            result["alerts"] = report.alerts
            flags = workspace.scan("flags").select("flag_id", "alert", "score").collect()
            flags.write_parquet(root / f"flags-{engine}.parquet")
    sampling.set()
    result["seconds"] = round(time.perf_counter() - started, 1)
    rss_now, cpu = tree_usage()
    result["cpu_seconds"] = round(cpu, 1)
    result["peak_mib"] = round(max(peak[0], rss_now) / 2**20)
    print(json.dumps(result, default=str))
    """
)


def _median(runs: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(str(r[key])) for r in runs)


def _agreement(root: Path, engines: list[str]) -> str:
    import polars as pl

    if len(engines) < 2:
        return ""
    a, b = (pl.read_parquet(root / f"flags-{e}.parquet").sort("flag_id") for e in engines)
    if a["flag_id"].to_list() != b["flag_id"].to_list():
        return f"flags DIFFER: {a.height} ({engines[0]}) vs {b.height} ({engines[1]})"
    same_alerts = a["alert"].to_list() == b["alert"].to_list()
    gap = (a["score"] - b["score"]).abs().max()
    return (
        f"same {a.height:,} flag ids; alerts {'identical' if same_alerts else 'DIFFER'} "
        f"({int(a['alert'].sum()):,}); largest score difference {gap}"
    )


def _summary(
    args: argparse.Namespace,
    accesses: int,
    ingest: dict[str, object],
    runs: dict[str, list[dict[str, object]]],
) -> None:
    engines = [e for e in runs if runs[e]]
    first = runs[engines[0]][0]
    days, chunks = int(str(first["days"])), len(list(first["chunk_seconds"]))  # type: ignore[call-overload]
    print(
        f"\nbackfill: {accesses:,} accesses over {days} days ({args.copies} replayed copies of a "
        f"generated {args.staff:,}-staff × {args.days}-day force: dates shifted, ids renamed); "
        f"scored in {chunks} chunks; medians of {args.repeat} run(s) per engine, one process each"
    )
    print(f"{'':36}" + "".join(f"{e if e == 'polars' else 'spark local[2]':>16}" for e in engines))
    print(
        f"{'ingest (shared): wall s / CPU s':36}{ingest['seconds']:>10} / {ingest['cpu_seconds']}"
        f"   peak {ingest['peak_mib']} MiB, {len(list(ingest['batch_seconds']))} batches"  # type: ignore[call-overload]
    )
    for label, key in (
        ("explain + score: wall, s", "seconds"),
        ("  CPU (user + sys, process tree), s", "cpu_seconds"),
        ("  peak memory (process tree), MiB", "peak_mib"),
    ):
        print(f"{label:36}" + "".join(f"{_median(runs[e], key):>16.1f}" for e in engines))
    print(
        f"{'  per chunk (mean), wall s':36}"
        + "".join(f"{_median(runs[e], 'seconds') / chunks:>16.1f}" for e in engines)
    )
    if "spark" in engines:
        print(
            f"{'  Spark session start, s':36}{'':>16}"
            f"{_median(runs['spark'], 'session_seconds'):>16.1f}"
        )
    print(_agreement(Path(args.root), engines))
    factor = args.project / accesses
    print(
        f"\nPROJECTION (not measured) to {args.project:,} accesses: × {factor:.2f} "
        f"({args.project:,} / {accesses:,}) on the same force, time linear in days "
        f"(chunks of the same size), memory that of one chunk (as measured, not growing with days):"
    )
    ingest_cpu = float(str(ingest["cpu_seconds"])) * factor
    ingest_wall = float(str(ingest["seconds"])) * factor
    print(
        f"  ingest: {ingest_wall:,.0f} s wall, {ingest_cpu:,.0f} CPU-s, "
        f"peak {ingest['peak_mib']} MiB"
    )
    for e in engines:
        wall, cpu = _median(runs[e], "seconds") * factor, _median(runs[e], "cpu_seconds") * factor
        print(
            f"  {e}: explain + score {wall:,.0f} s wall ({wall / 60:.0f} min), {cpu:,.0f} CPU-s, "
            f"peak {_median(runs[e], 'peak_mib'):,.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=10_000, help="Staff of the generated force.")
    parser.add_argument("--days", type=int, default=70, help="Days of the generated force.")
    parser.add_argument("--seed", type=int, default=1, help="The generator's seed.")
    parser.add_argument("--copies", type=int, default=3, help="Replays of the force's days.")
    parser.add_argument(
        "--source", type=Path, default=None, help="Replay these drops instead of generating."
    )
    parser.add_argument("--batch-days", type=int, default=30, help="Drops per ingest call.")
    parser.add_argument("--repeat", type=int, default=1, help="Score runs per engine (medians).")
    parser.add_argument(
        "--engines", default="polars,spark", help="Comma-separated: polars, spark or both."
    )
    parser.add_argument("--project", type=int, default=100_000_000, help="Project to N accesses.")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the data here.")
    parser.add_argument(
        "--phases",
        default="generate,replay,ingest,score",
        help="Comma-separated phases: generate, replay, ingest, score, summary (with --workdir, "
        "later phases can be re-run; `summary` prints the table from the runs kept there).",
    )
    parser.add_argument(
        "--own-home",
        action="store_true",
        help="Score in a hard-linked copy of the ingested home per engine, so that one run per "
        "engine (--engines polars, --engines spark) can go at once.",
    )
    parser.add_argument(
        "--driver-memory",
        default="4g",
        help="[spark.options] spark.driver.memory of the home (local mode: the JVM's heap).",
    )
    args = parser.parse_args()
    engines = args.engines.split(",")
    phases = args.phases.split(",")
    if args.source is not None:
        phases = [p for p in phases if p != "generate"]
    with tempfile.TemporaryDirectory(prefix="access-audit-backfill-") as scratch:
        root = args.workdir or Path(scratch)
        args.root = root
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "access-audit.toml").write_text(
            f'[spark.options]\n"spark.driver.memory" = "{args.driver_memory}"\n', encoding="utf-8"
        )
        extra = (
            str(args.copies),
            str(args.batch_days),
            str(args.source or ""),
            str(Path(__file__).resolve().parent),
            "1" if args.own_home else "0",
        )
        # every phase's line is kept, so that a later `--phases score` can summarise
        log = root / "phases.jsonl"

        def record(result: dict[str, object]) -> None:
            print(json.dumps(result), flush=True)
            with log.open("a", encoding="utf-8") as lines:
                lines.write(json.dumps(result) + "\n")

        for phase in [p for p in phases if p not in ("score", "summary")]:
            record(run_phase(PHASE, phase, root, home, args, extra))
        if "score" in phases:
            for attempt in range(args.repeat):
                for engine in engines:
                    record(run_phase(PHASE, f"{engine}-{attempt}", root, home, args, extra))
        if "score" not in phases and "summary" not in phases:
            return
        lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        ingests = [line for line in lines if line["phase"] == "ingest"]
        # the last --repeat runs of each engine (from this invocation or earlier ones)
        runs = {
            engine: [line for line in lines if line["phase"].startswith(f"{engine}-")][
                -args.repeat :
            ]
            for engine in ENGINES
        }
        runs = {engine: done for engine, done in runs.items() if done}
        if not ingests or not runs:
            raise SystemExit(f"{log}: no ingest or score run to summarise yet")
        accesses = int(str(next(iter(runs.values()))[0]["events"]))
        _summary(args, accesses, ingests[-1], runs)


if __name__ == "__main__":
    main()
