"""The review page's web application: the guard around the routes of each kind of page.

Each kind of page (the flag queue and a flag, ``flags.py``; the cases and a case, ``cases.py``)
is a module with a ``routes(desk)`` function returning its Starlette routes; ``create_app`` puts
them together. What every page needs is the ``Desk`` (``desk.py``), which the page modules import
and this module builds: imports point one way (app → pages → desk). Pages are server-rendered
Jinja2 templates with autoescaping on: every id, name and note is text, never markup. No
JavaScript is built or served.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from access_audit.errors import internal_error_line, write_traceback
from access_audit.escape import visible
from access_audit.serve import cases, flags
from access_audit.serve.desk import Desk
from access_audit.serve.guard import (
    ASGIApp,
    Guard,
    Message,
    Receive,
    Scope,
    Send,
    Sessions,
    new_token,
)

if TYPE_CHECKING:
    from access_audit.workspace import Workspace

HERE = Path(__file__).parent


def templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is text unless a template marks it otherwise
        undefined=jinja2.StrictUndefined,
        finalize=visible,  # control characters and bidirectional marks shown, not obeyed
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["utc"] = _utc
    environment.filters["number"] = _number
    environment.filters["svg"] = _trusted_svg
    return Jinja2Templates(env=environment)


def create_app(
    workspace: Workspace, *, token: str | None = None, reviewer: str | None = None
) -> tuple[Starlette, str]:
    """The application and the token that opens a session on it (random unless given)."""
    desk = Desk(workspace, templates(), reviewer)
    routes: list[BaseRoute] = [
        *flags.routes(desk),
        *cases.routes(desk),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    secret = token or new_token()
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Guard, token=secret, sessions=Sessions()),  # type: ignore[arg-type]
            Middleware(ContainBugs, runs_dir=workspace.runs_dir),  # type: ignore[arg-type]
        ],
    )
    return app, secret


class ContainBugs:
    """ASGI middleware: a bug's traceback goes to a file in the home's runs/ folder, never to the
    page, the terminal or a log (its message may quote personal data); the page says where."""

    def __init__(self, app: ASGIApp, runs_dir: Path) -> None:
        self.app = app
        self.runs_dir = runs_dir

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started or scope["type"] != "http":
                raise
            try:
                path: Path | None = write_traceback(exc, self.runs_dir)
            except OSError:
                path = None
            response = PlainTextResponse(internal_error_line(exc, path) + "\n", status_code=500)
            await response(scope, receive, send)


def _utc(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return value.isoformat()


def _number(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _trusted_svg(chart: str) -> Markup:
    """A chart from ``report.charts``, which escapes every label it draws."""
    return Markup(chart)
