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


@dataclass(frozen=True)
class AccessPage:
    """The accesses the page lists: all of them, or (beyond ``[evidence] page_rows``) the first
    rows with counts per day and per subject; ``accesses.csv`` holds every one either way."""

    rows: pl.DataFrame
    total: int
    per_day: pl.DataFrame | None = None
    per_subject: pl.DataFrame | None = None
    subjects: int = 0


def access_page(accesses: pl.DataFrame, page_rows: int) -> AccessPage:
    """Bound the page's accesses to ``page_rows``: the flags' own accesses first, then the
    earliest others, shown oldest first; counts per UTC day (one row a day) and per subject
    (the ``page_rows`` most accessed)."""
    if accesses.height <= page_rows:
        return AccessPage(rows=accesses, total=accesses.height)
    indexed = accesses.with_row_index("position")
    rows = (
        indexed.sort(pl.col("held_by_flag").not_(), "position")
        .head(page_rows)
        .sort("position")
        .drop("position")
    )
    per_day = (
        accesses.group_by(day=pl.col("occurred_at_utc").str.slice(0, 10))
        .agg(
            accesses=pl.len(),
            subjects=pl.col("record").n_unique(),
            held=pl.col("held_by_flag").sum(),
        )
        .sort("day")
    )
    per_subject = (
        accesses.group_by("record")
        .agg(
            accesses=pl.len(),
            first=pl.col("occurred_at_utc").min(),
            last=pl.col("occurred_at_utc").max(),
        )
        .sort(["accesses", "record"], descending=[True, False])
    )
    return AccessPage(
        rows=rows,
        total=accesses.height,
        per_day=per_day,
        per_subject=per_subject.head(page_rows),
        subjects=per_subject.height,
    )


def render_page(tables: EvidenceTables, provenance: Provenance, page_rows: int) -> str:
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
    page = access_page(accesses, page_rows)
    named = ", ".join(provenance.flag_ids[:3]) + (
        f" and {len(provenance.flag_ids) - 3} more" if len(provenance.flag_ids) > 3 else ""
    )
    # a case's pack is titled by the case (what the hearing refers to), then its flags
    cases = ", ".join(provenance.case_ids)
    title = f"case {cases} (flags {named})" if cases else named
    return environment.get_template("evidence.html.j2").render(
        title=title,
        timezone=tables.timezone,
        provenance=provenance,
        flags=_rows(flags),
        users=_rows(tables.users),
        accesses=_rows(page.rows),
        access_total=page.total,
        per_day=None if page.per_day is None else _rows(page.per_day),
        per_subject=None if page.per_subject is None else _rows(page.per_subject),
        subject_total=page.subjects,
        shifts=_rows(tables.shifts),
        assignments=_rows(tables.assignments),
        apsp=_rows(tables.apsp),
        training=_rows(tables.training),
        reviews=_rows(tables.reviews),
        case_history=None if tables.case_history is None else _rows(tables.case_history),
    )
