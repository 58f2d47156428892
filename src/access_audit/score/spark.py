"""The Spark engine (`score --engine spark`, `nightly --engine spark`): the local engine's steps,
run per chunk inside Spark tasks, with Polars inside.

A scoring run splits its days into chunks (``[scoring] chunk_days``); the local engine scores them
one after another, each reading the explanations and indicators the previous one wrote. The
dependency is only through those two outputs, and each is a property of one access: *explained*
(by this run's explanations if its day is re-scored, else by the stored ones) and *its indicator
codes* (likewise). So Spark runs the same three steps of ``access_audit.score`` as three passes
over all chunks at once, each a ``groupBy("chunk").applyInArrow`` (the last a cogroup):

1. ``explain_targets`` — each chunk's context accesses in, the target days' explanations out;
2. ``raw_indicators`` — the context marked explained (a Spark join: new keys ∪ stored keys of
   days not re-scored), the target days' indicators at their prior weights out;
3. ``finish_scoring`` — the context and the look-back's indicator codes (new ∪ stored), peer
   weights, episodes, pattern flags and coverage out.

Each pass reads the same Hive-partitioned Parquet stores (the transaction's staging folder): the
accesses through Spark, the small reference tables through Polars in the task. The passes'
outputs go to a scratch folder beside the staging folder (``.staging-<run>-spark``: a crashed
run's is removed like its staging folder); the driver then writes each chunk, in order, through
the same `write_scored` path as the local engine — audit gaps, suppressions, a learned model,
cleared flags — so the stores, the catalog, ``flag`` and reviews cannot tell the engines apart.

On a cluster the home must be on a file system every executor mounts at the same path, and the
executors need this package's wheel with polars and pyarrow (README: "Scoring on Spark").
pyspark is imported only when the engine runs.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from access_audit.errors import AccessAuditError
from access_audit.score import (
    EVENT_COLUMNS,
    Scored,
    explain_targets,
    finish_scoring,
    raw_indicators,
    with_day,
)
from access_audit.score.explain import EXPLANATION_SCHEMA
from access_audit.score.flags import FLAG_EVENT_SCHEMA, FLAG_SCHEMA
from access_audit.score.indicators import INDICATOR_SCHEMA
from access_audit.tables import scan_stored, stored_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from access_audit.config import SparkConfig
    from access_audit.score.rules import Rules
    from access_audit.store import Transaction

ENGINES = ("polars", "spark")
SCRATCH_SUFFIX = "-spark"
EXPLANATION_COLUMNS = [*EXPLANATION_SCHEMA.names(), "day", "chunk"]
RAW_COLUMNS = [*INDICATOR_SCHEMA.names(), "day", "chunk"]
SCORED_OUTPUTS = ("indicators", "flags", "flag_events", "weak_explanations", "coverage")
# Spark's own defaults, which a home's [spark] options may override.
SESSION_DEFAULTS: dict[str, str] = {
    # Times cross into Arrow in UTC, as the stores hold them.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}


class SparkUnavailableError(AccessAuditError):
    """`--engine spark` on a machine without pyspark or Java."""


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise AccessAuditError(f"--engine must be polars or spark, not '{engine}'")


# -- the session ----------------------------------------------------------------------------------
def spark_session(settings: SparkConfig) -> SparkSession:
    """A Spark session from the home's [spark] settings (or the one spark-submit started)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError(
            "--engine spark needs pyspark: pip install 'access-audit[spark]'"
        ) from None
    if os.environ.get("JAVA_HOME") is None and shutil.which("java") is None:
        raise SparkUnavailableError("--engine spark needs Java 17 or later (no java on PATH)")
    builder = SparkSession.builder.appName("access-audit")
    options: dict[str, Any] = {**SESSION_DEFAULTS, **settings.options}
    # Under spark-submit the JVM is already running and its --master wins.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(settings.master)
        if settings.master.startswith("local") and "spark.pyspark.python" not in options:
            # local workers run this interpreter, which has polars and this package (pyspark
            # reads the worker's interpreter from the environment when it starts the context)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in options.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: wrong Java, a bad master or option
        raise SparkUnavailableError(
            f"Spark did not start ({type(exc).__name__}): check Java 17+, [spark] master "
            f"'{settings.master}' and [spark.options]"
        ) from None
    # Spark's own warnings would fill a cron log; its errors still reach stderr.
    session.sparkContext.setLogLevel("ERROR")
    return session


# -- frames across the Arrow boundary -------------------------------------------------------------
def _event_schema(explained: bool) -> pl.Schema:
    full = stored_table("access_events").full_schema()
    schema = {name: full[name] for name in EVENT_COLUMNS}
    if explained:
        schema["explained"] = pl.Boolean()
    return pl.Schema(schema)


def _frame(table: pa.Table, schema: pl.Schema) -> pl.DataFrame:
    """A Spark group as a Polars frame with the stores' exact types."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.select(schema.names()).cast(schema)


_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "double": pa.float64(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
}


def _arrow(frame: pl.DataFrame, ddl: str) -> pa.Table:
    """`frame` as the Arrow table Spark expects for the DDL schema ('a string, b double')."""
    fields = [part.strip().split(" ") for part in ddl.split(",")]
    schema = pa.schema([(name, _ARROW_TYPES[kind]) for name, kind in fields])
    return frame.select(schema.names).to_arrow().cast(schema)


EXPLANATION_DDL = (
    "system string, event_id string, kind string, via string, detail string, "
    "valid_from timestamp, valid_to timestamp, day date, chunk int"
)
RAW_DDL = (
    "system string, event_id string, code string, points double, evidence string, "
    "day date, chunk int"
)
WRITTEN_DDL = "chunk int, rows bigint"
EVENTS_DDL = (
    "system string, event_id string, user_id string, occurred_at timestamp, action string, "
    "record_type string, record_id string, justification string, reason_code string, day date"
)
"""The access log's columns the steps read (score.EVENT_COLUMNS): an older file without one of
them reads it as null, as `scan_stored` does."""
CONTEXT_DDL = f"{EVENTS_DDL}, explained boolean"
STORED_DDL = {
    "access_events": EVENTS_DDL,
    "explanations": "system string, event_id string, day date",
    "indicators": "system string, event_id string, code string, points double, "
    "evidence string, day date",
}


# -- the three passes, as functions Spark ships to its workers ------------------------------------
@dataclass(frozen=True)
class ChunkJob:
    """What every task needs: where the stores are, the chunks' days, the rules."""

    store: str
    scratch: str
    chunks: tuple[tuple[date, ...], ...]
    rules: Rules

    def scan(self, name: str) -> pl.LazyFrame:
        return scan_stored(Path(self.store), name)

    def explain(self, key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        chunk = int(key[0].as_py())
        events = _frame(table, _event_schema(explained=False))
        found = explain_targets(self.scan, events, self.chunks[chunk], self.rules)
        out = with_day(found, events).with_columns(chunk=pl.lit(chunk, dtype=pl.Int32))
        return _arrow(out, EXPLANATION_DDL)

    def indicate(self, key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        chunk = int(key[0].as_py())
        context = _frame(table, _event_schema(explained=True))
        raw = raw_indicators(self.scan, context, self.chunks[chunk], self.rules)
        out = raw.join(context.select("system", "event_id", "day"), on=["system", "event_id"])
        return _arrow(out.with_columns(chunk=pl.lit(chunk, dtype=pl.Int32)), RAW_DDL)

    def finish(self, key: tuple[Any, ...], events: pa.Table, found: pa.Table) -> pa.Table:
        chunk = int(key[0].as_py())
        days = self.chunks[chunk]
        context = _frame(events, _event_schema(explained=True))
        codes = _frame(found, pl.Schema({**INDICATOR_SCHEMA, "day": pl.Date()}))
        raw = codes.filter(pl.col("day").is_in(days)).select(INDICATOR_SCHEMA.names())
        history = codes.lazy().select("system", "event_id", "code")
        empty = pl.DataFrame(schema={**EXPLANATION_SCHEMA, "day": pl.Date()})
        scored = finish_scoring(self.scan, context, days, self.rules, raw, history, empty)
        folder = Path(self.scratch) / "scored" / f"chunk={chunk}"
        folder.mkdir(parents=True, exist_ok=True)
        rows = 0
        for name in SCORED_OUTPUTS:
            frame: pl.DataFrame = getattr(scored, name)
            frame.write_parquet(folder / f"{name}.parquet")
            rows += frame.height
        return _arrow(pl.DataFrame({"chunk": [chunk], "rows": [rows]}), WRITTEN_DDL)


# -- the engine -----------------------------------------------------------------------------------
class SparkScorer:
    """A `ChunkScorer` (score/run.py) that scores every chunk in Spark before yielding them."""

    def __init__(
        self,
        settings: SparkConfig,
        progress: Callable[[str, int, int], None] | None = None,
        session: Callable[[SparkConfig], SparkSession] | None = None,
    ) -> None:
        self.settings = settings
        self.progress = progress
        self._session = session or spark_session

    def __call__(
        self, txn: Transaction, chunks: Sequence[Sequence[date]], rules: Rules
    ) -> Iterator[Scored]:
        if not chunks:
            return
        started = time.perf_counter()
        spark = self._session(self.settings)
        scratch = txn.path.parent / f"{txn.path.name}{SCRATCH_SUFFIX}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        try:
            job = ChunkJob(
                str(txn.path), str(scratch), tuple(tuple(sorted(c)) for c in chunks), rules
            )
            counts = _run_passes(spark, job, self.progress)
            seconds = time.perf_counter() - started
            for index, days in enumerate(job.chunks):
                scored = _read_chunk(scratch, index, list(days))
                scored.events = sum(counts.get(day, 0) for day in days)
                scored.seconds = seconds if index == 0 else 0.0
                yield scored
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _read_parquet(folder: Path, schema: pl.Schema) -> pl.DataFrame:
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return pl.DataFrame(schema=schema)
    return pl.read_parquet(files).select(schema.names()).cast(schema)


def _read_chunk(scratch: Path, index: int, days: list[date]) -> Scored:
    folder = scratch / "scored" / f"chunk={index}"
    explanations = _read_parquet(
        scratch / "explanations" / f"chunk={index}",
        pl.Schema({**EXPLANATION_SCHEMA, "day": pl.Date()}),
    )
    return Scored(
        days=days,
        explanations=explanations,
        indicators=pl.read_parquet(folder / "indicators.parquet"),
        flags=pl.read_parquet(folder / "flags.parquet").cast(FLAG_SCHEMA),
        flag_events=pl.read_parquet(folder / "flag_events.parquet").cast(FLAG_EVENT_SCHEMA),
        weak_explanations=pl.read_parquet(folder / "weak_explanations.parquet"),
        coverage=pl.read_parquet(folder / "coverage.parquet"),
    )


def _stored(spark: SparkSession, store: Path, name: str) -> DataFrame | None:
    """A Hive-partitioned store as a Spark DataFrame (None when the table has no files yet)."""
    folder = store / name
    if not folder.is_dir() or next(folder.glob("day=*/*.parquet"), None) is None:
        return None
    return spark.read.schema(STORED_DDL[name]).option("basePath", str(folder)).parquet(str(folder))


def _run_passes(
    spark: SparkSession, job: ChunkJob, progress: Callable[[str, int, int], None] | None = None
) -> dict[date, int]:
    """The three passes; their outputs land in the scratch folder. Returns accesses per day."""
    from pyspark.sql import functions as sf

    def step(what: str, done: int) -> None:
        if progress is not None:
            progress(f"Spark: {what}", done, 3)

    store, scratch = Path(job.store), Path(job.scratch)
    lookback = job.rules.lookback_days
    run_days = sorted({day for days in job.chunks for day in days})
    first = run_days[0] - timedelta(days=lookback)
    # Each chunk's context days: a day's accesses go to every chunk whose look-back holds it.
    routes = [
        (days[0] - timedelta(days=lookback) + timedelta(days=n), index)
        for index, days in enumerate(job.chunks)
        for n in range((days[-1] - days[0]).days + lookback + 1)
    ]
    log = _stored(spark, store, "access_events")
    if log is None:
        return {}
    in_range = sf.col("day").between(first, run_days[-1])
    counts = log.filter(sf.col("day").isin(run_days)).groupBy("day").count().collect()
    events = log.filter(in_range & sf.col("record_id").isNotNull()).select(*EVENT_COLUMNS)
    parts = len(job.chunks)

    def routed(frame: DataFrame) -> DataFrame:
        # a new routes frame each time: a cogroup of two sides joined to one frame is ambiguous
        chunk_days = spark.createDataFrame(routes, "day date, chunk int")
        return frame.join(sf.broadcast(chunk_days), on="day").repartition(parts, "chunk")

    earlier = in_range & ~sf.col("day").isin(run_days)

    # Spark counts a function's arguments, so the job's methods go as plain closures.
    def explain(key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        return job.explain(key, table)

    def indicate(key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        return job.indicate(key, table)

    def finish(key: tuple[Any, ...], events: pa.Table, found: pa.Table) -> pa.Table:
        return job.finish(key, events, found)

    # 1. explain
    step("explaining", 0)
    explained = routed(events).groupBy("chunk").applyInArrow(explain, EXPLANATION_DDL)
    explained.write.partitionBy("chunk").parquet(str(scratch / "explanations"))
    new = (
        spark.read.schema(EXPLANATION_DDL)
        .parquet(str(scratch / "explanations"))
        .select("system", "event_id")
    )
    keys = _union(new, _stored(spark, store, "explanations"), earlier, ["system", "event_id"])
    marked = events.join(
        keys.distinct().withColumn("explained", sf.lit(True)), ["system", "event_id"], "left"
    ).fillna(False, subset=["explained"])
    marked.write.parquet(str(scratch / "context"))
    context = spark.read.schema(CONTEXT_DDL).parquet(str(scratch / "context"))

    # 2. raw indicators
    step("finding indicators", 1)
    raw = routed(context).groupBy("chunk").applyInArrow(indicate, RAW_DDL)
    raw.write.parquet(str(scratch / "raw"))
    columns = ["system", "event_id", "code", "points", "evidence", "day"]
    found = _union(
        spark.read.schema(RAW_DDL).parquet(str(scratch / "raw")).select(*columns),
        _stored(spark, store, "indicators"),
        earlier,
        columns,
    )

    # 3. peers, episodes, patterns, coverage: the chunk's context cogrouped with its indicators
    step("weighing and flagging", 2)
    written = (
        routed(context)
        .groupBy("chunk")
        .cogroup(routed(found).groupBy("chunk"))
        .applyInArrow(finish, WRITTEN_DDL)
        .collect()
    )
    step("weighing and flagging", 3)
    missing = set(range(parts)) - {row["chunk"] for row in written}
    for index in missing:  # a chunk with no accesses at all: empty outputs
        _write_empty(scratch / "scored" / f"chunk={index}", job, index)
    return {row["day"]: int(row["count"]) for row in counts}


def _union(new: DataFrame, stored: DataFrame | None, earlier: Any, columns: list[str]) -> DataFrame:
    """This run's rows, and the stored rows of the look-back days it does not re-score."""
    if stored is None:
        return new.select(*columns)
    return new.select(*columns).unionByName(stored.filter(earlier).select(*columns))


def _write_empty(folder: Path, job: ChunkJob, index: int) -> None:
    """A chunk whose context holds no access: scored as the local engine scores it."""
    days = job.chunks[index]
    context = pl.DataFrame(schema=_event_schema(explained=True))
    raw = pl.DataFrame(schema=INDICATOR_SCHEMA)
    history = raw.lazy().select("system", "event_id", "code")
    empty = pl.DataFrame(schema={**EXPLANATION_SCHEMA, "day": pl.Date()})
    scored = finish_scoring(job.scan, context, days, job.rules, raw, history, empty)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SCORED_OUTPUTS:
        getattr(scored, name).write_parquet(folder / f"{name}.parquet")
