"""The scoring rules: explanation kinds, indicator weights and texts, pattern settings — as data.

Defaults live in `rules.toml` beside this module; a force overrides any value in its home's
`access-audit.toml` under the same table names. Unknown names are an error, not a silent no-op.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import polars as pl

from access_audit.config import Config
from access_audit.errors import AccessAuditError

SOURCES = ("user_assignment", "team_assignment", "call", "created_incident", "justification")
WHEN = ("unexplained", "explained", "any")


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
    explanations: tuple[ExplanationKind, ...]
    indicators: dict[str, Indicator]
    patterns: dict[str, Any]
    reviews: dict[str, Any]
    reports: dict[str, Any]
    learning: dict[str, Any]
    peers: dict[str, Any]
    version: str = "rules-default"
    """'rules-' and the start of the SHA-256 of the effective rules (defaults and the home's
    overrides, as canonical JSON): which rules scored a flag."""

    def explanation(self, source: str) -> list[ExplanationKind]:
        return [k for k in self.explanations if k.source == source]

    def weight(self, code: str) -> float:
        return self.indicators[code].weight


def _defaults() -> dict[str, Any]:
    text = resources.files("access_audit.score").joinpath("rules.toml").read_text("utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], override: dict[str, Any], where: str) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if key not in base:
            raise AccessAuditError(f"access-audit.toml: unknown setting {where}{key}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise AccessAuditError(f"access-audit.toml: {where}{key} must be a table")
            merged[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            if type(value) is not type(base[key]) and not (
                isinstance(base[key], float) and isinstance(value, int)
            ):
                raise AccessAuditError(
                    f"access-audit.toml: {where}{key} must be a {type(base[key]).__name__}"
                )
            merged[key] = value
    return merged


def load_rules(config: Config | None = None) -> Rules:
    """The default rules with the home's overrides applied."""
    raw = _defaults()
    if config is not None:
        for section in (
            "scoring",
            "explanations",
            "indicators",
            "patterns",
            "reviews",
            "reports",
            "learning",
            "peers",
        ):
            override = config.section(section)
            if override:
                raw[section] = _merge(raw[section], override, f"[{section}].")
    scoring = raw["scoring"]
    kinds = []
    for name, spec in raw["explanations"].items():
        if spec["source"] not in SOURCES:
            raise AccessAuditError(f"rules: explanation {name} has unknown source {spec['source']}")
        kinds.append(
            ExplanationKind(
                name=name,
                source=spec["source"],
                text=spec["text"],
                grace_before_hours=float(spec["grace_before_hours"]),
                grace_after_hours=float(spec["grace_after_hours"]),
                pattern=spec.get("pattern"),
            )
        )
    from access_audit.score.indicators import BUILDERS

    indicators = {}
    for name, spec in raw["indicators"].items():
        if name not in BUILDERS:
            raise AccessAuditError(f"rules: indicator {name} has no builder")
        if spec["when"] not in WHEN:
            raise AccessAuditError(f"rules: indicator {name} has unknown 'when' {spec['when']}")
        if spec.get("peer_scope", spec["when"]) not in WHEN:
            raise AccessAuditError(f"rules: indicator {name} has unknown 'peer_scope'")
        params = {
            k: v
            for k, v in spec.items()
            if k not in ("weight", "when", "text", "trigger", "peer_scope")
        }
        indicators[name] = Indicator(
            name,
            float(spec["weight"]),
            spec["when"],
            spec["text"],
            params,
            trigger=bool(spec.get("trigger", False)),
            peer_scope=spec.get("peer_scope"),
        )
    return Rules(
        scale=float(scoring["scale"]),
        alert_threshold=float(scoring["alert_threshold"]),
        lookback_days=int(scoring["lookback_days"]),
        reexplain_days=int(scoring["reexplain_days"]),
        chunk_days=int(scoring["chunk_days"]),
        explanations=tuple(kinds),
        indicators=indicators,
        patterns=dict(raw["patterns"]),
        reviews=dict(raw["reviews"]),
        reports=dict(raw["reports"]),
        learning=dict(raw["learning"]),
        peers=dict(raw["peers"]),
        version=rules_version(raw),
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


def fmt(template: str, *args: pl.Expr | str) -> pl.Expr:
    """Like `pl.format` (strings name columns), built from `concat_str`: polars 2.1's streaming
    engine panics on `pl.format` over filtered string columns."""
    pieces = template.split("{}")
    if len(pieces) != len(args) + 1:
        raise ValueError(f"{template!r} needs {len(pieces) - 1} argument(s)")
    parts: list[pl.Expr] = []
    for piece, arg in zip(pieces, [*args, None], strict=True):
        if piece:
            parts.append(pl.lit(piece))
        if arg is not None:
            parts.append((pl.col(arg) if isinstance(arg, str) else arg).cast(pl.String))
    return pl.concat_str(parts) if parts else pl.lit("")
