"""Workspace configuration: `access-audit.toml` in the home, with defaults for everything."""

from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from access_audit.errors import AccessAuditError
from access_audit.schema import TABLES_BY_NAME

CONFIG_FILE_NAME = "access-audit.toml"

AmbiguousPolicy = Literal["reject", "earliest", "latest"]


@dataclass(frozen=True)
class IngestConfig:
    """How drops are read."""

    timezone: str = "Europe/London"
    ambiguous_local_times: AmbiguousPolicy = "reject"
    """The repeated autumn hour: reject the row (default), or take the earlier or later instant."""
    column_mappings: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per table, spec column name -> the force's own column name."""


VerifyMode = Literal["full", "quick"]


@dataclass(frozen=True)
class StoreConfig:
    keep_generations: int = 5
    """The fewest committed generations kept on disk, whatever their age."""
    keep_hours: float = 36.0
    """A generation is kept while it was current within this many hours, so an analyst's DuckDB
    session opened on it keeps working (see store.py)."""
    lock_timeout_seconds: float = 600.0
    verify_before_build: VerifyMode = "full"
    """How nightly, score and ingest check the generation they build on: full (re-hash every
    file) or quick (sizes and Parquet row counts)."""
    signing_key: Path | None = None
    """An Ed25519 private key (PEM), outside the home: each commit signs its head (signing.py)."""


@dataclass(frozen=True)
class Config:
    ingest: IngestConfig = field(default_factory=IngestConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    raw: dict[str, Any] = field(default_factory=dict)
    """The whole parsed file, for later stages' own sections."""

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise AccessAuditError(f"{CONFIG_FILE_NAME}: [{name}] must be a table")
        return value


def load_config(home: Path) -> Config:
    path = home / CONFIG_FILE_NAME
    if not path.exists():
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AccessAuditError(f"{path}: not valid TOML ({exc})") from exc
    return parse_config(raw, source=str(path))


def parse_config(raw: dict[str, Any], source: str = CONFIG_FILE_NAME) -> Config:
    ingest_raw = raw.get("ingest", {})
    store_raw = raw.get("store", {})
    timezone = str(ingest_raw.get("timezone", IngestConfig.timezone))
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise AccessAuditError(f"{source}: unknown time zone '{timezone}'") from exc
    ambiguous = ingest_raw.get("ambiguous_local_times", IngestConfig.ambiguous_local_times)
    if ambiguous not in ("reject", "earliest", "latest"):
        raise AccessAuditError(
            f"{source}: ambiguous_local_times must be reject, earliest or latest, not '{ambiguous}'"
        )
    mappings = _parse_column_mappings(raw.get("columns", {}), source)
    keep = int(store_raw.get("keep_generations", StoreConfig.keep_generations))
    if keep < 2:
        raise AccessAuditError(f"{source}: keep_generations must be at least 2")
    keep_hours = store_raw.get("keep_hours", StoreConfig.keep_hours)
    if not isinstance(keep_hours, int | float) or isinstance(keep_hours, bool) or keep_hours < 0:
        raise AccessAuditError(f"{source}: keep_hours must be a number of hours, 0 or more")
    verify = store_raw.get("verify_before_build", StoreConfig.verify_before_build)
    if verify not in ("full", "quick"):
        raise AccessAuditError(f"{source}: verify_before_build must be full or quick")
    signing_key = store_raw.get("signing_key")
    if signing_key is not None and not (isinstance(signing_key, str) and signing_key.strip()):
        raise AccessAuditError(f"{source}: signing_key must name a key file")
    return Config(
        ingest=IngestConfig(
            timezone=timezone, ambiguous_local_times=ambiguous, column_mappings=mappings
        ),
        store=StoreConfig(
            keep_generations=keep,
            keep_hours=float(keep_hours),
            verify_before_build=verify,
            signing_key=Path(signing_key).expanduser() if signing_key else None,
            lock_timeout_seconds=float(
                store_raw.get("lock_timeout_seconds", StoreConfig.lock_timeout_seconds)
            ),
        ),
        raw=raw,
    )


def _parse_column_mappings(raw: Any, source: str) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict):
        raise AccessAuditError(f"{source}: [columns] must be a table of tables")
    mappings: dict[str, dict[str, str]] = {}
    for table_name, mapping in raw.items():
        spec = TABLES_BY_NAME.get(table_name)
        if spec is None:
            raise AccessAuditError(f"{source}: [columns.{table_name}] names no export table")
        if not isinstance(mapping, dict):
            raise AccessAuditError(f"{source}: [columns.{table_name}] must map column = name")
        for column, source_name in mapping.items():
            if column not in spec.column_index:
                raise AccessAuditError(
                    f"{source}: [columns.{table_name}] {column} is not a column of {table_name}"
                )
            if not isinstance(source_name, str) or not source_name.strip():
                raise AccessAuditError(
                    f"{source}: [columns.{table_name}] {column} must name a source column"
                )
        mappings[table_name] = {str(k): str(v) for k, v in mapping.items()}
    return mappings
