"""`access-audit serve`'s case pages, through Starlette's TestClient: the case list holds what
`case list` selects, a case page shows its flags, evidence, timelines and history, its assign and
review forms record through ``Workspace.cases`` (as `case assign` and `case review` do) behind the
same session, origin and CSRF checks as a flag's form, hostile ids are escaped, and every page shown
is in the view log."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from access_audit.cli import app as cli_app
from access_audit.serve.cases import case_url
from access_audit.serve.flags import flag_url
from access_audit.workspace import Workspace
from serve_support import (
    ORIGIN,
    csrf_of,
    hostile_home,
    opened_client,
    review_count,
    serve_client,
    serve_views,
    served_force,
)

CASE_LINK = re.compile(r'class="case-link" href="(/cases/[^"]+)"')


def _case_ids(page: str) -> list[str]:
    return [unquote(link.removeprefix("/cases/")) for link in CASE_LINK.findall(page)]


def _cli(workspace: Workspace, *args: str) -> Any:
    result = CliRunner().invoke(cli_app, [*args, "--home", str(workspace.home)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _case_log_lines(workspace: Workspace) -> int:
    path = workspace.cases.ledger.path
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def _some_case(workspace: Workspace, *, flags: int = 1) -> str:
    """An open case with at least ``flags`` flags."""
    cases = workspace.cases.select(status="open")
    return str(cases.filter(cases["flags"] >= flags)["case_id"][0])


@pytest.fixture(scope="module")
def force(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return served_force(tmp_path_factory.mktemp("serve-cases"))


@pytest.fixture
def client(force: Workspace) -> TestClient:
    return opened_client(force)


# -- who may use it ------------------------------------------------------------------------------
def test_without_a_session_every_case_page_and_form_is_403(force: Workspace) -> None:
    client, _token = serve_client(force)
    case_id = _some_case(force)
    before = (_case_log_lines(force), review_count(force))
    for path in ("/cases", case_url(case_id), "/cases?status=open"):
        assert client.get(path).status_code == 403, path
    for action, data in (
        ("assign", {"assignee": "a1"}),
        ("review", {"status": "closed", "outcome": "no_case_to_answer", "note": "n"}),
    ):
        assert client.post(case_url(case_id, action), data=data, headers=ORIGIN).status_code == 403
    assert (_case_log_lines(force), review_count(force)) == before


def test_a_case_form_without_this_sessions_csrf_or_from_elsewhere_is_refused(
    force: Workspace, client: TestClient
) -> None:
    case_id = _some_case(force)
    other, other_token = serve_client(force)
    assert other.get(f"/?token={other_token}").status_code == 303
    others_csrf = csrf_of(other.get(case_url(case_id)).text)
    csrf = csrf_of(client.get(case_url(case_id)).text)
    before = (_case_log_lines(force), review_count(force))
    forms = {
        "assign": {"assignee": "a1", "due": "", "note": ""},
        "review": {"status": "under_review", "outcome": "", "purpose": "", "note": "checking"},
    }
    for action, data in forms.items():
        for token in (None, "", "not-the-token", others_csrf):
            posted = data if token is None else {**data, "csrf": token}
            refused = client.post(case_url(case_id, action), data=posted, headers=ORIGIN)
            assert refused.status_code == 403, (action, token)
        for headers in ({"origin": "http://evil.example"}, {"origin": "null"}, {}):
            refused = client.post(
                case_url(case_id, action), data={**data, "csrf": csrf}, headers=headers
            )
            assert refused.status_code == 403, (action, headers)
    assert (_case_log_lines(force), review_count(force)) == before


# -- the pages -----------------------------------------------------------------------------------
def test_the_case_list_holds_what_case_list_selects(force: Workspace, client: TestClient) -> None:
    open_cases = force.cases.select(status="open")["case_id"].to_list()
    overdue = date.today() - timedelta(days=3)  # as if assigned a week before
    force.cases.assign(open_cases[0], "analyst7", due=overdue, today=overdue - timedelta(days=4))
    force.cases.assign(open_cases[1], "analyst7", due=date.today() + timedelta(days=30))
    for query, options in (
        ({}, []),
        ({"status": "open"}, ["--status", "open"]),
        ({"status": "closed"}, ["--status", "closed"]),
        ({"assignee": "analyst7"}, ["--assignee", "analyst7"]),
        ({"overdue": "1"}, ["--overdue"]),
        ({"limit": "2"}, ["--limit", "2"]),
    ):
        page = client.get("/cases", params=query)
        assert page.status_code == 200, query
        expected = [c["case_id"] for c in _cli(force, "case", "list", "--format", "json", *options)]
        assert _case_ids(page.text) == expected, query
    assert _case_ids(client.get("/cases", params={"overdue": "1"}).text) == [open_cases[0]]
    assert "overdue" in client.get("/cases", params={"assignee": "analyst7"}).text
    assert client.get("/cases", params={"status": "done"}).status_code == 400
    assert client.get("/cases", params={"limit": "0"}).status_code == 400


def test_a_case_page_shows_its_flags_evidence_timelines_and_history(
    force: Workspace, client: TestClient
) -> None:
    case_id = _some_case(force, flags=2)
    force.cases.assign(case_id, "analyst9", due=date(2026, 12, 24), note="look at the calls")
    detail = force.cases.detail(case_id)
    page = client.get(case_url(case_id))
    assert page.status_code == 200
    text = page.text
    for flag in detail.flags.to_dicts():
        assert f'href="{flag_url(flag["flag_id"])}"' in text
        for reason in flag["reasons"]:
            assert reason["code"] in text
    for event_id in force.held_accesses(detail.flags["flag_id"].to_list())["event_id"]:
        assert event_id in text
    assert 'id="user-timeline"' in text and 'id="subject-timeline"' in text
    assert text.count("<svg") == 2
    assert "analyst9, due 2026-12-24" in text and "look at the calls" in text  # the history
    assert f"Record on {detail.flags.height} flag(s)" in text


def test_queue_and_flag_pages_link_to_their_case(force: Workspace, client: TestClient) -> None:
    queue = client.get("/flags", params={"view": "flags"}).text
    flag_ids = [unquote(f) for f in re.findall(r'class="flag-link" href="/flags/([^"]+)"', queue)]
    members = dict(force.cases.members().select("flag_id", "case_id").collect().rows())
    assert _case_ids(queue) == [members[f] for f in flag_ids]  # every alert is in a case
    flag_page = client.get(flag_url(flag_ids[0])).text
    assert _case_ids(flag_page) == [members[flag_ids[0]]]
    assert client.get(case_url(members[flag_ids[0]])).status_code == 200


def test_unknown_cases_and_forms_are_404(force: Workspace, client: TestClient) -> None:
    missing = client.get(case_url("C20990101-nobody-person:P1"))
    assert missing.status_code == 404 and "no case C20990101-nobody-person:P1" in missing.text
    case_id = _some_case(force)
    assert client.get(case_url(case_id, "assign")).status_code == 404
    csrf = csrf_of(client.get(case_url(case_id)).text)
    before = _case_log_lines(force)
    posted = client.post(case_url(case_id, "delete"), data={"csrf": csrf}, headers=ORIGIN)
    assert posted.status_code == 404
    unknown = client.post(
        case_url("C20990101-nobody-person:P1", "assign"),
        data={"csrf": csrf, "assignee": "a1"},
        headers=ORIGIN,
    )
    assert unknown.status_code == 404
    assert _case_log_lines(force) == before


# -- the forms -----------------------------------------------------------------------------------
def test_the_assign_form_records_through_case_assign_then_redirects(force: Workspace) -> None:
    client, token = serve_client(force, reviewer="lead1")
    client.get(f"/?token={token}")
    case_id = _some_case(force)
    csrf = csrf_of(client.get(case_url(case_id)).text)
    due = str(date.today() + timedelta(days=24))
    posted = client.post(
        case_url(case_id, "assign"),
        data={"csrf": csrf, "assignee": " analyst3 ", "due": due, "note": "urgent"},
        headers=ORIGIN,
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == f"{case_url(case_id)}?recorded=assignment"
    shown = _cli(force, "case", "show", case_id, "--format", "json")
    assert (shown["assignee"], shown["due"]) == ("analyst3", due)
    last = shown["history"][-1]
    assert (last["action"], last["analyst"], last["note"]) == ("assign", "lead1", "urgent")
    page = client.get(posted.headers["location"]).text
    assert "Assignment recorded." in page and f"analyst3, due {due}" in page


def test_a_refused_assignment_shows_why_keeps_what_was_typed_and_records_nothing(
    force: Workspace, client: TestClient
) -> None:
    case_id = _some_case(force)
    csrf = csrf_of(client.get(case_url(case_id)).text)
    before = _case_log_lines(force)
    for data, why in (
        ({"assignee": "a1", "due": "next week", "note": "typed"}, "Due must be a date"),
        ({"assignee": "  ", "due": "", "note": "typed"}, "To must name the analyst"),
        (
            {"assignee": "a1", "due": str(date.today() - timedelta(days=2)), "note": "typed"},
            f"Due {date.today() - timedelta(days=2)} is in the past",
        ),
    ):
        refused = client.post(
            case_url(case_id, "assign"), data={"csrf": csrf, **data}, headers=ORIGIN
        )
        assert refused.status_code == 400
        assert why in refused.text and ">typed</textarea>" in refused.text
        error = re.search(r'<p class="error" role="alert">([^<]*)</p>', refused.text)
        assert error and "--" not in error.group(1)  # the form's labels, not the CLI's options
    assert _case_log_lines(force) == before


def test_the_review_form_decides_every_flag_of_the_case_as_case_review_does(
    force: Workspace, client: TestClient
) -> None:
    case_id = _some_case(force, flags=2)
    flag_ids = force.cases.detail(case_id).flags["flag_id"].to_list()
    csrf = csrf_of(client.get(case_url(case_id)).text)
    note = "called the control room: tasked to the address"
    posted = client.post(
        case_url(case_id, "review"),
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
    assert posted.headers["location"] == f"{case_url(case_id)}?recorded=decision"
    shown = _cli(force, "case", "show", case_id, "--format", "json")
    assert (shown["status"], shown["outcome"], shown["note"]) == (
        "closed",
        "legitimate_purpose",
        note,
    )
    assert sorted(shown["history"][-1]["flag_ids"]) == sorted(flag_ids)
    flags = {f["flag_id"]: f for f in _cli(force, "flag", "--format", "json", "--min-score", "0")}
    for flag_id in flag_ids:
        assert (flags[flag_id]["status"], flags[flag_id]["outcome"]) == (
            "closed",
            "legitimate_purpose",
        )
        assert flags[flag_id]["review_note"] == note
    page = client.get(posted.headers["location"]).text
    assert "Decision recorded on every flag of the case." in page
    assert 'id="case-status">closed (legitimate_purpose)' in page


def test_a_refused_case_decision_records_nothing(force: Workspace, client: TestClient) -> None:
    case_id = _some_case(force)
    csrf = csrf_of(client.get(case_url(case_id)).text)
    before = (_case_log_lines(force), review_count(force))
    refused = client.post(
        case_url(case_id, "review"),
        data={"csrf": csrf, "status": "closed", "outcome": "legitimate_purpose", "note": "typed"},
        headers=ORIGIN,
    )
    assert refused.status_code == 400
    assert "legitimate_purpose needs Purpose" in refused.text
    assert ">typed</textarea>" in refused.text
    assert (_case_log_lines(force), review_count(force)) == before


def test_every_case_page_shown_is_in_the_view_log(force: Workspace, client: TestClient) -> None:
    before = len(serve_views(force))
    listed = client.get("/cases", params={"limit": "3"}).text
    case_ids = _case_ids(listed)
    client.get(case_url(case_ids[0]))
    views = serve_views(force)[before:]
    cases = force.cases.select(limit=3)
    assert [v["flag_ids"] for v in views] == [
        cases["flag_ids"].explode().to_list(),
        force.cases.detail(case_ids[0]).flags["flag_id"].to_list(),
    ]
    assert cases["subject_id"][0] in views[1]["subject_ids"]


# -- hostile values ------------------------------------------------------------------------------
SLASHED_USER = "PC/12-a"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return hostile_home(tmp_path_factory.mktemp("hostile-cases"), SLASHED_USER, "12/P77")


def test_hostile_case_ids_and_notes_are_escaped(hostile: Workspace, tmp_path: Path) -> None:
    client, token = serve_client(hostile)
    client.get(f"/?token={token}")
    listed = client.get("/cases").text
    assert "<img" not in listed and "<script" not in listed
    case_ids = _case_ids(listed)
    assert sorted(case_ids) == sorted(hostile.cases.select()["case_id"])
    assert any("/" in c for c in case_ids)  # a `/` in an id does not split its address
    for case_id in case_ids:
        page = client.get(case_url(case_id))
        assert page.status_code == 200, case_id
        assert "<img" not in page.text and "<script" not in page.text
    target = next(c for c in case_ids if "/" in c)
    csrf = csrf_of(client.get(case_url(target)).text)
    note = "</textarea><script>document.title='owned'</script>"
    posted = client.post(
        case_url(target, "review"),
        data={"csrf": csrf, "status": "under_review", "note": note},
        headers=ORIGIN,
    )
    assert posted.status_code == 303
    assigned = client.post(
        case_url(target, "assign"),
        data={"csrf": csrf, "assignee": "<b>a</b>", "note": note},
        headers=ORIGIN,
    )
    assert assigned.status_code == 303
    shown = client.get(assigned.headers["location"]).text
    assert "<script" not in shown and "</textarea><" not in shown and "<b>a" not in shown
    assert "&lt;/textarea&gt;&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in shown
    assert "&lt;b&gt;a&lt;/b&gt;, due" in shown
    assert hostile.cases.detail(target).case["assignee"] == "<b>a</b>"
    reflected = client.get(f"{case_url(target)}?recorded=<b>x</b>").text
    assert "<b>x" not in reflected and "&lt;b&gt;x" not in reflected  # not echoed at all
