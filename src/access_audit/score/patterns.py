"""User-level pattern flags: what no single access shows.

For each user, over the look-back: how many unexplained person lookups they made, the share that
were of young women, and the share that opened contact details. Within each role (small roles
pooled), scikit-learn's robust covariance estimator (MinCovDet) models what peers normally do; a
user whose share sits far above their peers' robust centre — measured in robust standard deviations
— is flagged on each day they add to the pattern, with the day's contributing lookups as events.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from access_audit.score.fit_cache import FitCache
from access_audit.score.flags import (
    FLAG_EVENT_SCHEMA,
    FLAG_SCHEMA,
    flag_id_part,
    score_from_points,
)
from access_audit.score.robust import min_cov_det
from access_audit.score.rules import Rules, fmt

MODEL_VERSION = "pattern-mcd-1"
FEATURES = {
    "young_women": "of women aged {low}–{high}",
    "contact": "ones that opened contact details",
}
MIN_SPREAD = 0.02  # a peer group can look tighter than any real behaviour; never trust less spread
PRIOR = (
    10.0  # pseudo-lookups at the role's pooled share, so a handful of lookups cannot look skewed
)


# How a pattern flag's reason ends: the subjects its figure counts, ", "-separated, for the
# analyst to read. Code reads them from the flag's `pattern_subjects` column; only a flag stored
# before that column existed has them read back from this text (`score.pattern_scope`).
SUBJECTS_MARKER = "; the subjects: "


def _young_women(frame: pl.LazyFrame, persons: pl.LazyFrame, rules: Rules) -> pl.LazyFrame:
    low, high = rules.patterns["young_women_min_age"], rules.patterns["young_women_max_age"]
    people = persons.select("person_id", "sex", "date_of_birth")
    age = (pl.col("day") - pl.col("date_of_birth")).dt.total_days() / 365.25
    return (
        frame.join(people, left_on="record_id", right_on="person_id", how="left")
        .with_columns(young_women=(pl.col("sex") == "F") & age.is_between(low, high))
        .with_columns(pl.col("young_women").fill_null(False))
    )


def _lookups(context: pl.LazyFrame, persons: pl.LazyFrame, rules: Rules) -> pl.LazyFrame:
    """Unexplained person accesses, each with its features."""
    unexplained = context.filter(
        (pl.col("record_type") == "person")
        & pl.col("record_id").is_not_null()
        & ~pl.col("explained")
    ).with_columns(contact=pl.col("action") == "view_contact")
    return _young_women(unexplained, persons, rules)


def pattern_lookups(lookups: pl.LazyFrame, persons: pl.LazyFrame, rules: Rules) -> pl.LazyFrame:
    """The look-back's unexplained person lookups (score/lookback.py) with their features: the
    unit the pattern counts. One row per (user, subject, day)."""
    unexplained = lookups.filter((pl.col("record_type") == "person") & pl.col("unexplained"))
    return (
        _young_women(unexplained.select("user_id", "record_id", "day", "contact"), persons, rules)
        .group_by("user_id", "record_id", "day")
        .agg(pl.col("young_women", "contact").any())
    )


SMALL_ROLES = "(all small roles)"


@dataclass(frozen=True)
class PatternModel:
    """The peers' model a day's users are measured against: each role's peer group (`roles`:
    role -> pooled, small roles pooled) and, per peer group (`groups`), the pooled share of each
    feature (the prior) and its robust centre and spread. Fitted on one look-back's lookups (a
    day's own, or an anchor day's: score/anchors.py)."""

    roles: pl.DataFrame
    groups: pl.DataFrame
    fits: list[str] = field(default_factory=list)
    """The keys of the MinCovDet fits it was made from (score/fit_cache.py)."""


def _fit_group(
    matrix: np.ndarray, names: list[str], fits: FitCache
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """One peer group's robust centre and spread of each share (MinCovDet, through `fits`):
    never less spread than MIN_SPREAD; no spread at all (infinite) for a group too small to
    model. Also the key of the fit, if one was made."""
    centre = matrix.mean(axis=0)
    if len(matrix) < max(5, len(names) + 2):
        return centre, np.full(len(names), np.inf), None
    spread = np.full(len(names), MIN_SPREAD)
    varying = matrix.var(axis=0) > 1e-12
    if not varying.any():
        return centre, spread, None
    key, fitted = fits.fit(matrix[:, varying], min_cov_det)
    if fitted is None:
        # most peers identical (MCD's support has no spread): their median is the centre
        centre[varying] = np.median(matrix[:, varying], axis=0)
    else:
        location, covariance = fitted
        centre[varying] = location
        spread[varying] = np.sqrt(np.clip(np.diag(covariance), MIN_SPREAD**2, None))
    return centre, spread, key


def _per_user(lookups: pl.LazyFrame, staff: pl.LazyFrame) -> pl.DataFrame:
    """Each user's unexplained person lookups in the look-back and how many have each feature."""
    names = list(FEATURES)
    # The unit is a subject looked up on a day, not an audit row: one lookup writes several rows
    # (screens), and counting rows would make a handful of lookups look like a pattern.
    return (
        lookups.group_by("user_id")
        .agg(n=pl.len(), **{f"k_{n}": pl.col(n).sum() for n in names})
        .join(staff.select("user_id", "role"), on="user_id", how="left")
        # MinCovDet draws random subsets of rows by position: a fixed row order makes its
        # robust centre, and so the flags, the same on every run and in every engine
        .sort("user_id")
        .collect()
    )


def _shares() -> list[pl.Expr]:
    """Each user's share of each feature, drawn towards their peer group's pooled share."""
    return [
        ((pl.col(f"k_{n}") + PRIOR * pl.col(f"prior_{n}")) / (pl.col("n") + PRIOR)).alias(n)
        for n in FEATURES
    ]


def fit_patterns(
    lookups: pl.LazyFrame, staff: pl.LazyFrame, rules: Rules, fits: FitCache | None = None
) -> PatternModel:
    """The peers' model of a look-back's `pattern_lookups`; `fits` are the MinCovDet fits
    already made (score/fit_cache.py), none when not given."""
    return _fit(_per_user(lookups, staff), rules, fits)


def _fit(per_user: pl.DataFrame, rules: Rules, fits: FitCache | None = None) -> PatternModel:
    fits = fits if fits is not None else FitCache()
    names = list(FEATURES)
    per_user = per_user.with_columns(
        pooled=pl.when(pl.len().over("role") >= rules.patterns["min_role_users"])
        .then(pl.col("role"))
        .otherwise(pl.lit(SMALL_ROLES))
    )
    per_user = per_user.with_columns(
        **{
            f"prior_{n}": pl.col(f"k_{n}").sum().over("pooled") / pl.col("n").sum().over("pooled")
            for n in names
        }
    ).with_columns(_shares())
    rows = []
    keys = []
    for (pooled,), group in per_user.partition_by(
        "pooled", as_dict=True, maintain_order=True
    ).items():
        centre, spread, key = _fit_group(group.select(names).to_numpy(), names, fits)
        if key is not None:
            keys.append(key)
        rows.append(
            {
                "pooled": pooled,
                **{f"prior_{n}": group[f"prior_{n}"][0] for n in names},
                **{f"centre_{n}": float(centre[i]) for i, n in enumerate(names)},
                **{f"spread_{n}": float(spread[i]) for i, n in enumerate(names)},
            }
        )
    schema = {
        "pooled": pl.String,
        **{f"{what}_{n}": pl.Float64 for what in ("prior", "centre", "spread") for n in names},
    }
    return PatternModel(
        roles=per_user.select("role", "pooled").unique(maintain_order=True),
        groups=pl.DataFrame(rows, schema=schema, orient="row"),
        fits=sorted(set(keys)),
    )


def _robust_z(per_user: pl.DataFrame, model: PatternModel) -> pl.DataFrame:
    """Each user's shares against their peer group's robust centre, in standard deviations: the
    smaller of the peers' robust spread and the binomial error of the user's own count, so that
    neither a tight peer group nor a handful of lookups makes a pattern. A user whose role the
    model has not seen is measured against the pooled small roles; none if it has no such group."""
    known = model.roles.with_columns(known=pl.lit(True))
    matched = per_user.join(known, on="role", how="left", nulls_equal=True).with_columns(
        pooled=pl.when(pl.col("known")).then(pl.col("pooled")).otherwise(pl.lit(SMALL_ROLES))
    )
    measured = matched.join(model.groups, on="pooled", nulls_equal=True, maintain_order="left")
    z = {}
    for n in FEATURES:
        p = pl.col(f"centre_{n}").clip(0.005, 0.995)
        peers = (pl.col(n) - pl.col(f"centre_{n}")) / pl.col(f"spread_{n}")
        binomial = (pl.col(f"k_{n}") - pl.col("n") * p) / (pl.col("n") * p * (1 - p)).sqrt()
        z[f"z_{n}"] = pl.min_horizontal(peers, binomial)
    return measured.with_columns(_shares()).with_columns(**z)


def _subjects_behind(lookups: pl.LazyFrame, candidates: pl.LazyFrame) -> pl.DataFrame:
    """The subjects a pattern's figure counts (the analyst checks each one): per flagged user,
    those of their unexplained look-back lookups that have the flagged feature."""
    return (
        lookups.join(candidates.select("user_id", "feature"), on="user_id")
        .filter(
            pl.when(pl.col("feature") == "young_women")
            .then(pl.col("young_women"))
            .otherwise(pl.col("contact"))
        )
        .group_by("user_id")
        .agg(subjects=pl.col("record_id").unique().sort())
        .collect()
    )


def patterns(
    targets: pl.LazyFrame,
    context: pl.LazyFrame,
    persons: pl.LazyFrame,
    staff: pl.LazyFrame,
    rules: Rules,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pattern flags for the target days, and their events, from the look-back's accesses
    (`context`, with their `explained` flag)."""
    from access_audit.score.lookback import day_lookups

    lookups = pattern_lookups(day_lookups(context), persons, rules)
    return patterns_from(targets, lookups, persons, staff, rules)


def patterns_from(
    targets: pl.LazyFrame,
    lookups: pl.LazyFrame,
    persons: pl.LazyFrame,
    staff: pl.LazyFrame,
    rules: Rules,
    model: PatternModel | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pattern flags for the target days from the look-back's `pattern_lookups`, each user
    measured against `model` (fitted on these lookups when None)."""
    settings = rules.patterns
    names = list(FEATURES)
    per_user = _per_user(lookups, staff)
    if per_user.is_empty():
        return pl.DataFrame(schema=FLAG_SCHEMA), pl.DataFrame(schema=FLAG_EVENT_SCHEMA)
    measured = _robust_z(per_user, model or _fit(per_user, rules))
    threshold = float(settings["threshold"])
    candidates = (
        measured.filter(pl.col("n") >= settings["min_lookups"])
        .unpivot(
            index=["user_id", "role", "n", *[f"k_{n}" for n in names]],
            on=[f"z_{n}" for n in names],
            variable_name="feature",
            value_name="z",
        )
        .with_columns(feature=pl.col("feature").str.strip_prefix("z_"))
        .filter(pl.col("z") >= threshold)
        .sort("z", descending=True)
        .unique("user_id", keep="first")
    )
    if candidates.is_empty():
        return pl.DataFrame(schema=FLAG_SCHEMA), pl.DataFrame(schema=FLAG_EVENT_SCHEMA)
    behind = _subjects_behind(lookups, candidates.lazy())
    centres = measured.select("user_id", *[f"centre_{n}" for n in names])
    candidates = candidates.join(centres, on="user_id").join(behind, on="user_id", how="left")
    contributing = (
        _lookups(targets, persons, rules)
        .join(candidates.lazy().select("user_id", "feature"), on="user_id")
        .filter(
            pl.when(pl.col("feature") == "young_women")
            .then(pl.col("young_women"))
            .otherwise(pl.col("contact"))
        )
        .collect()
    )
    low, high = settings["young_women_min_age"], settings["young_women_max_age"]
    lookback = rules.lookback_days
    describe = {n: text.format(low=low, high=high) for n, text in FEATURES.items()}
    what = pl.col("feature").replace_strict(describe, return_dtype=pl.String)
    per_day = contributing.group_by("user_id", "day").agg(
        first_access_at=pl.col("occurred_at").min(),
        last_access_at=pl.col("occurred_at").max(),
        event_count=pl.len(),
    )
    points = (settings["base_points"] + settings["points_per_z"] * (pl.col("z") - threshold)).clip(
        upper_bound=settings["max_points"]
    )
    flags = (
        per_day.join(candidates, on="user_id")
        .with_columns(points=points)
        .with_columns(score=score_from_points(pl.col("points"), rules.scale))
    )
    flags = flags.with_columns(
        centre_value=pl.when(pl.col("feature") == "young_women")
        .then(pl.col("centre_young_women"))
        .otherwise(pl.col("centre_contact"))
    ).with_columns(
        text=fmt(
            # the unit counted is a subject looked up on a day (one lookup writes several rows)
            "{} of the {} lookups they made without explanation (a subject on a day) in the {} "
            "days {} to {} were {}; "
            "peers' robust centre is {}% ({} robust standard deviations above)"
            + SUBJECTS_MARKER
            + "{}",
            pl.when(pl.col("feature") == "young_women")
            .then(pl.col("k_young_women"))
            .otherwise(pl.col("k_contact")),
            "n",
            # the look-back and the day itself: the window the figure counted over
            pl.lit(lookback + 1),
            (pl.col("day") - pl.duration(days=lookback)).dt.strftime("%Y-%m-%d"),
            pl.col("day").dt.strftime("%Y-%m-%d"),
            what,
            (pl.col("centre_value") * 100).round(1),
            pl.col("z").round(1),
            pl.col("subjects").list.join(", "),
        )
    )
    identity = fmt(
        "F{}-{}-pattern-{}",
        pl.col("day").dt.strftime("%Y%m%d"),
        flag_id_part("user_id"),
        flag_id_part("feature"),
    )
    out = flags.select(
        flag_id=identity,
        kind=pl.lit("pattern"),
        user_id="user_id",
        subject_type=pl.lit(None, dtype=pl.String),
        subject_id=pl.lit(None, dtype=pl.String),
        person_id=pl.lit(None, dtype=pl.String),
        first_access_at="first_access_at",
        last_access_at="last_access_at",
        score="score",
        rule_score="score",
        points="points",
        alert=pl.col("score") >= rules.alert_threshold,
        reasons=pl.concat_list(
            pl.struct(code=fmt("pattern_{}", "feature"), text="text", weight=pl.lit(1.0))
        ),
        event_count=pl.col("event_count").cast(pl.Int64),
        unexplained_count=pl.col("event_count").cast(pl.Int64),
        model_version=pl.lit(MODEL_VERSION),
        note=pl.lit(None, dtype=pl.String),
        rules_version=pl.lit(rules.version),
        cleared_at=pl.lit(None, dtype=FLAG_SCHEMA["cleared_at"]),
        pattern_subjects="subjects",
        pattern_lookback_days=pl.lit(lookback, dtype=FLAG_SCHEMA["pattern_lookback_days"]),
        day="day",
    )
    events = contributing.join(
        candidates.select("user_id", "feature"), on=["user_id", "feature"]
    ).select(flag_id=identity, system="system", event_id="event_id", day="day")
    return out.cast(FLAG_SCHEMA), events.cast(FLAG_EVENT_SCHEMA)
