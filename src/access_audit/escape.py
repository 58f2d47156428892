"""Escaping at the boundaries, one helper per medium.

Every id, name, note and path comes from outside (an export, a reviewer, a command line) and is
hostile until escaped for the medium it is shown or spliced into:

- the terminal: control characters (ANSI escapes, carriage returns, bidirectional overrides)
  rewrite what is on the screen: :func:`printable` for plain text, and :func:`terminal` for Rich,
  which also reads ``[...]`` as markup;
- CSV opened in a spreadsheet: a cell starting ``= + - @`` (or a tab or carriage return) is a
  formula: :func:`csv_text`, which neutralises them as OWASP recommends;
- DuckDB file patterns: ``* ? [`` in a path are glob syntax: :func:`glob_literal`.

- HTML: markup is escaped by ``html.escape`` or Jinja2's autoescape, but a bidirectional
  override still reverses how an id reads (``\u202e10000U`` shows as ``U00001``), and an ESC or NUL
  reaches whoever copies the text to a terminal: :func:`html_text` for hand-built HTML, and
  :func:`visible` as Jinja2's ``finalize`` for templates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape as _escape_markup

from access_audit.errors import AccessAuditError

if TYPE_CHECKING:
    import polars as pl

# C0 and C1 controls (newline and tab included: a value must not forge another line) and the
# Unicode bidirectional marks, overrides and isolates ("Trojan Source").
_CONTROL_CHARACTERS = [
    *map(chr, range(0x00, 0x20)),
    *map(chr, range(0x7F, 0xA0)),
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
]
# Whitespace that HTML shows as whitespace is kept in HTML, so a note keeps its lines.
_HTML_WHITESPACE = "\t\n\r"


def _one_of(characters: Iterable[str]) -> re.Pattern[str]:
    return re.compile("[" + re.escape("".join(characters)) + "]")


_CONTROL = _one_of(_CONTROL_CHARACTERS)
_HTML_CONTROL = _one_of(c for c in _CONTROL_CHARACTERS if c not in _HTML_WHITESPACE)
# OWASP "CSV Injection": cells starting with these are formulas to a spreadsheet. A line feed is
# added to their list: some spreadsheets skip leading whitespace before evaluating.
FORMULA_START = "=+-@\t\r\n"
_FORMULA_START_PATTERN = r"^([=+\-@\t\r\n])"
_GLOB_CHARACTERS = "*?["


def _shown(character: str) -> str:
    return character.encode("unicode_escape").decode("ascii")


def _visible(match: re.Match[str]) -> str:
    return _shown(match.group())


def visible(value: object) -> object:
    """For HTML: a text value with control characters and bidirectional marks shown as
    ``\x1b``, ``\u202e`` (line feeds, tabs and carriage returns kept: HTML shows them as space).
    Anything else, already-safe markup included, is returned as it is."""
    if isinstance(value, str) and not hasattr(value, "__html__"):
        return _HTML_CONTROL.sub(_visible, value)
    return value


def html_text(value: object) -> str:
    """A value as literal HTML text: :func:`visible`, then ``html.escape``."""
    import html

    return html.escape(str(visible("" if value is None else str(value))))


def printable(value: object) -> str:
    """A value as plain text (printed, or written to a text report): control characters shown as
    ``\\x1b``, ``\\n``, ``\\u202e``, so it cannot move the cursor, recolour the screen or forge a
    line. ``None`` is the empty string."""
    if value is None:
        return ""
    return _CONTROL.sub(_visible, str(value))


def terminal(value: object) -> str:
    """A value as literal text for Rich's console: :func:`printable`, then markup escaped."""
    return _escape_markup(printable(value))


def csv_text(frame: pl.DataFrame) -> str:
    """The frame as CSV for a spreadsheet: every cell quoted, control characters and
    bidirectional marks shown as ``\n``, ``\x1b``, ``\u202e`` (a cell cannot clear a terminal it
    is printed to, nor read backwards), and a text cell that starts like a formula prefixed with a
    single quote, so it is shown as text and never evaluated."""
    import polars.selectors as cs

    shown = [_shown(c) for c in _CONTROL_CHARACTERS]
    safe = frame.with_columns(
        cs.string().str.replace_many(_CONTROL_CHARACTERS, shown)
    ).with_columns(cs.string().str.replace(_FORMULA_START_PATTERN, "'$1"))
    return safe.write_csv(quote_style="always")


def glob_literal(path: Path | str) -> str:
    """A path as a DuckDB file pattern that matches that one path and nothing else.

    Each of ``* ? [`` becomes a one-character class (``[*]``). DuckDB's globbing cannot match a
    backslash at all, so a path holding both a backslash and glob characters is refused; a path
    without glob characters is read literally by DuckDB and returned unchanged."""
    text = str(path)
    if not any(ch in text for ch in _GLOB_CHARACTERS):
        return text
    if "\\" in text:
        raise AccessAuditError(
            f"{text}: DuckDB cannot read a path holding both a backslash and one of "
            "* ? [ — choose another folder"
        )
    return "".join(f"[{ch}]" if ch in _GLOB_CHARACTERS else ch for ch in text)
