"""The append-only, hash-chained logs (access_audit.ledger) on their own."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from access_audit.integrity import GENESIS
from access_audit.ledger import Ledger, verify_ledger


def filled(tmp_path: Path, count: int = 4) -> Ledger:
    ledger = Ledger(tmp_path / "audit" / "log.jsonl", "reviews")
    ledger.append([{"n": i, "note": f"line {i}"} for i in range(1, count + 1)])
    return ledger


def lines(ledger: Ledger) -> list[bytes]:
    return ledger.path.read_bytes().splitlines(keepends=True)


def test_appends_chain_line_by_line_owner_only(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 2)
    head = ledger.append([{"n": 3}])
    entries = [json.loads(line) for line in lines(ledger)]
    assert [e["n"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev"] == GENESIS
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    check = verify_ledger(ledger.path, "reviews")
    assert check.ok and check.items == 3 and check.head == head == entries[-1]["hash"]
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600


def test_a_missing_log_is_an_empty_valid_chain(tmp_path: Path) -> None:
    check = verify_ledger(tmp_path / "none.jsonl", "flag_views")
    assert check.ok and check.items == 0 and check.head is None


@pytest.mark.parametrize(
    ("damage", "line", "words"),
    [
        ("delete_first", 1, "does not start the chain"),
        ("delete_middle", 2, "does not follow"),
        ("edit", 3, "edited"),
        ("swap", 2, "does not follow"),
        ("insert", 3, "does not follow"),
    ],
)
def test_verify_names_the_first_broken_line(
    tmp_path: Path, damage: str, line: int, words: str
) -> None:
    ledger = filled(tmp_path)
    content = lines(ledger)
    if damage == "delete_first":
        del content[0]
    elif damage == "delete_middle":
        del content[1]
    elif damage == "edit":
        content[2] = content[2].replace(b"line 3", b"line 9")
    elif damage == "swap":
        content[1], content[2] = content[2], content[1]
    else:
        content.insert(2, content[1])
    ledger.path.write_bytes(b"".join(content))
    check = ledger.verify()
    assert not check.ok
    assert check.problem is not None and check.problem.startswith(f"log.jsonl line {line}: ")
    assert words in check.problem
    assert check.items == line - 1


def test_a_torn_last_line_is_ignored_reported_then_quarantined(tmp_path: Path) -> None:
    ledger = filled(tmp_path, 3)
    whole = ledger.path.read_bytes()
    torn = whole[:-7]  # the last line loses its end and its newline, as after a full disk
    ledger.path.write_bytes(torn)
    fragment = torn[torn.rfind(b"\n") + 1 :]
    assert ledger.complete_bytes() == whole[: whole.rfind(b"\n", 0, -1) + 1]
    check = ledger.verify()
    assert not check.ok and check.items == 2
    assert check.problem is not None and "line 3: unterminated" in check.problem

    ledger.append([{"n": 4}])
    after = [json.loads(line) for line in lines(ledger)]
    assert [e.get("n") for e in after] == [1, 2, None, 4]
    assert after[2]["repair"] == "torn_line" and after[2]["bytes"] == len(fragment)
    assert ledger.verify().ok and ledger.verify().items == 4
    kept = json.loads(ledger.quarantine_path.read_text())
    assert base64.b64decode(kept["fragment_base64"]) == fragment
    assert stat.S_IMODE(ledger.quarantine_path.stat().st_mode) == 0o600


def test_legacy_unchained_log_is_chained_in_order(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "views.jsonl", "flag_views")
    ledger.path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3, "tor\n{"a": 4}\n')
    with ledger.locked():
        assert ledger.rechain_legacy() == 3
        assert ledger.rechain_legacy() == 0
    assert [json.loads(line)["a"] for line in lines(ledger)] == [1, 2, 4]
    assert ledger.verify().ok
    assert b'"tor' in base64.b64decode(
        json.loads(ledger.quarantine_path.read_text())["fragment_base64"]
    )


APPENDER = """
import sys
from pathlib import Path
from access_audit.ledger import Ledger
ledger = Ledger(Path(sys.argv[1]), "reviews")
for i in range(int(sys.argv[3])):
    ledger.append([{"writer": sys.argv[2], "i": i}])
"""


def test_concurrent_appenders_keep_one_unbroken_chain(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    writers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(w), "25"])
        for w in range(4)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    check = verify_ledger(path, "reviews")
    assert check.ok and check.items == 100


def test_a_batch_a_full_disk_cuts_short_is_recorded_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case's six decisions are one append: a disk that fills after three of them used to
    leave three recorded and a torn fourth; the log is now cut back to where the append began."""
    import errno
    import os

    from access_audit import ledger as module

    ledger = filled(tmp_path, 2)
    before = ledger.path.read_bytes()
    real_write = os.write

    def fills_up(handle: int, data: bytes | memoryview) -> int:
        if len(data) > 200:
            return real_write(handle, bytes(data)[:150])  # part of the batch lands
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(module.os, "write", fills_up)
    with pytest.raises(OSError, match="No space left"):
        ledger.append([{"n": n, "note": "x" * 40} for n in range(3, 9)])
    monkeypatch.undo()
    assert ledger.path.read_bytes() == before
    ledger.append([{"n": 3}])
    assert verify_ledger(ledger.path, "reviews").ok
