"""The models log: which learned models ``access-audit learn`` wrote, their SHA-256, and which
one is in use, in a hash-chained ledger (``audit/models.jsonl``) beside the review log.

A model re-scores every flag, so a hand-written ``models/learned-v1.json`` (coefficients that zero
every score) or an edit to a learned one would silence every alert while the store's manifests
all check out. ``learn`` records each model it writes (``learned``) and ``learn --retire`` records
going back to the rules (``retired``); ``verify`` and the jobs that score compare the ``models/``
folder with the log and refuse a model file the log does not record, one whose bytes changed, or a
``models/CURRENT`` that names another model than the log's last word.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from access_audit.integrity import file_sha256
from access_audit.ledger import REPAIR_FIELD, Ledger, utc_text
from access_audit.manifest import printable
from access_audit.review.log import AUDIT_FOLDER, operating_account

MODELS_LOG = "models.jsonl"
MODELS_FOLDER = "models"
POINTER = "CURRENT"


def models_ledger(home: Path) -> Ledger:
    return Ledger(home / AUDIT_FOLDER / MODELS_LOG, "models")


def record_learned(ledger: Ledger, version: str, path: Path) -> None:
    """Chain a ``learned`` line: this model file, with its SHA-256, is now the one in use."""
    ledger.append([_record("learned", version, file_sha256(path))])


def record_retired(ledger: Ledger, version: str | None) -> None:
    """Chain a ``retired`` line: no learned model is in use from now on."""
    ledger.append([_record("retired", version, None)])


def _record(event: str, version: str | None, sha256: str | None) -> dict[str, Any]:
    return {
        "event": event,
        "version": version,
        "sha256": sha256,
        "recorded_at": utc_text(datetime.now(UTC)),
        "account": operating_account(),
    }


def _logged(ledger: Ledger) -> tuple[dict[str, str], str | None]:
    """Every model the log records (version -> SHA-256) and the one in use (None: the rules)."""
    recorded: dict[str, str] = {}
    in_use: str | None = None
    for raw in ledger.complete_bytes().splitlines():
        entry = json.loads(raw)
        if REPAIR_FIELD in entry:
            continue
        if entry.get("event") == "learned":
            recorded[str(entry["version"])] = str(entry["sha256"])
            in_use = str(entry["version"])
        elif entry.get("event") == "retired":
            in_use = None
    return recorded, in_use


def model_problem(home: Path) -> str | None:
    """One line naming the first thing in ``models/`` that the models log does not vouch for;
    None when every model file is recorded unchanged and ``CURRENT`` names the log's model.
    Call only on a log whose chain checks out (``verify_ledger``)."""
    folder = home / MODELS_FOLDER
    recorded, in_use = _logged(models_ledger(home))
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink() or not folder.is_dir():
        return f"{MODELS_FOLDER}: not a folder (a symbolic link or a file)"
    how = f"the models log ({AUDIT_FOLDER}/{MODELS_LOG})"
    pointer: str | None = None
    with os.scandir(folder) as entries:
        names = sorted((entry.name, entry) for entry in entries)
    for name, entry in names:
        shown = f"{MODELS_FOLDER}/{printable(name)}"
        if name.startswith("."):
            continue  # a temporary file of a write cut short
        if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
            return f"{shown}: not a regular file"
        if name == POINTER:
            pointer = Path(entry.path).read_text(encoding="utf-8").strip() or None
            continue
        version = name.removesuffix(".json")
        if version not in recorded or not name.endswith(".json"):
            return f"{shown}: not recorded in {how}; only `access-audit learn` writes models"
        if file_sha256(Path(entry.path)) != recorded[version]:
            return (
                f"{shown}: changed since `access-audit learn` wrote it (SHA-256 differs from {how})"
            )
    if in_use is not None and not (folder / f"{in_use}.json").is_file():
        return f"{MODELS_FOLDER}/{in_use}.json: missing ({how} says it is in use)"
    if pointer != in_use:
        named = printable(pointer) if pointer is not None else "no model"
        logged = in_use if in_use is not None else "no model (the rules alone)"
        return f"{MODELS_FOLDER}/{POINTER}: names {named}, but {how} says {logged}"
    return None
