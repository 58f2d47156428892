"""access-audit.toml: defaults, and one clear line for each thing a user can get wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from access_audit.cli import app
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
        "[store]\nkeep_generations = 3\nlock_timeout_seconds = 5\n"
        '[columns.staff]\nuser_id = "StaffNo"\n'
        "[indicators.crowd]\nmin_users = 7\n"
    )
    config = load_config(tmp_path)
    assert config.ingest.timezone == "Europe/Dublin"
    assert config.ingest.ambiguous_local_times == "earliest"
    assert config.store.keep_generations == 3
    assert config.store.lock_timeout_seconds == 5.0
    assert config.ingest.column_mappings == {"staff": {"user_id": "StaffNo"}}
    assert config.indicators.crowd.min_users == 7
    assert config.indicators.crowd.weight == 25  # the rest of the table keeps its defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[ingest]\ntimezone = "Mars/Olympus"\n', "[ingest] timezone: unknown time zone"),
        (
            '[ingest]\nambiguous_local_times = "guess"\n',
            "[ingest] ambiguous_local_times: expected 'reject', 'earliest' or 'latest', "
            "got 'guess'",
        ),
        ('[columns.audit]\nuser_id = "x"\n', "[columns.audit]: names no export table"),
        ('[columns.staff]\nbadge = "x"\n', "[columns.staff] badge: is not a column of staff"),
        ('[columns.staff]\nuser_id = " "\n', "[columns.staff] user_id: must not be empty"),
        ("[store]\nkeep_generations = 1\n", "[store] keep_generations: must be at least 2, got 1"),
        (
            '[store]\nkeep_generations = "five"\n',
            "[store] keep_generations: expected an integer, got 'five'",
        ),
        ("[store]\nkeep_generatons = 3\n", "[store] keep_generatons: unknown setting"),
        ("[ingest]\ntime_zone = 'UTC'\n", "[ingest] time_zone: unknown setting"),
        ("[ingets]\ntimezone = 'UTC'\n", "[ingets]: unknown table"),
        ("store = 5\n", "[store]: expected a table, got 5"),
        ('[scoring]\nscale = "big"\n', "[scoring] scale: expected a number, got 'big'"),
        ("[scoring]\nrefit_days = 0\n", "[scoring] refit_days: must be at least 1, got 0"),
        ('[scoring]\nrefit_days = "weekly"\n', "[scoring] refit_days: expected an integer"),
        ("[indicators.moon_phase]\nweight = 1\n", "[indicators.moon_phase]: unknown table"),
        ("[indicators.crowd]\nmin_user = 3\n", "[indicators.crowd] min_user: unknown setting"),
        ("[indicators.crowd]\nmin_users = 2.5\n", "[indicators.crowd] min_users: expected an"),
        ("[indicators.crowd]\ntrigger = 1\n", "[indicators.crowd] trigger: expected true or false"),
        ("[learning]\nblend = 2\n", "[learning] blend: must be at most 1.0, got 2"),
        (
            '[explanations.assigned]\nsource = "telepathy"\n',
            "[explanations.assigned] source: expected 'user_assignment'",
        ),
        (
            '[explanations.cited_incident]\npattern = "[A-Z"\n',
            "[explanations.cited_incident] pattern: not a valid regular expression",
        ),
        (
            '[reviews]\nnot_new_risk = ["unexplaned"]\n',
            "[reviews] not_new_risk[0]: 'unexplaned' names no indicator",
        ),
        (
            '[reports]\napsp_subject_codes = ["victim_subject", "victims"]\n',
            "[reports] apsp_subject_codes[1]: 'victims' names no indicator",
        ),
        (
            '[indicators.crowd]\ntext = "{evidense} users"\n',
            "[indicators.crowd] text: names no field '{evidense}' (it may use {evidence})",
        ),
        (
            '[explanations.handled_call]\ntext = "call {via} as {role}"\n',
            "[explanations.handled_call] text: names no field '{role}' (it may use {via})",
        ),
        (
            "[indicators.explained_excess]\npeer_ratio = 6\n",
            '[indicators.explained_excess] peer_ratio: is read only with model = "ratio" '
            '(model is "chance")',
        ),
        (
            '[indicators.explained_excess]\nmodel = "nb"\n',
            "[indicators.explained_excess] model: expected 'chance' or 'ratio', got 'nb'",
        ),
        ('[indicators.crowd]\ncalibrate = "yes"\n', "[indicators.crowd] calibrate: expected true"),
        ("not = [toml", "not valid TOML"),
    ],
)
def test_mistakes_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "access-audit.toml"
    path.write_text(text)
    with pytest.raises(AccessAuditError) as caught:
        load_config(tmp_path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_unknown_ingest_and_store_keys_are_refused_not_ignored(tmp_path: Path) -> None:
    """Regression: a misspelt [ingest] or [store] key used to be silently ignored."""
    (tmp_path / "access-audit.toml").write_text("[store]\nkeep = 3\n")
    with pytest.raises(AccessAuditError, match=r"\[store\] keep: unknown setting"):
        load_config(tmp_path)
    (tmp_path / "access-audit.toml").write_text("[ingest]\ntimezon = 'UTC'\n")
    with pytest.raises(AccessAuditError, match=r"\[ingest\] timezon: unknown setting"):
        load_config(tmp_path)


def test_a_wrong_type_is_one_line_from_the_cli_not_a_traceback(tmp_path: Path) -> None:
    """Regression: keep_generations = "five" used to end in a ValueError traceback."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text('[store]\nkeep_generations = "five"\n')
    result = CliRunner().invoke(app, ["--home", str(home), "status"])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.strip() == (
        f"error: {home / 'access-audit.toml'}: [store] keep_generations: "
        "expected an integer, got 'five'"
    )
