"""The case desk of a home (``Workspace.cases``): list, show, assign and decide cases.

Cases are derived from the stored flags and the review log (``review/cases.py``); what analysts
do to them is appended to the case log (``review/case_log.py``). A decision on a case is recorded
on each of its flags through ``Workspace._record_decisions`` (the path `review` takes, with the
same checks: one bad flag records nothing), then on the case. Both writes happen while the case
log's lock is held, so two decisions on one case cannot interleave; if the second write fails
(a full disk) the flags keep their decisions and the case shows as not decided (its
``undecided_flags``), and deciding it again records the decision on the case.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import polars as pl

from access_audit.errors import AccessAuditError, InputError, StorageError
from access_audit.review import default_reviewer
from access_audit.review.case_log import case_event, case_ledger, read_case_log
from access_audit.review.cases import (
    CaseDetail,
    case_decisions,
    case_members,
    case_summaries,
    select_cases,
)

if TYPE_CHECKING:
    from access_audit.config import Config
    from access_audit.ledger import Ledger


DUE_FORM = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
MAX_NAME_CHARACTERS = 200
# what draws nothing: control and format characters (zero-width spaces, bidi marks), separators
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})


def _visible_name(name: str) -> bool:
    """Whether a name shows at least one character (a zero-width space alone shows nothing)."""
    return any(unicodedata.category(character) not in _INVISIBLE for character in name)


def due_date(text: str | None, *, blank_is_default: bool = True) -> date | None:
    """A due date as typed, exactly YYYY-MM-DD (not the other ISO forms ``date.fromisoformat``
    takes, 20261208 or 2026-W50); nothing typed is None (the default due date), and with
    ``blank_is_default`` false (the command line: ``--due ""``) a blank is refused."""
    if text is None or (blank_is_default and not text.strip()):
        return None
    refused = InputError("{due} must be a date (YYYY-MM-DD), not '{given}'", given=text)
    if not DUE_FORM.fullmatch(text.strip()):
        raise refused
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise refused from None


@dataclass(frozen=True)
class CaseAssignment:
    case_id: str
    assignee: str
    due: date
    analyst: str


@dataclass(frozen=True)
class CaseDecision:
    case_id: str
    status: str
    outcome: str | None
    analyst: str
    flag_ids: list[str]
    review_ids: list[str]


class CaseHome(Protocol):
    """What the case desk needs of its home (``Workspace`` is one): the desk never imports the
    workspace, which holds it (``Workspace.cases``), so imports point one way."""

    @property
    def home(self) -> Path: ...

    @property
    def config(self) -> Config: ...

    @property
    def database_path(self) -> Path: ...

    def scan(self, table: str) -> pl.LazyFrame: ...

    def refresh_catalog(self) -> Path: ...

    def _require_loaded(self) -> None: ...

    def _record_decisions(self, decisions: pl.DataFrame) -> pl.DataFrame: ...


class CaseDesk:
    """The cases of one home."""

    def __init__(self, workspace: CaseHome):
        self.workspace = workspace

    @property
    def ledger(self) -> Ledger:
        return case_ledger(self.workspace.home)

    # -- reading -------------------------------------------------------------------------------
    def members(self) -> pl.LazyFrame:
        """Every flag that belongs to a case, with its case id (``cases.CASE_FLAG_COLUMNS``)."""
        ws = self.workspace
        return case_members(ws.scan("flags"), ws.scan("reviews"), ws.config.cases.span_days)

    def log(self) -> pl.LazyFrame:
        return read_case_log(self.ledger.complete_bytes())

    def summaries(self, today: date | None = None) -> pl.LazyFrame:
        return case_summaries(self.members(), self.log(), today or self._today())

    def select(
        self,
        *,
        status: str | None = None,
        assignee: str | None = None,
        overdue: bool = False,
        limit: int | None = None,
        today: date | None = None,
    ) -> pl.DataFrame:
        """Cases, open and under review first, then by their strongest flag."""
        self.workspace._require_loaded()
        if status is not None and status not in ("open", "under_review", "closed"):
            raise InputError(
                "{status} must be open, under_review or closed, not '{given}'", given=status
            )
        return select_cases(
            self.summaries(today), status=status, assignee=assignee, overdue=overdue, limit=limit
        ).collect()

    def flag_ids_of(self, identifiers: Sequence[str]) -> list[str]:
        """The identifiers as flag ids: each case id replaced by its flags' ids (oldest day
        first), anything else kept as given (e.g. for `evidence`)."""
        members = (
            self.members()
            .filter(pl.col("case_id").is_in(list(identifiers)))
            .group_by("case_id")
            .agg(pl.col("flag_id").sort_by("day", "flag_id"))
            .collect()
        )
        by_case: dict[str, list[str]] = dict(members.rows())
        return [flag for given in identifiers for flag in by_case.get(given, [given])]

    def named(self, identifiers: Sequence[str]) -> list[str]:
        """The identifiers that name a case (with flags now), in the order given."""
        known = set(
            self.members()
            .filter(pl.col("case_id").is_in(list(identifiers)))
            .select("case_id")
            .unique()
            .collect()["case_id"]
        )
        return [given for given in dict.fromkeys(identifiers) if given in known]

    def unmatched(self) -> list[str]:
        """Case ids in the case log that no flag belongs to any more: a case's first flag was
        re-scored away, or a late drop moved its span. Their assignments and decisions stay in
        the log (and on the flags' reviews), and `case list` names them so none is lost unseen."""
        logged = self.log().select("case_id").unique()
        current = self.members().select("case_id").unique()
        return sorted(logged.join(current, on="case_id", how="anti").collect()["case_id"])

    def detail(self, case_id: str, today: date | None = None) -> CaseDetail:
        """One case: its summary, its flags (strongest first) and its history."""
        members = self.members().filter(pl.col("case_id") == case_id).collect()
        if members.is_empty() and case_id in self.unmatched():
            raise AccessAuditError(
                f"case {case_id} is in the case log, but no flag belongs to it any more (its "
                "flags were re-scored or a late drop moved its span): see `case list`"
            )
        if members.is_empty():
            raise AccessAuditError(f"no case {case_id} (`access-audit case list` lists them)")
        log = self.log().filter(pl.col("case_id") == case_id)
        summary = case_summaries(members.lazy(), log, today or self._today()).collect()
        return CaseDetail(
            case=summary.row(0, named=True),
            flags=members.sort(["score", "flag_id"], descending=[True, False]),
            history=log.collect(),
        )

    # -- writing -------------------------------------------------------------------------------
    def assign(
        self,
        case_id: str,
        assignee: str,
        *,
        due: date | None = None,
        note: str | None = None,
        analyst: str | None = None,
        today: date | None = None,
    ) -> CaseAssignment:
        """Assign a case to an analyst, due on ``due`` (default: ``[cases] due_days`` from
        today); a due date before today is refused (``today``: the force's local date unless
        given)."""
        who = assignee.strip()
        if not _visible_name(who):
            raise InputError("{to} must name the analyst the case is assigned to")
        if len(who) > MAX_NAME_CHARACTERS:
            raise InputError(
                "{to} is {length} characters long: an analyst's name has at most {most}",
                length=str(len(who)),
                most=str(MAX_NAME_CHARACTERS),
            )
        today = today or self._today()
        if due is not None and due < today:
            raise InputError(
                "{due} {given} is in the past (today is {today}): give today or a later date",
                given=due.isoformat(),
                today=today.isoformat(),
            )
        self.detail(case_id)
        when = due or today + timedelta(days=self.workspace.config.cases.due_days)
        by = (analyst or "").strip() or default_reviewer()
        event = case_event(
            case_id, "assign", datetime.now(UTC), by, assignee=who, due=when, note=note
        )
        self._append(lambda: [event])
        return CaseAssignment(case_id=case_id, assignee=who, due=when, analyst=by)

    def review(
        self,
        case_id: str,
        *,
        status: str,
        outcome: str | None,
        note: str,
        reviewer: str | None = None,
        purpose: str | None = None,
    ) -> CaseDecision:
        """Record one decision on every flag of the case (through the review path), then on the
        case itself."""
        by = (reviewer or "").strip() or default_reviewer()
        recorded: list[CaseDecision] = []

        def events() -> list[dict[str, object]]:
            # under the case log's lock: the flags decided are the case's flags at this moment
            flag_ids = self.detail(case_id).flags.sort("flag_id")["flag_id"].to_list()
            decisions = case_decisions(
                flag_ids, status=status, outcome=outcome, note=note, reviewer=by, purpose=purpose
            )
            rows = self.workspace._record_decisions(decisions)
            review_ids = rows["review_id"].to_list()
            recorded.append(CaseDecision(case_id, status, outcome, by, flag_ids, review_ids))
            return [
                case_event(
                    case_id,
                    "decision",
                    datetime.now(UTC),
                    by,
                    status=status,
                    outcome=outcome,
                    purpose=purpose,
                    note=note,
                    flag_ids=flag_ids,
                    review_ids=review_ids,
                )
            ]

        try:
            self._append(events)
        except StorageError as exc:
            if not recorded:
                raise
            # The flags' decisions are in the review log; the case's own line is not.
            done = recorded[0]
            raise StorageError(
                f"{exc}: the decision was recorded on the case's {len(done.flag_ids)} flag(s) "
                f"({', '.join(done.review_ids)}) but not on the case itself; "
                "`case review` again completes it"
            ) from exc
        return recorded[0]

    def _append(self, events: Callable[[], list[dict[str, object]]]) -> None:
        """Append the events made by ``events()`` while holding the case log's lock. A database
        built before the log existed is rebuilt, so its ``case_log`` view reads the log."""
        from access_audit.guarded_writes import owner_only, require_intact, writing

        ledger = self.ledger
        existed = ledger.path.exists()
        with owner_only(), writing(f"the case log {ledger.path}"), ledger.locked():
            require_intact(ledger, "nothing was recorded")
            ledger.append_holding_lock(events())
        if not existed and self.workspace.database_path.exists():
            self.workspace.refresh_catalog()

    def _today(self) -> date:
        from zoneinfo import ZoneInfo

        return datetime.now(ZoneInfo(self.workspace.config.ingest.timezone)).date()
