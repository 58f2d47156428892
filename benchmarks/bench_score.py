"""Benchmark: the nightly run for one day, and explain + score over every stored access, against the
bare explanation join written as one DuckDB hash join over the same Parquet.

Not a test: it prints wall time and peak memory (RSS) per phase, each phase in its own process.

    .venv/bin/python benchmarks/bench_score.py --staff 10000 --days 70   # about 10 million accesses

Phases: generate the force; load all but the last day (ingest + score, not timed as a target);
`nightly` on the last day's drop; `score_days` over every day; the bare DuckDB join.
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
    from pathlib import Path
    phase, out, home, staff, days, seed = sys.argv[1:7]
    started = time.perf_counter()
    result = {}
    if phase == "generate":
        from access_audit.generate import generate_force
        made = generate_force(Path(out), staff=int(staff), days=int(days), seed=int(seed),
                              file_format="parquet")
        result["rows"] = made.rows
    else:
        from access_audit.workspace import Workspace
        workspace = Workspace.open(home)
        drops = sorted(p for p in Path(out).iterdir() if p.is_dir())
        if phase == "prepare":
            assert workspace.ingest(drops[:-1]).ok
            report = workspace.score()
            result["events"] = report.events
        elif phase == "nightly":
            report = workspace.nightly(drops[-1:])
            assert report.ok
            result["events_scored"] = report.score.events
            result["days_scored"] = len(report.score.days)
            result["alerts"] = report.score.alerts
            result["explained"] = report.score.explained
        elif phase == "explain_all":
            from access_audit.score import EVENT_COLUMNS, _inputs, load_rules
            from access_audit.score.explain import explain
            from access_audit.tables import scan_stored
            gen = workspace.generation()
            scan = lambda name: scan_stored(gen.path, name)
            events = scan("access_events").select(EVENT_COLUMNS)
            explained = explain(_inputs(scan, events), workspace.rules, events).collect()
            result["explanations"] = explained.height
        elif phase == "score_all":
            report = workspace.score()
            result["events"] = report.events
            result["flags"] = report.flags
            result["days"] = len(report.days)
        elif phase == "duckdb_join":
            import duckdb
            gen = workspace.generation().path
            connection = duckdb.connect()
            sql = '''
                WITH grants AS (
                    SELECT a.user_id, ip.person_id AS record_id, a.assigned_from, a.assigned_to
                    FROM read_parquet($assignments) a
                    JOIN read_parquet($links) ip USING (incident_id)
                    WHERE a.user_id IS NOT NULL
                )
                SELECT count(DISTINCT (e.system, e.event_id))
                FROM read_parquet($events, hive_partitioning = true) e
                JOIN grants g ON e.user_id = g.user_id AND e.record_id = g.record_id
                WHERE e.occurred_at BETWEEN g.assigned_from - INTERVAL 48 HOUR
                      AND coalesce(g.assigned_to, TIMESTAMPTZ '9999-01-01') + INTERVAL 24 HOUR
            '''
            started = time.perf_counter()
            explained = connection.execute(sql, {
                "assignments": f"{gen}/assignments/*.parquet",
                "links": f"{gen}/incident_persons/*.parquet",
                "events": f"{gen}/access_events/**/*.parquet",
            }).fetchone()[0]
            result["explained_by_assignment"] = explained
    result["seconds"] = time.perf_counter() - started
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["phase"] = phase
    print(json.dumps(result, default=str))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=70)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the data here.")
    parser.add_argument(
        "--phases",
        default="generate,prepare,nightly,explain_all,score_all,duckdb_join",
        help="Comma-separated phases to run (with --workdir, later phases can be re-run).",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="access-audit-bench-") as scratch:
        root = args.workdir or Path(scratch)
        out, home = root / "drops", root / "home"
        results = {}
        for phase in args.phases.split(","):
            results[phase] = run_phase(PHASE, phase, out, home, args)
            print(json.dumps(results[phase]), flush=True)
        if set(results) != {
            "generate",
            "prepare",
            "nightly",
            "explain_all",
            "score_all",
            "duckdb_join",
        }:
            return
        join = float(results["duckdb_join"]["seconds"])  # type: ignore[arg-type]
        ratio = float(results["score_all"]["seconds"]) / join  # type: ignore[arg-type]
        explain_ratio = float(results["explain_all"]["seconds"]) / join  # type: ignore[arg-type]
        print(
            f"\nnightly, one day of {args.staff} staff: {results['nightly']['seconds']:.1f}s, "
            f"peak {results['nightly']['peak_mib']:.0f} MiB, "
            f"{results['nightly']['events_scored']} accesses re-scored"
            f"\nexplain + score (re-score every stored day), "
            f"{results['score_all']['events']} accesses: "
            f"{results['score_all']['seconds']:.1f}s, "
            f"peak {results['score_all']['peak_mib']:.0f} MiB"
            f"\nexplain alone (every kind): {results['explain_all']['seconds']:.1f}s, "
            f"peak {results['explain_all']['peak_mib']:.0f} MiB"
            f"\nbare DuckDB explanation join: {results['duckdb_join']['seconds']:.2f}s, "
            f"peak {results['duckdb_join']['peak_mib']:.0f} MiB"
            f"\nratio to the bare join: explain + score {ratio:.1f}x, explain alone "
            f"{explain_ratio:.1f}x"
        )


if __name__ == "__main__":
    main()
