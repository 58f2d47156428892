"""Pure transforms: raw text columns in, typed columns and per-row rejection reasons out.

Every function here takes and returns ``LazyFrame``s or expressions; nothing reads or writes files.
A raw frame has one ``String`` column per spec column present (absent optional columns are null),
plus ``source_file`` and ``source_line``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from access_audit.ingest.lines import LINE_REASONS
from access_audit.schema import Column, TableSpec

UTC_DATETIME = pl.Datetime("us", "UTC")

REJECTION_REASONS: dict[str, str] = {
    "missing_value": "a required value is empty",
    "invalid_choice": "the value is not one the column allows",
    "bad_timestamp": "not an ISO 8601 date and time (or an offset beyond ±14:00)",
    "implausible_timestamp": "outside [ingest] earliest_timestamp .. the drop's date (or today, "
    "if earlier) plus max_days_after_drop",
    "ambiguous_local_time": "local time in the repeated autumn hour: could be either instant",
    "nonexistent_local_time": "local time in the skipped spring hour: no such instant",
    "bad_date": "not a YYYY-MM-DD calendar date",
    "assignee_both_or_neither": "exactly one of user_id and team_id must be set",
    "missing_record_id": "only a search may leave record_id empty",
    "conflicting_duplicate": "an event with this (system, event_id) was loaded with other values",
    "superseded_in_drop": "a later row of the same drop has the same key and other values",
    **LINE_REASONS,
}

_MAX_OFFSET_MINUTES = 14 * 60  # UTC+14:00 (Kiribati) and UTC-12:00 are the real extremes

# ISO 8601 date-time: date, T or space, hh:mm[:ss[.fff]], optional Z or offset.
_TIMESTAMP_PATTERN = (
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2})(:\d{2}(?:[.,]\d{1,9})?)?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)


@dataclass(frozen=True)
class TimeRules:
    """How local (offset-less) timestamps become UTC instants."""

    timezone: str = "Europe/London"
    ambiguous: str = "reject"
    earliest: datetime = datetime(1, 1, 2, tzinfo=UTC)
    """Instants before this are implausible (rejected); the default only keeps year 1."""
    latest: datetime = datetime(9999, 12, 30, tzinfo=UTC)
    """Instants after this are implausible (rejected)."""


@dataclass(frozen=True)
class ParsedColumn:
    """How one raw column becomes a typed value: intermediate steps, then value and problem.

    Intermediates are materialised as temporary columns, one ``with_columns`` per step, so the
    engine computes each (the regex, the time-zone lookups) once rather than once per use.
    """

    steps: list[list[pl.Expr]]
    value: pl.Expr
    problem: pl.Expr


def _tmp(name: str, part: str) -> str:
    return f"__{name}__{part}"


def cleaned_text(name: str) -> pl.Expr:
    """Surrounding white space is not part of a value; an empty cell is a null."""
    stripped = pl.col(name).str.strip_chars()
    return pl.when(stripped.str.len_chars() > 0).then(stripped).otherwise(None)


def _cased(expr: pl.Expr, column: Column) -> pl.Expr:
    if column.case == "lower":
        return expr.str.to_lowercase()
    if column.case == "upper":
        return expr.str.to_uppercase()
    return expr


def parse_timestamp(name: str, rules: TimeRules) -> ParsedColumn:
    """UTC instant and problem (a reason code or null) for a raw text column."""
    text, parts, naive, offset = (_tmp(name, p) for p in ("text", "parts", "naive", "offset"))
    earliest, latest = _tmp(name, "earliest"), _tmp(name, "latest")
    seconds = pl.col(parts).struct.field("3").fill_null(":00").str.replace(",", ".", literal=True)
    local_text = pl.concat_str(
        [pl.col(parts).struct.field("1"), pl.lit("T"), pl.col(parts).struct.field("2"), seconds]
    )
    steps = [
        [cleaned_text(name).alias(text)],
        [pl.col(text).str.extract_groups(_TIMESTAMP_PATTERN).alias(parts)],
        [
            local_text.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False).alias(
                naive
            ),
            pl.col(parts).struct.field("4").alias(offset),
        ],
        [
            pl.col(naive)
            .dt.replace_time_zone(rules.timezone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
            .alias(earliest),
            pl.col(naive)
            .dt.replace_time_zone(rules.timezone, ambiguous="latest", non_existent="null")
            .dt.convert_time_zone("UTC")
            .alias(latest),
        ],
    ]
    is_ambiguous = pl.col(earliest) != pl.col(latest)
    absolute = (
        pl.col(naive) - pl.duration(minutes=_offset_minutes(pl.col(offset)))
    ).dt.replace_time_zone("UTC")
    if rules.ambiguous == "latest":
        local = pl.col(latest)
    elif rules.ambiguous == "earliest":
        local = pl.col(earliest)
    else:
        local = pl.when(is_ambiguous).then(None).otherwise(pl.col(earliest))
    value = pl.when(pl.col(offset).is_not_null()).then(absolute).otherwise(local)
    local_only = pl.col(offset).is_null()
    minutes = _offset_minutes(pl.col(offset))
    bad_offset = pl.col(offset).is_not_null() & (
        minutes.is_null()
        | (minutes.abs() > _MAX_OFFSET_MINUTES)
        | (pl.col(offset).str.slice(-2).cast(pl.Int64, strict=False).fill_null(0) >= 60)
    )
    implausible = (value < pl.lit(rules.earliest).cast(UTC_DATETIME)) | (
        value > pl.lit(rules.latest).cast(UTC_DATETIME)
    )
    problem = (
        pl.when(pl.col(text).is_null())
        .then(None)
        .when(pl.col(naive).is_null() | bad_offset)
        .then(pl.lit("bad_timestamp"))
        .when(local_only & pl.col(earliest).is_null())
        .then(pl.lit("nonexistent_local_time"))
        .when(local_only & is_ambiguous & pl.lit(rules.ambiguous == "reject"))
        .then(pl.lit("ambiguous_local_time"))
        .when(implausible)
        .then(pl.lit("implausible_timestamp"))
        .otherwise(None)
    )
    value = pl.when(implausible).then(None).otherwise(value)
    return ParsedColumn(steps, value.cast(UTC_DATETIME), problem)


def _offset_minutes(offset: pl.Expr) -> pl.Expr:
    digits = offset.str.replace(":", "", literal=True)
    sign = pl.when(digits.str.starts_with("-")).then(-1).otherwise(1)
    hours = digits.str.slice(1, 2).cast(pl.Int64, strict=False)
    minutes = digits.str.slice(3, 2).cast(pl.Int64, strict=False).fill_null(0)
    is_zulu = offset.str.to_uppercase() == "Z"
    return pl.when(is_zulu | offset.is_null()).then(0).otherwise(sign * (hours * 60 + minutes))


def parse_column(column: Column, rules: TimeRules) -> ParsedColumn:
    """Typed value and problem for one spec column, per its kind."""
    if column.kind == "timestamp":
        parsed = parse_timestamp(column.name, rules)
        value, problem, steps = parsed.value, parsed.problem, parsed.steps
    else:
        text_name = _tmp(column.name, "text")
        steps = [[cleaned_text(column.name).alias(text_name)]]
        text = pl.col(text_name)
        value, problem = _simple_value(column, text)
    if column.required:
        text = pl.col(_tmp(column.name, "text"))
        problem = pl.when(text.is_null()).then(pl.lit("missing_value")).otherwise(problem)
    return ParsedColumn(steps, value, problem.cast(pl.String))


def _simple_value(column: Column, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    no_problem = pl.lit(None, dtype=pl.String)
    if column.kind == "date":
        # Four-digit years from 0001: the engine would also take year 0 and "+10000", which no
        # calendar date in an export means and Python's dates cannot hold.
        parsed = text.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        usable = text.str.contains(r"^\d{4}-\d{2}-\d{2}$") & (parsed.dt.year() >= 1)
        day = pl.when(usable).then(parsed).otherwise(None)
        return day, pl.when(text.is_not_null() & day.is_null()).then(pl.lit("bad_date"))
    if column.kind == "enum":
        value = _cased(text, column)
        invalid = value.is_not_null() & ~value.is_in(list(column.choices))
        return value, pl.when(invalid).then(pl.lit("invalid_choice"))
    if column.kind == "markers":
        markers = (
            text.str.to_lowercase()
            .str.split(";")
            .list.eval(pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0))
        )
        return markers, no_problem
    if column.kind == "id":
        return _cased(text, column), no_problem
    return pl.when(text.is_not_null()).then(_cased(pl.col(column.name), column)), no_problem


def apply_parsed(frame: pl.LazyFrame, parsed: list[ParsedColumn]) -> pl.LazyFrame:
    """Materialise every column's intermediate steps, step by step, across all columns."""
    depth = max(len(p.steps) for p in parsed)
    for level in range(depth):
        exprs = [e for p in parsed if level < len(p.steps) for e in p.steps[level]]
        frame = frame.with_columns(exprs)
    return frame


def _row_problems(spec: TableSpec) -> dict[str, pl.Expr]:
    """Table-level rules that span columns: {column label: reason or null}."""
    rules: dict[str, pl.Expr] = {}
    if spec.exactly_one_of:
        set_count = pl.sum_horizontal(
            [pl.col(_tmp(c, "text")).is_not_null().cast(pl.Int32) for c in spec.exactly_one_of]
        )
        rules["/".join(spec.exactly_one_of)] = pl.when(set_count != 1).then(
            pl.lit("assignee_both_or_neither")
        )
    if spec.record_required_unless is not None:
        column, allowed = spec.record_required_unless
        missing = pl.col(_tmp("record_id", "text")).is_null() & (
            pl.col(_tmp(column, "text")).str.to_lowercase() != allowed
        )
        # Only when the value's own check found nothing, so one cell gets one reason.
        rules["record_id"] = pl.when(missing).then(pl.lit("missing_record_id"))
    return rules


PROBLEM_PREFIX = "problem."
RAW_PREFIX = "raw."


def normalise(raw: pl.LazyFrame, spec: TableSpec, rules: TimeRules) -> pl.LazyFrame:
    """Typed spec columns; ``problem.<column>`` (a reason code or null) per check; the raw text
    as ``raw.<column>`` for rejected-row records; and the raw frame's other columns."""
    parsed = [parse_column(column, rules) for column in spec.columns]
    problems = {c.name: p.problem for c, p in zip(spec.columns, parsed, strict=True)}
    for label, problem in _row_problems(spec).items():
        problems[label] = problems[label].fill_null(problem) if label in problems else problem
    keep = [c for c in raw.collect_schema().names() if c not in spec.column_index]
    staged = apply_parsed(raw, parsed)
    return staged.select(
        *[p.value.alias(c.name) for c, p in zip(spec.columns, parsed, strict=True)],
        *[problem.cast(pl.String).alias(PROBLEM_PREFIX + k) for k, problem in problems.items()],
        *[pl.col(c).alias(RAW_PREFIX + c) for c in spec.column_names],
        *keep,
    )


def split_rejected(normalised: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(good rows, one rejected-row record per problem, with the row's raw values as JSON)."""
    names = normalised.collect_schema().names()
    problem_columns = [c for c in names if c.startswith(PROBLEM_PREFIX)]
    raw_columns = [c for c in names if c.startswith(RAW_PREFIX)]
    has_problem = pl.any_horizontal([pl.col(c).is_not_null() for c in problem_columns])
    good = normalised.filter(~has_problem).drop(*problem_columns, *raw_columns)
    bad = normalised.filter(has_problem).with_columns(
        pl.struct([pl.col(c).alias(c.removeprefix(RAW_PREFIX)) for c in raw_columns])
        .struct.json_encode()
        .alias("raw_row")
    )
    index = ["source_file", "source_line"]
    reasons = (
        bad.select(*index, "raw_row", *problem_columns)
        .unpivot(index=[*index, "raw_row"], variable_name="column", value_name="reason")
        .filter(pl.col("reason").is_not_null())
        .with_columns(pl.col("column").str.strip_prefix(PROBLEM_PREFIX))
    )
    raw_values = (
        bad.select(*index, *raw_columns)
        .unpivot(index=index, variable_name="column", value_name="raw_value")
        .with_columns(pl.col("column").str.strip_prefix(RAW_PREFIX))
    )
    rejected = (
        reasons.join(raw_values, on=[*index, "column"], how="left")
        .select(*index, "raw_row", "column", "reason", "raw_value")
        .sort(*index, "column")  # file order, whatever order the engine joined in
    )
    return good, rejected
