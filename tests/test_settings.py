"""The settings tree: rules.toml, the defaults, validates through the same models as a home's file,
and the scoring code reads exactly what the tree holds."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import resources
from typing import Any

import pytest

from access_audit import config
from access_audit.config import Config, default_config, parse_config
from access_audit.errors import AccessAuditError
from access_audit.score.rules import load_rules


def _rules_toml() -> dict[str, Any]:
    text = resources.files("access_audit.score").joinpath("rules.toml").read_text("utf-8")
    return tomllib.loads(text)


def test_every_table_of_rules_toml_is_a_section_of_the_tree_and_back() -> None:
    defaults = _rules_toml()
    scoring_sections = set(Config.model_fields) - {
        "ingest",
        "store",
        "cases",
        "evidence",
        "spark",
        "columns",
    }
    assert set(defaults) == scoring_sections
    assert set(defaults["indicators"]) == set(type(default_config().indicators).model_fields)
    assert set(defaults["explanations"]) == set(type(default_config().explanations).model_fields)


def test_the_rules_read_by_scoring_are_the_defaults_file_values() -> None:
    defaults = _rules_toml()
    rules = load_rules()
    assert rules.scale == defaults["scoring"]["scale"]
    assert rules.chunk_days == defaults["scoring"]["chunk_days"]
    assert rules.refit_days == defaults["scoring"]["refit_days"] == 3
    assert [k.name for k in rules.explanations] == list(defaults["explanations"])
    assert list(rules.indicators) == list(defaults["indicators"])
    for name, spec in defaults["indicators"].items():
        indicator = rules.indicators[name]
        assert indicator.weight == spec["weight"]
        assert indicator.trigger == spec.get("trigger", False)
        assert indicator.peer_scope == spec.get("peer_scope")
        own = ("weight", "when", "text", "trigger", "peer_scope")
        params = {k: v for k, v in spec.items() if k not in own}
        assert indicator.params == params
    assert (
        rules.explanation("justification")[0].pattern
        == (defaults["explanations"]["cited_incident"]["pattern"])
    )
    assert rules.patterns == defaults["patterns"]
    assert rules.reviews == defaults["reviews"]
    assert rules.reports == defaults["reports"]
    assert rules.learning == defaults["learning"]


def test_an_override_reaches_the_rules_and_leaves_the_rest() -> None:
    rules = load_rules(parse_config({"indicators": {"crowd": {"min_users": 9}}}))
    assert rules.indicators["crowd"].param("min_users") == 9
    assert rules.weight("crowd") == load_rules().weight("crowd")


def test_a_broken_defaults_file_is_reported_as_the_defaults_file(monkeypatch) -> None:
    broken = resources.files("access_audit.score").joinpath("rules.toml").read_bytes()
    broken = broken.replace(b"min_users = 5", b'min_users = "five"')
    monkeypatch.setattr(config, "_defaults_text", lambda: broken)
    config.default_config.cache_clear()
    try:
        with pytest.raises(AccessAuditError) as caught:
            parse_config({})
    finally:
        config.default_config.cache_clear()
    assert str(caught.value) == (
        "score/rules.toml: [indicators.crowd] min_users: expected an integer, got 'five'"
    )


def test_the_settings_are_immutable() -> None:
    settings = default_config()
    with pytest.raises(ValueError, match="frozen"):
        settings.store.keep_generations = 1  # type: ignore[misc]


def test_loading_the_settings_does_not_import_the_data_engines(tmp_path) -> None:
    """`status` and the other light commands open a home: its settings must not pull in polars,
    DuckDB or scikit-learn (rules.toml sits in the score package, which imports them)."""
    code = (
        "import sys; from pathlib import Path; from access_audit.config import load_config; "
        f"load_config(Path({str(tmp_path)!r})); "
        "print(sorted(m for m in ('polars', 'duckdb', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
