"""The review page in a real browser: `access-audit serve` started as a subprocess over a small
generated force, driven by Debian's chromium through chromium-driver and selenium (`make browser`
installs both). Load the queue, open a flag, record a decision, then find it in
`access-audit flag --format json`; a `<script>` in a note is shown as text, never run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from access_audit.generate import generate_force
from access_audit.workspace import Workspace

ACCESS_AUDIT = Path(sys.executable).with_name("access-audit")
NOTE = "called the control room <script>document.title='owned'</script> & found nothing"


@dataclass(frozen=True)
class Served:
    home: Path
    url: str
    """The address `serve` printed, start token included."""

    @property
    def root(self) -> str:
        return self.url.split("/?", 1)[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("browser")
    made = generate_force(root / "drops", staff=60, days=4, seed=2)
    workspace = Workspace.open(root / "home")
    assert workspace.nightly(made.drops).ok
    errors = root / "serve.stderr"
    with errors.open("w") as stderr:
        server = subprocess.Popen(
            [str(ACCESS_AUDIT), "serve", "--port", "0", "--home", str(workspace.home)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert server.stdout is not None
    try:
        line = server.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+", line)
        assert found, f"serve printed no address: {line!r} {errors.read_text()}"
        yield Served(workspace.home, found.group())
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
    assert not errors.read_text(), errors.read_text()  # nothing logged: no traceback, no ids


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    assert chromium and driver, "chromium and chromium-driver are needed: run `make browser`"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def _flag_json(home: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [str(ACCESS_AUDIT), "flag", "--format", "json", "--min-score", "0", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(done.stdout))


def test_without_the_token_the_server_answers_403(served: Served) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{served.root}/flags", timeout=30)
    assert refused.value.code == 403
    refused.value.close()


def test_queue_flag_and_decision_in_a_real_browser(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(served.url)
    assert browser.current_url == f"{served.root}/flags"  # the token is gone from the address
    assert browser.title.startswith("Review queue")
    rows = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    assert rows, "the queue is empty"
    link = browser.find_element(By.CSS_SELECTOR, "#queue a.flag-link")
    flag_id = link.text
    link.click()
    shown = WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "flag-id"))
    )
    assert shown.text == flag_id
    assert browser.find_elements(By.CSS_SELECTOR, "#evidence tbody tr")
    assert browser.find_elements(By.CSS_SELECTOR, "#user-timeline svg circle")
    assert browser.find_elements(By.CSS_SELECTOR, "#subject-timeline svg circle")
    title = browser.title

    Select(browser.find_element(By.ID, "review-status")).select_by_value("closed")
    Select(browser.find_element(By.ID, "review-outcome")).select_by_value("no_case_to_answer")
    browser.find_element(By.ID, "review-note").send_keys(NOTE)
    browser.find_element(By.ID, "review-submit").click()

    recorded = WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "recorded"))
    )
    assert "recorded" in recorded.text
    assert "?recorded=R" in browser.current_url  # redirected after the POST
    assert browser.find_element(By.ID, "status").text == "closed (no_case_to_answer)"
    notes = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#reviews td.note")]
    assert notes[-1] == NOTE  # the script is shown as text …
    assert browser.title == title != "owned"  # … and did not run
    assert not browser.find_elements(By.CSS_SELECTOR, "main script")

    decided = {f["flag_id"]: f for f in _flag_json(served.home)}[flag_id]
    assert (decided["status"], decided["outcome"], decided["review_note"]) == (
        "closed",
        "no_case_to_answer",
        NOTE,
    )
    views = served.home / "audit" / "flag_views.jsonl"
    shown = [json.loads(line) for line in views.read_text(encoding="utf-8").splitlines()]
    assert [flag_id] in [v["flag_ids"] for v in shown if v.get("command") == "serve"]
