"""`access-audit serve`, through Starlette's TestClient: who may use the page (start token, session
cookie, Host), the review form's CSRF and origin checks, escaping, the view log, and that the
queue and the form go through the same library calls as `flag` and `review`."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import polars as pl
import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from access_audit.cli import app as cli_app
from access_audit.review.timelines import flag_timelines
from access_audit.serve.app import create_app
from access_audit.serve.flags import flag_url
from access_audit.serve.guard import COOKIE, is_loopback_host
from access_audit.serve.server import bind
from access_audit.workspace import Workspace
from serve_support import (
    BASE,
    ORIGIN,
    csrf_of,
    hostile_home,
    opened_client,
    review_count,
    serve_client,
    serve_views,
    served_force,
)


def _first_flag(client: TestClient) -> str:
    page = client.get("/flags", params={"view": "flags"}).text
    return unquote(re.findall(r'class="flag-link" href="/flags/([^"]+)"', page)[0])


@pytest.fixture(scope="module")
def force(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return served_force(tmp_path_factory.mktemp("serve"))


@pytest.fixture
def client(force: Workspace) -> TestClient:
    return opened_client(force)


# -- who may use it ------------------------------------------------------------------------------
def test_without_the_token_every_request_is_403(force: Workspace) -> None:
    client, token = serve_client(force)
    before = review_count(force)
    flag_id = _any_flag_id(force)
    for path in ("/", "/flags", "/static/desk.css", flag_url(flag_id)):
        assert client.get(path).status_code == 403, path
    decision = {"status": "under_review", "note": "n"}
    assert client.post(flag_url(flag_id), data=decision, headers=ORIGIN).status_code == 403
    wrong = client.get(f"/?token={token[:-1]}x")
    assert wrong.status_code == 403 and COOKIE not in wrong.headers.get("set-cookie", "")
    opened, opened_token = serve_client(force)
    assert opened.get(f"/?token={token}").status_code == 403  # another server's token
    name = opened.get(f"/?token={opened_token}").headers["set-cookie"].split("=")[0]
    assert name.startswith(COOKIE)
    forged = client.get("/flags", headers={"cookie": f"{name}=made-up"})
    assert forged.status_code == 403
    assert review_count(force) == before


def _any_flag_id(workspace: Workspace) -> str:
    return str(workspace.flags(limit=1)["flag_id"][0])


def test_the_token_opens_a_strict_httponly_session_and_leaves_the_address(
    force: Workspace,
) -> None:
    client, token = serve_client(force)
    opened = client.get(f"/flags?view=flags&token={token}")
    assert opened.status_code == 303
    assert opened.headers["location"] == "/flags?view=flags"  # the token is not kept in it
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert token not in cookie  # the session id is not the start token
    page = client.get("/flags?view=flags")
    assert page.status_code == 200 and "Review queue" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy  # no script runs
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    "host", ["evil.example:8765", "127.0.0.1.evil.example:8765", "localhost.evil.example"]
)
def test_a_foreign_host_header_is_refused_dns_rebinding(force: Workspace, host: str) -> None:
    client, token = serve_client(force, base_url=f"http://{host}")
    refused = client.get(f"/?token={token}")
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    # a session opened on 127.0.0.1 is refused too once the Host header is foreign
    local, local_token = serve_client(force)
    assert local.get(f"/?token={local_token}").status_code == 303
    assert local.get("/flags", headers={"host": host}).status_code == 403
    assert local.get("/flags").status_code == 200


def test_loopback_hosts() -> None:
    assert is_loopback_host("127.0.0.1:8765") and is_loopback_host("LOCALHOST")
    assert not is_loopback_host("127.0.0.2:8765") and not is_loopback_host("")
    assert not is_loopback_host("localhost:8765@evil.example")


def test_the_server_listens_on_loopback_only_and_says_when_the_port_is_taken(
    force: Workspace,
) -> None:
    with bind(0) as listener:
        address, port = listener.getsockname()
        assert address == "127.0.0.1"
        result = CliRunner().invoke(
            cli_app, ["serve", "--port", str(port), "--home", str(force.home)]
        )
    assert result.exit_code == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr


# -- the form ------------------------------------------------------------------------------------
def test_a_post_without_this_sessions_csrf_token_is_refused_and_records_nothing(
    force: Workspace, client: TestClient
) -> None:
    flag_id = _first_flag(client)
    other, other_token = serve_client(force)
    assert other.get(f"/?token={other_token}").status_code == 303
    others_csrf = csrf_of(other.get(flag_url(flag_id)).text)
    before = review_count(force)
    decision = {"status": "under_review", "outcome": "", "purpose": "", "note": "checking"}
    for csrf in (None, "", "not-the-token", others_csrf):
        data = decision if csrf is None else {**decision, "csrf": csrf}
        refused = client.post(flag_url(flag_id), data=data, headers=ORIGIN)
        assert refused.status_code == 403, csrf
    assert review_count(force) == before


def test_a_post_from_another_origin_is_refused(force: Workspace, client: TestClient) -> None:
    flag_id = _first_flag(client)
    csrf = csrf_of(client.get(flag_url(flag_id)).text)
    decision = {"csrf": csrf, "status": "under_review", "note": "checking the call log"}
    before = review_count(force)
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:9999"},
        {"referer": "http://evil.example/page"},
        {},
    ):
        assert client.post(flag_url(flag_id), data=decision, headers=headers).status_code == 403
    assert review_count(force) == before
    # a browser that sends only a Referer from this page is accepted
    accepted = client.post(
        flag_url(flag_id), data=decision, headers={"referer": f"{BASE}{flag_url(flag_id)}"}
    )
    assert accepted.status_code == 303
    assert review_count(force) == before + 1


def test_the_form_records_through_review_then_redirects(
    force: Workspace, client: TestClient
) -> None:
    flag_id = _first_flag(client)
    csrf = csrf_of(client.get(flag_url(flag_id)).text)
    note = "confirmed with the duty inspector"
    posted = client.post(
        flag_url(flag_id),
        data={
            "csrf": csrf,
            "status": "closed",
            "outcome": "legitimate_purpose",
            "purpose": "tasked by control room",
            "note": note,
        },
        headers=ORIGIN,
    )
    assert posted.status_code == 303
    location = posted.headers["location"]
    assert location.startswith(flag_url(flag_id) + "?recorded=R")
    shown = client.get(location)
    assert "recorded." in shown.text and "tasked by control room" in shown.text
    queue = force.flags(min_score=0, status="closed")
    row = queue.filter(pl.col("flag_id") == flag_id).row(0, named=True)
    assert (row["outcome"], row["review_note"]) == ("legitimate_purpose", note)
    history = force.flag_detail(flag_id)
    assert history is not None
    assert history.reviews["purpose"].to_list()[-1] == "tasked by control room"


def test_a_refused_decision_shows_why_keeps_what_was_typed_and_records_nothing(
    force: Workspace, client: TestClient
) -> None:
    flag_id = _first_flag(client)
    csrf = csrf_of(client.get(flag_url(flag_id)).text)
    before = review_count(force)
    refused = client.post(
        flag_url(flag_id),
        data={"csrf": csrf, "status": "closed", "outcome": "legitimate_purpose", "note": "typed"},
        headers=ORIGIN,
    )
    assert refused.status_code == 400
    assert "legitimate_purpose needs Purpose" in refused.text
    assert ">typed</textarea>" in refused.text
    unknown = client.post(
        "/flags/F20990101-nobody-P1",
        data={"csrf": csrf, "status": "open", "note": "n"},
        headers=ORIGIN,
    )
    assert unknown.status_code == 404
    assert review_count(force) == before


def _error_line(page: str) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', page)
    assert found, "the page shows no error"
    return found.group(1)


@pytest.mark.parametrize(
    ("decision", "said"),
    [
        ({"status": "done", "note": "n"}, "Status must be one of open, under_review, closed"),
        ({"status": "open", "outcome": "sacked", "note": "n"}, "Outcome must be one of"),
        (
            {"status": "open", "outcome": "dismissed", "note": "n"},
            "an outcome is recorded when closing: Status must be closed",
        ),
        ({"status": "closed", "note": "n"}, "closing a flag needs an Outcome"),
        (
            {"status": "open", "purpose": "p", "note": "n"},
            "Purpose goes only with Outcome legitimate_purpose",
        ),
        ({"status": "open", "note": " "}, "Note must say why"),
    ],
)
def test_a_refused_decision_names_the_form_fields_not_the_cli_options(
    client: TestClient, decision: dict[str, str], said: str
) -> None:
    """Regression: the form's errors quoted `--purpose`, `--note`, ... to a browser user."""
    flag_id = _first_flag(client)
    csrf = csrf_of(client.get(flag_url(flag_id)).text)
    refused = client.post(flag_url(flag_id), data={"csrf": csrf, **decision}, headers=ORIGIN)
    assert refused.status_code == 400
    line = _error_line(refused.text)
    assert said in line and "--" not in line


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"since": "someday"}, "Accesses since: &#39;someday&#39; is not today"),
        ({"until": "soon"}, "Until: &#39;soon&#39; is not today"),
        ({"since": "today", "until": "yesterday"}, "Until must be later than Accesses since"),
        ({"status": "done"}, "Status must be one of"),
    ],
)
def test_bad_queue_filters_name_the_form_fields(
    client: TestClient, query: dict[str, str], said: str
) -> None:
    refused = client.get("/flags", params=query)
    assert refused.status_code == 400
    line = _error_line(refused.text)
    assert said in line and "--" not in line


# -- the pages -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    [
        {},
        {"min_score": "0"},
        {"min_score": "0", "status": "open"},
        {"min_score": "30", "limit": "3"},
        {"min_score": "0", "since": "2026-10-13", "until": "2026-10-14"},
    ],
)
def test_the_queue_holds_what_flag_selects(
    force: Workspace, client: TestClient, query: dict[str, str]
) -> None:
    page = client.get("/flags", params={"limit": "2000", **query, "view": "flags"})
    assert page.status_code == 200
    shown = [unquote(i) for i in re.findall(r'class="flag-link" href="/flags/([^"]+)"', page.text)]
    result = CliRunner().invoke(
        cli_app,
        [
            "--home", str(force.home), "flag", "--format", "json",
            *[f"--{k.replace('_', '-')}={v}" for k, v in query.items()],
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert shown == [f["flag_id"] for f in json.loads(result.stdout)]


def test_the_user_filter_and_the_grouped_queue(force: Workspace, client: TestClient) -> None:
    everything = force.flags(min_score=0)
    user = everything["user_id"].drop_nulls().mode().sort()[0]
    query = {"min_score": "0", "limit": "2000"}
    page = client.get("/flags", params={**query, "user": user, "view": "flags"}).text
    shown = {unquote(i) for i in re.findall(r'class="flag-link" href="/flags/([^"]+)"', page)}
    assert shown == set(everything.filter(pl.col("user_id") == user)["flag_id"])
    grouped = client.get("/flags", params=query).text
    ids = [unquote(i) for i in re.findall(r'class="flag-link" href="/flags/([^"]+)"', grouped)]
    assert sorted(ids) == sorted(everything["flag_id"])  # the same flags, grouped into entries
    assert "&#8627;" in grouped or "↳" in grouped  # some entry holds more than one flag


def test_bad_filters_and_unknown_flags_are_one_line_errors(client: TestClient) -> None:
    bad = client.get("/flags", params={"since": "someday"})
    assert bad.status_code == 400 and "Accesses since: &#39;someday&#39; is not today" in bad.text
    assert client.get("/flags", params={"min_score": "101"}).status_code == 400
    assert client.get("/flags", params={"status": "done"}).status_code == 400
    missing = client.get("/flags/F20990101-nobody-P1")
    assert missing.status_code == 404 and "no flag with id F20990101-nobody-P1" in missing.text


def test_a_flag_page_shows_reasons_evidence_and_both_timelines(
    force: Workspace, client: TestClient
) -> None:
    flag_id = _first_flag(client)
    detail = force.flag_detail(flag_id)
    assert detail is not None
    page = client.get(flag_url(flag_id)).text
    for reason in detail.flag["reasons"]:
        assert reason["code"] in page
    for event_id in detail.events["event_id"]:
        assert event_id in page
    assert 'id="user-timeline"' in page and 'id="subject-timeline"' in page
    assert page.count("<svg") == 2
    assert f"everything {detail.flag['user_id']} opened" in page


def test_every_page_shown_is_in_the_view_log(force: Workspace, client: TestClient) -> None:
    before = len(serve_views(force))
    page = client.get("/flags", params={"min_score": "0", "view": "flags", "limit": "5"}).text
    shown = [unquote(i) for i in re.findall(r'class="flag-link" href="/flags/([^"]+)"', page)]
    client.get(flag_url(shown[0]))
    views = serve_views(force)[before:]
    assert [v["flag_ids"] for v in views] == [shown, [shown[0]]]
    detail = force.flag_detail(shown[0])
    assert detail is not None and detail.flag["subject_id"] in views[1]["subject_ids"]  # type: ignore[operator]


# -- hostile values ------------------------------------------------------------------------------
DASHED_USER = "PC-12"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return hostile_home(tmp_path_factory.mktemp("hostile-serve"), DASHED_USER, "12-P77")


def test_hostile_ids_and_notes_are_escaped(hostile: Workspace) -> None:
    client, token = serve_client(hostile)
    client.get(f"/?token={token}")
    queue = client.get("/flags", params={"min_score": "0", "view": "flags"}).text
    assert "<img" not in queue and "<script" not in queue
    assert "&lt;img src=x onerror=&#34;document.title=1&#34;&gt;" in queue
    links = re.findall(r'class="flag-link" href="(/flags/[^"]+)"', queue)
    assert len(links) == 2
    for link in links:  # an id with `%2D`, quotes or `/` reaches its own page
        page = client.get(link)
        assert page.status_code == 200, link
        assert "<script" not in page.text and "<img" not in page.text
    dashed = next(f for f in hostile.flags(min_score=0)["flag_id"] if "%2D" in f)
    assert client.get(flag_url(dashed)).status_code == 200
    hostile_flag = next(f for f in hostile.flags(min_score=0)["flag_id"] if "%2D" not in f)
    page = client.get(flag_url(hostile_flag)).text
    note = "</textarea><script>document.title='owned'</script>"
    posted = client.post(
        flag_url(hostile_flag),
        data={"csrf": csrf_of(page), "status": "under_review", "note": note},
        headers=ORIGIN,
    )
    assert posted.status_code == 303
    shown = client.get(posted.headers["location"]).text
    assert "<script" not in shown and "</textarea><" not in shown
    assert "&lt;/textarea&gt;&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in shown
    # only a review id is echoed: anything else (markup, or a spoofed "CLOSED by Supt Smith")
    # shows no banner at all
    recorded = client.get(f"{flag_url(hostile_flag)}?recorded=<b>x</b>").text
    assert (
        "<b>x" not in recorded and "&lt;b&gt;x" not in recorded and 'id="recorded"' not in recorded
    )
    spoofed = client.get(f"{flag_url(hostile_flag)}?recorded=R1%20-%20CLOSED%20by%20Supt").text
    assert "Supt" not in spoofed


# -- timelines -----------------------------------------------------------------------------------
def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_timelines_hold_the_users_accesses_and_the_subjects_visitors_in_the_window() -> None:
    rows = [  # (event, user, record, when)
        ("E1", "U1", "P1", "2026-11-21T10:00:00"),  # the flag's access
        ("E2", "U1", "P2", "2026-11-20T09:00:00"),  # the user elsewhere, the day before
        ("E3", "U2", "P1", "2026-11-22T09:00:00"),  # someone else on the subject
        ("E4", "U1", "P3", "2026-11-01T09:00:00"),  # outside the window
        ("E5", "U3", "P9", "2026-11-21T11:00:00"),  # neither
    ]
    events = pl.LazyFrame(
        {
            "system": ["RMS"] * 5,
            "event_id": [r[0] for r in rows],
            "user_id": [r[1] for r in rows],
            "record_type": ["person"] * 5,
            "record_id": [r[2] for r in rows],
            "action": ["view"] * 5,
            "occurred_at": [_at(r[3]) for r in rows],
        }
    ).with_columns(
        pl.col("occurred_at").dt.cast_time_unit("us"), day=pl.col("occurred_at").dt.date()
    )
    explanations = pl.LazyFrame(
        {"system": ["RMS"], "event_id": ["E3"], "day": [_at("2026-11-22T00:00:00").date()]}
    )
    flag_events = pl.LazyFrame({"flag_id": ["F1"], "system": ["RMS"], "event_id": ["E1"]})
    flag = {
        "flag_id": "F1",
        "user_id": "U1",
        "subject_type": "person",
        "subject_id": "P1",
        "first_access_at": _at("2026-11-21T10:00:00"),
        "last_access_at": _at("2026-11-21T10:00:00"),
    }
    timelines = flag_timelines(flag, events, explanations, flag_events)
    assert timelines.user.select("event_id", "explained", "in_flag").rows() == [
        ("E2", False, False),
        ("E1", False, True),
    ]
    assert timelines.subject.select("event_id", "user_id", "explained", "in_flag").rows() == [
        ("E1", "U1", False, True),
        ("E3", "U2", True, False),
    ]
    gap = {**flag, "user_id": None, "first_access_at": None, "last_access_at": None}
    empty = flag_timelines(gap, events, explanations, flag_events)
    assert empty.user.is_empty() and empty.subject.is_empty() and empty.start is None


def test_serve_and_flag_user_have_help(tmp_path: Path) -> None:
    shown = CliRunner().invoke(cli_app, ["serve", "--help"])
    assert shown.exit_code == 0 and "127.0.0.1" in shown.stdout and "--port" in shown.stdout
    flag_help = CliRunner().invoke(cli_app, ["flag", "--help"])
    assert "--user" in flag_help.stdout


def test_decisions_are_by_the_reviewer_given_to_serve(force: Workspace) -> None:
    app, token = create_app(force, reviewer="jsmith")
    client = TestClient(app, base_url=BASE, follow_redirects=False)
    client.get(f"/?token={token}")
    flag_id = _first_flag(client)
    csrf = csrf_of(client.get(flag_url(flag_id)).text)
    decision = {"csrf": csrf, "status": "under_review", "note": "pulling the call recording"}
    assert client.post(flag_url(flag_id), data=decision, headers=ORIGIN).status_code == 303
    detail = force.flag_detail(flag_id)
    assert detail is not None and detail.reviews["reviewer"].to_list()[-1] == "jsmith"


def test_a_bug_shows_one_line_and_keeps_its_traceback_in_the_home(
    force: Workspace, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(flag_id: str) -> None:
        raise ValueError("Jane Victim, 1 High Street")  # a message may quote personal data

    monkeypatch.setattr(force, "flag_detail", broken)
    page = client.get(flag_url("F20261013-U1-P1"))
    assert page.status_code == 500
    assert "Jane" not in page.text and "internal error (ValueError)" in page.text
    kept = Path(re.findall(r"traceback is in (\S+?\.traceback\.txt)", page.text)[0])
    assert kept.parent == force.runs_dir and "Jane Victim" in kept.read_text()
