"""The models a day is scored against, fitted at fixed calendar anchors rather than every day.

Two parts of scoring are models of the whole force's look-back rather than sums of per-day
aggregates: the peers' pattern model (MinCovDet per peer group, score/patterns.py) and the
collaborative groups (a user–user similarity self-join and label propagation, score/mined.py).
Fitting them costs more than the rest of a day's scoring, and a model of 30 days barely moves
from one day to the next. So they are fitted on the look-back of an *anchor* day — every
`[scoring] refit_days` days counted from a fixed epoch (1970-01-01) — and every day up to the
next anchor is scored against the latest anchor's models: with that day's own features (each
user's lookups and shares over the day's own look-back, each group's working set), only the
peers' centres and spreads and the groups' memberships come from the anchor.

An anchor is a calendar day, not the first day of a run, so a day's models — and its flags — are
the same whether it is scored alone, in a chunk of any size, or night by night. `refit_days = 1`
fits every day on its own look-back. A day whose anchor holds no lookups (before the force's
first stored day) fits its own, as do anchor days themselves.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from access_audit.score.explain import Inputs
from access_audit.score.fit_cache import FitCache
from access_audit.score.lookback import Lookback
from access_audit.score.mined import collaborative_groups, enabled_kinds
from access_audit.score.patterns import PatternModel, fit_patterns, pattern_lookups
from access_audit.score.rules import Rules

EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Models:
    """What a day is scored against that is fitted on a whole look-back."""

    patterns: PatternModel
    groups: pl.DataFrame | None
    """The collaborative groups (user_id, group, members); None when that kind is disabled."""
    groups_key: str | None = None
    """The key of the groups' fit (score/fit_cache.py), when kept."""

    def fits(self) -> list[str]:
        """The keys of every fit these models were made from."""
        return [*self.patterns.fits, *([self.groups_key] if self.groups_key else [])]


def anchor_of(day: date, refit_days: int) -> date:
    """The latest anchor on or before `day`: anchors fall every `refit_days` days from EPOCH."""
    return day - timedelta(days=(day - EPOCH).days % refit_days)


def reach_days(rules: Rules) -> int:
    """How many days before a scored day its scoring reads: its look-back, and its anchor's."""
    return rules.lookback_days + rules.refit_days - 1


def fit_models(
    lookups: pl.LazyFrame,
    earlier: pl.LazyFrame,
    inputs: Inputs,
    rules: Rules,
    fits: FitCache | None = None,
) -> Models:
    """The models of a day's look-back: the peers' model of its `lookups` (`pattern_lookups` of
    the window, the day included) and the collaborative groups of its `earlier` lookups
    (score/lookback.py: the `lookback_days` strictly before the day, which is what the mined kinds
    learn from). `fits` holds the MinCovDet fits and collaborative groups already made
    (score/fit_cache.py) and keeps the new ones."""
    settings = enabled_kinds(rules).get("collaborative_group")
    patterns = fit_patterns(lookups, inputs.staff, rules, fits)
    if settings is None:
        return Models(patterns, None)
    if fits is None:
        return Models(patterns, collaborative_groups(earlier, settings))
    key, groups = fits.groups(earlier, settings, collaborative_groups)
    return Models(patterns, groups, key)


def anchored_models(
    day: date,
    lookback: Lookback,
    inputs: Inputs,
    rules: Rules,
    fitted: MutableMapping[date, Models],
    fits: FitCache | None = None,
) -> Models | None:
    """The models `day` is scored against, fitted at its anchor from `lookback`'s aggregates
    (which must hold the anchor's look-back), and kept in `fitted` for the next days; None when
    the day fits its own (it is an anchor, or its anchor has no lookups)."""
    anchor = anchor_of(day, rules.refit_days)
    if anchor == day:
        return None
    if anchor in fitted:
        return fitted[anchor]
    window = lookback.window(anchor, rules.lookback_days).lookups
    if window.filter(pl.col("day") == anchor).is_empty():
        return None
    lookups = pattern_lookups(window.lazy(), inputs.persons, rules)
    earlier = window.filter(pl.col("day") < anchor).lazy()
    fitted[anchor] = fit_models(lookups, earlier, inputs, rules, fits)
    return fitted[anchor]
