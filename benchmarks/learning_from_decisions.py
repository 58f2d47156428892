"""Does learning from analysts' decisions improve the ranking? The generator's truth stands in for
the analysts.

A force is generated and run through the nightly job. For the first weeks, an analyst works the top
K flags of each day and closes each one: misconduct (management action) when it holds planted
misuse, no case to answer otherwise. `learn` trains the re-ranking model on those decisions and
re-scores; the later weeks are evaluated before and after, with the same metrics as `evaluate`.

    .venv/bin/python benchmarks/learning_from_decisions.py --staff 3000 --weeks 6 --reviewed-weeks 3
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import timedelta
from pathlib import Path

import polars as pl

from access_audit.generate import generate_force
from access_audit.workspace import Workspace

METRICS = (
    "share_caught_within_budget",
    "mean_precision_at_k",
    "mean_r_precision",
    "episode_roc_auc",
    "share_legitimate_flagged",
    "pc_b_worst_rank",
)


def simulated_decisions(workspace: Workspace, truth: Path, days: list, budget: int) -> pl.DataFrame:
    """The analyst's decisions on the top `budget` flags of each day, taken from the truth."""
    planted = pl.read_csv(truth, infer_schema=False).select("system", "event_id")
    flags = workspace.scan("flags").filter(pl.col("day").is_in(days)).collect()
    top = (
        flags.sort(["day", "score", "rule_score", "flag_id"], descending=[False, True, True, False])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("day"))
        .filter(pl.col("rank") <= budget)
    )
    holds = (
        workspace.scan("flag_events")
        .join(top.lazy().select("flag_id"), on="flag_id", how="semi")
        .join(planted.lazy(), on=["system", "event_id"], how="semi")
        .select("flag_id")
        .unique()
        .collect()
        .with_columns(misconduct=pl.lit(True))
    )
    return top.join(holds, on="flag_id", how="left").select(
        "flag_id",
        status=pl.lit("closed"),
        outcome=pl.when(pl.col("misconduct"))
        .then(pl.lit("management_action"))
        .otherwise(pl.lit("no_case_to_answer")),
        note=pl.lit("simulated from the generator's truth"),
        reviewer=pl.lit("simulated-analyst"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staff", type=int, default=3000)
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--reviewed-weeks", type=int, default=3)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="access-audit-learn-") as scratch:
        root = Path(scratch)
        force = generate_force(
            root / "drops", staff=args.staff, days=7 * args.weeks, seed=args.seed
        )
        workspace = Workspace.open(root / "home")
        assert workspace.nightly(force.drops).ok
        days = workspace.stored_days()
        split = days[0] + timedelta(days=7 * args.reviewed_weeks)
        reviewed = [d for d in days if d < split]
        later = [d for d in days if d >= split]
        before = workspace.evaluate(force.truth_path, args.budget, later).overall
        decided = workspace.review_many(
            simulated_decisions(workspace, force.truth_path, reviewed, args.budget)
        )
        model = workspace.learn()
        after = workspace.evaluate(force.truth_path, args.budget, later).overall
    print(
        f"{decided} decisions on the top {args.budget} flags a day of the first "
        f"{args.reviewed_weeks} weeks; {model.version}: {model.upheld} upheld; held-out "
        f"ROC AUC {model.holdout['roc_auc']}, average precision "
        f"{model.holdout['average_precision']}"
    )
    print(f"evaluated on the later {len(later)} days ({later[0]} to {later[-1]}):")
    print(f"{'metric':32} {'rules only':>12} {'after learning':>15}")
    for metric in METRICS:
        print(f"{metric:32} {_show(before[metric]):>12} {_show(after[metric]):>15}")


def _show(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
