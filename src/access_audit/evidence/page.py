"""The pack's HTML page: one self-contained file (inline style, no script, no external resource;
a Content-Security-Policy says so to the browser that prints it), rendered by Jinja2 with
autoescape on, so every id, note and justification is shown as text, never run as markup."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from access_audit.escape import visible
from access_audit.evidence.scope import EvidenceTables

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class LedgerHead:
    name: str
    lines: int
    head: str | None


@dataclass(frozen=True)
class Provenance:
    """Where a pack's figures come from: the verified store and logs, who made it, when."""

    flag_ids: list[str]
    created_at: str
    created_by: str
    account: dict[str, Any]
    version: str
    generation: int | None
    store_head: str | None
    """``g000012:<hex>``: the verified chain head of the generation the pack was read from."""
    verification: str
    ledgers: list[LedgerHead] = field(default_factory=list)
    rules_versions: str = ""
    timezone: str = "UTC"
    pdf: bool = True
    case_ids: list[str] = field(default_factory=list)
    """The cases exported (their flags are ``flag_ids``)."""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def render_page(tables: EvidenceTables, provenance: Provenance) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=visible,  # control characters and bidirectional marks shown, not obeyed
        keep_trailing_newline=True,
    )
    flags = tables.flags.with_columns(
        subject=pl.concat_str(
            pl.col("subject_type").fill_null(""), pl.col("subject_id").fill_null(""), separator=" "
        ).str.strip_chars()
    )
    accesses = tables.accesses.with_columns(
        record=pl.concat_str(
            "record_type", pl.col("record_id").fill_null("(search)"), separator=" "
        ),
        held=pl.when("held_by_flag")
        .then(pl.lit("held by the flag"))
        .otherwise(pl.lit("another access to the subject")),
    )
    title = ", ".join(provenance.flag_ids[:3]) + (
        f" and {len(provenance.flag_ids) - 3} more" if len(provenance.flag_ids) > 3 else ""
    )
    return environment.get_template("evidence.html.j2").render(
        title=title,
        timezone=tables.timezone,
        provenance=provenance,
        flags=_rows(flags),
        users=_rows(tables.users),
        accesses=_rows(accesses),
        shifts=_rows(tables.shifts),
        assignments=_rows(tables.assignments),
        apsp=_rows(tables.apsp),
        training=_rows(tables.training),
        reviews=_rows(tables.reviews),
        case_history=None if tables.case_history is None else _rows(tables.case_history),
    )
