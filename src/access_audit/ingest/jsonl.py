"""JSON Lines objects as text columns holding each value's exact source text.

The export bundle's values are text: an id written as the number ``1e1`` is the id ``1e1``, not
``10``, and ``1.50`` is not ``1.5``. A JSON reader turns numbers into floats or integers and back,
so distinct ids would collapse into duplicates. Here each top-level value is cut out of its line
as written: a string is its (unescaped) content, ``null`` is a null, and anything else — a number,
``true``/``false``, a nested array or object — is its source text, byte for byte.

The standard library's JSON reader (C) hands numbers over as their source text; the Python-level
loop is one call per line (the engines' JSON readers reformat numbers), and a line holding a
nested value is cut up by the JSON scanner, one call per key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any

import polars as pl

_SPACE = re.compile(r"[ \t\n\r]*")
# typeshed types make_scanner's context as itself; it takes a JSONDecoder (as json.decoder does)
_SCAN: Callable[[str, int], tuple[Any, int]] = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
_NO_CONSTANTS = frozenset(("NaN", "Infinity", "-Infinity"))


class NotAnObjectError(ValueError):
    """The line is not one JSON object."""


def object_source_values(line: str) -> dict[str, str | None]:
    """One JSON object's top-level values as text: see the module's docstring.

    Raises NotAnObjectError for anything but one object (trailing text, NaN, a bad token)."""
    position = _skip(line, 0)
    if line[position : position + 1] != "{":
        raise NotAnObjectError
    position = _skip(line, position + 1)
    values: dict[str, str | None] = {}
    if line[position : position + 1] == "}":
        return _end(line, position + 1, values)
    while True:
        if line[position : position + 1] != '"':
            raise NotAnObjectError
        key, position = _scan(line, position)
        position = _skip(line, position)
        if line[position : position + 1] != ":":
            raise NotAnObjectError
        start = _skip(line, position + 1)
        value, position = _scan(line, start)
        values[key] = value if isinstance(value, str) or value is None else line[start:position]
        position = _skip(line, position)
        separator = line[position : position + 1]
        if separator == "}":
            return _end(line, position + 1, values)
        if separator != ",":
            raise NotAnObjectError
        position = _skip(line, position + 1)


def _scan(line: str, position: int) -> tuple[Any, int]:
    try:
        value, end = _SCAN(line, position)
    except (StopIteration, ValueError, RecursionError) as exc:
        raise NotAnObjectError from exc
    if line[position:end] in _NO_CONSTANTS:
        raise NotAnObjectError  # not JSON, though Python's reader takes it
    return value, end


def _skip(line: str, position: int) -> int:
    match = _SPACE.match(line, position)
    return position if match is None else match.end()


def _end(line: str, position: int, values: dict[str, str | None]) -> dict[str, str | None]:
    if _skip(line, position) != len(line):
        raise NotAnObjectError
    return values


class _NestedError(Exception):
    """A value is an array or object: its source text is cut out by ``object_source_values``."""


def _scalars_as_text(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values = dict(pairs)
    for key, value in pairs:
        if type(value) is bool:
            values[key] = "true" if value else "false"
        elif type(value) is not str and value is not None:
            raise _NestedError
    return values


def _not_json(token: str) -> Any:
    raise NotAnObjectError(token)


# The fast path: numbers come to parse_int / parse_float as their source text; true and false
# are the only other scalars. A line with a nested value takes the slow path.
_FAST = json.JSONDecoder(
    parse_int=str, parse_float=str, parse_constant=_not_json, object_pairs_hook=_scalars_as_text
)


def _source_values(line: str) -> dict[str, str | None]:
    try:
        values = _FAST.decode(line)
    except _NestedError:
        return object_source_values(line)
    except (ValueError, RecursionError) as exc:
        raise NotAnObjectError from exc
    if not isinstance(values, dict):
        raise NotAnObjectError
    return values


def source_text_frame(records: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one String column per key, in order of first appearance, plus ``source_line``; the
    records that are not one JSON object after all, as ``source_line``, ``text``)."""
    lines = records["source_line"].to_list()
    rows: list[dict[str, str | None]] = []
    kept: list[int] = []
    refused: list[int] = []
    for index, text in enumerate(records["text"].to_list()):
        try:
            rows.append(_source_values(text))
        except NotAnObjectError:
            refused.append(index)
        else:
            kept.append(index)
    keys = list(dict.fromkeys(key for row in rows for key in row if key != "source_line"))
    source_line = pl.Series("source_line", [lines[i] for i in kept], dtype=pl.Int64())
    if keys:
        frame = pl.DataFrame(rows, schema=dict.fromkeys(keys, pl.String()))
        frame = frame.with_columns(source_line)
    else:
        frame = source_line.to_frame()
    return frame, records[refused].select("source_line", "text")
