"""Stage 1, ingest: an export drop into the Parquet stores, validated, deduplicated, all-or-nothing.

``ingest_drop`` works inside a store transaction: if anything raises, nothing it wrote is kept.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import polars as pl

from access_audit.config import IngestConfig
from access_audit.errors import AccessAuditError
from access_audit.ingest.lines import LINE_COLUMN
from access_audit.ingest.merge import merge_events, merge_upsert
from access_audit.ingest.normalise import TimeRules, normalise, split_rejected
from access_audit.ingest.read import (
    SUPPORTED_SUFFIXES,
    RawFile,
    file_checksum,
    read_export_file,
)
from access_audit.schema import ACCESS_LOG, TABLES, TableSpec, table_for_file
from access_audit.store import Transaction
from access_audit.tables import (
    LOADED_FILES,
    REJECTED_ROWS,
    UTC_DATETIME,
    scan_stored,
    stored_table,
)

ProgressCallback = Callable[[str, int, int], None]
"""progress(what, done, total): called as files are read and tables merged."""

_DROP_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class DropFile:
    path: Path
    name: str
    table: TableSpec
    sha256: str
    size: int


@dataclass(frozen=True)
class Drop:
    """A drop folder: its files by table, and what in it is not an export file."""

    path: Path
    drop_id: str
    as_of: datetime
    files: list[DropFile]
    unrecognised: list[str]
    ignored: dict[str, str] = field(default_factory=dict)
    """Entries not read, by name, with the reason (hidden, a folder, a link out of the drop)."""


@dataclass
class TableLoad:
    table: str
    files: int = 0
    rows_read: int = 0
    loaded: int = 0
    unchanged: int = 0
    duplicates: int = 0
    stale: int = 0
    rejected_rows: int = 0


@dataclass
class DropIngest:
    """What one drop did to the stores (the CLI prints it; the run log keeps it)."""

    drop_id: str
    path: str
    as_of: datetime
    tables: dict[str, TableLoad] = field(default_factory=dict)
    rejections: dict[str, int] = field(default_factory=dict)
    """Rejected rows per "table: reason"."""
    skipped_files: list[str] = field(default_factory=list)
    """Files loaded before with the same checksum: nothing to do."""
    unrecognised_files: list[str] = field(default_factory=list)
    ignored_files: dict[str, str] = field(default_factory=dict)
    """Entries of the drop folder not read, with why: hidden, a folder, a link leading out of
    the drop, an empty file."""
    days_touched: list[date] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_loaded(self) -> int:
        return sum(t.loaded for t in self.tables.values())

    @property
    def rows_rejected(self) -> int:
        return sum(t.rejected_rows for t in self.tables.values())


def discover_drop(path: Path, now: datetime | None = None) -> Drop:
    """A drop's files, grouped by the table their names start with."""
    if not path.is_dir():
        raise AccessAuditError(f"{path}: not a folder (a drop is a folder of export files)")
    files: list[DropFile] = []
    unrecognised: list[str] = []
    ignored: dict[str, str] = {}
    for child in sorted(path.iterdir()):
        reason = _ignored_because(path, child)
        if reason is not None:
            ignored[child.name] = reason
            continue
        spec = table_for_file(child.name)
        if spec is None or child.suffix.lower() not in SUPPORTED_SUFFIXES:
            unrecognised.append(child.name)
            continue
        try:
            checksum, size = file_checksum(child), child.stat().st_size
        except OSError as exc:
            raise AccessAuditError(
                f"{path}/{child.name}: cannot be read ({exc.strerror or type(exc).__name__})"
            ) from exc
        files.append(DropFile(child, child.name, spec, checksum, size))
    if not any(f.table is ACCESS_LOG for f in files):
        raise AccessAuditError(f"{path}: no access_log file (every drop must have one)")
    match = _DROP_DATE.match(path.name)
    as_of = now or datetime.now(UTC)
    if match:
        with contextlib.suppress(ValueError):
            as_of = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
    return Drop(path, path.name, as_of, files, unrecognised, ignored)


def _ignored_because(drop: Path, child: Path) -> str | None:
    """Why an entry of a drop folder is not read, or None to read it."""
    if child.name.startswith("."):
        return "hidden file" if child.is_file() else "hidden entry"
    if child.is_symlink():
        try:
            target = child.resolve(strict=True)
        except (OSError, RuntimeError):
            return "symbolic link that leads nowhere (or round in a loop)"
        if not target.is_relative_to(drop.resolve()):
            return "symbolic link leading out of the drop: refused"
    if child.is_dir():
        return "subfolder: a drop is one folder, subfolders are not read"
    if not child.is_file():
        return "not a regular file"
    return None


def ingest_drop(
    txn: Transaction,
    drop: Drop,
    config: IngestConfig,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> DropIngest:
    """Validate and merge every file of ``drop`` into the transaction's stores.

    A drop dated beyond the wall clock's reach (``now``, default the clock) is refused whole."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    check_drop_date(drop, config, now)
    result = DropIngest(drop.drop_id, str(drop.path), drop.as_of)
    result.unrecognised_files = list(drop.unrecognised)
    result.ignored_files = dict(drop.ignored)
    loaded_before = _scan(txn, LOADED_FILES.name).select("drop_id", "file", "sha256").collect()
    pending = _pending_files(drop, loaded_before, result)
    rules = time_rules(config, drop.as_of, now)
    rejected_frames: list[pl.DataFrame] = []
    done = 0
    for spec in TABLES:
        files = [f for f in pending if f.table is spec]
        if not files:
            continue
        raws = []
        for drop_file in files:
            raw = read_export_file(
                drop_file.path, spec, drop_file.name, config.column_mappings.get(spec.name)
            )
            raws.append(raw)
            result.files.append(_file_record(drop_file, raw))
            if raw.empty:
                result.ignored_files[drop_file.name] = "empty file: no header, no rows"
            done += 1
            if progress is not None:
                progress(f"{drop.drop_id}: {drop_file.name}", done, len(pending))
        load, rejected = _load_table(txn, spec, raws, drop, result, rules)
        result.tables[spec.name] = load
        rejected_frames.append(rejected)
    _record_rejections(txn, rejected_frames, drop, result)
    _record_loaded_files(txn, drop, result)
    result.seconds = time.perf_counter() - started
    return result


def check_drop_date(drop: Drop, config: IngestConfig, now: datetime) -> None:
    """Refuse a drop whose date (from its folder name) no export could carry: after today plus
    ``max_days_after_drop`` (it would set the re-explain window and win every upsert for years),
    or, with the timestamp window on, before ``earliest_timestamp`` (every row would be refused).
    """
    day = drop.as_of.date()
    allowance = config.max_days_after_drop
    if day > now.date() + timedelta(days=allowance):
        raise AccessAuditError(
            f"the drop is dated {day}, later than today ({now.date()}) plus [ingest] "
            f"max_days_after_drop ({allowance} day(s)): a drop cannot come from the future; "
            "check the folder's name"
        )
    if config.timestamp_window and day < config.earliest_timestamp:
        raise AccessAuditError(
            f"the drop is dated {day}, before [ingest] earliest_timestamp "
            f"({config.earliest_timestamp}): check the folder's name"
        )


def time_rules(config: IngestConfig, as_of: datetime, now: datetime | None = None) -> TimeRules:
    """How this drop's timestamps are read, with the plausibility window around its date: from
    ``earliest_timestamp`` to ``max_days_after_drop`` after the drop's date or the wall clock
    (``now``), whichever is earlier."""
    if config.timestamp_window:
        earliest = datetime.combine(config.earliest_timestamp, clock_time(), UTC)
        anchor = min(as_of, now or datetime.now(UTC))
        latest = anchor + timedelta(days=config.max_days_after_drop)
    else:
        earliest, latest = TimeRules.earliest, TimeRules.latest
    return TimeRules(config.timezone, config.ambiguous_local_times, earliest, latest)


def _pending_files(drop: Drop, loaded_before: pl.DataFrame, result: DropIngest) -> list[DropFile]:
    seen = set(
        zip(
            loaded_before["drop_id"].to_list(),
            loaded_before["file"].to_list(),
            loaded_before["sha256"].to_list(),
            strict=True,
        )
    )
    pending = []
    for drop_file in drop.files:
        if (drop.drop_id, drop_file.name, drop_file.sha256) in seen:
            result.skipped_files.append(drop_file.name)
        else:
            pending.append(drop_file)
    return pending


def _file_record(drop_file: DropFile, raw: RawFile) -> dict[str, object]:
    return {
        "file": drop_file.name,
        "table": drop_file.table.name,
        "sha256": drop_file.sha256,
        "bytes": drop_file.size,
        "rows": raw.frame.height + raw.refused.height,
        "extra_columns": raw.extra_columns,
    }


def _load_table(
    txn: Transaction,
    spec: TableSpec,
    raws: list[RawFile],
    drop: Drop,
    result: DropIngest,
    rules: TimeRules,
) -> tuple[TableLoad, pl.DataFrame]:
    load = TableLoad(spec.name, files=len(raws))
    raw = pl.concat([r.frame for r in raws], how="vertical")
    refused_lines = _line_rejections(pl.concat([r.refused for r in raws], how="vertical"))
    load.rows_read = raw.height + refused_lines.height
    good_lazy, rejected_lazy = split_rejected(normalise(raw.lazy(), spec, rules))
    provenance = [
        pl.lit(drop.drop_id).alias("drop_id"),
        pl.lit(txn.run_id).alias("run_id"),
        pl.lit(drop.as_of).cast(UTC_DATETIME).alias("as_of"),
    ]
    good, rejected = pl.collect_all([good_lazy.with_columns(provenance), rejected_lazy])
    table = stored_table(spec.store)
    columns = list(table.schema().names())
    if spec.mode == "append":
        merged = merge_events(good, _scan(txn, spec.store), spec)
        new_rows = merged.new_rows.select(*columns, pl.col("occurred_at").dt.date().alias("day"))
        txn.append(spec.store, new_rows, partition_by="day")
        load.loaded = new_rows.height
        load.duplicates = merged.duplicates
        result.days_touched = sorted(set(new_rows["day"].unique().to_list()))
        rejected = pl.concat(
            [rejected, _conflict_rejections(merged.conflicts, raw, spec)], how="vertical_relaxed"
        )
    else:
        stored = _scan(txn, spec.store).collect()
        upsert = merge_upsert(good.select(columns), stored, spec)
        if upsert.table is not None:
            txn.replace_table(spec.store, upsert.table.select(columns))
        load.loaded = upsert.changed
        load.unchanged = upsert.unchanged
        load.stale = upsert.stale
        load.duplicates = upsert.duplicates
        rejected = pl.concat(
            [rejected, _superseded_rejections(upsert.superseded, raw, spec)],
            how="vertical_relaxed",
        )
    rejected = pl.concat([refused_lines, rejected], how="vertical_relaxed")
    load.rejected_rows = rejected.select("source_file", "source_line").unique().height
    return load, rejected.with_columns(pl.lit(spec.name).alias("table_name"))


def _line_rejections(refused: pl.DataFrame) -> pl.DataFrame:
    """Rejected-row records for lines that could not be read as a row at all."""
    return refused.select(
        "source_file",
        "source_line",
        pl.struct(pl.col("text").alias(LINE_COLUMN)).struct.json_encode().alias("raw_row"),
        pl.lit(LINE_COLUMN).alias("column"),
        "reason",
        pl.col("text").alias("raw_value"),
    )


def _conflict_rejections(
    conflicts: pl.DataFrame, raw: pl.DataFrame, spec: TableSpec
) -> pl.DataFrame:
    return _whole_row_rejections(conflicts, raw, spec, "event_id", "conflicting_duplicate")


def _superseded_rejections(
    superseded: pl.DataFrame, raw: pl.DataFrame, spec: TableSpec
) -> pl.DataFrame:
    return _whole_row_rejections(superseded, raw, spec, spec.key[0], "superseded_in_drop")


def _whole_row_rejections(
    refused: pl.DataFrame, raw: pl.DataFrame, spec: TableSpec, column: str, reason: str
) -> pl.DataFrame:
    """Rejected-row records for rows refused as a whole, with their values as delivered (text,
    whatever the column's type: a list of markers is kept as the cell that held it)."""
    where = ["source_file", "source_line"]
    return (
        raw.join(refused.select(where), on=where, how="semi")
        .select(
            *where,
            pl.struct(spec.column_names).struct.json_encode().alias("raw_row"),
            pl.lit(column).alias("column"),
            pl.lit(reason).alias("reason"),
            pl.col(column).alias("raw_value"),
        )
        .sort(where)
    )


def _record_rejections(
    txn: Transaction, frames: list[pl.DataFrame], drop: Drop, result: DropIngest
) -> None:
    schema = REJECTED_ROWS.schema()
    if not frames:
        return
    rejected = pl.concat(frames, how="vertical_relaxed").with_columns(
        pl.lit(txn.run_id).alias("run_id"),
        pl.lit(drop.drop_id).alias("drop_id"),
        pl.lit(datetime.now(UTC)).cast(UTC_DATETIME).alias("rejected_at"),
    )
    rejected = rejected.select([pl.col(n).cast(t) for n, t in schema.items()])
    txn.append(REJECTED_ROWS.name, rejected)
    counts = rejected.group_by("table_name", "reason").len().sort("table_name", "reason")
    result.rejections = {
        f"{t}: {r}": n
        for t, r, n in zip(
            counts["table_name"].to_list(),
            counts["reason"].to_list(),
            counts["len"].to_list(),
            strict=True,
        )
    }


def _record_loaded_files(txn: Transaction, drop: Drop, result: DropIngest) -> None:
    if not result.files:
        return
    records = pl.DataFrame(
        {
            "drop_id": [drop.drop_id] * len(result.files),
            "file": [f["file"] for f in result.files],
            "table_name": [f["table"] for f in result.files],
            "sha256": [f["sha256"] for f in result.files],
            "bytes": [f["bytes"] for f in result.files],
            "rows": [f["rows"] for f in result.files],
        }
    ).with_columns(
        pl.lit(txn.run_id).alias("run_id"),
        pl.lit(datetime.now(UTC)).cast(UTC_DATETIME).alias("loaded_at"),
    )
    schema = LOADED_FILES.schema()
    txn.append(LOADED_FILES.name, records.select([pl.col(n).cast(t) for n, t in schema.items()]))


def _scan(txn: Transaction, name: str) -> pl.LazyFrame:
    return scan_stored(txn.path, name)
