"""The scoring rules: explanation kinds, indicator weights and texts, pattern settings — as data.

Defaults live in `rules.toml` beside this module; a force overrides any value in its home's
`access-audit.toml` under the same table names. Both are validated by the settings tree in
`access_audit.config` (unknown names and wrong types are errors); this module turns the validated
tree into the `Rules` the scoring code reads.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

import polars as pl

from access_audit.config import ExplanationSource, IndicatorScope, IndicatorSettings
from access_audit.errors import AccessAuditError
from access_audit.exprs import fmt as fmt  # noqa: PLC0414 - re-exported for the stages

if TYPE_CHECKING:
    from access_audit.config import Config

SOURCES: tuple[str, ...] = get_args(ExplanationSource)
WHEN: tuple[str, ...] = get_args(IndicatorScope)
_INDICATOR_FIELDS = frozenset(IndicatorSettings.model_fields)


@dataclass(frozen=True)
class ExplanationKind:
    name: str
    source: str
    text: str
    grace_before_hours: float
    grace_after_hours: float
    pattern: str | None = None


@dataclass(frozen=True)
class Indicator:
    name: str
    weight: float
    when: str
    text: str
    params: dict[str, Any]
    trigger: bool = False
    """A trigger makes an episode reviewable; other indicators only add to a triggered one."""
    peer_scope: str | None = None
    """The lookups its peer base rate is measured over ('unexplained', 'explained', 'any');
    by default the ones it applies to (`when`)."""

    def param(self, key: str) -> Any:
        return self.params[key]


@dataclass(frozen=True)
class Rules:
    scale: float
    alert_threshold: float
    lookback_days: int
    reexplain_days: int
    chunk_days: int
    refit_days: int
    explanations: tuple[ExplanationKind, ...]
    indicators: dict[str, Indicator]
    patterns: dict[str, Any]
    reviews: dict[str, Any]
    reports: dict[str, Any]
    learning: dict[str, Any]
    audit_gaps: dict[str, Any]
    peers: dict[str, Any]
    mined: dict[str, Any]
    """[mined]: `discounted` and, per mined kind, its settings (score/mined.py)."""
    version: str = "rules-default"
    """'rules-' and the start of the SHA-256 of the effective rules (defaults and the home's
    overrides, as canonical JSON): which rules scored a flag."""

    def explanation(self, source: str) -> list[ExplanationKind]:
        return [k for k in self.explanations if k.source == source]

    def weight(self, code: str) -> float:
        return self.indicators[code].weight


def load_rules(config: Config | None = None) -> Rules:
    """The scoring rules of a validated settings tree (the defaults in rules.toml if none)."""
    from access_audit.config import default_config

    settings = config if config is not None else default_config()
    scoring = settings.scoring
    kinds = tuple(
        ExplanationKind(name=name, **getattr(settings.explanations, name).model_dump())
        for name in type(settings.explanations).model_fields
    )
    return Rules(
        scale=scoring.scale,
        alert_threshold=scoring.alert_threshold,
        lookback_days=scoring.lookback_days,
        reexplain_days=scoring.reexplain_days,
        chunk_days=scoring.chunk_days,
        refit_days=scoring.refit_days,
        explanations=kinds,
        indicators={
            name: _indicator(name, spec) for name, spec in settings.indicators.named().items()
        },
        patterns=settings.patterns.model_dump(),
        reviews=settings.reviews.model_dump(),
        reports=settings.reports.model_dump(),
        learning=settings.learning.model_dump(),
        audit_gaps=settings.audit_gaps.model_dump(),
        peers=settings.peers.model_dump(),
        mined=settings.mined.model_dump(),
        version=rules_version(
            {
                **settings.model_dump(mode="json", include=set(RULES_SECTIONS)),
                "scoring_method": SCORING_METHOD,
            }
        ),
    )


SCORING_METHOD = 2
"""The scoring code's version, hashed into every rules version with the effective rules. Raise it
in any change of the code that changes what the same rules find, so a home's look-back is scored
again by the new code on its next run (as after a change of rules) and a flag's rules version
names the code that scored it. 2: chance crowds measured by person (issue 8)."""

RULES_SECTIONS = (
    "scoring",
    "explanations",
    "indicators",
    "patterns",
    "reviews",
    "reports",
    "learning",
    "audit_gaps",
    "peers",
    "mined",
)
"""The settings sections that make up the scoring rules (defaults in rules.toml)."""


def _indicator(name: str, spec: IndicatorSettings) -> Indicator:
    values = spec.model_dump()
    # an optional setting left unset is absent, not None
    params = {k: v for k, v in values.items() if k not in _INDICATOR_FIELDS and v is not None}
    return Indicator(
        name,
        spec.weight,
        spec.when,
        spec.text,
        params,
        trigger=spec.trigger,
        peer_scope=spec.peer_scope,
    )


def rules_version(raw: dict[str, Any]) -> str:
    """A short, stable name for the effective rules: 'rules-' and 12 hex digits of their hash."""
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "rules-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def render(template: str, **fields: pl.Expr) -> pl.Expr:
    """A rules text such as 'assigned to {via} as {role}' filled from expressions, per row."""
    names = re.findall(r"\{(\w+)\}", template)
    if not names:
        return pl.lit(template)
    missing = [n for n in names if n not in fields]
    if missing:
        raise AccessAuditError(f"rules: text {template!r} uses unknown field(s) {missing}")
    return fmt(re.sub(r"\{\w+\}", "{}", template), *[fields[n] for n in names])
