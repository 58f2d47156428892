"""The two ledgers of a home, kept apart from the store's generations: analysts' decisions
(``audit/reviews.jsonl``) and who was shown which flags (``audit/flag_views.jsonl``).

Decisions are not derived data: the nightly job rebuilds the stores, never these. Each is a
hash-chained log (``access_audit.ledger``); this module says what a line holds, reads the review
log back as the typed ``reviews`` frame (``tables.REVIEWS``) and imports what the previous version
kept elsewhere (reviews in the store's ``reviews`` table, an unchained view log).
"""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import os
import pwd
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from access_audit.errors import AccessAuditError
from access_audit.ledger import Ledger, canonical_json, utc_text
from access_audit.store import Generation
from access_audit.tables import REVIEWS

AUDIT_FOLDER = "audit"
REVIEWS_LOG = "reviews.jsonl"
VIEWS_LOG = "flag_views.jsonl"
MIGRATED_MARKER = ".ledgers-migrated"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"
"""How the ledgers write timestamps (Polars' spelling of ``ledger.utc_text``)."""
_TIMESTAMPS = ("reviewed_at", "suppress_until")


def reviews_ledger(home: Path) -> Ledger:
    return Ledger(home / AUDIT_FOLDER / REVIEWS_LOG, "reviews")


def views_ledger(home: Path) -> Ledger:
    return Ledger(home / AUDIT_FOLDER / VIEWS_LOG, "flag_views")


def operating_account() -> dict[str, Any]:
    """Who is running this process as the system knows it: the uid, and its login name from the
    password database (``LOGNAME``/``USER``, which ``getpass`` reads, can be set to anything)."""
    uid = os.getuid()
    try:
        login: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        login = None
    return {"uid": uid, "login": login}


def review_records(rows: pl.DataFrame) -> list[dict[str, Any]]:
    """Review rows (``tables.REVIEWS``) as ledger records, with the account that recorded them."""
    account = operating_account()
    return rows.with_columns(
        pl.col(*_TIMESTAMPS).dt.strftime(TIMESTAMP_FORMAT),
        recorded_uid=pl.lit(account["uid"], dtype=pl.Int64),
        recorded_login=pl.lit(account["login"], dtype=pl.String),
    ).to_dicts()


def read_reviews(log: bytes) -> pl.LazyFrame:
    """The review history from a review log's complete lines, typed as ``tables.REVIEWS``
    (repair lines and chain fields left out)."""
    schema = REVIEWS.schema()
    try:
        raw = pl.read_ndjson(io.BytesIO(log), schema=dict.fromkeys(schema.names(), pl.String()))
    except pl.exceptions.PolarsError:
        raise AccessAuditError(
            f"{REVIEWS_LOG} has a line that is not JSON: `access-audit verify` names it"
        ) from None
    return (
        raw.lazy()
        .filter(pl.col("review_id").is_not_null())
        .with_columns(
            pl.col(*_TIMESTAMPS).str.to_datetime(
                TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False
            )
        )
        .cast(schema)  # type: ignore[arg-type]
    )


def view_record(
    command: str, flag_ids: Sequence[str], subjects: Sequence[str], now: datetime
) -> dict[str, Any]:
    """One line of the view log: ids only, never names."""
    return {
        "viewed_at": utc_text(now),
        "viewer": _login_name(),
        **operating_account(),
        "command": command,
        "flag_ids": list(flag_ids),
        "subject_ids": sorted({s for s in subjects if s}),
    }


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# -- homes made by the previous version ----------------------------------------------------------
def migrate_ledgers(home: Path, generation: Generation | None) -> bool:
    """Bring a home's decisions into the ledgers once: import the store's ``reviews`` rows (each
    once, even if a crash interrupted an earlier import) and chain an unchained view log. Creates
    both logs. True if this home had not been migrated yet (its database needs rebuilding)."""
    marker = home / AUDIT_FOLDER / MIGRATED_MARKER
    if marker.exists():
        return False
    reviews, views = reviews_ledger(home), views_ledger(home)
    with reviews.locked():
        if marker.exists():
            return False
        imported = _import_store_reviews(reviews, generation)
        with views.locked():
            chained = views.rechain_legacy()
            views.create_holding_lock()
        reviews.create_holding_lock()
        _write_marker(marker, {"reviews_imported": imported, "views_chained": chained})
    return True


def _import_store_reviews(ledger: Ledger, generation: Generation | None) -> int:
    """Append the store's review rows not yet in the ledger (call under the ledger's lock)."""
    legacy = _store_reviews(generation)
    if legacy.is_empty() or generation is None:
        return 0
    records = review_records(legacy.cast(REVIEWS.schema()))  # type: ignore[arg-type]
    present = _imported_keys(ledger.complete_bytes())
    seen: Counter[str] = Counter()
    missing = []
    for record in records:  # one-off import; each row needs its own key
        record.update(recorded_uid=None, recorded_login=None)
        digest = hashlib.sha256(canonical_json(record)).hexdigest()[:32]
        seen[digest] += 1
        key = f"{digest}#{seen[digest]}"
        if key not in present:
            missing.append({**record, "migrated_from": generation.path.name, "legacy_key": key})
    if missing:
        ledger.append_holding_lock(missing)
    return len(missing)


def _store_reviews(generation: Generation | None) -> pl.DataFrame:
    if generation is None:
        return pl.DataFrame(schema=REVIEWS.schema())
    folder = generation.path / "reviews"
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        return pl.DataFrame(schema=REVIEWS.schema())
    return (
        pl.scan_parquet(files, schema=REVIEWS.schema())
        .sort("reviewed_at", "review_id", nulls_last=True)
        .collect()
    )


def _imported_keys(log: bytes) -> set[str]:
    try:
        keys = pl.read_ndjson(io.BytesIO(log), schema={"legacy_key": pl.String()})
    except pl.exceptions.PolarsError:
        raise AccessAuditError(
            f"{REVIEWS_LOG} has a line that is not JSON: `access-audit verify` names it"
        ) from None
    return set(keys["legacy_key"].drop_nulls().to_list())


def _write_marker(marker: Path, counts: Mapping[str, int]) -> None:
    record = {"migrated_at": datetime.now(UTC).isoformat(), **counts}
    temporary = marker.with_name(f".{marker.name}.tmp")
    temporary.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, marker)
