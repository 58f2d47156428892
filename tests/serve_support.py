"""What the `serve` tests share (tests/test_serve.py, tests/test_serve_cases.py): a served force,
a client that opened its session, a home of hostile ids, and readers of what a page recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from access_audit.generate import generate_force
from access_audit.serve.app import create_app
from access_audit.workspace import Workspace
from conftest import event, write_table

BASE = "http://127.0.0.1:8765"
ORIGIN = {"origin": BASE}
HOSTILE_USER = '<img src=x onerror="document.title=1">'
HOSTILE_RECORD = "P1\"'><script>document.title='owned'</script>"
HOSTILE_DAY = "2026-11-21"


def served_force(root: Path) -> Workspace:
    """A small synthetic force (60 staff, 4 days), its nightly run done, in ``root``."""
    made = generate_force(root / "drops", staff=60, days=4, seed=2)
    workspace = Workspace.open(root / "home")
    assert workspace.nightly(made.drops).ok
    return workspace


def hostile_home(root: Path, odd_user: str, odd_record: str) -> Workspace:
    """A home whose user and subject ids are markup and script (three accesses, one flag), and
    whose ``odd_user`` looked up ``odd_record`` (ids holding ``-`` or ``/``)."""
    drop = root / "drops" / HOSTILE_DAY
    day = HOSTILE_DAY
    accesses = [
        event(f"E{i}", f"{day}T0{i}:00:00Z", user_id=HOSTILE_USER, record_id=HOSTILE_RECORD)
        for i in range(1, 4)
    ]
    accesses += [event("E9", f"{day}T09:00:00Z", user_id=odd_user, record_id=odd_record)]
    write_table(drop, "access_log", accesses)
    write_table(
        drop, "staff", [{"user_id": HOSTILE_USER, "surname": "S", "role": "r", "team_id": "T"}]
    )
    home = root / "home"
    home.mkdir()
    (home / "access-audit.toml").write_text("[scoring]\nalert_threshold = 10\n")
    workspace = Workspace.open(home)
    assert workspace.nightly([drop]).ok
    return workspace


def serve_client(
    workspace: Workspace, *, reviewer: str | None = None, base_url: str = BASE
) -> tuple[TestClient, str]:
    """A client of a new review page on ``workspace`` (no session yet), and its start token."""
    app, token = create_app(workspace, reviewer=reviewer)
    return TestClient(app, base_url=base_url, follow_redirects=False), token


def opened_client(workspace: Workspace) -> TestClient:
    """A client whose session is open (it used the start token)."""
    client, token = serve_client(workspace)
    assert client.get(f"/?token={token}").status_code == 303
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def review_count(workspace: Workspace) -> int:
    return workspace.scan("reviews").collect().height


def serve_views(workspace: Workspace) -> list[dict[str, Any]]:
    """The view log's entries the review page wrote."""
    lines = workspace.views_ledger.path.read_text(encoding="utf-8").splitlines()
    return [v for v in map(json.loads, lines) if v.get("command") == "serve"]
