"""The review page in a real browser: `access-audit serve` started as a subprocess over a small
generated force, driven by Debian's chromium through chromium-driver and selenium (`make browser`
installs both). Load the queue, open a flag (and, in the second test, a case), record a decision,
then find it in `access-audit flag --format json` (and `case show --format json`); a `<script>` in
a note is shown as text, never run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from access_audit.generate import generate_force
from access_audit.serve.cases import case_url
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


def _json(home: Path, *args: str) -> Any:
    done = subprocess.run(
        [str(ACCESS_AUDIT), *args, "--format", "json", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def _flag_json(home: Path) -> list[dict[str, object]]:
    return list(_json(home, "flag", "--min-score", "0"))


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


def test_queue_case_and_decision_on_every_flag_in_a_real_browser(
    served: Served, browser: webdriver.Chrome
) -> None:
    browser.get(f"{served.root}/flags?view=flags&min_score=0&limit=2000")
    rows = browser.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    in_case = [
        (row.find_element(By.CSS_SELECTOR, "a.flag-link").text, found[0].text)
        for row in rows
        if (found := row.find_elements(By.CSS_SELECTOR, "a.case-link"))
    ]
    assert in_case, "the queue links no case"
    # the case with the most flags in the queue
    case_id, _count = Counter(case for _flag, case in in_case).most_common(1)[0]
    browser.find_element(By.CSS_SELECTOR, f'#queue a.case-link[href="{case_url(case_id)}"]').click()
    shown = WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "case-id"))
    )
    assert shown.text == case_id
    case_flags = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#case-flags a.flag-link")]
    assert sorted(case_flags) == sorted(flag for flag, case in in_case if case == case_id)
    assert len(case_flags) >= 2  # one decision, several flags
    assert browser.find_elements(By.CSS_SELECTOR, "#evidence tbody tr")
    assert browser.find_elements(By.CSS_SELECTOR, "#user-timeline svg circle")
    title = browser.title

    Select(browser.find_element(By.ID, "review-status")).select_by_value("closed")
    Select(browser.find_element(By.ID, "review-outcome")).select_by_value("written_warning")
    browser.find_element(By.ID, "review-note").send_keys(NOTE)
    browser.find_element(By.ID, "review-submit").click()

    recorded = WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.ID, "recorded"))
    )
    assert "Decision recorded on every flag" in recorded.text
    assert browser.current_url.endswith("?recorded=decision")  # redirected after the POST
    assert browser.find_element(By.ID, "case-status").text == "closed (written_warning)"
    assert browser.find_element(By.ID, "case-note").text == NOTE  # the script is shown …
    history = browser.find_elements(By.CSS_SELECTOR, "#case-history td.note")
    assert history[-1].text == NOTE
    assert browser.title == title != "owned"  # … and did not run
    assert not browser.find_elements(By.CSS_SELECTOR, "main script")
    statuses = browser.find_elements(By.CSS_SELECTOR, "#case-flags td.flag-status")
    assert [s.text for s in statuses] == ["closed (written_warning)"] * len(case_flags)

    flags = {f["flag_id"]: f for f in _flag_json(served.home)}
    for flag_id in case_flags:  # every flag of the case carries the decision
        decided = flags[flag_id]
        assert (decided["status"], decided["outcome"], decided["review_note"]) == (
            "closed",
            "written_warning",
            NOTE,
        )
    case = _json(served.home, "case", "show", case_id)
    assert (case["status"], case["outcome"], case["note"]) == ("closed", "written_warning", NOTE)
    assert sorted(case["history"][-1]["flag_ids"]) == sorted(case_flags)
    views = served.home / "audit" / "flag_views.jsonl"
    seen = [json.loads(line) for line in views.read_text(encoding="utf-8").splitlines()]
    assert sorted(case_flags) in [sorted(v["flag_ids"]) for v in seen if v["command"] == "serve"]
