"""The one object behind the CLI, the nightly pipeline, the notebooks and the tests: a home folder.

A home holds the Parquet stores (``store/``, in generations), the run log (``runs/``), the
analysts' DuckDB database (``access-audit.duckdb``) and an optional ``access-audit.toml``.
Everything in it is created owner-only: the stores hold victims' names.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from access_audit.config import Config, load_config
from access_audit.errors import AccessAuditError
from access_audit.store import Generation, Store, new_run_id

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from access_audit.ingest import Drop, DropIngest, ProgressCallback

HOME_ENV = "ACCESS_AUDIT_HOME"
DEFAULT_HOME = Path("access-audit-data")


def resolve_home(home: Path | str | None) -> Path:
    """``--home``, else ``$ACCESS_AUDIT_HOME``, else ``./access-audit-data``."""
    if home is not None and str(home) != "":
        return Path(home).expanduser().absolute()
    from_env = os.environ.get(HOME_ENV, "")
    if from_env:
        return Path(from_env).expanduser().absolute()
    return DEFAULT_HOME.absolute()


@contextlib.contextmanager
def owner_only() -> Iterator[None]:
    """Files and folders created inside the block are readable by their owner alone."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@dataclass
class DropFailure:
    drop: str
    error: str


@dataclass
class IngestReport:
    """Every drop of one ``ingest`` call: those loaded and those that failed (loading nothing)."""

    loaded: list[DropIngest] = field(default_factory=list)
    failed: list[DropFailure] = field(default_factory=list)
    generation: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int


@dataclass(frozen=True)
class WorkspaceStatus:
    home: Path
    generation: int | None
    tables: list[TableCount]
    last_runs: list[dict[str, Any]]
    database: Path


class Workspace:
    """A home folder: configuration, stores, run log and the analysts' DuckDB database."""

    def __init__(self, home: Path, config: Config | None = None):
        self.home = home
        self.config = config if config is not None else load_config(home)
        self.store = Store(
            home / "store",
            keep_generations=self.config.store.keep_generations,
            lock_timeout=self.config.store.lock_timeout_seconds,
        )

    @classmethod
    def open(cls, home: Path | str | None = None, *, create: bool = True) -> Workspace:
        path = resolve_home(home)
        if path.exists() and not path.is_dir():
            raise AccessAuditError(f"{path}: the home must be a folder")
        if not path.exists():
            if not create:
                raise AccessAuditError(f"{path}: no access-audit home here (run `ingest` first)")
            with owner_only():
                path.mkdir(parents=True, mode=0o700)
        return cls(path)

    # -- paths ---------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def database_path(self) -> Path:
        from access_audit.catalog import DATABASE_NAME

        return self.home / DATABASE_NAME

    # -- reading -------------------------------------------------------------------------------
    def generation(self) -> Generation | None:
        return self.store.current()

    def scan(self, table: str) -> pl.LazyFrame:
        """A stored table of the current generation (typed and empty if nothing is loaded)."""
        from access_audit.tables import scan_stored, stored_table

        stored_table(table)
        current = self.generation()
        if current is None:
            import polars as pl

            return pl.LazyFrame(schema=stored_table(table).full_schema())
        return scan_stored(current.path, table)

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """The analysts' database; built first if it is missing or behind the stores."""
        import duckdb

        if not self.database_path.exists() or self._catalog_is_stale():
            self.refresh_catalog()
        return duckdb.connect(str(self.database_path), read_only=read_only)

    def runs(self) -> list[dict[str, Any]]:
        if not self.runs_dir.exists():
            return []
        records = [json.loads(p.read_text(encoding="utf-8")) for p in self.runs_dir.glob("*.json")]
        return sorted(records, key=lambda r: str(r.get("started_at", "")))

    def status(self, last_runs: int = 5) -> WorkspaceStatus:
        from access_audit.tables import stored_tables

        counts = [
            TableCount(t.name, int(self.scan(t.name).select(_len()).collect().item()))
            for t in stored_tables()
        ]
        current = self.generation()
        return WorkspaceStatus(
            home=self.home,
            generation=current.number if current else None,
            tables=counts,
            last_runs=self.runs()[-last_runs:],
            database=self.database_path,
        )

    def rejected_rows(self, drop_id: str | None = None, limit: int | None = None) -> pl.DataFrame:
        import polars as pl

        frame = self.scan("rejected_rows")
        if drop_id is not None:
            frame = frame.filter(pl.col("drop_id") == drop_id)
        frame = frame.sort("drop_id", "source_file", "source_line", "column")
        if limit is not None:
            frame = frame.head(limit)
        return frame.collect()

    # -- writing -------------------------------------------------------------------------------
    def ingest(
        self, drops: Sequence[Path], progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Load each drop in its own transaction, oldest first; a failed drop loads nothing."""
        from access_audit.ingest import ingest_drop

        report = IngestReport()
        with owner_only():
            for drop in self._discover(drops, report, "ingest"):
                started = datetime.now(UTC)
                run_id = new_run_id()
                try:
                    with self.store.transaction(run_id, {"command": "ingest"}) as txn:
                        result = ingest_drop(txn, drop, self.config.ingest, progress)
                    report.loaded.append(result)
                    self._log_run("ingest", drop.drop_id, result, None, started, run_id, txn)
                except AccessAuditError as exc:
                    report.failed.append(DropFailure(drop.drop_id, str(exc)))
                    self._log_run("ingest", drop.drop_id, None, exc, started, run_id)
            current = self.generation()
            report.generation = current.number if current else None
            self.refresh_catalog()
        return report

    def _discover(self, drops: Sequence[Path], report: IngestReport, command: str) -> list[Drop]:
        """The drops that can be read, oldest first; the others are failures in ``report``."""
        from access_audit.ingest import discover_drop

        discovered = []
        for path in drops:
            try:
                discovered.append(discover_drop(Path(path)))
            except AccessAuditError as exc:
                report.failed.append(DropFailure(str(path), str(exc)))
                self._log_run(command, str(path), None, exc, datetime.now(UTC))
        return sorted(discovered, key=lambda d: (d.as_of, d.drop_id))

    def refresh_catalog(self) -> Path:
        from access_audit.catalog import build_catalog

        with owner_only():
            return build_catalog(self.home, self.generation(), self.runs_dir)

    def _catalog_is_stale(self) -> bool:
        import duckdb

        current = self.generation()
        try:
            with duckdb.connect(str(self.database_path), read_only=True) as connection:
                row = connection.execute("SELECT generation FROM catalog_info").fetchone()
        except duckdb.Error:
            return True
        built_on = row[0] if row else None
        return built_on != (current.number if current else 0)

    def _log_run(
        self,
        command: str,
        drop_id: str,
        result: DropIngest | None,
        error: Exception | None,
        started: datetime,
        run_id: str | None = None,
        txn: Any = None,
    ) -> None:
        """One JSON file per run, success or failure; counts and reasons, never personal data."""
        run_id = run_id or new_run_id()
        committed = getattr(txn, "committed", None)
        record: dict[str, Any] = {
            "run_id": run_id,
            "command": command,
            "drop_id": drop_id,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "outcome": "failed" if error else ("loaded" if committed else "nothing_new"),
            "error": str(error) if error else None,
            "generation": committed.number if committed else None,
        }
        if result is not None:
            record.update(
                {
                    "drop_path": result.path,
                    "as_of": result.as_of.isoformat(),
                    "files": result.files,
                    "skipped_files": result.skipped_files,
                    "unrecognised_files": result.unrecognised_files,
                    "tables": {k: asdict(v) for k, v in result.tables.items()},
                    "rejections": result.rejections,
                    "days_touched": [d.isoformat() for d in result.days_touched],
                    "seconds": round(result.seconds, 3),
                }
            )
        self.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.runs_dir / f"{run_id}.json"
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(json.dumps(record, default=str, indent=1), encoding="utf-8")
        os.replace(temporary, target)


def _len() -> Any:
    import polars as pl

    return pl.len()
