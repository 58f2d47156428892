"""Reading one export file (CSV, Parquet or JSON Lines) into raw text columns with line numbers.

This module is the ingest stage's input edge: the only place drop files are opened.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from access_audit.errors import AccessAuditError, MissingColumnError
from access_audit.schema import TableSpec

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl")


@dataclass(frozen=True)
class RawFile:
    """One file's rows as text, renamed to spec columns, with where each came from."""

    frame: pl.DataFrame
    extra_columns: list[str]


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_export_file(
    path: Path, spec: TableSpec, display_name: str, mapping: dict[str, str] | None = None
) -> RawFile:
    """Raw text columns named as the spec names them, plus ``source_file`` and ``source_line``.

    Raises MissingColumnError when a required column is absent, AccessAuditError when the file
    cannot be parsed at all.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = _read_csv(path)
        elif suffix == ".parquet":
            frame = _as_text(pl.read_parquet(path, glob=False)).with_row_index(
                "source_line", offset=1
            )
        elif suffix == ".jsonl":
            frame = _read_jsonl(path)
        else:
            raise AccessAuditError(f"{display_name}: unsupported file type '{suffix}'")
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AccessAuditError(f"{display_name}: cannot be read ({first_line})") from exc
    frame = frame.rename(_header_renames(frame.columns, spec, mapping or {}))
    missing = [c for c in spec.required_columns if c not in frame.columns]
    if missing:
        raise MissingColumnError(display_name, missing[0], spec.name)
    extras = [c for c in frame.columns if c not in spec.column_index and c != "source_line"]
    absent = [pl.lit(None, dtype=pl.String).alias(c) for c in spec.column_names if c not in frame]
    extra = (
        pl.struct(extras).struct.json_encode() if extras else pl.lit(None, dtype=pl.String)
    ).alias("extra")
    frame = frame.with_columns(
        *absent,
        extra,
        pl.lit(display_name).alias("source_file"),
        pl.col("source_line").cast(pl.Int64),
    ).select(*spec.column_names, "extra", "source_file", "source_line")
    return RawFile(frame=frame, extra_columns=extras)


def _header_renames(columns: list[str], spec: TableSpec, mapping: dict[str, str]) -> dict[str, str]:
    """Header names are matched trimmed and case-insensitively; a mapping renames first."""
    by_source = {source.strip().lower(): target for target, source in mapping.items()}
    renames: dict[str, str] = {}
    for column in columns:
        if column == "source_line":
            continue
        key = column.strip().lstrip("\ufeff").strip().lower()
        target = by_source.get(key, key if key in spec.column_index else None)
        if target is not None and target != column:
            renames[column] = target
    return renames


def _read_csv(path: Path) -> pl.DataFrame:
    frame = pl.read_csv(
        path,
        infer_schema=False,
        encoding="utf8",
        raise_if_empty=False,
        glob=False,  # a file name holding * ? [ is a name, not a pattern
    )
    # A quoted value may span lines: a row's line is the header's 1 plus the rows and embedded
    # newlines before it, so rejected rows point at the line an editor shows.
    newlines = pl.sum_horizontal(
        [pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in frame.columns]
    )
    return frame.with_columns(
        source_line=(
            pl.int_range(pl.len(), dtype=pl.Int64) + 2 + newlines.cum_sum().shift(1).fill_null(0)
        )
    )


def _read_jsonl(path: Path) -> pl.DataFrame:
    if path.stat().st_size == 0:
        return pl.DataFrame({"source_line": []}, schema={"source_line": pl.Int64})
    # Polars reads a path as a glob pattern, and read_ndjson cannot be told not to: hand it bytes.
    frame = pl.read_ndjson(path.read_bytes(), infer_schema_length=None)
    return _as_text(frame).with_row_index("source_line", offset=1)


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, as it would read in a CSV export, so one validator serves all."""
    converted: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                column = column.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
            else:
                column = column.dt.strftime("%Y-%m-%dT%H:%M:%S%.f")
        elif isinstance(dtype, pl.List):
            column = column.cast(pl.List(pl.String)).list.join(";")
        elif isinstance(dtype, pl.Struct):
            column = column.struct.json_encode()
        elif dtype != pl.String:
            column = column.cast(pl.String)
        converted.append(column.alias(name))
    return frame.select(converted)
