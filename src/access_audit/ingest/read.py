"""Reading one export file (CSV, Parquet or JSON Lines) into raw text columns with line numbers.

This module is the ingest stage's input edge: the only place drop files are opened.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from access_audit.errors import AccessAuditError, MissingColumnError
from access_audit.ingest.jsonl import source_text_frame
from access_audit.ingest.lines import (
    csv_header,
    csv_records,
    first_content_line,
    joined_text,
    jsonl_records,
    split_lines,
)
from access_audit.schema import TableSpec

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".jsonl")


@dataclass(frozen=True)
class RawFile:
    """One file's rows as text, renamed to spec columns, with where each came from.

    ``refused`` holds the lines that could not be read as a row (``source_file``,
    ``source_line``, ``reason``, ``text``); ``empty`` says the file held nothing at all."""

    frame: pl.DataFrame
    extra_columns: list[str]
    refused: pl.DataFrame
    empty: bool = False


REFUSED_SCHEMA = pl.Schema(
    {"source_file": pl.String, "source_line": pl.Int64, "reason": pl.String, "text": pl.String}
)


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
    cannot be read at all. Messages name the file and columns, never a value from the data.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise AccessAuditError(f"{display_name}: unsupported file type '{suffix}'")
    try:
        frame, refused = _READERS[suffix](path, display_name)
    except AccessAuditError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise AccessAuditError(
            f"{display_name}: cannot be read as {suffix.lstrip('.')} ({type(exc).__name__})"
        ) from exc
    refused = refused.with_columns(pl.lit(display_name).alias("source_file")).select(
        list(REFUSED_SCHEMA)
    )
    if frame is None:
        return RawFile(_empty_frame(spec), [], refused, empty=refused.height == 0)
    frame = frame.rename(_header_renames(frame.columns, spec, mapping or {}, display_name))
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
    return RawFile(frame=frame, extra_columns=extras, refused=refused)


def _empty_frame(spec: TableSpec) -> pl.DataFrame:
    schema = {c: pl.String() for c in [*spec.column_names, "extra", "source_file"]}
    return pl.DataFrame(schema={**schema, "source_line": pl.Int64()})


def _header_renames(
    columns: list[str], spec: TableSpec, mapping: dict[str, str], display_name: str
) -> dict[str, str]:
    """Header names are matched trimmed and case-insensitively; a mapping renames first.

    Two columns that would end with one name (``user_id`` and ``USER_ID``, or a mapped column
    and one already called by the target name) make the file unusable: which one is meant?"""
    by_source = {source.strip().lower(): target for target, source in mapping.items()}
    renames: dict[str, str] = {}
    final: dict[str, list[str]] = {}
    for column in columns:
        if column == "source_line":
            continue
        key = column.strip().lstrip("\ufeff").strip().lower()
        target = by_source.get(key, key if key in spec.column_index else None)
        if target is not None and target != column:
            renames[column] = target
        final.setdefault(target if target is not None else column, []).append(column)
    clashes = {name: sources for name, sources in final.items() if len(sources) > 1}
    if clashes:
        name, sources = sorted(clashes.items())[0]
        listed = " and ".join(f"'{s}'" for s in sources)
        raise AccessAuditError(f"{display_name}: columns {listed} both name column '{name}'")
    return renames


Reader = Callable[[Path, str], tuple[pl.DataFrame | None, pl.DataFrame]]


def _read_csv(path: Path, display_name: str) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    lines = split_lines(path.read_bytes(), csv_quotes=True)
    first = first_content_line(lines)
    if first is None:
        return None, pl.DataFrame(schema=REFUSED_SCHEMA)
    header_line, header_text, header_bad = first
    if header_bad:
        raise AccessAuditError(f"{display_name}: the header line is not UTF-8")
    names = csv_header(header_text, display_name)
    records = csv_records(lines, header_line, len(names))
    frame = pl.read_csv(
        io.BytesIO(joined_text(records.good)),
        has_header=False,
        new_columns=names,
        schema={n: pl.String() for n in names},
        raise_if_empty=False,
        glob=False,  # a file name holding * ? [ is a name, not a pattern
    )
    if frame.height != records.good.height:
        raise AccessAuditError(
            f"{display_name}: {records.good.height} record(s) checked but "
            f"{frame.height} parsed; refusing to guess which lines they were"
        )
    return frame.with_columns(records.good["source_line"]), records.refused


def _read_jsonl(path: Path, display_name: str) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    lines = split_lines(path.read_bytes())
    if first_content_line(lines) is None:
        return None, pl.DataFrame(schema=REFUSED_SCHEMA)
    records = jsonl_records(lines)
    # Every value as its exact source text: `1e1` and `10`, `1.50` and `1.5` are distinct ids.
    frame, not_objects = source_text_frame(records.good)
    refused = pl.concat(
        [
            records.refused,
            not_objects.with_columns(pl.lit("not_json_object").alias("reason")).select(
                records.refused.columns
            ),
        ]
    ).sort("source_line")
    if frame.height == 0:
        # No object to take column names from: every line is refused on its own.
        return None, refused
    return frame, refused


def _read_parquet(path: Path, display_name: str) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    refused = pl.DataFrame(schema=REFUSED_SCHEMA)
    if path.stat().st_size == 0:
        return None, refused
    frame = _as_text(pl.read_parquet(path, glob=False)).with_row_index("source_line", offset=1)
    return frame, refused


_READERS: dict[str, Reader] = {".csv": _read_csv, ".jsonl": _read_jsonl, ".parquet": _read_parquet}


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
