"""The Spark engine gives the local engine's results: same flag ids, alerts, scores (1e-9).

One SparkSession (local[2]) serves the module; skipped only where pyspark or Java is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.config import SparkConfig, parse_config
from access_audit.errors import AccessAuditError
from access_audit.generate import generate_force
from access_audit.score.spark import SparkScorer, SparkUnavailableError
from access_audit.workspace import Workspace
from conftest import store_snapshot

NO_PYSPARK = importlib.util.find_spec("pyspark") is None
NO_JAVA = shutil.which("java") is None and "JAVA_HOME" not in os.environ
MISSING = "pyspark (pip install 'access-audit[spark]')" if NO_PYSPARK else "Java 17 (not on PATH)"
needs_spark = pytest.mark.skipif(
    NO_PYSPARK or NO_JAVA, reason=f"the Spark engine needs {MISSING}, which is not installed"
)
SETTINGS = "[scoring]\nchunk_days = 3\n"
"""Small chunks, so a run has several and each reads the ones before it."""


@pytest.fixture(scope="module")
def spark() -> Iterator[None]:
    """One local[2] session for the module: the engine's getOrCreate finds it."""
    from access_audit.score.spark import spark_session

    before = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = spark_session(SparkConfig())
    yield
    session.stop()
    if before is None:
        os.environ.pop("SPARK_LOCAL_IP", None)
    else:
        os.environ["SPARK_LOCAL_IP"] = before


@pytest.fixture(scope="module")
def drops(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    force = generate_force(tmp_path_factory.mktemp("force") / "drops", staff=80, days=9, seed=4)
    return sorted(force.drops)


def _home(root: Path) -> Workspace:
    root.mkdir(parents=True)
    (root / "access-audit.toml").write_text(SETTINGS, encoding="utf-8")
    return Workspace.open(root)


def _assert_same(local: Workspace, spark: Workspace) -> None:
    a = local.scan("flags").collect().sort("flag_id")
    b = spark.scan("flags").collect().sort("flag_id")
    assert a.height > 0 and a["alert"].sum() > 0
    assert a["flag_id"].to_list() == b["flag_id"].to_list()
    assert a["alert"].to_list() == b["alert"].to_list()
    assert (a["score"] - b["score"]).abs().max() <= 1e-9  # type: ignore[operator]
    assert (a["points"] - b["points"]).abs().max() <= 1e-9  # type: ignore[operator]
    same = ["flag_id", "kind", "reasons", "note", "cleared_at", "event_count", "day"]
    assert a.select(same).equals(b.select(same))
    for table in ("explanations", "weak_explanations", "flag_events"):
        x, y = (w.scan(table).collect() for w in (local, spark))
        assert x.sort(x.columns).equals(y.sort(y.columns)), table
    keys = ["system", "event_id", "code", "evidence", "day"]
    x, y = (w.scan("indicators").collect().sort(keys) for w in (local, spark))
    assert x.select(keys).equals(y.select(keys))
    assert (x["points"] - y["points"]).abs().max() <= 1e-9  # type: ignore[operator]


@needs_spark
@pytest.mark.usefixtures("spark")
def test_spark_flags_what_the_local_engine_flags(tmp_path: Path, drops: list[Path]) -> None:
    """A first night over seven days (three chunks), then a night adding two days, which reads
    the stored explanations and indicators of the days it does not re-score."""
    local, spark = _home(tmp_path / "local"), _home(tmp_path / "spark")
    first, later = drops[:7], drops[7:]
    reports = [local.nightly(first), spark.nightly(first, engine="spark")]
    assert reports[0].score is not None and reports[1].score is not None
    assert reports[0].score.alerts == reports[1].score.alerts > 0
    assert reports[0].score.events == reports[1].score.events
    assert reports[0].score.coverage == reports[1].score.coverage
    _assert_same(local, spark)

    assert local.nightly(later).ok
    # the second night through the command line, as cron runs it
    home = ["--home", str(spark.home)]
    result = CliRunner().invoke(app, ["nightly", *map(str, later), "--engine", "spark", *home])
    assert result.exit_code == 0, result.output
    runs = [w.runs()[-1] for w in (local, spark)]
    assert runs[0]["score"]["days"] == runs[1]["score"]["days"]
    assert runs[0]["score"]["alerts"] == runs[1]["score"]["alerts"]
    _assert_same(local, spark)
    # the scratch folder beside the staging folder is gone
    assert not [p for p in (spark.home / "store").iterdir() if p.name.endswith("-spark")]
    # the catalog and the queue read the Spark engine's flags as they read the local one's
    assert spark.flags(min_score=0).height == local.flags(min_score=0).height > 0


def test_engine_is_checked_before_anything_runs(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["score", "--engine", "duckdb", "--home", str(tmp_path)])
    assert result.exit_code == 2
    assert "--engine must be polars or spark, not 'duckdb'" in result.output


def test_engine_option_is_documented() -> None:
    for command in ("score", "nightly"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "--engine" in result.output and "spark" in result.output


def test_spark_settings_take_only_spark_options() -> None:
    config = parse_config(
        {"spark": {"master": "local[4]", "options": {"spark.executor.memory": "8g"}}}
    )
    assert config.spark.master == "local[4]"
    assert config.spark.options == {"spark.executor.memory": "8g"}
    assert parse_config({}).spark.master == "local[2]"
    with pytest.raises(AccessAuditError, match=r"\[spark.options\] executor.memory: is not a"):
        parse_config({"spark": {"options": {"executor.memory": "8g"}}})
    with pytest.raises(AccessAuditError, match=r"\[spark\] master: expected a string"):
        parse_config({"spark": {"master": 2}})


def test_without_pyspark_the_engine_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    workspace = Workspace.open(tmp_path / "home")
    scorer = workspace.scorer("spark")
    assert isinstance(scorer, SparkScorer)
    with pytest.raises(SparkUnavailableError, match=r"pip install 'access-audit\[spark\]'"):
        scorer._session(scorer.settings)
    assert pl.__version__  # the local engine is untouched


def test_a_failed_spark_run_leaves_the_stores_as_they_were(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, drops: list[Path]
) -> None:
    """A pass that dies (here before any chunk is written) commits nothing and leaves no
    scratch folder behind."""
    import access_audit.score.spark as engine

    workspace = Workspace.open(tmp_path / "home")
    assert workspace.ingest(drops[:3]).ok
    before = store_snapshot(workspace)

    def dies(spark: object, job: engine.ChunkJob, progress: object = None) -> dict[object, int]:
        (Path(job.scratch) / "explanations").mkdir()
        raise RuntimeError("executor lost")

    monkeypatch.setattr(engine, "_run_passes", dies)
    monkeypatch.setattr(engine, "spark_session", lambda settings: object())
    with pytest.raises(RuntimeError, match="executor lost"):
        workspace.score(engine="spark")
    assert store_snapshot(workspace) == before
    assert not [p for p in (workspace.home / "store").iterdir() if "spark" in p.name]
