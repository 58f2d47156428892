"""The case pages: the case list (filtered as `access-audit case list` filters it), a case with its
flags, their reasons and evidence, both timelines and the case log's history, and its two forms,
which record through ``Workspace.cases`` like `access-audit case assign` and `case review`. Every
page shown is written to the view log.

A case's address is ``/cases/<id>`` with the id percent-encoded whole; its forms post to
``/cases/<id>/assign`` and ``/cases/<id>/review``. The id is read from the path as sent, so an id
holding ``/`` (encoded ``%2F``) is never mistaken for a form's address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import polars as pl
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from access_audit.errors import AccessAuditError
from access_audit.review import OUTCOMES, STATUSES
from access_audit.review.cases import CaseDetail
from access_audit.review.casework import due_date
from access_audit.review.timelines import Timelines
from access_audit.serve.desk import Desk
from access_audit.serve.flags import TIMELINE_ROWS, ReviewForm
from access_audit.serve.forms import checked_form, form_error, text_field

CASE_PATH = "/cases/"
DEFAULT_LIMIT = 100
MAX_LIMIT = 2000
ACTIONS = ("assign", "review")
"""The forms a case page posts: ``/cases/<id>/<action>``."""
RECORDED = {
    "assignment": "Assignment recorded.",
    "decision": "Decision recorded on every flag of the case.",
}
"""What the page says after a form was recorded (the redirect names one of these, nothing else
from the address is shown)."""


def case_url(case_id: str, action: str = "") -> str:
    """A case page's address (or its form's): the id percent-encoded whole."""
    return CASE_PATH + quote(case_id, safe="") + (f"/{action}" if action else "")


def _case_address(request: Request) -> tuple[str, str]:
    """The case id and the form action (``""`` for the page) in the address, decoded once from
    the path as sent: the encoded id holds no ``/``, so what follows one is the action."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(CASE_PATH.encode()):
        path = raw.decode("latin-1").partition("?")[0].removeprefix(CASE_PATH)
    else:
        path = quote(str(request.path_params["rest"]), safe="/")
    encoded, _, action = path.partition("/")
    return unquote(encoded), action


def routes(desk: Desk) -> list[BaseRoute]:
    desk.templates.env.filters["case_url"] = case_url

    async def list_page(request: Request) -> Response:
        filters = CaseFilters.from_query(dict(request.query_params))
        try:
            cases = await desk.call(load_cases, desk, filters)
        except AccessAuditError as exc:
            context = {"filters": filters, "cases": None, "error": form_error(exc)}
            return desk.page(request, "cases.html", {**_choices(), **context}, 400)
        return desk.page(
            request, "cases.html", {**_choices(), "filters": filters, "cases": cases, "error": None}
        )

    async def case_page(request: Request) -> Response:
        case_id, action = _case_address(request)
        if action:
            return desk.page(request, "error.html", {"error": "no such page"}, 404)
        recorded = RECORDED.get(request.query_params.get("recorded", ""))
        return await _case_response(desk, request, case_id, recorded=recorded)

    async def case_form(request: Request) -> Response:
        case_id, action = _case_address(request)
        if action not in ACTIONS:
            return desk.page(request, "error.html", {"error": "no such form"}, 404)
        form = await checked_form(request)
        if action == "assign":
            assignment = AssignForm.from_form(form)
            try:
                await desk.call(record_assignment, desk, case_id, assignment)
            except AccessAuditError as exc:
                return await _case_response(
                    desk, request, case_id, assign=assignment, error=form_error(exc)
                )
            done = "assignment"
        else:
            decision = ReviewForm.from_form(form)
            try:
                await desk.call(record_decision, desk, case_id, decision)
            except AccessAuditError as exc:
                return await _case_response(
                    desk, request, case_id, review=decision, error=form_error(exc)
                )
            done = "decision"
        # POST-redirect-GET: reloading the page does not record it twice
        return RedirectResponse(f"{case_url(case_id)}?recorded={done}", status_code=303)

    return [
        Route("/cases", list_page, methods=["GET"], name="cases"),
        Route("/cases/{rest:path}", case_page, methods=["GET"], name="case"),
        Route("/cases/{rest:path}", case_form, methods=["POST"], name="case_form"),
    ]


def _choices() -> dict[str, Any]:
    return {"statuses": STATUSES, "outcomes": OUTCOMES}


# -- the case list ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseFilters:
    """The case list's filters, as typed in its form (the same words as `case list`'s options)."""

    status: str = ""
    assignee: str = ""
    overdue: str = ""
    limit: str = str(DEFAULT_LIMIT)

    @classmethod
    def from_query(cls, query: dict[str, str]) -> CaseFilters:
        known = {k: v.strip() for k, v in query.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def checked(self) -> dict[str, Any]:
        """The filters as ``CaseDesk.select`` arguments (AccessAuditError names a bad one)."""
        try:
            limit = int(self.limit or DEFAULT_LIMIT)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise AccessAuditError(f"Limit must be a whole number from 1 to {MAX_LIMIT}")
        return {
            "status": self.status or None,
            "assignee": self.assignee or None,
            "overdue": self.overdue not in ("", "0", "false", "off"),
            "limit": limit,
        }


@dataclass(frozen=True)
class CaseList:
    rows: list[dict[str, Any]]
    more: bool
    """More cases match than the limit let through."""
    unmatched: list[str]
    """Case ids in the case log that no flag belongs to any more (as `case list` warns)."""


def load_cases(desk: Desk, filters: CaseFilters) -> CaseList:
    """The cases the filters select, as `case list` selects them; recorded in the view log."""
    arguments = filters.checked()
    limit = arguments.pop("limit")
    cases = desk.workspace.cases.select(limit=limit + 1, **arguments)
    more = cases.height > limit
    cases = cases.head(limit)
    desk.record_view(
        cases["flag_ids"].explode().drop_nulls().to_list(),
        cases["subject_id"].drop_nulls().to_list(),
    )
    return CaseList(cases.to_dicts(), more, desk.workspace.cases.unmatched())


# -- one case ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AssignForm:
    """What the assign form holds: kept when an assignment is refused."""

    assignee: str = ""
    due: str = ""
    note: str = ""

    @classmethod
    def from_form(cls, form: Any) -> AssignForm:
        return cls(**{name: text_field(form, name) for name in cls.__dataclass_fields__})


def record_assignment(desk: Desk, case_id: str, form: AssignForm) -> None:
    """Assign the case as `access-audit case assign` does (``CaseDesk.assign``)."""
    desk.workspace.cases.assign(
        case_id,
        form.assignee,
        due=due_date(form.due),
        note=form.note.strip() or None,
        analyst=desk.reviewer,
    )


def record_decision(desk: Desk, case_id: str, form: ReviewForm) -> None:
    """Decide the case as `access-audit case review` does (``CaseDesk.review``)."""
    desk.workspace.cases.review(
        case_id,
        status=form.status,
        outcome=form.outcome or None,
        note=form.note,
        reviewer=desk.reviewer,
        purpose=form.purpose or None,
    )


@dataclass(frozen=True)
class CaseView:
    detail: CaseDetail
    evidence: pl.DataFrame
    """The accesses the case's flags hold, with what explains each (``held_accesses``)."""
    timelines: Timelines
    training: pl.DataFrame
    charts: dict[str, str] = field(default_factory=dict)


def load_case(desk: Desk, case_id: str) -> CaseView:
    """A case's detail, evidence and timelines; recorded in the view log with every subject
    shown. An unknown case is an AccessAuditError."""
    from access_audit.report.charts import timeline

    workspace = desk.workspace
    detail = workspace.cases.detail(case_id)
    case = detail.case
    flag_ids = detail.flags["flag_id"].to_list()
    evidence = workspace.held_accesses(flag_ids)
    # the case's span as one flag: its user, its subject, its first and last access
    span = {**case, "flag_id": None}
    timelines = workspace.flag_timelines(span, flag_ids=flag_ids)
    user, subject = timelines.user, timelines.subject
    shown = pl.concat(
        [evidence["record_id"], user["record_id"], pl.Series([case.get("subject_id")])]
    )
    desk.record_view(flag_ids, shown.drop_nulls().unique().sort().to_list())
    lanes = pl.coalesce(
        pl.concat_str("record_type", pl.lit(" "), "record_id"), pl.col("action"), pl.lit("")
    )
    training = (
        workspace.scan("training")
        .filter(pl.col("user_id") == pl.lit(case.get("user_id"), dtype=pl.String))
        .select("course", "completed_at")
        .sort("completed_at", descending=True)
        .collect()
    )
    charts = {
        "user": timeline(
            f"Accesses by {case.get('user_id') or 'nobody'} (red: unexplained)",
            user["occurred_at"].to_list(),
            user["explained"].to_list(),
            user.select(lanes).to_series().to_list(),
        ),
        "subject": timeline(
            f"Who opened {case.get('subject_type') or ''} {case.get('subject_id') or ''} "
            "(red: unexplained)",
            subject["occurred_at"].to_list(),
            subject["explained"].to_list(),
            subject["user_id"].fill_null("").to_list(),
        ),
    }
    return CaseView(detail, evidence, timelines, training, charts)


async def _case_response(
    desk: Desk,
    request: Request,
    case_id: str,
    *,
    recorded: str | None = None,
    assign: AssignForm | None = None,
    review: ReviewForm | None = None,
    error: str | None = None,
) -> Response:
    try:
        view = await desk.call(load_case, desk, case_id)
    except AccessAuditError as exc:  # no such case (or none any more)
        return desk.page(request, "error.html", {"error": form_error(exc)}, 404)
    case = view.detail.case
    return desk.page(
        request,
        "case.html",
        {
            **_choices(),
            "case": case,
            "flags": view.detail.flags.to_dicts(),
            "history": view.detail.history.to_dicts(),
            "events": view.evidence.to_dicts(),
            "training": view.training.to_dicts(),
            "timelines": view.timelines,
            "user_rows": view.timelines.user.head(TIMELINE_ROWS).to_dicts(),
            "subject_rows": view.timelines.subject.head(TIMELINE_ROWS).to_dicts(),
            "timeline_rows": TIMELINE_ROWS,
            "charts": view.charts,
            "assign": assign or AssignForm(assignee=str(case.get("assignee") or "")),
            "form": review or ReviewForm(status=str(case.get("status") or "open")),
            "error": error,
            "recorded": recorded,
        },
        400 if error else 200,
    )
