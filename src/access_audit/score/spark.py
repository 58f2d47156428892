"""The Spark engine (`score --engine spark`, `nightly --engine spark`): the local engine's steps,
run per chunk inside Spark tasks, with Polars inside.

A scoring run splits its days into chunks (``[scoring] chunk_days``); the local engine scores them
one after another, and within a chunk each day against the look-back aggregates of the days before
it (score/lookback.py), which the days before it in this run add to. Those aggregates depend only
on explained accesses (a day's lookups, and its raw indicators found against its look-back's
lookups), never on another day's flags. So Spark runs three passes, with Polars inside:

1. ``groupBy("chunk").applyInArrow`` — each chunk's context accesses in, the target days'
   explanations out (the local engine's ``explain`` over ``day_inputs``);
2. the context marked explained (a Spark join: new keys ∪ stored keys of days not re-scored), then
   ``groupBy("target").applyInArrow`` — each run day with the accesses of its look-back in, the
   day's aggregates out (``day_aggregates``);
3. ``groupBy("chunk").applyInArrow`` — each chunk's context in; ``score_chunk`` scores its days with
   ``score_day``, the local engine's per-day step, against the stored aggregates of the days not
   re-scored (read once by the driver) and pass 2's of the run days before it.

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
    MINING_COLUMNS,
    Scored,
    day_aggregates,
    day_inputs,
    merge_coverage,
    rebuild_lookback,
    score_chunk,
)
from access_audit.score.anchors import reach_days
from access_audit.score.explain import EXPLANATION_SCHEMA, explain
from access_audit.score.flags import FLAG_EVENT_SCHEMA, FLAG_SCHEMA
from access_audit.score.lookback import (
    HITS,
    LOOKUPS,
    USER_DAYS,
    Lookback,
    read_lookback,
)
from access_audit.score.mined import reads_accesses
from access_audit.score.run import access_sources
from access_audit.tables import scan_stored, stored_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from access_audit.config import SparkConfig
    from access_audit.score.rules import Rules
    from access_audit.store import Transaction

ENGINES = ("polars", "spark")
SCRATCH_SUFFIX = "-spark"
EXPLANATION_COLUMNS = [*EXPLANATION_SCHEMA.names(), "day", "chunk"]
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
AGGREGATES = {LOOKUPS.name: LOOKUPS, USER_DAYS.name: USER_DAYS, HITS.name: HITS}


def _lookback_of(tables: dict[str, pl.DataFrame]) -> Lookback:
    return Lookback(tables[LOOKUPS.name], tables[USER_DAYS.name], tables[HITS.name])


@dataclass(frozen=True)
class ChunkJob:
    """What every task needs: where the stores are, the chunks' days, the rules."""

    store: str
    scratch: str
    chunks: tuple[tuple[date, ...], ...]
    rules: Rules

    def scan(self, name: str) -> pl.LazyFrame:
        return scan_stored(Path(self.store), name)

    @property
    def run_days(self) -> list[date]:
        return sorted({day for days in self.chunks for day in days})

    def explain(self, key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        chunk = int(key[0].as_py())
        days = self.chunks[chunk]
        events = _frame(table, _event_schema(explained=False))
        inputs = day_inputs(self.scan, events.lazy(), days)
        targets = events.lazy().filter(pl.col("day").is_in(days))
        found = explain(inputs, self.rules, targets).collect()
        out = found.join(events.select("system", "event_id", "day"), on=["system", "event_id"])
        return _arrow(out.with_columns(chunk=pl.lit(chunk, dtype=pl.Int32)), EXPLANATION_DDL)

    def aggregate(self, key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        """Pass 2: one run day's own look-back aggregates, from its look-back's accesses."""
        index = int(key[0].as_py())
        day = self.run_days[index]
        context = _frame(table, _event_schema(explained=True))
        targets = context.filter(pl.col("day") == day)
        earlier = Lookback.of(context.filter(pl.col("day") < day))
        inputs = day_inputs(self.scan, targets.lazy(), [day])
        today, _ = day_aggregates(day, targets, earlier, inputs, self.rules)
        rows = 0
        for name, frame in today.tables().items():
            folder = Path(self.scratch) / "aggregates" / name
            folder.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(folder / f"{day.isoformat()}.parquet")
            rows += frame.height
        return _arrow(pl.DataFrame({"chunk": [index], "rows": [rows]}), WRITTEN_DDL)

    def aggregates(self, days: Sequence[date]) -> Lookback:
        """The look-back aggregates of `days`: pass 2's for the run's days, the stored (or
        rebuilt) ones the driver read for the others."""
        wanted = pl.col("day").is_in(list(days))
        tables: dict[str, pl.DataFrame] = {}
        for name, table in AGGREGATES.items():
            schema = table.full_schema()
            files = [
                *sorted((Path(self.scratch) / "aggregates" / name).glob("*.parquet")),
                Path(self.scratch) / "stored" / f"{name}.parquet",
            ]
            present = [f for f in files if f.is_file()]
            frame = (
                pl.scan_parquet(present).filter(wanted).collect().select(schema.names())
                if present
                else pl.DataFrame(schema=schema)
            )
            tables[name] = frame.cast(schema)  # type: ignore[arg-type]
        return _lookback_of(tables)

    def finish(self, key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        chunk = int(key[0].as_py())
        rows = self.score(chunk, _frame(table, _event_schema(explained=True)))
        return _arrow(pl.DataFrame({"chunk": [chunk], "rows": [rows]}), WRITTEN_DDL)

    def score(self, chunk: int, context: pl.DataFrame) -> int:
        """Pass 3: the chunk's days scored one after another by the local engine's `score_day`
        (through `score_chunk`); the outputs go to the scratch folder. Returns the rows written."""
        days = self.chunks[chunk]
        # the look-back of the chunk's first day, and of its anchor (score/anchors.py)
        before = [days[0] - timedelta(days=n) for n in range(1, reach_days(self.rules) + 1)]
        lookback = self.aggregates(before)
        inputs = day_inputs(self.scan, context.lazy(), days)
        mining = context.select(MINING_COLUMNS)
        history = mining if reads_accesses(self.rules) else mining.clear()
        targets = context.filter(pl.col("day").is_in(days))
        parts = score_chunk(days, targets, lookback, inputs, self.rules, history)
        outputs = {
            "indicators": pl.concat([p.indicators for p in parts]),
            "flags": pl.concat([p.flags for p in parts]).sort(
                "day", "score", "flag_id", descending=[False, True, False]
            ),
            "flag_events": pl.concat([p.flag_events for p in parts]),
            "weak_explanations": pl.concat([p.weak_explanations for p in parts]),
            "coverage": merge_coverage([p.coverage for p in parts]),
        }
        folder = Path(self.scratch) / "scored" / f"chunk={chunk}"
        folder.mkdir(parents=True, exist_ok=True)
        rows = 0
        for name in SCORED_OUTPUTS:
            outputs[name].write_parquet(folder / f"{name}.parquet")
            rows += outputs[name].height
        return rows

    def store_lookback(self, sources: dict[date, str]) -> list[date]:
        """On the driver: the stored aggregates of the look-back days the run does not score
        (rebuilt where their accesses changed), to the scratch folder. Returns the rebuilt days."""
        run = set(self.run_days)
        reach = reach_days(self.rules)
        before = sorted({d - timedelta(days=n) for d in run for n in range(1, reach + 1)} - run)
        known = [d for d in before if d in sources]
        stored, rebuilt = read_lookback(
            self.scan, known, sources, lambda stale: rebuild_lookback(self.scan, stale)
        )
        folder = Path(self.scratch) / "stored"
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in stored.tables().items():
            frame.write_parquet(folder / f"{name}.parquet")
        return rebuilt


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
            rebuilt = job.store_lookback(access_sources(txn.path))
            counts = _run_passes(spark, job, self.progress)
            seconds = time.perf_counter() - started
            for index, days in enumerate(job.chunks):
                scored = _read_chunk(job, index, list(days), rebuilt if index == 0 else [])
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


def _read_chunk(job: ChunkJob, index: int, days: list[date], rebuilt: list[date]) -> Scored:
    scratch = Path(job.scratch)
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
        lookback=job.aggregates([*days, *rebuilt]),
        lookback_days=sorted({*days, *rebuilt}),
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
    reach = reach_days(job.rules)
    run_days = sorted({day for days in job.chunks for day in days})
    first = run_days[0] - timedelta(days=reach)
    # Each chunk's context days: a day's accesses go to every chunk whose look-back, or whose
    # anchor's look-back (score/anchors.py), holds it.
    routes = [
        (days[0] - timedelta(days=reach) + timedelta(days=n), index)
        for index, days in enumerate(job.chunks)
        for n in range((days[-1] - days[0]).days + reach + 1)
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

    def aggregate(key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        return job.aggregate(key, table)

    def finish(key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        return job.finish(key, table)

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

    # 2. each run day's own look-back aggregates, from the accesses of its look-back
    step("finding indicators", 1)
    day_routes = [
        (day - timedelta(days=n), index)
        for index, day in enumerate(job.run_days)
        for n in range(lookback + 1)
    ]

    def by_day(frame: DataFrame) -> DataFrame:
        targets = spark.createDataFrame(day_routes, "day date, chunk int")
        return frame.join(sf.broadcast(targets), on="day").repartition(len(run_days), "chunk")

    by_day(context).groupBy("chunk").applyInArrow(aggregate, WRITTEN_DDL).collect()

    # 3. each chunk's days scored one after another (score_day), against the aggregates
    step("weighing and flagging", 2)
    written = routed(context).groupBy("chunk").applyInArrow(finish, WRITTEN_DDL).collect()
    step("weighing and flagging", 3)
    missing = set(range(parts)) - {row["chunk"] for row in written}
    for index in missing:  # a chunk with no accesses at all: scored as the local engine does
        job.score(index, pl.DataFrame(schema=_event_schema(explained=True)))
    return {row["day"]: int(row["count"]) for row in counts}


def _union(new: DataFrame, stored: DataFrame | None, earlier: Any, columns: list[str]) -> DataFrame:
    """This run's rows, and the stored rows of the look-back days it does not re-score."""
    if stored is None:
        return new.select(*columns)
    return new.select(*columns).unionByName(stored.filter(earlier).select(*columns))
