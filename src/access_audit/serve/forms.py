"""A form posted to the review page is accepted only from the page itself.

Two independent checks, both before the form is read for its values:

- its Origin (or, if a browser sent none, its Referer's origin) must be this server, exactly as
  the (already checked) Host header names it: another site's page cannot post here;
- its hidden ``csrf`` field must hold the session's CSRF token, which only a page this server
  rendered for that session contains.

A failed check is 403 and nothing is recorded.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from access_audit.errors import AccessAuditError, InputError, failure_line, one_line
from access_audit.serve.guard import session_of

CSRF_FIELD = "csrf"
MAX_FIELDS = 20
FORM_LABELS = {
    "status": "Status",
    "outcome": "Outcome",
    "purpose": "Purpose",
    "note": "Note",
    "to": "To",
    "due": "Due",
    "since": "Accesses since",
    "until": "Until",
}
"""The inputs the library's checks name (``InputError``), as the pages' forms label them."""


def posted_from(request: Request) -> str | None:
    """The origin a POST came from: its Origin header, else its Referer's scheme and host."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


async def checked_form(request: Request) -> FormData:
    """The posted form, once it has passed the origin and CSRF checks (else 403)."""
    expected = f"http://{request.headers.get('host', '')}".lower()
    origin = posted_from(request)
    if origin is None or origin.lower() != expected:
        raise HTTPException(403, "forbidden: this form is accepted only from this page")
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    offered = form.get(CSRF_FIELD)
    if not isinstance(offered, str) or not secrets.compare_digest(
        offered.encode(), session_of(request).csrf.encode()
    ):
        raise HTTPException(403, "forbidden: the form's CSRF token is missing or wrong; reload it")
    return form


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_error(exc: AccessAuditError) -> str:
    """A refusal as the page says it, in one line: an input is named by its label on the form
    (``Due``), never by the command line's option (``--due``)."""
    if isinstance(exc, InputError):
        return one_line(exc.worded(FORM_LABELS))
    return failure_line(exc)
