"""Pure transforms: raw text columns in, typed columns and per-row rejection reasons out.

Every function here takes and returns ``LazyFrame``s or expressions; nothing reads or writes files.
A raw frame has one ``String`` column per spec column present (absent optional columns are null),
plus ``source_file`` and ``source_line``.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from access_audit.schema import Column, TableSpec

UTC_DATETIME = pl.Datetime("us", "UTC")

REJECTION_REASONS: dict[str, str] = {
    "missing_value": "a required value is empty",
    "invalid_choice": "the value is not one the column allows",
    "bad_timestamp": "not an ISO 8601 date and time",
    "ambiguous_local_time": "local time in the repeated autumn hour: could be either instant",
    "nonexistent_local_time": "local time in the skipped spring hour: no such instant",
    "bad_date": "not a YYYY-MM-DD calendar date",
    "assignee_both_or_neither": "exactly one of user_id and team_id must be set",
    "missing_record_id": "only a search may leave record_id empty",
    "conflicting_duplicate": "an event with this (system, event_id) was loaded with other values",
    "superseded_in_drop": "a later row of the same drop has the same key",
}

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


def parse_timestamp(name: str, rules: TimeRules) -> tuple[pl.Expr, pl.Expr]:
    """(UTC instant, problem) for a raw text column; problem is a reason code or null."""
    text = cleaned_text(name)
    parts = text.str.extract_groups(_TIMESTAMP_PATTERN)
    seconds = parts.struct.field("3").fill_null(":00").str.replace(",", ".", literal=True)
    local_text = pl.concat_str(
        [parts.struct.field("1"), pl.lit("T"), parts.struct.field("2"), seconds]
    )
    naive = local_text.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
    offset = parts.struct.field("4")
    offset_minutes = _offset_minutes(offset)
    absolute = (naive - pl.duration(minutes=offset_minutes)).dt.replace_time_zone("UTC")
    earliest = naive.dt.replace_time_zone(
        rules.timezone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC")
    latest = naive.dt.replace_time_zone(
        rules.timezone, ambiguous="latest", non_existent="null"
    ).dt.convert_time_zone("UTC")
    is_ambiguous = earliest != latest
    if rules.ambiguous == "latest":
        local = latest
    elif rules.ambiguous == "earliest":
        local = earliest
    else:
        local = pl.when(is_ambiguous).then(None).otherwise(earliest)
    value = pl.when(offset.is_not_null()).then(absolute).otherwise(local)
    problem = (
        pl.when(text.is_null())
        .then(None)
        .when(naive.is_null())
        .then(pl.lit("bad_timestamp"))
        .when(offset.is_null() & earliest.is_null())
        .then(pl.lit("nonexistent_local_time"))
        .when(offset.is_null() & is_ambiguous & pl.lit(rules.ambiguous == "reject"))
        .then(pl.lit("ambiguous_local_time"))
        .otherwise(None)
    )
    return value.cast(UTC_DATETIME), problem


def _offset_minutes(offset: pl.Expr) -> pl.Expr:
    digits = offset.str.replace(":", "", literal=True)
    sign = pl.when(digits.str.starts_with("-")).then(-1).otherwise(1)
    hours = digits.str.slice(1, 2).cast(pl.Int64, strict=False)
    minutes = digits.str.slice(3, 2).cast(pl.Int64, strict=False).fill_null(0)
    is_zulu = offset.str.to_uppercase() == "Z"
    return pl.when(is_zulu | offset.is_null()).then(0).otherwise(sign * (hours * 60 + minutes))


def parse_column(column: Column, rules: TimeRules) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, problem) for one spec column, per its kind."""
    text = cleaned_text(column.name)
    if column.kind == "timestamp":
        value, problem = parse_timestamp(column.name, rules)
    elif column.kind == "date":
        value = text.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        problem = pl.when(text.is_not_null() & value.is_null()).then(pl.lit("bad_date"))
    elif column.kind == "enum":
        value = _cased(text, column)
        problem = pl.when(value.is_not_null() & ~value.is_in(list(column.choices))).then(
            pl.lit("invalid_choice")
        )
    elif column.kind == "markers":
        value = (
            text.str.to_lowercase()
            .str.split(";")
            .list.eval(pl.element().str.strip_chars().filter(pl.element().str.len_chars() > 0))
        )
        problem = pl.lit(None, dtype=pl.String)
    elif column.kind == "id":
        value = _cased(text, column)
        problem = pl.lit(None, dtype=pl.String)
    else:
        value = pl.when(text.is_not_null()).then(_cased(pl.col(column.name), column))
        problem = pl.lit(None, dtype=pl.String)
    if column.required:
        problem = pl.when(text.is_null()).then(pl.lit("missing_value")).otherwise(problem)
    return value, problem.cast(pl.String)


def _row_problems(spec: TableSpec) -> list[pl.Expr]:
    """Table-level rules that span columns, as (column, reason) structs or nulls."""
    rules: list[pl.Expr] = []
    if spec.exactly_one_of:
        set_count = pl.sum_horizontal(
            [cleaned_text(c).is_not_null().cast(pl.Int32) for c in spec.exactly_one_of]
        )
        rules.append(
            pl.when(set_count != 1).then(
                _problem_struct("/".join(spec.exactly_one_of), "assignee_both_or_neither", None)
            )
        )
    if spec.record_required_unless is not None:
        column, allowed = spec.record_required_unless
        rules.append(
            pl.when(
                cleaned_text("record_id").is_null()
                & (cleaned_text(column).str.to_lowercase() != allowed)
            ).then(_problem_struct("record_id", "missing_record_id", None))
        )
    return rules


def _problem_struct(column: str, reason: str | pl.Expr, raw: pl.Expr | None) -> pl.Expr:
    return pl.struct(
        column=pl.lit(column, dtype=pl.String),
        reason=reason if isinstance(reason, pl.Expr) else pl.lit(reason, dtype=pl.String),
        raw_value=raw if raw is not None else pl.lit(None, dtype=pl.String),
    )


def normalise(raw: pl.LazyFrame, spec: TableSpec, rules: TimeRules) -> pl.LazyFrame:
    """Typed spec columns plus ``problems``: a list of {column, reason, raw_value} per row."""
    values: list[pl.Expr] = []
    problems: list[pl.Expr] = []
    for column in spec.columns:
        value, problem = parse_column(column, rules)
        values.append(value.alias(column.name))
        problems.append(
            pl.when(problem.is_not_null()).then(
                _problem_struct(column.name, problem, pl.col(column.name))
            )
        )
    problems.extend(_row_problems(spec))
    problem_list = pl.concat_list(problems).list.drop_nulls().alias("problems")
    raw_row = pl.struct(spec.column_names).struct.json_encode().alias("raw_row")
    keep = [c for c in raw.collect_schema().names() if c not in spec.column_index]
    return raw.select(*values, problem_list, raw_row, *keep)


def split_rejected(normalised: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(good rows, one rejected-row record per problem)."""
    good = normalised.filter(pl.col("problems").list.len() == 0).drop("problems", "raw_row")
    rejected = (
        normalised.filter(pl.col("problems").list.len() > 0)
        .select("source_file", "source_line", "raw_row", "problems")
        .explode("problems")
        .unnest("problems")
    )
    return good, rejected
