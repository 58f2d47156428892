"""What every page of the review page needs: the workspace, the templates, who records decisions.

The page modules (``flags.py``, ``cases.py``) import it; ``app.py`` builds it and hands it to
their ``routes(desk)``, so no page module imports the application.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from access_audit.serve.guard import session_of

if TYPE_CHECKING:
    from access_audit.workspace import Workspace

R = TypeVar("R")
VIEW_COMMAND = "serve"
"""How the view log names what the review page showed."""


@dataclass
class Desk:
    """What every page needs: the workspace (one request at a time uses it: its ledgers lock
    between processes, not between threads), the templates, who records decisions."""

    workspace: Workspace
    templates: Jinja2Templates
    reviewer: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def call(self, function: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run blocking workspace code off the event loop, one call at a time."""

        def locked() -> R:
            with self._lock:
                return function(*args, **kwargs)

        return await run_in_threadpool(locked)

    def page(
        self, request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        return self.templates.TemplateResponse(
            request,
            name,
            {"csrf": session_of(request).csrf, "home": str(self.workspace.home), **context},
            status_code=status_code,
        )

    def record_view(self, flag_ids: Sequence[str], subjects: Sequence[str]) -> None:
        self.workspace.record_view(VIEW_COMMAND, flag_ids, subjects)
