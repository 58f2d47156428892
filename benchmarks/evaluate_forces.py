"""`make evaluate`: the ranking measured on two forces, side by side.

Not a test: it generates the public independent force (Northshire, ../shared/forces/northshire.py,
written apart from this project) and our own (`access-audit generate`), runs `access-audit nightly`
once per drop, oldest first (one drop a night, as production does), then `access-audit evaluate
--truth … --format json` on each, and prints the figures side by side with the largest families of
legitimate flags in the daily top K.

    .venv/bin/python benchmarks/evaluate_forces.py --northshire ../shared/forces/northshire.py

Nothing here is tuned against either force: the figures are what the default rules give.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mined_coverage import home_coverage
from mined_coverage import table as coverage_table

BIN = Path(sys.executable).parent
ACCESS_AUDIT = str(BIN / "access-audit")
MEASURES = [
    ("planted episodes caught within the daily budget", "caught"),
    ("mean daily R-precision", "mean_r_precision"),
    ("episode pair AUC", "episode_roc_auc"),
    ("flags a day (queue entries when grouped)", "flags_per_day"),
    ("legitimate share of the daily top K", "share_top_k_legitimate"),
    ("PC B-type episodes, worst rank", "pc_b_worst_rank"),
]


def run(args: Sequence[str], log: Path | None = None) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if log is not None:
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(args)}\n{done.stderr[-2000:]}")
    return done.stdout


def nightly_each_drop(drops: Path, home: Path, logs: Path) -> int:
    folders = sorted(p for p in drops.iterdir() if p.is_dir())
    logs.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        run(
            [ACCESS_AUDIT, "--home", str(home), "nightly", "--no-progress", str(folder)],
            logs / f"nightly-{folder.name}.txt",
        )
    return len(folders)


def evaluate(home: Path, truth: Path, budget: int, queue: str) -> dict[str, object]:
    """`queue` is 'flags' (the budget counts flags) or 'grouped' (it counts the queue's entries:
    a user, or a crowd's subject, once a day)."""
    out = run(
        [
            ACCESS_AUDIT,
            "--home",
            str(home),
            "evaluate",
            "--truth",
            str(truth),
            *["--budget", str(budget), "--format", "json", f"--{queue}"],
        ]
    )
    result: dict[str, object] = json.loads(out)
    return result


def generate_northshire(script: Path, out: Path, seed: int) -> None:
    run([sys.executable, str(script), str(out), "--seed", str(seed)])


def generate_own(out: Path, staff: int, days: int, seed: int) -> None:
    run(
        [
            ACCESS_AUDIT,
            "generate",
            str(out),
            "--staff",
            str(staff),
            "--days",
            str(days),
            "--seed",
            str(seed),
            "--no-progress",
        ]
    )


def cell(overall: dict[str, object], key: str) -> str:
    if key == "caught":
        return f"{overall['caught_within_budget']} / {overall['episodes']}"
    value = overall.get(key)
    if value is None:
        return "n/a"
    if key == "share_top_k_legitimate":
        return f"{float(value):.1%}"  # type: ignore[arg-type]
    if isinstance(value, float):
        return f"{value:.3f}" if key != "flags_per_day" else f"{value:.1f}"
    return str(value)


def side_by_side(results: dict[str, dict[str, object]]) -> str:
    names = list(results)
    lines = ["| measure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, key in MEASURES:
        row = [cell(results[n]["overall"], key) for n in names]  # type: ignore[arg-type]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def families(name: str, result: dict[str, object], top: int) -> str:
    rows: list[dict[str, object]] = result.get("false_positives", [])  # type: ignore[assignment]
    lines = [f"\n{name}: largest families of legitimate flags in the daily top K"]
    lines += [f"  {r['flags']:>5}  {r['role']:<24} {r['reasons']}" for r in rows[:top]]
    return "\n".join(lines)


def check_config(path: Path) -> None:
    """Exit with one line if `path` is not a valid access-audit.toml, before any force is made."""
    import tomllib

    from access_audit.config import parse_config
    from access_audit.errors import AccessAuditError

    if not path.is_file():
        sys.exit(f"{path}: not a file (--config takes an access-audit.toml)")
    try:
        parse_config(tomllib.loads(path.read_text(encoding="utf-8")), source=str(path))
    except (AccessAuditError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        sys.exit(f"error: {path}: {exc}" if not str(exc).startswith(str(path)) else f"error: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--northshire",
        type=Path,
        default=Path("../shared/forces/northshire.py"),
        help="the Northshire force's generator script",
    )
    parser.add_argument("--northshire-seed", type=int, default=1, help="Northshire's seed")
    parser.add_argument("--staff", type=int, default=1500, help="our own force's staff")
    parser.add_argument("--days", type=int, default=21, help="our own force's days")
    parser.add_argument("--seed", type=int, default=11, help="our own force's seed")
    parser.add_argument("--budget", type=int, default=20, help="flags an analyst reads a day")
    parser.add_argument("--work", type=Path, help="keep the forces and homes here (default: temp)")
    parser.add_argument(
        "--only", choices=["Northshire", "own"], help="evaluate one force only (default: both)"
    )
    parser.add_argument("--families", type=int, default=8, help="false-positive families shown")
    parser.add_argument(
        "--config",
        type=Path,
        help="an access-audit.toml copied into each home before its first night (rules to try)",
    )
    args = parser.parse_args()
    if args.config is not None:
        check_config(args.config)
    if not args.northshire.exists():
        sys.exit(f"{args.northshire}: no such file (set NORTHSHIRE=path/to/northshire.py)")
    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch:
        work = args.work or Path(scratch)
        forces = {
            "Northshire": lambda out: generate_northshire(
                args.northshire, out, args.northshire_seed
            ),
            "own generator": lambda out: generate_own(out, args.staff, args.days, args.seed),
        }
        results = {}
        coverages = {}
        if args.only:
            forces = {n: f for n, f in forces.items() if n.startswith(args.only)}
        folders = [work / name.replace(" ", "-") for name in forces]
        used = [folder for folder in folders if folder.is_dir() and any(folder.iterdir())]
        if used:
            # An earlier run's drops and homes would be re-used and the figures would be stale.
            sys.exit(f"{used[0]} is not empty: give --work a new or empty folder")
        for name, make in forces.items():
            folder = work / name.replace(" ", "-")
            make(folder / "drops")
            if args.config is not None:
                (folder / "home").mkdir(parents=True)
                shutil.copyfile(args.config, folder / "home" / "access-audit.toml")
            nights = nightly_each_drop(folder / "drops", folder / "home", folder / "logs")
            print(f"{name}: nightly run on {nights} drops", flush=True)
            truth = folder / "drops" / "truth.csv"
            results[name] = evaluate(folder / "home", truth, args.budget, "flags")
            grouped = evaluate(folder / "home", truth, args.budget, "grouped")
            results[f"{name}, grouped queue"] = grouped
            coverages[name] = home_coverage(folder / "home")
        print(f"\nBudget K = {args.budget} a day: flags, or entries of the grouped queue\n")
        print(side_by_side(results))
        for name, result in results.items():
            if not name.endswith("grouped queue"):
                print(families(name, result, args.families))
        for name, frame in coverages.items():
            print(coverage_table(name, frame))


if __name__ == "__main__":
    main()
