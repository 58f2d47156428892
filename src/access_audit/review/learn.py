"""Learning from decisions: a scikit-learn model of which flags analysts uphold re-ranks new ones.

Features are each flag's rule score and its points per indicator (its reasons' shares of its
points), so the model re-weighs the rules' own evidence rather than inventing new evidence.
Labels come from closed reviews: misconduct found (any upheld outcome, including 'would not have
been dismissed') is 1; no case to answer and legitimate purpose are 0. A model is trained only
from enough decisions of both kinds, evaluated on held-out decisions, stored as JSON
(coefficients, not a pickle) under `models/` with a version number, and applied to new flags by
the scoring stage; every flag records the version that scored it. Without a model the rule-based
score stands.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from access_audit.errors import AccessAuditError
from access_audit.review import OUTCOMES, UPHELD
from access_audit.review.queue import current_reviews

MISCONDUCT = (*UPHELD, "would_not_have_been_dismissed")
RULE_SCORE = "rule_score"
"""The rules' own score is a feature too: the model refines the ranking rather than replacing it."""
NOT_MISCONDUCT = tuple(o for o in OUTCOMES if o not in MISCONDUCT)


@dataclass(frozen=True)
class LearnedModel:
    version: str
    features: list[str]
    coefficients: list[float]
    intercept: float
    scale: list[float]
    trained_at: str
    decisions: int
    upheld: int
    holdout: dict[str, float | int | None]
    blend: float = 0.5
    """The learned probability's share of the score; the rest stays the rules' score, so evidence
    the decisions never covered (a scenario nobody has reviewed yet) keeps its weight."""


def features(flags: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Points per indicator code for each flag: one column per name, zero when absent."""
    if RULE_SCORE not in names:
        names = [RULE_SCORE, *names]
    long = (
        flags.select("flag_id", "points", "reasons")
        .explode("reasons")
        .with_columns(
            code=pl.col("reasons").struct.field("code"),
            value=pl.col("reasons").struct.field("weight") * pl.col("points"),
        )
        .filter(pl.col("code").is_in(names))
        .group_by("flag_id", "code")
        .agg(pl.col("value").sum())
    )
    wide = long.pivot(on="code", index="flag_id", values="value")
    missing = [n for n in names if n not in wide.columns and n != RULE_SCORE]
    return (
        flags.select("flag_id", RULE_SCORE)
        .join(wide.drop(RULE_SCORE, strict=False), on="flag_id", how="left")
        .with_columns([pl.lit(0.0).alias(n) for n in missing])
        .select("flag_id", *names)
        .fill_null(0.0)
        .cast({n: pl.Float64 for n in names})
    )


def training_set(flags: pl.LazyFrame, reviews: pl.LazyFrame, names: list[str]) -> pl.DataFrame:
    decided = current_reviews(reviews).filter(
        (pl.col("status") == "closed") & pl.col("outcome").is_not_null()
    )
    labelled = (
        flags.join(decided.select("flag_id", "outcome"), on="flag_id")
        .with_columns(label=pl.col("outcome").is_in(MISCONDUCT).cast(pl.Int8))
        .collect()
    )
    return features(labelled, names).join(labelled.select("flag_id", "label"), on="flag_id")


def train(
    data: pl.DataFrame,
    names: list[str],
    version: str,
    min_decisions: int,
    min_per_class: int,
    blend: float = 0.5,
) -> LearnedModel:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    labels = data["label"].to_numpy()
    upheld = int(labels.sum())
    if data.height < min_decisions or min(upheld, data.height - upheld) < min_per_class:
        raise AccessAuditError(
            f"not enough decisions to learn from: {data.height} closed flag(s), {upheld} upheld "
            f"(need {min_decisions}, with at least {min_per_class} upheld and not upheld); "
            "the rule-based score stands"
        )
    matrix = data.select(names).to_numpy()
    scale = np.maximum(matrix.max(axis=0), 1.0)
    x = matrix / scale
    x_train, x_test, y_train, y_test = train_test_split(
        x, labels, test_size=0.3, random_state=0, stratify=labels
    )
    held = LogisticRegression(class_weight="balanced", max_iter=2000).fit(x_train, y_train)
    p_test = held.predict_proba(x_test)[:, 1]
    both = len(set(y_test.tolist())) == 2
    holdout: dict[str, float | int | None] = {
        "decisions": len(y_test),
        "upheld": int(y_test.sum()),
        "roc_auc": float(roc_auc_score(y_test, p_test)) if both else None,
        "average_precision": float(average_precision_score(y_test, p_test)) if both else None,
    }
    final = LogisticRegression(class_weight="balanced", max_iter=2000).fit(x, labels)
    return LearnedModel(
        version=version,
        features=names,
        coefficients=[float(c) for c in final.coef_[0]],
        intercept=float(final.intercept_[0]),
        scale=[float(s) for s in scale],
        trained_at=datetime.now(UTC).isoformat(),
        decisions=data.height,
        upheld=upheld,
        holdout=holdout,
        blend=blend,
    )


def apply_model(flags: pl.DataFrame, model: LearnedModel) -> pl.DataFrame:
    """Re-rank: `score` blends the rules' score with 100 x the model's probability of misconduct;
    `rule_score` stays as it was."""
    if flags.is_empty():
        return flags
    matrix = features(flags, model.features).select(model.features).to_numpy()
    logits = (matrix / np.array(model.scale)) @ np.array(model.coefficients) + model.intercept
    probability = 1 / (1 + np.exp(-logits))
    return flags.with_columns(
        score=(
            (1 - model.blend) * pl.col(RULE_SCORE) + model.blend * pl.Series(100 * probability)
        ).round(2),
        model_version=pl.lit(model.version),
    )


class ModelStore:
    """`models/learned-vN.json` files and a CURRENT pointer, written atomically, owner-only."""

    def __init__(self, folder: Path):
        self.folder = folder

    def current(self) -> LearnedModel | None:
        pointer = self.folder / "CURRENT"
        if not pointer.exists():
            return None
        return self.load(pointer.read_text(encoding="utf-8").strip())

    def load(self, version: str) -> LearnedModel:
        path = self.folder / f"{version}.json"
        if not path.exists():
            raise AccessAuditError(f"no model {version} in {self.folder}")
        return LearnedModel(**json.loads(path.read_text(encoding="utf-8")))

    def next_version(self) -> str:
        numbers = [
            int(p.stem.removeprefix("learned-v"))
            for p in self.folder.glob("learned-v*.json")
            if p.stem.removeprefix("learned-v").isdigit()
        ]
        return f"learned-v{max(numbers, default=0) + 1}"

    def save(self, model: LearnedModel) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / f"{model.version}.json"
        _atomic(path, json.dumps(asdict(model), indent=1))
        _atomic(self.folder / "CURRENT", model.version + "\n")
        return path

    def retire(self) -> None:
        """Back to the rule-based score (the model files stay, for the record)."""
        (self.folder / "CURRENT").unlink(missing_ok=True)


def _atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
