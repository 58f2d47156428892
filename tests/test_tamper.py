"""Someone edits the committed store: `verify` and the jobs that build on it notice, and name the
file (issue 7: an officer's rows deleted from a day= file went unnoticed, and re-ingesting the
drop skipped it as already loaded)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.integrity import GENESIS
from access_audit.manifest import Manifest, describe_file, generation_files, write_manifest
from access_audit.store import StoreDamagedError
from access_audit.workspace import Workspace
from conftest import STAFF_ROWS, event, store_snapshot, write_table

runner = CliRunner()

DAY_20 = "access_events/day=2026-11-20"
DAY_21 = "access_events/day=2026-11-21"


@pytest.fixture(scope="module")
def history_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two nightly runs: g000001 holds the 20th, g000002 adds the 21st (the 20th hard-linked).
    Built once; each test tampers with its own copy."""
    root = tmp_path_factory.mktemp("history")
    first, second = root / "drops" / "2026-11-20", root / "drops" / "2026-11-21"
    write_table(
        first,
        "access_log",
        [
            event("E1", "2026-11-20T09:00:00Z"),
            event("E2", "2026-11-20T10:00:00Z", user_id="U00002"),
            event("E3", "2026-11-20T11:00:00Z", user_id="U00002", record_id="P0000002"),
        ],
    )
    write_table(first, "staff", STAFF_ROWS)
    write_table(second, "access_log", [event("E4", "2026-11-21T09:00:00Z")])
    workspace = Workspace.open(root / "home")
    assert workspace.nightly([first]).ok
    assert workspace.nightly([second]).ok
    return root


@pytest.fixture
def history(history_template: Path, tmp_path: Path) -> tuple[Workspace, list[Path]]:
    """A copy of the template: ``cp -a`` keeps the hard links between generations and the modes."""
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(history_template), str(copy)], check=True)
    drops = [copy / "drops" / "2026-11-20", copy / "drops" / "2026-11-21"]
    return Workspace.open(copy / "home"), drops


def _only_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.parquet"))
    assert len(files) == 1
    return files[0]


def _current(workspace: Workspace) -> Path:
    current = workspace.generation()
    assert current is not None and current.number == 2
    return current.path


def edit_partition_in_place(workspace: Workspace) -> str:
    """The finding: one officer's rows deleted from a day= file, written back to the same file."""
    target = _only_file(_current(workspace) / DAY_20)
    kept = pl.read_parquet(target).filter(pl.col("user_id") != "U00002")
    os.chmod(target, 0o600)
    kept.write_parquet(target)
    return DAY_20


def delete_partition(workspace: Workspace) -> str:
    shutil.rmtree(_current(workspace) / DAY_21)
    return DAY_21


def swap_file_for_another_of_the_same_name(workspace: Workspace) -> str:
    """Same name, same row count, other content: a new file renamed over the committed one."""
    target = _only_file(_current(workspace) / DAY_20)
    forged = pl.read_parquet(target).with_columns(pl.lit("U00009").alias("user_id"))
    temporary = target.with_name("forged.tmp")
    forged.write_parquet(temporary)
    os.replace(temporary, target)
    return target.relative_to(_current(workspace)).as_posix()


def corrupt_current_manifest(workspace: Workspace) -> str:
    manifest = _current(workspace) / "_manifest.json"
    os.chmod(manifest, 0o600)
    with open(manifest, "ab") as handle:
        handle.write(b"\x00")
    return "g000002/_manifest.json"


def rewrite_older_manifest(workspace: Workspace) -> str:
    """A digest changed in g000001's manifest (still well-formed): the chain to g000002 breaks."""
    manifest = workspace.home / "store" / "g000001" / "_manifest.json"
    text = manifest.read_text(encoding="ascii")
    digest_at = text.index('"sha256": "') + len('"sha256": "')
    flipped = "1" if text[digest_at] != "1" else "2"
    os.chmod(manifest, 0o600)
    manifest.write_text(text[:digest_at] + flipped + text[digest_at + 1 :], encoding="ascii")
    return "g000001/_manifest.json"


def _forged_flag_outside(workspace: Workspace) -> Path:
    """A Parquet file outside the home holding one fake flag at the top of the queue."""
    current = _current(workspace)
    genuine = pl.read_parquet(next((current / "flags").glob("*/*.parquet")))
    outside = workspace.home.parent / "outside"
    outside.mkdir(exist_ok=True)
    forged = genuine.head(1).with_columns(
        flag_id=pl.lit("FFAKE"), user_id=pl.lit("UFAKE"), score=pl.lit(99.0), alert=pl.lit(True)
    )
    forged.write_parquet(outside / "more.parquet")
    return outside


def plant_a_symlinked_folder(workspace: Workspace) -> str:
    """The finding (issue 7, trust trial): os.walk skips a symlinked folder, Polars reads it."""
    outside = _forged_flag_outside(workspace)
    day = next((_current(workspace) / "flags").glob("day=*"))
    os.chmod(day, 0o700)
    (day / "more").symlink_to(outside, target_is_directory=True)
    return f"{day.relative_to(_current(workspace)).as_posix()}/more: a symbolic link"


def plant_a_symlinked_file(workspace: Workspace) -> str:
    outside = _forged_flag_outside(workspace)
    day = next((_current(workspace) / "flags").glob("day=*"))
    (day / "more.parquet").symlink_to(outside / "more.parquet")
    return f"{day.relative_to(_current(workspace)).as_posix()}/more.parquet: a symbolic link"


def plant_an_extra_file(workspace: Workspace) -> str:
    current = _current(workspace)
    shutil.copy(_only_file(current / DAY_21), current / DAY_20 / "x.parquet")
    return f"{DAY_20}/x.parquet: not in the manifest"


def plant_an_empty_folder(workspace: Workspace) -> str:
    (_current(workspace) / "access_events" / "day=2026-11-22").mkdir()
    return "access_events/day=2026-11-22: a folder holding no file"


def plant_a_fifo(workspace: Workspace) -> str:
    os.mkfifo(_current(workspace) / DAY_20 / "pipe.parquet")
    return f"{DAY_20}/pipe.parquet: not a regular file"


TAMPERING: list[Callable[[Workspace], str]] = [
    edit_partition_in_place,
    delete_partition,
    swap_file_for_another_of_the_same_name,
    corrupt_current_manifest,
    rewrite_older_manifest,
    plant_a_symlinked_folder,
    plant_a_symlinked_file,
    plant_an_extra_file,
    plant_an_empty_folder,
    plant_a_fifo,
]

PLANTED_LINKS = [plant_a_symlinked_folder, plant_a_symlinked_file]


@pytest.mark.parametrize("tamper", PLANTED_LINKS, ids=lambda t: t.__name__)
def test_readers_never_follow_a_symlink_inside_the_store(history, tamper) -> None:
    """`flag` used to list the planted flag first: it reads the store through Polars."""
    workspace, _drops = history
    named = tamper(workspace)
    result = runner.invoke(app, ["--home", str(workspace.home), "flag", "--format", "json"])
    assert result.exit_code == 2, result.stdout
    assert "FFAKE" not in result.stdout and named in result.stderr
    with pytest.raises(StoreDamagedError, match="symbolic link"):
        workspace.refresh_catalog()


def test_an_older_generation_with_a_symlink_fails_verify(history) -> None:
    workspace, _drops = history
    outside = _forged_flag_outside(workspace)
    older = workspace.home / "store" / "g000001" / DAY_20
    os.chmod(older, 0o700)
    (older / "more").symlink_to(outside, target_is_directory=True)
    report = workspace.verify(quick=True)
    assert not report.ok
    expected = f"g000001/{DAY_20}/more: a symbolic link, not in the manifest"
    assert report.checks[0].problem == expected


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda t: t.__name__)
def test_verify_names_the_changed_file_and_exits_1(history, tamper) -> None:
    workspace, _drops = history
    assert runner.invoke(app, ["--home", str(workspace.home), "verify"]).exit_code == 0
    named = tamper(workspace)
    result = runner.invoke(app, ["--home", str(workspace.home), "verify"])
    assert result.exit_code == 1
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert len(broken) == 1 and named in broken[0], result.stdout


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda t: t.__name__)
def test_nightly_refuses_to_build_on_a_changed_store_and_changes_nothing(history, tamper) -> None:
    workspace, drops = history
    named = tamper(workspace)
    before = store_snapshot(workspace)
    result = runner.invoke(
        app, ["--home", str(workspace.home), "nightly", "--no-progress", str(drops[0])]
    )
    assert result.exit_code == 2
    assert "the store is damaged" in result.stderr and named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert store_snapshot(workspace) == before


@pytest.mark.parametrize("command", ["score", "ingest"])
def test_score_and_ingest_refuse_too(history, command: str) -> None:
    workspace, drops = history
    named = edit_partition_in_place(workspace)
    with pytest.raises(StoreDamagedError, match=named):
        if command == "score":
            workspace.score()
        else:
            workspace.ingest([drops[0]])


def test_quick_verify_catches_fewer_rows_without_hashing(history) -> None:
    workspace, _drops = history
    named = edit_partition_in_place(workspace)
    report = workspace.verify(quick=True)
    assert not report.ok
    assert report.checks[0].problem is not None and named in report.checks[0].problem
    assert "rows, the manifest says 3" in report.checks[0].problem


def test_committed_files_are_read_only(history) -> None:
    workspace, _drops = history
    current = _current(workspace)
    modes = {p.stat().st_mode & 0o777 for p in current.rglob("*") if p.is_file()}
    assert modes == {0o400}


def test_a_clean_home_verifies_and_reports_its_head(history) -> None:
    workspace, _drops = history
    report = workspace.verify()
    assert report.ok and report.notes == []
    store = report.checks[0]
    assert store.name == "store" and store.items == 2
    recorded = (workspace.home / "store" / "CURRENT").read_text().split()
    assert recorded == ["g000002", store.head]


def test_a_control_character_in_a_planted_file_name_is_escaped(history) -> None:
    workspace, _drops = history
    (_current(workspace) / "staff" / "evil\x1b[2J.parquet").write_bytes(b"x")
    result = runner.invoke(app, ["--home", str(workspace.home), "verify"])
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout and "evil\\x1b[2J.parquet: not in the manifest" in (
        result.stdout
    )


def _rewrite_whole_chain(workspace: Workspace) -> None:
    """What someone who can write the home can do: edit a file, then re-make every manifest and
    CURRENT so that the chain checks out."""
    root = workspace.home / "store"
    previous = GENESIS
    for folder in sorted(root.glob("g*")):
        files = generation_files(folder)
        entries = tuple(describe_file(path, name) for name, path in sorted(files.items()))
        (folder / "_manifest.json").unlink()
        previous = write_manifest(folder, Manifest(int(folder.name[1:]), previous, entries))
    (root / "CURRENT").write_text(f"{folder.name} {previous}\n")


def test_only_a_published_head_catches_a_consistent_rewrite_of_the_whole_chain(history) -> None:
    workspace, _drops = history
    home = ["--home", str(workspace.home)]
    printed = runner.invoke(app, [*home, "verify"]).stdout.splitlines()[0]
    published = printed.rsplit(" ", 1)[-1]
    assert published.startswith("g000002:")
    assert runner.invoke(app, [*home, "verify", "--published-head", published]).exit_code == 0
    edit_partition_in_place(workspace)
    _rewrite_whole_chain(workspace)
    assert runner.invoke(app, [*home, "verify"]).exit_code == 0  # the limit the README states
    caught = runner.invoke(app, [*home, "verify", "--published-head", published])
    assert caught.exit_code == 1
    assert "g000002: its head differs from the published one" in caught.stdout
    bad = runner.invoke(app, [*home, "verify", "--published-head", "g2:abc"])
    assert bad.exit_code == 2 and "--published-head" in bad.stderr


def test_a_planted_file_name_with_markup_is_shown_literally_when_nightly_refuses(history) -> None:
    workspace, drops = history
    (_current(workspace) / "staff" / "x[red]y.parquet").write_bytes(b"x")
    result = runner.invoke(
        app, ["--home", str(workspace.home), "nightly", "--no-progress", str(drops[0])]
    )
    assert result.exit_code == 2
    assert "staff/x[red]y.parquet: not in the manifest" in result.stderr


def _key_pair(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / "signing.key", folder / "signing.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_a_signed_head_catches_a_consistent_rewrite_without_the_key(
    tmp_path: Path, make_drop
) -> None:
    private, public = _key_pair(tmp_path / "keys")
    home = tmp_path / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text(f'[store]\nsigning_key = "{private}"\n')
    workspace = Workspace.open(home)
    assert workspace.nightly(
        [
            make_drop(
                "2026-11-20",
                {
                    "access_log": [
                        event("E1", "2026-11-20T09:00:00Z"),
                        event("E3", "2026-11-20T10:00:00Z", user_id="U00002"),
                    ],
                    "staff": STAFF_ROWS,
                },
            )
        ]
    ).ok
    assert workspace.nightly(
        [make_drop("2026-11-21", {"access_log": [event("E2", "2026-11-21T09:00:00Z")]})]
    ).ok
    argv = ["--home", str(home), "verify", "--public-key", str(public)]
    assert runner.invoke(app, argv).exit_code == 0
    _other_private, other_public = _key_pair(tmp_path / "other")
    wrong = runner.invoke(app, ["--home", str(home), "verify", "--public-key", str(other_public)])
    assert wrong.exit_code == 1 and "g000002/_head.sig: does not match" in wrong.stdout
    edit_partition_in_place(workspace)
    _rewrite_whole_chain(workspace)
    assert runner.invoke(app, ["--home", str(home), "verify"]).exit_code == 0
    caught = runner.invoke(app, argv)
    assert caught.exit_code == 1 and "g000002/_head.sig: does not match" in caught.stdout


def test_an_unsigned_head_fails_a_signature_check(history, tmp_path: Path) -> None:
    workspace, _drops = history
    _private, public = _key_pair(tmp_path / "keys")
    report = workspace.verify(public_key=public)
    assert not report.ok
    assert report.checks[0].problem == "g000002/_head.sig: missing (the head is not signed)"


def test_a_signing_key_inside_the_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text('[store]\nsigning_key = "keys/signing.key"\n')
    result = runner.invoke(app, ["--home", str(home), "status"])
    assert result.exit_code == 2 and "inside the home" in result.stderr


def _roll_current_back(workspace: Workspace) -> None:
    """CURRENT rewritten to name the previous generation, with its true head: the chain up to
    it checks out, and g000002 is still on disk."""
    from access_audit.manifest import read_manifest

    store = workspace.home / "store"
    loaded = read_manifest(store / "g000001")
    assert loaded is not None
    (store / "CURRENT").write_text(f"g000001 {loaded[1]}\n", encoding="utf-8")


def test_a_rolled_back_current_fails_verify_and_builds(history) -> None:
    """Regression (issue 7, trust trial): verify said ok, and the next nightly replaced
    g000002 with a new generation silently."""
    workspace, drops = history
    _roll_current_back(workspace)
    result = runner.invoke(app, ["--home", str(workspace.home), "verify"])
    assert result.exit_code == 1
    assert (
        "store: BROKEN: CURRENT: names g000001, but g000002 is newer (CURRENT was rolled back)"
        in (result.stdout)
    )
    before = store_snapshot(workspace)
    result = runner.invoke(
        app, ["--home", str(workspace.home), "nightly", "--no-progress", str(drops[1])]
    )
    assert result.exit_code == 2
    assert "CURRENT was rolled back" in result.stderr
    assert store_snapshot(workspace) == before


def test_a_generation_a_crashed_commit_left_behind_is_still_cleaned_up(history) -> None:
    """A commit killed between renaming its staging folder and swapping CURRENT leaves a newer
    generation that PENDING names: debris, removed by the next run, not a rollback."""
    workspace, drops = history
    store = workspace.home / "store"
    subprocess.run(["cp", "-a", str(store / "g000002"), str(store / "g000003")], check=True)
    (store / "PENDING").write_text("g000003\n", encoding="utf-8")
    assert workspace.verify().ok
    result = runner.invoke(
        app, ["--home", str(workspace.home), "nightly", "--no-progress", str(drops[1])]
    )
    assert result.exit_code == 0, result.stderr
    assert not (store / "PENDING").exists()
    assert workspace.verify().ok


def _hand_written_model(workspace: Workspace) -> None:
    """A model `learn` never wrote: every coefficient zero and a large negative intercept, so
    every flag would score about half its rule score (blend 1: 0)."""
    folder = workspace.home / "models"
    folder.mkdir()
    (folder / "CURRENT").write_text("learned-v1\n", encoding="utf-8")
    names = ["rule_score", *workspace.rules.indicators]
    model = {
        "version": "learned-v1",
        "features": names,
        "coefficients": [0.0] * len(names),
        "intercept": -50.0,
        "scale": [1.0] * len(names),
        "trained_at": "2026-01-01T00:00:00+00:00",
        "decisions": 1,
        "upheld": 1,
        "holdout": {},
        "blend": 1.0,
    }
    (folder / "learned-v1.json").write_text(json.dumps(model), encoding="utf-8")


def test_a_hand_written_model_fails_verify_and_scoring(history) -> None:
    """Regression (issue 7, trust trial): verify passed and nightly re-scored every alert to 0."""
    workspace, drops = history
    _hand_written_model(workspace)
    result = runner.invoke(app, ["--home", str(workspace.home), "verify", "--quick"])
    assert result.exit_code == 1
    assert (
        "models: BROKEN: models/learned-v1.json: not recorded in the models log "
        "(audit/models.jsonl)" in result.stdout
    )
    before = store_snapshot(workspace)
    for command in (["nightly", "--no-progress", str(drops[1])], ["score", "--no-progress"]):
        result = runner.invoke(app, ["--home", str(workspace.home), *command])
        assert result.exit_code == 2
        assert "the learned model cannot be trusted" in result.stderr
        assert store_snapshot(workspace) == before


def test_a_models_current_the_log_does_not_record_fails_verify(history) -> None:
    workspace, _drops = history
    (workspace.home / "models").mkdir()
    (workspace.home / "models" / "CURRENT").write_text("learned-v7\n", encoding="utf-8")
    checks = {check.name: check for check in workspace.verify(quick=True).checks}
    assert checks["models"].problem == (
        "models/CURRENT: names learned-v7, but the models log (audit/models.jsonl) says no model "
        "(the rules alone)"
    )
