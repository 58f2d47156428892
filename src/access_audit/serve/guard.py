"""Who may use the review page: the person who started it, in their own browser.

The page shows victims' names and officers' lookups, and its form records decisions, so every
request passes this guard before any page code runs:

1. **The Host header** must be ``127.0.0.1`` or ``localhost`` (any port). A page on another site
   can make its own name resolve to 127.0.0.1 (DNS rebinding) and so reach the server as "the
   same origin"; its requests still carry its own name as Host, and are refused.
2. **The start token**, a random secret printed when the server starts, opens a session: the URL
   ``/?token=…`` sets an HttpOnly, SameSite=Strict session cookie and redirects to the same page
   without the token (so it stays out of the history and of Referer headers).
3. **The session cookie** is needed on every other request; without it, 403. Each session holds
   its own CSRF token, which the review form carries in a hidden field (checked in ``forms.py``).

Every response, refusals included, carries headers that forbid scripts, framing, caching and
sending the page's address to another site.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "access_audit_session"
"""The session cookie's name, followed by the server's own suffix: browsers share cookies between
ports, and two servers (two homes) must not overwrite each other's session."""
TOKEN_PARAMETER = "token"
MAX_SESSIONS = 64
"""Sessions kept in memory; opening one more forgets the oldest (its browser must use the start
URL again)."""
_LOOPBACK_HOST = re.compile(r"(127\.0\.0\.1|localhost)(:\d{1,5})?", re.IGNORECASE)

SECURITY_HEADERS = {
    # no script at all: a value that escaped escaping still could not run
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # the Referer reaches this server only (the POST's Origin check may read it), never others
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class Session:
    session_id: str
    csrf: str


class Sessions:
    """The open browser sessions, in memory only: a restart closes them all."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def open(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        with self._lock:
            self._sessions[session.session_id] = session
            while len(self._sessions) > self._limit:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_loopback_host(host: str) -> bool:
    """The Host header names this machine's loopback address (DNS rebinding is refused)."""
    return _LOOPBACK_HOST.fullmatch(host.strip()) is not None


def session_of(request: Request) -> Session:
    """The session the guard let this request in with."""
    session = request.scope.get("state", {}).get("session")
    if not isinstance(session, Session):
        raise RuntimeError("the request did not pass the guard")
    return session


class Guard:
    """ASGI middleware: the Host check, the start token, the session cookie, the headers."""

    def __init__(self, app: ASGIApp, token: str, sessions: Sessions) -> None:
        self.app = app
        self.token = token
        self.sessions = sessions
        self.cookie = f"{COOKIE}_{secrets.token_hex(4)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(send)
        request = Request(scope)
        if not is_loopback_host(request.headers.get("host", "")):
            await _refuse("this page answers to 127.0.0.1 and localhost only")(scope, receive, send)
            return
        offered = request.query_params.get(TOKEN_PARAMETER)
        if offered is not None:
            await self._open_session(request, offered)(scope, receive, send)
            return
        session = self.sessions.get(request.cookies.get(self.cookie))
        if session is None:
            await _refuse(
                "no session: open the address that `access-audit serve` printed when it started"
            )(scope, receive, send)
            return
        scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, send)

    def _open_session(self, request: Request, offered: str) -> Any:
        if not secrets.compare_digest(offered.encode(), self.token.encode()):
            return _refuse("wrong token: open the address `access-audit serve` printed")
        session = self.sessions.open()
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_PARAMETER]
        # the path as sent (a flag id's `%2D` stays encoded), never `//host` (another site)
        path = "/" + quote(request.scope["path"], safe="/").lstrip("/")
        target = path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            self.cookie, session.session_id, httponly=True, samesite="strict", path="/"
        )
        return response


def _refuse(why: str) -> PlainTextResponse:
    return PlainTextResponse(f"forbidden: {why}\n", status_code=403)


def _with_security_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                headers[name] = value
        await send(message)

    return sending
