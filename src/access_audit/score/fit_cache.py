"""The models' fits, kept beside the flags and found again by what they fitted.

A peer group's robust centre and spread (score/patterns.py, score/robust.py) are the costliest
step of scoring, about a third of a full re-score, and a pure function of one small matrix: each
peer's shares of the pattern features over an anchor day's look-back. Re-scoring a day whose
look-back did not change (every night re-scores `reexplain_days`; `score` re-scores every day)
fits exactly the same matrices again. So each fit is stored under a key, the SHA-256 of the
matrix's shape and bytes and of the versions of the code and libraries that compute it, and a fit
whose key is stored is read back instead of computed. Equal keys mean equal inputs, so centres,
spreads and flags are bitwise those of a fresh fit (tests/test_fit_cache.py); any change to a
peer's counts, to the role pooling or to scikit-learn, NumPy or SciPy makes a new key, and the
fit is computed again.

``pattern_fits`` holds, per day, the fits of the models fitted on that day's own look-back (an
anchor day's, score/anchors.py), rewritten whenever the day is scored, in the same transaction as
its flags; a stale row is never wrong, only unused. Like every stored table it is covered by the
generation's manifest, so a fit edited on disk is a damaged store, not a quietly changed centre.

The collaborative groups (score/mined.py: a similarity self-join and label propagation over the
anchor's look-back, a sixth of a re-score) are kept the same way in ``collaborative_fits``, keyed
by the SHA-256 of the settings and of the sorted set of (user, record) pairs they are computed
from, which is all they read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from importlib.metadata import version
from typing import Any

import numpy as np
import polars as pl

from access_audit.tables import StoredTable, register

FIT_VERSION = "mcd-fit-1"
"""Bumped whenever what a fit computes from its matrix changes (score/robust.py)."""
GROUPS_VERSION = "collaborative-groups-1"
"""Bumped whenever how the groups are computed from their pairs changes (score/mined.py)."""
OPENED = ["user_id", "record_type", "record_id"]

FITS = register(
    StoredTable(
        "pattern_fits",
        lambda: pl.Schema(
            {
                "key": pl.String(),
                "location": pl.List(pl.Float64()),
                "covariance": pl.List(pl.Float64()),
            }
        ),
        partition_by="day",
        partition_dtype=pl.Date(),
        description="The pattern model's MinCovDet fits of each anchor day's look-back, by the "
        "SHA-256 of the matrix fitted (null location: the fit failed; the centre is the median).",
    )
)

GROUP_FITS = register(
    StoredTable(
        "collaborative_fits",
        lambda: pl.Schema(
            {
                "key": pl.String(),
                "user_id": pl.String(),
                "group": pl.String(),
                "members": pl.UInt32(),
            }
        ),
        partition_by="day",
        partition_dtype=pl.Date(),
        description="The collaborative groups of each anchor day's look-back, by the SHA-256 of "
        "the settings and (user, record) pairs they were computed from (one row with no user: "
        "no group).",
    )
)

Fit = tuple[np.ndarray, np.ndarray]
Fitter = Callable[[np.ndarray], Fit]
GroupFinder = Callable[[pl.LazyFrame, dict[str, Any]], pl.DataFrame]


@cache
def _libraries() -> bytes:
    names = ("scikit-learn", "numpy", "scipy")
    return "|".join([FIT_VERSION, *(f"{n}={version(n)}" for n in names)]).encode()


def fit_key(matrix: np.ndarray) -> str:
    """What identifies a fit: the matrix (dtype, shape, bytes) and the code that fits it."""
    data = np.ascontiguousarray(matrix, dtype=np.float64)
    digest = hashlib.sha256(_libraries())
    digest.update(repr(data.shape).encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def groups_key(opened: pl.DataFrame, settings: dict[str, Any]) -> str:
    """What identifies a look-back's collaborative groups: the settings and the sorted set of
    (user, record) pairs, each column as its null mask, its values' byte lengths and their bytes
    (so no id can run into the next; Arrow IPC bytes are not canonical)."""
    digest = hashlib.sha256(f"{GROUPS_VERSION}|polars={version('polars')}|".encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(f"|{opened.height}|".encode())
    for name in OPENED:
        column = opened.get_column(name).cast(pl.String)
        digest.update(column.is_null().to_numpy().tobytes())
        digest.update(column.str.len_bytes().fill_null(0).cast(pl.UInt64).to_numpy().tobytes())
        digest.update(str(column.fill_null("").str.join("").item()).encode())
    return digest.hexdigest()


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=FITS.schema())


class FitCache:
    """Fits by key: those read from the store, and those computed since. `fit` returns a matrix's
    fit, computing it with `fitter` when its key is unknown, and raises ValueError when the fit
    does (a failed fit is remembered too); `rows` are the stored form of the fits asked for."""

    def __init__(
        self, stored: pl.DataFrame | None = None, stored_groups: pl.DataFrame | None = None
    ) -> None:
        self._known: dict[str, Fit | None] = {}
        if stored is not None:
            columns = [stored[name].to_list() for name in FITS.schema().names()]
            for key, location, covariance in zip(*columns, strict=True):
                self._known[key] = _from_row(location, covariance)
        self._groups: dict[str, pl.DataFrame] = {}
        if stored_groups is not None:
            for (key,), frame in stored_groups.partition_by("key", as_dict=True).items():
                # a look-back with no group is kept as one row with no user
                real = frame.filter(pl.col("user_id").is_not_null())
                self._groups[str(key)] = _sorted_groups(real)
        self.hits = 0
        self.misses = 0

    def groups(
        self, lookups: pl.LazyFrame, settings: dict[str, Any], finder: GroupFinder
    ) -> tuple[str, pl.DataFrame]:
        """The key of the collaborative groups of `lookups` and the groups (user_id, group,
        members), found with `finder` when the key is unknown."""
        opened = lookups.select(OPENED).unique().sort(OPENED).collect()
        key = groups_key(opened, settings)
        if key in self._groups:
            self.hits += 1
        else:
            self.misses += 1
            self._groups[key] = _sorted_groups(finder(opened.lazy(), settings))
        return key, self._groups[key]

    def group_rows(self, keys: list[str]) -> pl.DataFrame:
        """The stored rows of the groups of those of `keys` that are groups' keys."""
        wanted = sorted({k for k in keys if k in self._groups})
        schema = GROUP_FITS.schema()
        nothing = pl.DataFrame({name: [None] for name in schema.names()}, schema=schema)
        frames = [
            (self._groups[k] if self._groups[k].height else nothing)
            .with_columns(key=pl.lit(k))
            .select(schema.names())
            .cast(schema)
            for k in wanted
        ]
        return pl.concat(frames) if frames else pl.DataFrame(schema=schema)

    def fit(self, matrix: np.ndarray, fitter: Fitter) -> tuple[str, Fit | None]:
        """The key of `matrix` and its fit (None when fitting raised ValueError)."""
        key = fit_key(matrix)
        if key in self._known:
            self.hits += 1
            return key, self._known[key]
        self.misses += 1
        try:
            found: Fit | None = fitter(matrix)
        except ValueError:
            found = None
        self._known[key] = found
        return key, found

    def rows(self, keys: list[str]) -> pl.DataFrame:
        """The stored rows of the fits of those of `keys` that are fits' keys (each once, in key
        order)."""
        wanted = sorted({k for k in keys if k in self._known})
        if not wanted:
            return _empty()
        locations, covariances = [], []
        for key in wanted:
            found = self._known[key]
            locations.append(None if found is None else [float(v) for v in found[0]])
            covariances.append(None if found is None else [float(v) for v in found[1].ravel()])
        return pl.DataFrame(
            {"key": wanted, "location": locations, "covariance": covariances},
            schema=FITS.schema(),
        )


def _sorted_groups(frame: pl.DataFrame) -> pl.DataFrame:
    """Groups in one order, whether found now or read back."""
    return frame.select("user_id", "group", "members").sort("user_id", "group")


def _from_row(location: list[float] | None, covariance: list[float] | None) -> Fit | None:
    if location is None or covariance is None:
        return None
    centre = np.asarray(location, dtype=np.float64)
    size = len(centre)
    return centre, np.asarray(covariance, dtype=np.float64).reshape(size, size)
