"""Files written outside the home are owner-only, also when they replace a looser file (finding
11b): generated drops, convert-fhir output, reports, executed notebooks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.private_files import replacing, write_private_text
from conftest import event

runner = CliRunner()
REPORT_DAY = ["report", "--from", "2026-11-21", "--to", "2026-11-21"]
FHIR_EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "fhir_auditevent"


def _modes(folder: Path) -> dict[str, int]:
    """Every file and folder under ``folder`` (itself included) and its permission bits."""
    found = {".": stat.S_IMODE(folder.stat().st_mode)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = stat.S_IMODE(path.stat().st_mode)
    return found


def _assert_owner_only(folder: Path) -> None:
    loose = {name: oct(mode) for name, mode in _modes(folder).items() if mode & 0o077}
    assert not loose, f"readable by others: {loose}"


def _loose_file(path: Path, text: str = "old\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    path.write_text(text)
    path.chmod(0o644)
    return path


def test_generated_drops_are_owner_only_even_in_an_open_folder(tmp_path: Path) -> None:
    """`generate` writes only into a new or empty folder; an empty one made 0755 is tightened."""
    out = tmp_path / "drops"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    result = runner.invoke(
        app,
        ["generate", str(out), "--staff", "60", "--days", "4", "--seed", "2", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert (out / "truth.csv").exists()
    _assert_owner_only(out)


def test_converted_fhir_drops_are_owner_only_even_over_older_files(tmp_path: Path) -> None:
    drop = tmp_path / "fhir-2026-11-21"
    _loose_file(drop / "access_log_fhir.csv")
    _loose_file(drop / "fhir-unconvertible.csv")
    examples = sorted(p for p in FHIR_EXAMPLES.glob("*/*") if p.suffix in (".json", ".xml"))
    result = runner.invoke(app, ["convert-fhir", *map(str, examples), "--out", str(drop)])
    assert result.exit_code == 0, result.output
    assert (drop / "access_log_fhir.csv").read_text() != "old\n"
    _assert_owner_only(drop)


@pytest.mark.parametrize("output_format", ["text", "csv", "html"])
def test_a_report_over_an_existing_file_is_owner_only(
    tmp_path: Path, make_drop, output_format: str
) -> None:
    home = str(tmp_path / "home")
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    assert runner.invoke(app, ["--home", home, "ingest", "--no-progress", str(drop)]).exit_code == 0
    output = _loose_file(tmp_path / "shared" / f"report.{output_format}")
    result = runner.invoke(
        app,
        ["--home", home, *REPORT_DAY, "--format", output_format, "--output", str(output)],
    )
    assert result.exit_code == 0, result.output
    assert output.read_text() != "old\n"
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert [p.name for p in output.parent.iterdir()] == [output.name]  # no temporary left


def test_a_report_into_a_missing_folder_is_a_one_line_error(tmp_path: Path, make_drop) -> None:
    home = str(tmp_path / "home")
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    runner.invoke(app, ["--home", home, "ingest", "--no-progress", str(drop)])
    missing = tmp_path / "nowhere" / "report.txt"
    result = runner.invoke(
        app,
        ["--home", home, *REPORT_DAY, "--output", str(missing)],
    )
    assert result.exit_code == 2
    assert "no such folder" in result.stderr


def test_a_failed_write_leaves_the_old_file_as_it_was(tmp_path: Path) -> None:
    target = _loose_file(tmp_path / "report.txt")
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]
    write_private_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["folder", "fifo", "link"])
def test_a_report_over_a_folder_pipe_or_link_is_refused_and_it_stays(
    tmp_path: Path, make_drop, kind: str
) -> None:
    """`--output /dev/full` (as root) replaced the device with a report; a folder gave a
    traceback. Anything but a regular file is refused before a byte is written."""
    home = str(tmp_path / "home")
    drop = make_drop("2026-11-21", {"access_log": [event("E1")]})
    runner.invoke(app, ["--home", home, "ingest", "--no-progress", str(drop)])
    target = tmp_path / kind
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        (tmp_path / "elsewhere.txt").write_text("theirs\n")
        target.symlink_to(tmp_path / "elsewhere.txt")
    before = target.lstat()
    result = runner.invoke(app, ["--home", home, *REPORT_DAY, "--output", str(target)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "not a regular file" in result.stderr
    after = target.lstat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert not list(tmp_path.glob(f".{kind}.*"))
