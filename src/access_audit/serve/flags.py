"""The flag pages: the queue (filtered as `access-audit flag` filters it), a flag with its reasons,
evidence and both timelines, and its review form, which records through ``Workspace.review``
like `access-audit review`. Every page shown is written to the view log."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import polars as pl
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from access_audit.errors import AccessAuditError
from access_audit.review import OUTCOMES, STATUSES
from access_audit.review.detail import FlagDetail
from access_audit.review.timelines import Timelines
from access_audit.serve.desk import Desk
from access_audit.serve.forms import checked_form, form_error, text_field

if TYPE_CHECKING:
    from access_audit.workspace import Workspace

DEFAULT_LIMIT = 100
MAX_LIMIT = 2000
TIMELINE_ROWS = 200
"""Rows of each timeline's table (the chart draws them all); the page says how many more."""
FLAG_PATH = "/flags/"
VIEWS = {"grouped": "one entry per user (or shared subject) a day", "flags": "flag by flag"}


# what the review path names a decision (access_audit.review), e.g. R20261207144407-6ac25d1d4b-1
_REVIEW_ID = re.compile(r"R\d{14}-[0-9a-f]{10}-\d+")


def flag_url(flag_id: str) -> str:
    """A flag page's address: the id percent-encoded whole, so `%2D`, `/` or `?` in it survive."""
    return FLAG_PATH + quote(flag_id, safe="")


def _flag_id(request: Request) -> str:
    """The flag id in the address, decoded exactly once from the path as sent (an id's own `%2D`
    arrives as `%252D`; a client that decodes the path twice would turn it into `-`)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(FLAG_PATH.encode()):
        return unquote(raw.decode("latin-1").partition("?")[0].removeprefix(FLAG_PATH))
    return str(request.path_params["flag_id"])


def routes(desk: Desk) -> list[BaseRoute]:
    desk.templates.env.filters["flag_url"] = flag_url

    async def home(request: Request) -> Response:
        return RedirectResponse("/flags", status_code=303)

    async def queue_page(request: Request) -> Response:
        filters = QueueFilters.from_query(dict(request.query_params))
        try:
            queue = await desk.call(load_queue, desk, filters)
        except AccessAuditError as exc:
            context = {"filters": filters, "queue": None, "error": form_error(exc)}
            return desk.page(request, "queue.html", {**_choices(), **context}, 400)
        return desk.page(
            request, "queue.html", {**_choices(), "filters": filters, "queue": queue, "error": None}
        )

    async def flag_page(request: Request) -> Response:
        recorded = request.query_params.get("recorded")
        if recorded is not None and not _REVIEW_ID.fullmatch(recorded):
            recorded = None  # only a review id this form made is echoed (no spoofed banner)
        return await _flag_response(desk, request, _flag_id(request), recorded)

    async def review_flag(request: Request) -> Response:
        flag_id = _flag_id(request)
        form = ReviewForm.from_form(await checked_form(request))
        try:
            decision = await desk.call(
                desk.workspace.review,
                flag_id,
                status=form.status,
                outcome=form.outcome or None,
                note=form.note,
                purpose=form.purpose or None,
                reviewer=desk.reviewer,
            )
        except AccessAuditError as exc:
            return await _flag_response(
                desk, request, flag_id, None, form=form, error=form_error(exc)
            )
        # POST-redirect-GET: reloading the page does not record the decision twice
        return RedirectResponse(
            f"{flag_url(flag_id)}?recorded={quote(decision.review_id)}", status_code=303
        )

    return [
        Route("/", home, methods=["GET"]),
        Route("/flags", queue_page, methods=["GET"], name="queue"),
        Route("/flags/{flag_id:path}", flag_page, methods=["GET"], name="flag"),
        Route("/flags/{flag_id:path}", review_flag, methods=["POST"], name="review_flag"),
    ]


# -- the queue -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueFilters:
    """The queue page's filters, as typed in its form (the same words as `flag`'s options)."""

    since: str = ""
    until: str = ""
    min_score: str = ""
    status: str = ""
    user: str = ""
    limit: str = str(DEFAULT_LIMIT)
    view: str = "grouped"

    @classmethod
    def from_query(cls, query: dict[str, str]) -> QueueFilters:
        known = {k: v.strip() for k, v in query.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def checked(self) -> dict[str, Any]:
        """The filters as `Workspace.flags` arguments (AccessAuditError names a bad one)."""
        if self.status and self.status not in STATUSES:
            raise AccessAuditError(f"Status must be one of {', '.join(STATUSES)}")
        if self.view not in VIEWS:
            raise AccessAuditError(f"Show must be one of {', '.join(VIEWS)}")
        return {
            "min_score": _number(self.min_score, "Minimum score", 0, 100),
            "status": self.status or None,
            "user": self.user or None,
            "limit": int(_number(self.limit or str(DEFAULT_LIMIT), "Limit", 1, MAX_LIMIT)),
        }


def _number(text: str, name: str, low: float, high: float) -> Any:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise AccessAuditError(f"{name} must be a number from {low:g} to {high:g}") from None
    if not low <= value <= high:
        raise AccessAuditError(f"{name} must be a number from {low:g} to {high:g}")
    return value


@dataclass(frozen=True)
class QueueView:
    rows: list[dict[str, Any]]
    more: bool
    """More flags match than the limit let through."""
    grouped: bool


def load_queue(desk: Desk, filters: QueueFilters) -> QueueView:
    """The flags the filters select, as `flag` selects them, grouped into the budget queue's
    entries if asked; recorded in the view log."""
    from access_audit.review.grouping import budget_queue
    from access_audit.timewindow import parse_window

    workspace = desk.workspace
    arguments = filters.checked()
    window = parse_window(
        filters.since or None, filters.until or None, timezone=workspace.config.ingest.timezone
    )
    limit = arguments.pop("limit")
    frame = workspace.flags(since=window.start, until=window.end, limit=limit + 1, **arguments)
    more = frame.height > limit
    frame = frame.head(limit)
    grouped = filters.view == "grouped"
    if grouped:
        frame = (
            budget_queue(frame.lazy())
            .sort(["day", "entry_rank", "rank_in_entry"], descending=[True, False, False])
            .collect()
        )
    desk.record_view(frame["flag_id"].to_list(), frame["subject_id"].to_list())
    frame = frame.join(
        _cases_of(workspace, frame["flag_id"]), on="flag_id", how="left", maintain_order="left"
    )
    return QueueView(rows=frame.to_dicts(), more=more, grouped=grouped)


def _cases_of(workspace: Workspace, flag_ids: pl.Series) -> pl.DataFrame:
    """``flag_id`` and the ``case_id`` of the case it belongs to (a flag in no case is absent)."""
    return (
        workspace.cases.members()
        .filter(pl.col("flag_id").is_in(flag_ids.implode()))
        .select("flag_id", "case_id")
        .collect()
    )


def _choices() -> dict[str, Any]:
    return {"statuses": STATUSES, "outcomes": OUTCOMES, "views": VIEWS}


# -- one flag ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReviewForm:
    """What the review form holds: kept when a decision is refused, so nothing typed is lost."""

    status: str = ""
    outcome: str = ""
    note: str = ""
    purpose: str = ""

    @classmethod
    def from_form(cls, form: Any) -> ReviewForm:
        return cls(**{name: text_field(form, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class FlagView:
    detail: FlagDetail
    timelines: Timelines
    charts: dict[str, str] = field(default_factory=dict)
    """The user's and the subject's timeline as SVG (``report.charts``, labels escaped)."""
    case_id: str | None = None
    """The case the flag belongs to (a flag that never was an alert belongs to none)."""


def load_flag(desk: Desk, flag_id: str) -> FlagView | None:
    """A flag's detail and timelines; recorded in the view log with every subject shown."""
    from access_audit.report.charts import timeline

    workspace = desk.workspace
    detail = workspace.flag_detail(flag_id)
    if detail is None:
        return None
    timelines = workspace.flag_timelines(detail.flag)
    user, subject = timelines.user, timelines.subject
    # the chart names every record the user opened (lanes, tooltips), not only the listed rows
    shown = user["record_id"].drop_nulls().unique().sort().to_list()
    desk.record_view([flag_id], [str(detail.flag.get("subject_id") or ""), *shown])
    # one lane per record opened; a search (no record) has a lane of its own
    lanes = pl.coalesce(
        pl.concat_str("record_type", pl.lit(" "), "record_id"), pl.col("action"), pl.lit("")
    )
    charts = {
        "user": timeline(
            f"Accesses by {detail.flag.get('user_id') or 'nobody'} (red: unexplained)",
            user["occurred_at"].to_list(),
            user["explained"].to_list(),
            user.select(lanes).to_series().to_list(),
        ),
        "subject": timeline(
            f"Who opened {detail.flag.get('subject_type') or ''} "
            f"{detail.flag.get('subject_id') or ''} (red: unexplained)",
            subject["occurred_at"].to_list(),
            subject["explained"].to_list(),
            subject["user_id"].fill_null("").to_list(),
        ),
    }
    cases = _cases_of(workspace, pl.Series([flag_id]))["case_id"]
    return FlagView(detail, timelines, charts, cases[0] if cases.len() else None)


async def _flag_response(
    desk: Desk,
    request: Request,
    flag_id: str,
    recorded: str | None,
    *,
    form: ReviewForm | None = None,
    error: str | None = None,
) -> Response:
    try:
        view = await desk.call(load_flag, desk, flag_id)
    except AccessAuditError as exc:
        return desk.page(request, "error.html", {"error": form_error(exc)}, 400)
    if view is None:
        return desk.page(request, "error.html", {"error": f"no flag with id {flag_id}"}, 404)
    return desk.page(
        request,
        "flag.html",
        {
            **_choices(),
            "flag": view.detail.flag,
            "events": view.detail.events.to_dicts(),
            "training": view.detail.training.to_dicts(),
            "reviews": view.detail.reviews.to_dicts(),
            "timelines": view.timelines,
            "user_rows": view.timelines.user.head(TIMELINE_ROWS).to_dicts(),
            "subject_rows": view.timelines.subject.head(TIMELINE_ROWS).to_dicts(),
            "timeline_rows": TIMELINE_ROWS,
            "charts": view.charts,
            "case_id": view.case_id,
            "form": form or ReviewForm(status=str(view.detail.flag.get("status") or "open")),
            "error": error,
            "recorded": recorded,
        },
        400 if error else 200,
    )
