"""Workspace configuration: `access-audit.toml` in the home, with defaults for everything."""

from __future__ import annotations

import tomllib
import zoneinfo
from dataclasses import dataclass, field
from datetime import date
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
    timestamp_window: bool = True
    """Reject timestamps outside [earliest_timestamp, the drop's date + max_days_after_drop]."""
    earliest_timestamp: date = date(1990, 1, 1)
    """Before any force's audited records system: an earlier instant is a typo or a default."""
    max_days_after_drop: int = 7
    """A drop covers its own day; a week ahead leaves room for rostered shifts and assignments
    planned in advance, while a year-2100 typo is refused."""


@dataclass(frozen=True)
class StoreConfig:
    keep_generations: int = 5
    """Committed generations kept on disk, so analysts' open sessions keep a consistent view."""
    lock_timeout_seconds: float = 600.0


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
    window = _parse_timestamp_window(ingest_raw, source)
    keep = int(store_raw.get("keep_generations", StoreConfig.keep_generations))
    if keep < 2:
        raise AccessAuditError(f"{source}: keep_generations must be at least 2")
    return Config(
        ingest=IngestConfig(
            timezone=timezone,
            ambiguous_local_times=ambiguous,
            column_mappings=mappings,
            **window,
        ),
        store=StoreConfig(
            keep_generations=keep,
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


def _parse_timestamp_window(ingest_raw: dict[str, Any], source: str) -> dict[str, Any]:
    enabled = ingest_raw.get("timestamp_window", IngestConfig.timestamp_window)
    if not isinstance(enabled, bool):
        raise AccessAuditError(f"{source}: [ingest] timestamp_window must be true or false")
    earliest = ingest_raw.get("earliest_timestamp", IngestConfig.earliest_timestamp)
    if isinstance(earliest, str):
        try:
            earliest = date.fromisoformat(earliest)
        except ValueError:
            earliest = None
    if not isinstance(earliest, date):
        raise AccessAuditError(f"{source}: [ingest] earliest_timestamp must be a date, YYYY-MM-DD")
    days = ingest_raw.get("max_days_after_drop", IngestConfig.max_days_after_drop)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 3660:
        raise AccessAuditError(
            f"{source}: [ingest] max_days_after_drop must be a whole number of days, 0 to 3660"
        )
    return {
        "timestamp_window": enabled,
        "earliest_timestamp": earliest,
        "max_days_after_drop": days,
    }
