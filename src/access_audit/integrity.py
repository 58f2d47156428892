"""Hash chains: the shared vocabulary of the tamper-evident store and the append-only logs.

Each link's hash covers the previous link's hash and the link's own bytes, as in git and
Certificate Transparency, so changing, removing or reordering any earlier link changes every later
hash. The store's generation manifests (``store.py``) and the review and view logs are chains of
this kind; ``access-audit verify`` walks each one and reports a ``ChainCheck``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

GENESIS = "0" * 64
"""The 'previous hash' of a chain's first link."""


@dataclass(frozen=True)
class ChainCheck:
    """The result of walking one chain: where it ends, or the first place it is broken."""

    name: str
    """Which chain: ``store``, ``reviews``, ``flag_views``."""
    ok: bool
    items: int
    """Links walked (generations, or log lines)."""
    head: str | None
    """Hex SHA-256 of the last good link; None for an empty chain."""
    problem: str | None = None
    """One line naming the first broken file or line; never personal data."""


def link_hash(previous: str, payload: bytes) -> str:
    """The hash of one link: SHA-256 over the previous link's hex hash, a newline, the payload."""
    digest = hashlib.sha256()
    digest.update(previous.encode("ascii"))
    digest.update(b"\n")
    digest.update(payload)
    return digest.hexdigest()


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
