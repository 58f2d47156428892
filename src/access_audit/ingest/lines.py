"""Text files as numbered physical lines, and CSV / JSON Lines records out of them.

A malformed line (a stray quote, a field too many or too few, bytes that are not UTF-8, a JSON
line that is not an object) is quarantined with its line number and reason; the rest of the file
loads. Blank lines are skipped, not counted. Everything is vectorised over the lines: the only
Python-level loop is the decoder's error handler, called once per invalid byte.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from access_audit.errors import AccessAuditError

LINE_COLUMN = "(line)"
"""The ``column`` of a rejected-row record that refuses a whole line."""

LINE_REASONS: dict[str, str] = {
    "not_utf8": "the line holds bytes that are not UTF-8",
    "wrong_field_count": "the line has more or fewer fields than the header",
    "malformed_quotes": "a quote that does not open or close a field as RFC 4180 says",
    "mixed_line_endings": "the line holds a line ending (CR or LF) unlike the file's own",
    "not_json_object": "the line is not one JSON object",
}

_BOM = b"\xef\xbb\xbf"
_FIELD = r'(?:"(?:[^"]|"")*"|[^",\n]*)'
_ANY_RECORD = rf"^{_FIELD}(?:,{_FIELD})*$"
_BARE_LINE_ENDING_OUTSIDE_QUOTES = r'^(?:"(?:[^"]|"")*"|[^"])*?[\r\n]'


@dataclass(frozen=True)
class Lines:
    """A file's physical lines: ``line`` (1-based), ``text``, ``bad_bytes`` (not UTF-8)."""

    frame: pl.DataFrame


@dataclass(frozen=True)
class Records:
    """Usable records (``source_line``, ``text``) and refused lines (``source_line``,
    ``reason``, ``text``)."""

    good: pl.DataFrame
    refused: pl.DataFrame


def split_lines(data: bytes, csv_quotes: bool = False) -> Lines:
    """Numbered lines of a file's bytes: LF, CRLF or (old Mac) CR-only line endings.

    The file's first line ending decides which (with ``csv_quotes``, the first outside a quoted
    field: a header's quoted name may hold a line break). CRLF is a line break in either kind of
    file; a bare line ending of the other kind is not, and stays in its line's text, where the
    CSV reader refuses that line (``mixed_line_endings``)."""
    data = data.removeprefix(_BOM)
    separator = _line_ending(data, csv_quotes)
    text, bad_offsets = _decode_marking_bad_bytes(data)
    bad_lines = _lines_of_offsets(data, bad_offsets, separator.encode())
    frame = (
        pl.DataFrame({"text": [text]})
        .select(pl.col("text").str.split(separator))
        .explode("text")
        .with_row_index("line", offset=1)
        .with_columns(
            pl.col("line").cast(pl.Int64),
            pl.col("text").str.strip_suffix("\r")
            if separator == "\n"
            else pl.col("text").str.strip_prefix("\n"),
        )
        .with_columns(pl.col("line").is_in(bad_lines.tolist()).alias("bad_bytes"))
    )
    return Lines(frame)


_FIRST_BREAK_OUTSIDE_QUOTES = re.compile(rb'(?:"[^"]*"|[^"\r\n])*(\r\n?|\n)')
_FIRST_BREAK = re.compile(rb"[^\r\n]*(\r\n?|\n)")


def _line_ending(data: bytes, csv_quotes: bool) -> str:
    """``"\\r"`` when the file's first line ends with a bare CR, else ``"\\n"``."""
    found = (_FIRST_BREAK_OUTSIDE_QUOTES.match(data) if csv_quotes else None) or (
        _FIRST_BREAK.match(data)
    )
    return "\r" if found is not None and found.group(1) == b"\r" else "\n"


def _decode_marking_bad_bytes(data: bytes) -> tuple[str, np.ndarray]:
    try:
        return data.decode("utf-8"), np.empty(0, dtype=np.int64)
    except UnicodeDecodeError:
        pass
    offsets: list[int] = []

    def mark(error: UnicodeError) -> tuple[str, int]:
        assert isinstance(error, UnicodeDecodeError)
        offsets.extend(range(error.start, error.end))
        return "\ufffd", error.end

    name = "access-audit-mark-bad-bytes"
    codecs.register_error(name, mark)
    return data.decode("utf-8", errors=name), np.asarray(offsets, dtype=np.int64)


def _lines_of_offsets(data: bytes, offsets: np.ndarray, separator: bytes) -> np.ndarray:
    if offsets.size == 0:
        return np.empty(0, dtype=np.int64)
    breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == separator[0])
    return np.unique(np.searchsorted(breaks, offsets, side="right") + 1)


def is_blank(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars().str.len_chars() == 0


def first_content_line(lines: Lines) -> tuple[int, str, bool] | None:
    """(line number, text, has bad bytes) of the first non-blank line, or None."""
    content = lines.frame.filter(~is_blank(pl.col("text"))).head(1)
    if content.height == 0:
        return None
    row = content.row(0, named=True)
    return int(row["line"]), str(row["text"]), bool(row["bad_bytes"])


def csv_header(text: str, display_name: str) -> list[str]:
    """The header's column names; blank names become ``column_<n>``; duplicates are an error."""
    if text.count('"') % 2:
        raise AccessAuditError(f"{display_name}: the header line has an unbalanced quote")
    try:
        names = next(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise AccessAuditError(
            f"{display_name}: the header line cannot be read as CSV ({exc})"
        ) from exc
    names = [n if n.strip() else f"column_{i + 1}" for i, n in enumerate(names)]
    first_seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in first_seen:
            # Positions, not names: a file sent without its header would quote a row here.
            raise AccessAuditError(
                f"{display_name}: header columns {first_seen[name]} and {position} have the "
                "same name"
            )
        first_seen[name] = position
    return names


_MAX_REGROUPINGS = 64
"""Each regrouping refuses the first line of the first broken record (the records after it were
grouped on a miscount of quotes); past this many, what is still broken is judged line by line."""


def csv_records(lines: Lines, after_line: int, fields: int) -> Records:
    """Records after the header. A quoted value may span lines; the first broken record (its
    quotes pair across lines that are not one record) loses its first line, which is refused, and
    the rest is grouped again: one stray quote costs its own line, not the rest of the file."""
    exact = rf"^{_FIELD}(?:,{_FIELD}){{{fields - 1}}}$"
    body = lines.frame.filter(pl.col("line") > after_line)
    judged_alone: list[pl.DataFrame] = []
    for regrouping in range(_MAX_REGROUPINGS + 1):
        grouped, judged = _group_records(body, exact)
        broken = judged.filter(pl.col("reason").is_not_null() & (pl.col("lines") > 1))
        if broken.height == 0 or regrouping == _MAX_REGROUPINGS:
            break
        first_lines = body.join(
            broken.head(1).select(pl.col("source_line").alias("line")), on="line", how="semi"
        )
        judged_alone.append(_judge_lines(first_lines, exact))
        body = body.join(first_lines.select("line"), on="line", how="anti")
    if broken.height:
        one_by_one = grouped.join(broken.select("record"), on="record", how="semi").filter(
            ~is_blank(pl.col("text"))
        )
        judged_alone.append(_judge_lines(one_by_one, exact))
        judged = judged.join(broken.select("record"), on="record", how="anti")
    columns = ["source_line", "text", "reason"]
    judged_lines = pl.concat(
        [judged.select(columns), *(r.select(columns) for r in judged_alone)]
    ).sort("source_line")
    return Records(
        good=judged_lines.filter(pl.col("reason").is_null()).select("source_line", "text"),
        refused=judged_lines.filter(pl.col("reason").is_not_null()),
    )


def _group_records(body: pl.DataFrame, exact: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(lines with their record number, one judged row per record). A line starts a record
    when the quotes before it are balanced; blank lines between records are dropped."""
    quotes = pl.col("text").str.count_matches('"', literal=True)
    grouped = (
        body.with_columns((((quotes.cum_sum() - quotes) % 2) == 0).alias("starts"))
        .with_columns(pl.col("starts").cum_sum().alias("record"))
        .filter(~(pl.col("starts") & is_blank(pl.col("text"))))
    )
    records = grouped.group_by("record", maintain_order=True).agg(
        pl.col("line").first().alias("source_line"),
        pl.col("text").str.join("\n"),
        pl.col("bad_bytes").any(),
        pl.len().alias("lines"),
    )
    return grouped, records.with_columns(_csv_problem(exact).alias("reason"))


def _judge_lines(lines: pl.DataFrame, exact: str) -> pl.DataFrame:
    return lines.select(
        pl.col("line").alias("source_line"), "text", _csv_problem(exact).alias("reason")
    )


def _csv_problem(exact: str) -> pl.Expr:
    text = pl.col("text")
    return (
        pl.when(pl.col("bad_bytes"))
        .then(pl.lit("not_utf8"))
        .when(text.str.contains(exact))
        .then(None)
        # A bare CR in an LF file (or LF in a CR file) outside quotes that leaves the line short
        # of a record is a line break of another kind; a field that merely holds a CR loads.
        .when(text.str.contains(_BARE_LINE_ENDING_OUTSIDE_QUOTES))
        .then(pl.lit("mixed_line_endings"))
        .when(text.str.contains(_ANY_RECORD))
        .then(pl.lit("wrong_field_count"))
        .otherwise(pl.lit("malformed_quotes"))
    )


def jsonl_records(lines: Lines) -> Records:
    """One JSON object per non-blank line."""
    text = pl.col("text").str.strip_chars()
    judged = (
        lines.frame.filter(~is_blank(pl.col("text")))
        .with_columns(
            pl.when(pl.col("bad_bytes"))
            .then(pl.lit("not_utf8"))
            .when(text.str.starts_with("{") & text.str.json_path_match("$").is_not_null())
            .then(None)
            .otherwise(pl.lit("not_json_object"))
            .alias("reason")
        )
        .rename({"line": "source_line"})
        .select("source_line", "text", "reason")
    )
    return Records(
        good=judged.filter(pl.col("reason").is_null()).select("source_line", "text"),
        refused=judged.filter(pl.col("reason").is_not_null()),
    )


def joined_text(records: pl.DataFrame) -> bytes:
    """The records' text as one buffer, one record per line, for the engine's reader."""
    if records.height == 0:
        return b""
    return (str(records.select(pl.col("text").str.join("\n")).item()) + "\n").encode()
