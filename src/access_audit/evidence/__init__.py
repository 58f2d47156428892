"""Evidence packs for a misconduct hearing: ``access-audit evidence FLAG_OR_CASE … --output DIR``.

``write_evidence`` takes a list of flag ids (a case's flags are such a list; the case ids they
came from add the cases' history from the case log, read up to its verified head), checks every
chain of the home, reads the verified generation (pinned: a nightly run committing meanwhile
changes nothing in the pack) and the review log up to its verified head, gathers the scope
(``scope.py``) and writes the pack (``pack.py``), logging the export in the view log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import polars as pl

from access_audit import __version__
from access_audit.errors import AccessAuditError
from access_audit.evidence.pack import (
    EvidencePack,
    find_chromium,
    refuse_existing,
    staged_pack,
    write_pack_files,
)
from access_audit.evidence.page import LedgerHead, Provenance
from access_audit.evidence.scope import (
    EvidenceScope,
    case_history_rows,
    gather_evidence,
    missing_flags,
)
from access_audit.integrity import ChainCheck
from access_audit.ledger import utc_text
from access_audit.manifest import generation_name
from access_audit.score.pattern_scope import unreadable_subjects
from access_audit.store import StoreDamagedError
from access_audit.tables import scan_stored

if TYPE_CHECKING:
    from access_audit.config import Config
    from access_audit.ledger import Ledger
    from access_audit.review.casework import CaseDesk
    from access_audit.score.rules import Rules
    from access_audit.store import Generation, Store

__all__ = ["EvidencePack", "write_evidence"]

Progress = Callable[[str, int, int], None]
STEPS = 4


class EvidenceHome(Protocol):
    """What a pack needs of its home (``Workspace`` is one): this package never imports the
    workspace, which calls it (``Workspace.evidence``), so imports point one way."""

    @property
    def home(self) -> Path: ...

    @property
    def store(self) -> Store: ...

    @property
    def config(self) -> Config: ...

    @property
    def rules(self) -> Rules: ...

    @property
    def cases(self) -> CaseDesk: ...

    @property
    def reviews_ledger(self) -> Ledger: ...

    def generation(self) -> Generation | None: ...

    def scan(self, table: str) -> pl.LazyFrame: ...

    def verify_ledgers(
        self, *, torn_tail_ok: bool = False, views: bool = True
    ) -> list[ChainCheck]: ...

    def record_view(
        self, command: str, flag_ids: Sequence[str], subjects: Sequence[str]
    ) -> None: ...


class UnreadableSubjectsError(AccessAuditError):
    """A pattern flag stored before ``pattern_subjects`` whose reason's list of subjects cannot
    be read back exactly: a pack of it could hold persons its figure did not count."""


def _unknown_flags_error(missing: Sequence[str]) -> AccessAuditError:
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return AccessAuditError(f"no flag {missing[0]}{more}; nothing was written")


def _verified(workspace: EvidenceHome) -> tuple[int, str, list[ChainCheck], str]:
    """Walk the store (re-hashing every file) and both logs; refuse if any chain is broken.
    Returns the verified current generation, its head, the logs' checks and a summary."""
    store = workspace.store.verify("full")
    checks = [store.check, *workspace.verify_ledgers(torn_tail_ok=True)]
    for check in checks:
        if not check.ok:
            raise StoreDamagedError(
                f"the {check.name} chain fails verification ({check.problem}); no evidence pack "
                "was written. Run `access-audit verify`"
            )
    if not store.heads:
        raise StoreDamagedError(
            "the store has no manifests (made by an earlier version), so its integrity cannot "
            "be shown; run `access-audit score` once, then export the evidence"
        )
    current = max(store.heads)
    summary = (
        f"full: {store.check.items} generation(s) chained, {store.files_read} file(s) re-hashed, "
        f"at {utc_text(datetime.now(UTC))}"
    )
    return current, store.heads[current], checks[1:], summary


def _verified_reviews(workspace: EvidenceHome, lines: int) -> pl.LazyFrame:
    """The review history up to the verified head: a decision appended after the walk is not
    in the pack, so the head in its manifest covers every review it shows."""
    from access_audit.review.log import read_reviews

    complete = workspace.reviews_ledger.complete_bytes()
    return read_reviews(b"".join(complete.splitlines(keepends=True)[:lines]))


def _verified_case_history(
    workspace: EvidenceHome, lines: int, case_ids: Sequence[str]
) -> pl.DataFrame:
    """The cases' assignments and decisions up to the case log's verified head (as the reviews
    are read up to theirs)."""
    from access_audit.review.case_log import read_case_log

    complete = workspace.cases.ledger.complete_bytes()
    log = read_case_log(b"".join(complete.splitlines(keepends=True)[:lines]))
    return case_history_rows(log, case_ids).collect()


def write_evidence(
    workspace: EvidenceHome,
    flag_ids: Sequence[str],
    output: Path,
    *,
    case_ids: Sequence[str] = (),
    pdf: bool = True,
    progress: Progress | None = None,
) -> EvidencePack:
    """Write the evidence pack for ``flag_ids`` to the folder ``output`` (absent or empty). The
    ``case_ids`` they came from (if any) add the cases' history from the case log."""
    step = progress or (lambda _what, _done, _total: None)
    ids = list(dict.fromkeys(flag_ids))
    if not ids:
        raise AccessAuditError("name at least one flag id")
    refuse_existing(output)
    if output.absolute().resolve().is_relative_to(workspace.store.root.resolve()):
        raise AccessAuditError(f"{output}: inside the store; write the pack elsewhere")
    chromium = find_chromium() if pdf else None
    if workspace.generation() is None:
        raise AccessAuditError(f"nothing is loaded yet in {workspace.home}: no flags to export")
    missing = missing_flags(workspace.scan("flags"), ids)
    if missing:
        raise _unknown_flags_error(missing)

    step("verifying the store and the logs", 0, STEPS)
    number, head, ledgers, summary = _verified(workspace)
    folder = workspace.store.root / generation_name(number)
    reviews_check = next(c for c in ledgers if c.name == "reviews")
    cases_check = next(c for c in ledgers if c.name == workspace.cases.ledger.name)

    def stored(table: str) -> pl.LazyFrame:
        return scan_stored(folder, table)

    scope = EvidenceScope(
        flags=stored("flags"),
        flag_events=stored("flag_events"),
        events=stored("access_events"),
        explanations=stored("explanations"),
        indicators=stored("indicators"),
        shifts=stored("shifts"),
        assignments=stored("assignments"),
        incident_persons=stored("incident_persons"),
        staff=stored("staff"),
        training=stored("training"),
        reviews=_verified_reviews(workspace, reviews_check.items),
    )
    missing = missing_flags(scope.flags, ids)  # re-scored between the two looks
    if missing:
        raise _unknown_flags_error(missing)

    step("gathering the evidence", 1, STEPS)
    rules = workspace.rules
    unreadable = unreadable_subjects(
        scope.flags.filter(pl.col("flag_id").is_in(ids)), scope.events, rules.lookback_days
    )
    if unreadable:
        first = scope.flags.filter(pl.col("flag_id") == unreadable[0]).select("day").collect()
        day = first.item()
        raise UnreadableSubjectsError(
            f"flag {unreadable[0]} was stored before its subjects were, and the list its reason "
            'ends with cannot be read back exactly (an id holds ", ", or it names a person '
            "not looked up in the look-back); re-score its day to store them (`access-audit "
            f"score --since {day} --until {day + timedelta(days=1)}`); no pack was written"
        )
    timezone = workspace.config.ingest.timezone
    tables = gather_evidence(
        scope,
        ids,
        timezone=timezone,
        unexplained_text=rules.indicators["unexplained"].text,
        training_course=str(rules.reports["training_course"]),
        overdue_months=int(rules.reports["training_overdue_months"]),
        lookback_days=rules.lookback_days,
    )
    cases = list(dict.fromkeys(case_ids))
    if cases:
        history = _verified_case_history(workspace, cases_check.items, cases)
        tables = dataclasses.replace(tables, case_history=history)
    from access_audit.review import default_reviewer
    from access_audit.review.log import operating_account

    provenance = Provenance(
        flag_ids=ids,
        case_ids=cases,
        created_at=utc_text(datetime.now(UTC)),
        created_by=default_reviewer(),
        account=operating_account(),
        version=__version__,
        generation=number,
        store_head=f"{generation_name(number)}:{head}",
        verification=summary,
        ledgers=[LedgerHead(c.name, c.items, c.head) for c in ledgers],
        rules_versions=", ".join(sorted(set(tables.flags["rules_version"].drop_nulls().to_list()))),
        timezone=timezone,
        pdf=chromium is not None,
    )
    subjects = [
        *tables.flags["subject_id"].drop_nulls().to_list(),
        *tables.accesses["record_id"].drop_nulls().to_list(),
    ]
    step("writing the pack" + (" and printing its PDF" if chromium else ""), 2, STEPS)
    with staged_pack(output) as staging:
        files = write_pack_files(
            staging,
            tables,
            provenance,
            chromium,
            page_rows=workspace.config.evidence.page_rows,
        )
        # logged before the pack appears: an export the view log cannot record is not made
        workspace.record_view("evidence", ids, subjects)
    step("done", STEPS, STEPS)
    return EvidencePack(
        path=output,
        files=files,
        flag_ids=ids,
        case_ids=cases,
        accesses=tables.accesses.height,
        reviews=tables.reviews.height,
        store_head=provenance.store_head,
        pdf=chromium is not None,
    )
