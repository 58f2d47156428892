"""access-audit.toml: defaults, and a clear error for each thing a user can get wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from access_audit.config import load_config
from access_audit.errors import AccessAuditError


def test_defaults_without_a_file(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.ingest.timezone == "Europe/London"
    assert config.ingest.ambiguous_local_times == "reject"
    assert config.store.keep_generations == 5


def test_values_are_read(tmp_path: Path) -> None:
    (tmp_path / "access-audit.toml").write_text(
        '[ingest]\ntimezone = "Europe/Dublin"\nambiguous_local_times = "earliest"\n'
        '[store]\nkeep_generations = 3\n[columns.staff]\nuser_id = "StaffNo"\n'
    )
    config = load_config(tmp_path)
    assert config.ingest.timezone == "Europe/Dublin"
    assert config.ingest.ambiguous_local_times == "earliest"
    assert config.store.keep_generations == 3
    assert config.ingest.column_mappings == {"staff": {"user_id": "StaffNo"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[ingest]\ntimezone = "Mars/Olympus"\n', "unknown time zone 'Mars/Olympus'"),
        ('[ingest]\nambiguous_local_times = "guess"\n', "must be reject, earliest or latest"),
        ('[columns.audit]\nuser_id = "x"\n', "[columns.audit] names no export table"),
        ('[columns.staff]\nbadge = "x"\n', "badge is not a column of staff"),
        ("[store]\nkeep_generations = 1\n", "keep_generations must be at least 2"),
        ("not = [toml", "not valid TOML"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "access-audit.toml").write_text(text)
    with pytest.raises(AccessAuditError, match=message.replace("[", r"\[")):
        load_config(tmp_path)
