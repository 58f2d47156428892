"""The one object behind the CLI, the nightly pipeline, the notebooks and the tests: a home folder.

A home holds the Parquet stores (``store/``, in generations), the run log (``runs/``), the
analysts' decisions and the view log (``audit/``, hash-chained ledgers kept apart from the
generations), the analysts' DuckDB database (``access-audit.duckdb``) and an optional
``access-audit.toml``.
Everything in it is created owner-only: the stores hold victims' names.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from access_audit.errors import (
    AccessAuditError,
    CommittedButIncompleteError,
    StorageError,
    UnknownDropError,
    failure_line,
    one_line,
    storage_problem,
    write_traceback,
)
from access_audit.guarded_writes import owner_only, require_intact
from access_audit.guarded_writes import writing as _writing
from access_audit.integrity import ChainCheck
from access_audit.store import Generation, Store, StoreDamagedError, Transaction, new_run_id

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from access_audit.config import Config
    from access_audit.evaluate import Evaluation
    from access_audit.evidence import EvidencePack
    from access_audit.ingest import Drop, DropIngest, ProgressCallback
    from access_audit.integrity import ChainCheck
    from access_audit.ledger import Ledger
    from access_audit.report import Report
    from access_audit.review import Review
    from access_audit.review.casework import CaseDesk
    from access_audit.review.detail import EventDetail, FlagDetail
    from access_audit.review.learn import LearnedModel, ModelStore
    from access_audit.review.timelines import Timelines
    from access_audit.score.rules import Rules
    from access_audit.score.run import ChunkScorer, ScoreReport

_LOG = logging.getLogger("access_audit")
HOME_ENV = "ACCESS_AUDIT_HOME"
RUNS_FOLDER = "runs"
DEFAULT_HOME = Path("access-audit-data")


def resolve_home(home: Path | str | None) -> Path:
    """``--home``, else ``$ACCESS_AUDIT_HOME``, else ``./access-audit-data``."""
    if home is not None and str(home) != "":
        return Path(home).expanduser().absolute()
    from_env = os.environ.get(HOME_ENV, "")
    if from_env:
        return Path(from_env).expanduser().absolute()
    return DEFAULT_HOME.absolute()


@dataclass
class DropFailure:
    drop: str
    error: str


@dataclass
class IngestReport:
    """Every drop of one ``ingest`` call: those loaded and those that failed (loading nothing)."""

    loaded: list[DropIngest] = field(default_factory=list)
    failed: list[DropFailure] = field(default_factory=list)
    generation: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class NightlyReport:
    ingest: IngestReport
    score: ScoreReport | None = None

    @property
    def ok(self) -> bool:
        return self.ingest.ok


@dataclass(frozen=True)
class TableCount:
    table: str
    rows: int


@dataclass(frozen=True)
class VerifyReport:
    """Every chain of a home, walked by ``verify``."""

    checks: list[ChainCheck]
    notes: list[str]
    current: int | None
    """The generation whose head the store's check reports."""
    quick: bool
    files_read: int
    bytes_read: int
    seconds: float

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


@dataclass(frozen=True)
class WorkspaceStatus:
    home: Path
    generation: int | None
    tables: list[TableCount]
    last_runs: list[dict[str, Any]]
    database: Path


class Workspace:
    """A home folder: configuration, stores, run log and the analysts' DuckDB database."""

    def __init__(self, home: Path, config: Config | None = None):
        from access_audit.config import load_config

        self.home = home
        self.config = config if config is not None else load_config(home)
        key = self.config.store.signing_key
        if key is not None:
            key = key if key.is_absolute() else home / key
            if key.resolve().is_relative_to(home.resolve()):
                raise AccessAuditError(
                    f"[store] signing_key {key} is inside the home: keep it where the home's "
                    "writers cannot read it"
                )
        self.store = Store(
            home / "store",
            keep_generations=self.config.store.keep_generations,
            lock_timeout=self.config.store.lock_timeout_seconds,
            keep_hours=self.config.store.keep_hours,
            signing_key=key,
        )
        self._ledgers_migrated = False

    @classmethod
    def open(cls, home: Path | str | None = None, *, create: bool = True) -> Workspace:
        path = resolve_home(home)
        from access_audit.catalog import check_home_path

        check_home_path(path)
        if path.exists() and not path.is_dir():
            raise AccessAuditError(f"{path}: the home must be a folder")
        if not path.exists():
            if not create:
                raise AccessAuditError(
                    f"{path}: no access-audit home here (load drops first: `access-audit "
                    "--home HOME nightly DROP…`, or `make demo` for a synthetic one)"
                )
            with owner_only():
                path.mkdir(parents=True, mode=0o700, exist_ok=True)
        workspace = cls(path)
        workspace._rebuild_catalog_if_moved()
        return workspace

    def _rebuild_catalog_if_moved(self) -> None:
        """A home moved or restored elsewhere keeps a database whose views read the old place
        (or, for a copy, the original's rows): rebuild it here before anyone reads it."""
        from access_audit.catalog import built_for

        if not self.database_path.exists() or built_for(self.home) == str(self.home):
            return
        try:
            self.refresh_catalog()
        except (AccessAuditError, OSError) as exc:  # a read-only copy: say so, answer anyway
            _LOG.warning(
                "the analysts' database was built for another home: %s", one_line(str(exc))
            )

    # -- paths ---------------------------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.home / RUNS_FOLDER

    @property
    def database_path(self) -> Path:
        from access_audit.catalog import DATABASE_NAME

        return self.home / DATABASE_NAME

    # -- reading -------------------------------------------------------------------------------
    def generation(self) -> Generation | None:
        return self.store.current()

    def scan(self, table: str) -> pl.LazyFrame:
        """A stored table of the current generation (typed and empty if nothing is loaded), or
        ``reviews``: the review history, read from its ledger (``tables.REVIEWS``)."""
        from access_audit.tables import scan_stored, stored_table

        if table == "reviews":
            return self._scan_reviews()
        stored_table(table)
        current = self.generation()
        if current is None:
            import polars as pl

            return pl.LazyFrame(schema=stored_table(table).full_schema())
        return scan_stored(current.path, table)

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """The analysts' database; built first if it is missing or behind the stores."""
        import duckdb

        if not self.database_path.exists() or self._catalog_is_stale():
            self.refresh_catalog()
        return duckdb.connect(str(self.database_path), read_only=read_only)

    def runs(self) -> list[dict[str, Any]]:
        if not self.runs_dir.exists():
            return []
        records = [json.loads(p.read_text(encoding="utf-8")) for p in self.runs_dir.glob("*.json")]
        return sorted(records, key=lambda r: str(r.get("started_at", "")))

    def status(self, last_runs: int = 5) -> WorkspaceStatus:
        from access_audit.tables import stored_tables

        counts = [
            TableCount(t.name, int(self.scan(t.name).select(_len()).collect().item()))
            for t in stored_tables()
        ]
        counts.append(TableCount("reviews", self._scan_reviews().collect().height))
        current = self.generation()
        return WorkspaceStatus(
            home=self.home,
            generation=current.number if current else None,
            tables=counts,
            last_runs=self.runs()[-last_runs:],
            database=self.database_path,
        )

    def rejected_rows(self, drop_id: str | None = None, limit: int | None = None) -> pl.DataFrame:
        import polars as pl

        frame = self.scan("rejected_rows")
        if drop_id is not None:
            loaded = self.scan("loaded_files").select(pl.col("drop_id").unique().sort()).collect()
            if drop_id not in loaded["drop_id"]:
                raise UnknownDropError(drop_id, loaded["drop_id"].to_list())
            frame = frame.filter(pl.col("drop_id") == drop_id)
        frame = frame.sort("drop_id", "source_file", "source_line", "column")
        if limit is not None:
            frame = frame.head(limit)
        return frame.collect()

    # -- integrity -----------------------------------------------------------------------------
    def verify(
        self,
        quick: bool = False,
        published_head: str | None = None,
        public_key: Path | None = None,
    ) -> VerifyReport:
        """Walk every hash chain of the home: the store's generations (each manifest, and each
        file re-hashed, or with ``quick`` only its size and row count), then the logs'. With
        ``published_head`` (``g000012:<hex>``), that generation's head must match it; with
        ``public_key``, the current head must be signed with its private key."""
        started = time.monotonic()
        store = self.store.verify("quick" if quick else "full", public_key)
        if published_head is not None:
            store = store.compared_with(published_head)
        checks = [store.check, *self._with_models(self.verify_ledgers())]
        return VerifyReport(
            checks=checks,
            notes=[store.note] if store.note else [],
            current=max(store.heads, default=None),
            quick=quick,
            files_read=store.files_read,
            bytes_read=store.bytes_read,
            seconds=time.monotonic() - started,
        )

    def _with_models(self, checks: list[ChainCheck]) -> list[ChainCheck]:
        """The ledgers' checks, the models log's failing if ``models/`` holds a model it does
        not record (see ``access_audit.review.model_log``)."""
        from dataclasses import replace

        from access_audit.review.model_log import model_problem

        return [
            replace(check, ok=False, problem=problem)
            if check.name == "models" and check.ok and (problem := model_problem(self.home))
            else check
            for check in checks
        ]

    def _building(
        self, run_id: str, command: str
    ) -> contextlib.AbstractContextManager[Transaction]:
        """A store transaction that first checks the generation it builds on and the review and
        view logs, and refuses (StoreDamagedError) if the generation no longer matches its
        manifest or a log's hash chain is broken (a line deleted, edited or reordered): reviews
        decide suppressions, so a run never builds on an edited history."""
        from access_audit.ledger import verify_ledger

        # the case log decides nothing the run derives, so a broken one does not stop the run
        built_on = (self.reviews_ledger, self.views_ledger)
        for ledger in built_on:
            check = verify_ledger(ledger.path, ledger.name, torn_tail_ok=True)
            if not check.ok:
                raise StoreDamagedError(
                    f"the {check.name} log is broken ({check.problem}); nothing was built on "
                    "it. Run `access-audit verify`, and restore the log from a backup"
                )
        return self.store.transaction(
            run_id, {"command": command}, verify=self.config.store.verify_before_build
        )

    # -- writing -------------------------------------------------------------------------------
    def ingest(
        self, drops: Sequence[Path], progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Load each drop in its own transaction, oldest first; a failed drop loads nothing.

        A drop's own problem fails that drop alone; a refused write (disk full) or a bug stops
        the run, recorded as failed, with every store as it was before that drop."""
        from access_audit.ingest import ingest_drop

        report = IngestReport()
        last_commit: Generation | None = None
        with owner_only():
            self._clean_debris()
            for drop in self._discover(drops, report, "ingest"):
                started = datetime.now(UTC)
                run_id = new_run_id()
                try:
                    with self._writing_stores(), self._building(run_id, "ingest") as txn:
                        result = ingest_drop(txn, drop, self.config.ingest, progress)
                except BaseException as exc:
                    alone = _fails_the_drop_alone(exc)
                    error = self._drop_failure(exc) if alone else exc
                    self._record_failure(
                        self._log_run, "ingest", drop.drop_id, None, error, started, run_id
                    )
                    if not alone:
                        raise
                    report.failed.append(DropFailure(drop.drop_id, failure_line(error)))
                    continue
                report.loaded.append(result)
                last_commit = txn.committed or last_commit
                with _after_commit(last_commit, self.runs_dir, _RECORD_UNWRITTEN):
                    self._log_run("ingest", drop.drop_id, result, None, started, run_id, txn)
            current = self.generation()
            report.generation = current.number if current else None
            self._refresh_catalog_or_record("ingest", last_commit)
        return report

    # -- scoring -------------------------------------------------------------------------------
    @property
    def rules(self) -> Rules:
        from access_audit.score.rules import load_rules

        return load_rules(self.config)

    def scorer(
        self, engine: str = "polars", progress: ProgressCallback | None = None
    ) -> ChunkScorer | None:
        """The scoring engine: None for the local (Polars) one, or Spark from [spark]."""
        from access_audit.score.spark import SparkScorer, check_engine

        check_engine(engine)
        return SparkScorer(self.config.spark, progress) if engine == "spark" else None

    def score(
        self,
        days: Sequence[date] | None = None,
        progress: ProgressCallback | None = None,
        engine: str = "polars",
    ) -> ScoreReport:
        """Explain and score stored days (all of them by default), replacing their outputs; days
        in their look-back that other rules scored are scored first (score/run.py,
        with_earlier_rules). `engine` is polars (this machine) or spark ([spark] settings); the
        results are the same."""
        from access_audit.score.run import stored_days, with_earlier_rules, write_scored

        scorer = self.scorer(engine, progress)

        started = datetime.now(UTC)
        run_id = new_run_id()
        committed: Generation | None = None
        with owner_only():
            try:
                self._clean_debris()
                rules = self.rules
                model = self._current_model()
                with self._writing_stores(), self._building(run_id, "score") as txn:
                    available = stored_days(txn)
                    asked = available if days is None else [d for d in days if d in available]
                    wanted = (
                        asked if days is None else with_earlier_rules(txn, asked, rules, available)
                    )
                    report = write_scored(
                        txn,
                        wanted,
                        rules,
                        started,
                        model,
                        self._reviews_now(),
                        timezone=self.config.ingest.timezone,
                        progress=progress,
                        scorer=scorer,
                    )
                    report.earlier_rules = sorted(set(wanted) - set(asked))
                committed = txn.committed
                self._finish_run("score", run_id, started, committed, score=report)
            except BaseException as exc:
                self._record_failure(
                    self._log_event, "score", run_id, started, error=exc, committed=committed
                )
                raise
        return report

    def nightly(
        self,
        drops: Sequence[Path],
        progress: ProgressCallback | None = None,
        engine: str = "polars",
    ) -> NightlyReport:
        """Ingest the drops, then explain, score and flag: one run, committed whole.

        Each drop is loaded in a savepoint (a bad drop loads nothing and is reported); then the
        days the drops touched and the re-explain window are scored in the same transaction,
        by `engine` (polars or spark)."""
        scorer = self.scorer(engine, progress)
        started = datetime.now(UTC)
        run_id = new_run_id()
        report = NightlyReport(ingest=IngestReport())
        committed: Generation | None = None
        with owner_only():
            try:
                self._clean_debris()
                discovered = self._discover(drops, report.ingest, "nightly")
                committed = self._nightly_transaction(
                    run_id, started, discovered, report, progress, scorer
                )
                current = self.generation()
                report.ingest.generation = current.number if current else None
                self._finish_run("nightly", run_id, started, committed, report=report)
            except BaseException as exc:
                self._record_failure(
                    self._log_event,
                    "nightly",
                    run_id,
                    started,
                    error=exc,
                    report=report,
                    committed=committed,
                )
                raise
        return report

    def _nightly_transaction(
        self,
        run_id: str,
        started: datetime,
        discovered: Sequence[Drop],
        report: NightlyReport,
        progress: ProgressCallback | None,
        scorer: ChunkScorer | None = None,
    ) -> Generation | None:
        from access_audit.ingest import ingest_drop
        from access_audit.score.run import (
            days_to_rescore,
            stored_days,
            with_earlier_rules,
            write_scored,
        )

        rules = self.rules
        model = self._current_model()
        with self._writing_stores(), self._building(run_id, "nightly") as txn:
            touched: set[date] = set()
            for drop in discovered:
                try:
                    with txn.savepoint() as point:
                        result = ingest_drop(point, drop, self.config.ingest, progress)
                    report.ingest.loaded.append(result)
                    touched.update(result.days_touched)
                except Exception as exc:
                    if not _fails_the_drop_alone(exc):
                        raise
                    report.ingest.failed.append(
                        DropFailure(drop.drop_id, failure_line(self._drop_failure(exc)))
                    )
            stored = stored_days(txn)
            asked = days_to_rescore(stored, touched, rules.reexplain_days)
            days = with_earlier_rules(txn, asked, rules, stored)
            report.score = write_scored(
                txn,
                days,
                rules,
                started,
                model,
                self._reviews_now(),
                timezone=self.config.ingest.timezone,
                progress=progress,
                scorer=scorer,
            )
            report.score.earlier_rules = sorted(set(days) - set(asked))
        return txn.committed

    def stored_days(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[date]:
        """Days (UTC) holding accesses, optionally only those overlapping [since, until)."""
        import polars as pl

        days = self.scan("access_events").select(pl.col("day").unique()).collect()["day"]
        return sorted(
            d
            for d in days.to_list()
            if (since is None or d >= since.date()) and (until is None or d <= until.date())
        )

    @property
    def models(self) -> ModelStore:
        from access_audit.review.learn import ModelStore

        return ModelStore(self.home / "models")

    def learn(self) -> LearnedModel:
        """Train a re-ranking model from closed reviews, store it as the next version, and
        re-score the stored days with it."""
        from access_audit.review.learn import train, training_set
        from access_audit.review.model_log import models_ledger, record_learned

        rules = self.rules
        names = ["rule_score", *rules.indicators, "pattern_young_women", "pattern_contact"]
        data = training_set(self.scan("flags"), self.scan("reviews"), names)
        settings = rules.learning
        with owner_only():
            model = train(
                data,
                names,
                self.models.next_version(),
                int(settings["min_decisions"]),
                int(settings["min_per_class"]),
                float(settings["blend"]),
            )
            self._models_ledger_check()  # never append to a broken log
            path = self.models.save(model)
            with _writing(f"the models log in {self.home / 'audit'}"):
                record_learned(models_ledger(self.home), model.version, path)
        self.score()
        return model

    def retire_model(self) -> None:
        """Go back to the rule-based score, recorded in the models log, and re-score the stored
        days."""
        from access_audit.review.model_log import models_ledger, record_retired

        with owner_only():
            self._models_ledger_check()
            pointer = self.models.folder / "CURRENT"
            retired = pointer.read_text(encoding="utf-8").strip() if pointer.exists() else None
            self.models.retire()
            with _writing(f"the models log in {self.home / 'audit'}"):
                record_retired(models_ledger(self.home), retired or None)
        self.score()

    def _current_model(self) -> LearnedModel | None:
        """The learned model in use, once the models log vouches for it: StoreDamagedError if a
        model file is not recorded there (written by hand), changed since, or the log is broken
        (``access_audit.review.model_log``)."""
        from access_audit.review.model_log import model_problem

        self._models_ledger_check()
        problem = model_problem(self.home)
        if problem is not None:
            raise StoreDamagedError(
                f"the learned model cannot be trusted, so nothing was scored with it: {problem} "
                "(`access-audit verify` checks it; remove a model file `learn` did not write, "
                "then `access-audit learn` or `learn --retire`)"
            )
        return self.models.current()

    def _models_ledger_check(self) -> None:
        from access_audit.ledger import verify_ledger
        from access_audit.review.model_log import models_ledger

        ledger = models_ledger(self.home)
        check = verify_ledger(ledger.path, ledger.name, torn_tail_ok=True)
        if not check.ok:
            raise StoreDamagedError(
                f"the {check.name} log is broken ({check.problem}); nothing was scored. Run "
                "`access-audit verify`, and restore the log from a backup"
            )

    def review_many(self, decisions: pl.DataFrame) -> int:
        """Record many decisions at once (flag_id, status, outcome, note, reviewer[, purpose]),
        e.g. importing a case-management export: checked as a whole, then appended together."""
        return self._record_decisions(decisions).height

    # -- the review queue ----------------------------------------------------------------------
    def flags(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        min_score: float | None = None,
        status: str | None = None,
        user: str | None = None,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """Flags whose accesses fall in [since, until), best first (alerts only by default);
        only `user`'s flags when given."""
        from access_audit.review.queue import select_flags

        self._require_loaded()
        flags = self.scan("flags")
        if min_score is None:
            flags = flags.filter("alert")
        return select_flags(
            flags,
            self.scan("flag_events"),
            self.scan("reviews"),
            since=since,
            until=until,
            min_score=min_score,
            status=status,
            user=user,
            limit=limit,
        )

    def _require_loaded(self) -> None:
        """An empty home has no flags because nothing was looked at, not because all is well."""
        if self.generation() is None:
            raise AccessAuditError(
                f"nothing is loaded yet in {self.home}: run `access-audit ingest` or "
                "`access-audit nightly` on the drops first"
            )

    def flag_detail(self, flag_id: str) -> FlagDetail | None:
        from access_audit.review.detail import flag_detail

        return flag_detail(
            flag_id,
            self.scan("flags"),
            self.scan("flag_events"),
            self.scan("access_events"),
            self.scan("explanations"),
            self.scan("indicators"),
            self.scan("training"),
            self.scan("reviews"),
            self.scan("weak_explanations"),
        )

    def flag_timelines(
        self, flag: dict[str, Any], flag_ids: Sequence[str] | None = None
    ) -> Timelines:
        """The flag's user's accesses around it and everyone's accesses to its subject
        (``FlagDetail.flag`` is such a row; a case's summary with ``flag_ids``, its flags)."""
        from access_audit.review.timelines import flag_timelines

        return flag_timelines(
            flag,
            self.scan("access_events"),
            self.scan("explanations"),
            self.scan("flag_events"),
            flag_ids=flag_ids,
        )

    def held_accesses(self, flag_ids: Sequence[str]) -> pl.DataFrame:
        """The accesses the flags hold (a case's evidence), with what explains each."""
        from access_audit.review.detail import held_accesses

        return held_accesses(
            flag_ids,
            self.scan("flag_events"),
            self.scan("access_events"),
            self.scan("explanations"),
            self.scan("indicators"),
            self.scan("weak_explanations"),
        )

    def event_detail(self, identifier: str, system: str | None = None) -> EventDetail | None:
        from access_audit.review.detail import event_detail

        return event_detail(
            identifier,
            self.scan("access_events"),
            self.scan("explanations"),
            self.scan("indicators"),
            self.scan("flags"),
            self.scan("flag_events"),
            system=system,
            weak=self.scan("weak_explanations"),
        )

    def review(
        self,
        flag_id: str,
        *,
        status: str,
        outcome: str | None,
        note: str,
        reviewer: str | None = None,
        purpose: str | None = None,
    ) -> Review:
        """Record a decision on a flag in the review ledger (append-only; the store is untouched,
        so it neither waits for a running job nor makes a generation)."""
        import polars as pl

        from access_audit.review import Review

        decision = {
            "flag_id": flag_id,
            "status": status,
            "outcome": outcome,
            "note": note,
            "reviewer": reviewer,
            "purpose": purpose,
        }
        row = self._record_decisions(
            pl.DataFrame([decision], schema=dict.fromkeys(decision, pl.String()))
        ).row(0, named=True)
        return Review(
            review_id=row["review_id"],
            flag_id=row["flag_id"],
            status=row["status"],
            outcome=row["outcome"],
            reviewer=row["reviewer"],
            reviewed_at=row["reviewed_at"],
            suppress_until=row["suppress_until"],
        )

    def _record_decisions(self, decisions: pl.DataFrame) -> pl.DataFrame:
        """The one path for every decision: check against the current flags, append to the
        review ledger. The catalog's `reviews` view reads the ledger, so it is not rebuilt."""
        from access_audit.review import decide
        from access_audit.review.log import review_records

        self._migrate_ledgers()
        rows = decide(
            decisions,
            self.scan("flags"),
            suppress_days=self.config.reviews.suppress_days,
            now=datetime.now(UTC),
        )
        ledger = self.reviews_ledger
        with owner_only(), _writing(f"the review log {ledger.path}"), ledger.locked():
            require_intact(ledger, "nothing was recorded")
            ledger.append_holding_lock(review_records(rows))
        return rows

    def ledger_warnings(self) -> list[str]:
        """One line per broken log chain (a torn last line aside: readers skip it), for the
        commands that show decisions to warn that what they show may rest on an edited
        history. The view log is left to `verify` and the jobs: it decides nothing shown, and it
        grows with every command (100k lines take about 3 s to walk), the decision logs do not."""
        return [
            f"the {check.name} log is broken ({check.problem}): what is shown may rest on an "
            "edited history; run `access-audit verify`"
            for check in self.verify_ledgers(torn_tail_ok=True, views=False)
            if not check.ok
        ]

    def record_view(self, command: str, flag_ids: Sequence[str], subjects: Sequence[str]) -> None:
        """Who was shown which flags and subjects, when: a hash-chained log an auditor can query
        (the `flag_views` view) and verify. Ids only; no names."""
        from access_audit.review.log import view_record

        self._migrate_ledgers()
        subjects = [*subjects, *self._pattern_subjects(flag_ids)]
        with owner_only(), _writing(f"the view log {self.views_ledger.path}"):
            self.views_ledger.append([view_record(command, flag_ids, subjects, datetime.now(UTC))])

    def _pattern_subjects(self, flag_ids: Sequence[str]) -> list[str]:
        """The subjects the pattern flags among ``flag_ids`` count (every screen and pack that
        shows such a flag names them), for the view log. For a flag stored before its subjects
        were, the persons the user looked up in its window that its reason names, whether or
        not they read its list back exactly (``score.pattern_scope``): never a fragment of an
        id."""
        import polars as pl

        from access_audit.score.pattern_scope import pattern_subjects

        patterned = [flag_id for flag_id in flag_ids if "-pattern-" in flag_id]
        if not patterned or self.generation() is None:
            return []
        flags = self.scan("flags").filter(pl.col("flag_id").is_in(patterned))
        named = pattern_subjects(flags, self.scan("access_events"), self.rules.lookback_days)
        return named.select(pl.col("subject_id").unique().sort()).collect()["subject_id"].to_list()

    def evidence(
        self,
        flag_ids: Sequence[str],
        output: Path,
        *,
        pdf: bool = True,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> EvidencePack:
        """Write an evidence pack for a misconduct hearing about ``flag_ids`` to the folder
        ``output`` (absent or empty): see ``access_audit.evidence``. A case id among them stands
        for its flags and adds its history from the case log. Refused unless every chain of the
        home verifies; the export is logged in the view log."""
        from access_audit.evidence import write_evidence

        self._migrate_ledgers()
        case_ids = self.cases.named(flag_ids)
        flag_ids = self.cases.flag_ids_of(flag_ids)
        with owner_only(), _writing(f"the evidence pack {output}"):
            return write_evidence(
                self, flag_ids, output, case_ids=case_ids, pdf=pdf, progress=progress
            )

    # -- the ledgers ---------------------------------------------------------------------------
    @property
    def reviews_ledger(self) -> Ledger:
        from access_audit.review.log import reviews_ledger

        return reviews_ledger(self.home)

    @property
    def views_ledger(self) -> Ledger:
        from access_audit.review.log import views_ledger

        return views_ledger(self.home)

    def verify_ledgers(self, *, torn_tail_ok: bool = False, views: bool = True) -> list[ChainCheck]:
        """Walk the review, view, case and model logs' hash chains (the view log's only if
        ``views``); each check names its first broken line (see ledger.verify_ledger for
        ``torn_tail_ok``)."""
        from access_audit.ledger import verify_ledger

        return [
            verify_ledger(ledger.path, ledger.name, torn_tail_ok=torn_tail_ok)
            for ledger in self._ledgers()
            if views or ledger.path != self.views_ledger.path
        ]

    def _ledgers(self) -> list[Ledger]:
        from access_audit.review.model_log import models_ledger

        return [self.reviews_ledger, self.views_ledger, self.cases.ledger, models_ledger(self.home)]

    # -- cases ---------------------------------------------------------------------------------
    @property
    def cases(self) -> CaseDesk:
        """The cases: flags grouped per user and subject, assigned and decided as one
        (access_audit.review.casework)."""
        from access_audit.review.casework import CaseDesk

        return CaseDesk(self)

    def _scan_reviews(self) -> pl.LazyFrame:
        from access_audit.review.log import read_reviews

        self._migrate_ledgers()
        return read_reviews(self.reviews_ledger.complete_bytes())

    def _reviews_now(self) -> pl.LazyFrame:
        """The review history as it stands now, read once: a scoring run applies the same
        decisions to every day it scores, whatever is appended while it runs."""
        return self._scan_reviews().collect().lazy()

    def _migrate_ledgers(self) -> None:
        """Once per home: import the previous version's reviews and view log into the ledgers
        (and rebuild the analysts' database, whose views then read them)."""
        if self._ledgers_migrated:
            return
        from access_audit.review.log import migrate_ledgers

        with owner_only():
            migrated = migrate_ledgers(self.home, self.generation())
        self._ledgers_migrated = True
        if migrated and self.database_path.exists():
            self.refresh_catalog()

    def report(self, start: date, end: date, *, allow_empty: bool = False) -> Report:
        """The FOI-style report for alerts raised on days start..end (see access_audit.report);
        refused over a period with no loaded data unless `allow_empty`."""
        from access_audit.report import build_report

        if end < start:
            raise AccessAuditError("--to must not be before --from")
        return build_report(
            start,
            end,
            self.scan("flags"),
            self.scan("reviews"),
            self.scan("training"),
            self.scan("access_events"),
            self.scan("explanations"),
            self.rules,
            allow_empty=allow_empty,
            case_flags=self.cases.members(),
            cases=self.cases.summaries(),
        )

    def evaluate(
        self,
        truth: Path,
        budget: int = 20,
        days: Sequence[date] | None = None,
        grouped: bool = False,
    ) -> Evaluation:
        """The stored flags against a generator's truth file (see access_audit.evaluate),
        over every stored day or only `days`; `grouped` ranks the budget queue's entries."""
        import polars as pl

        from access_audit.evaluate import evaluate, read_gap_truth, read_truth
        from access_audit.generate.write import GAPS_TRUTH

        events = self.scan("access_events").select("system", "event_id", "day")
        if days is not None:
            events = events.filter(pl.col("day").is_in(list(days)))
        gaps_path = truth.parent / GAPS_TRUTH
        return evaluate(
            self.scan("flags").collect(),
            self.scan("flag_events").collect(),
            events.collect(),
            read_truth(truth),
            budget=budget,
            threshold=self.rules.alert_threshold,
            gaps=read_gap_truth(gaps_path) if gaps_path.exists() else None,
            roles=self.scan("staff").select("user_id", "role").collect(),
            grouped=grouped,
        )

    def _discover(self, drops: Sequence[Path], report: IngestReport, command: str) -> list[Drop]:
        """The drops that can be read, oldest first; the others are failures in ``report``."""
        from access_audit.ingest import discover_drop

        discovered = []
        for path in drops:
            try:
                discovered.append(discover_drop(Path(path)))
            except Exception as exc:
                error = self._drop_failure(exc)
                report.failed.append(DropFailure(str(path), failure_line(error)))
                self._log_run(command, str(path), None, error, datetime.now(UTC))
        return sorted(discovered, key=lambda d: (d.as_of, d.drop_id))

    def refresh_catalog(self) -> Path:
        from access_audit.catalog import build_catalog

        self._migrate_ledgers()
        with owner_only():
            self._clean_debris()
            self.cases.ledger.ensure_exists()  # so the case_log view reads it from the start
            self.store.refuse_strays()  # the views' globs would follow a planted symlink
            with _writing(f"the analysts' database {self.database_path}"):
                return build_catalog(
                    self.home,
                    self.generation(),
                    self.runs_dir,
                    case_span_days=self.config.cases.span_days,
                )

    def _finish_run(
        self,
        command: str,
        run_id: str,
        started: datetime,
        committed: Generation | None,
        **details: Any,
    ) -> None:
        """After a score or nightly transaction: rebuild the analysts' database, then write the
        run record. A failure after a commit says so (CommittedButIncompleteError): the stores
        are committed, the database is stale until the next run or `access-audit database`."""
        with _after_commit(committed, self.runs_dir, _DATABASE_STALE):
            self.refresh_catalog()
        with _after_commit(committed, self.runs_dir, _RECORD_UNWRITTEN):
            self._log_event(command, run_id, started, committed=committed, **details)

    def _refresh_catalog_or_record(self, command: str, committed: Generation | None) -> None:
        """Rebuild the analysts' database after a run whose stores are committed; if that fails
        the command fails, with a run record saying so (the next run rebuilds it)."""
        started = datetime.now(UTC)
        try:
            with _after_commit(committed, self.runs_dir, _DATABASE_STALE):
                self.refresh_catalog()
        except BaseException as exc:
            self._record_failure(
                self._log_event, command, new_run_id(), started, error=exc, committed=committed
            )
            raise

    def _writing_stores(self) -> contextlib.AbstractContextManager[None]:
        return _writing(f"the stores in {self.store.root}")

    def _clean_debris(self) -> None:
        """Temporary files of runs that died (a full disk, a kill): the analysts' database being
        built and run records being written. The stores clean their own staging folders."""
        from access_audit.catalog import TEMPORARY_DATABASE
        from access_audit.debris import remove_files_of_dead_processes

        remove_files_of_dead_processes(self.home, TEMPORARY_DATABASE)
        remove_files_of_dead_processes(self.runs_dir, _TEMPORARY_RECORD)

    def _drop_failure(self, exc: BaseException) -> AccessAuditError:
        """A failure that fails one drop alone, as the one-line error reported for it."""
        return drop_error(exc, self.runs_dir)

    def _record_failure(self, log: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Write a failed run's record if the machine lets us: when the disk is full it may not,
        and the failure itself must still reach the terminal."""
        with contextlib.suppress(Exception):
            log(*args, **kwargs)

    def _catalog_is_stale(self) -> bool:
        import duckdb

        current = self.generation()
        try:
            with duckdb.connect(str(self.database_path), read_only=True) as connection:
                row = connection.execute(
                    "SELECT generation, generation_path FROM catalog_info"
                ).fetchone()
        except duckdb.Error:
            return True
        if row is None:
            return True
        built_on, built_path = row
        if current is None:
            return bool(built_on != 0)
        return bool(built_on != current.number or built_path != str(current.path))

    def _log_event(
        self,
        command: str,
        run_id: str,
        started: datetime,
        *,
        error: BaseException | None = None,
        score: ScoreReport | None = None,
        report: NightlyReport | None = None,
        committed: Generation | None = None,
    ) -> None:
        """The run log entry of a score or nightly run: counts and ids, never personal data.

        A run that fails after committing its stores (the analysts' database could not be
        rebuilt) says so in its outcome (``committed_database_stale``) and names the generation
        it committed; any other failure is "failed"."""
        record: dict[str, Any] = {
            "run_id": run_id,
            "command": command,
            "drop_id": None,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "outcome": _outcome(error) if error else "completed",
            "error": failure_line(error, self.runs_dir) if error else None,
            "generation": committed.number if committed else None,
        }
        if report is not None:
            score = report.score
            record["drops_loaded"] = [r.drop_id for r in report.ingest.loaded]
            record["drops_failed"] = [asdict(f) for f in report.ingest.failed]
            record["rows_added"] = sum(
                t.loaded for r in report.ingest.loaded for t in r.tables.values()
            )
            record["rejections"] = sum(sum(r.rejections.values()) for r in report.ingest.loaded)
            record["duplicates"] = sum(
                t.duplicates for r in report.ingest.loaded for t in r.tables.values()
            )
            record["tables"] = {
                r.drop_id: {k: asdict(v) for k, v in r.tables.items()} for r in report.ingest.loaded
            }
            record["ignored_files"] = {
                r.drop_id: r.ignored_files for r in report.ingest.loaded if r.ignored_files
            }
            if report.ingest.failed and not error:
                # the command exits 1, so the record says failed; what did load is listed above
                record["outcome"] = "failed"
                record["error"] = _failed_drops_line(
                    report.ingest.failed, len(report.ingest.loaded)
                )
        if score is not None:
            record["score"] = {
                "days": [d.isoformat() for d in score.days],
                "events": score.events,
                "explained": score.explained,
                "first_explained": score.first_explained,
                "explained_with_mined": score.explained_with_mined,
                "first_explained_with_mined": score.first_explained_with_mined,
                "flags": score.flags,
                "alerts": score.alerts,
                "audit_gaps": score.audit_gaps,
                "cleared": score.cleared,
                "seconds": round(score.seconds, 3),
            }
        self._write_run_record(run_id, record)

    def _write_run_record(self, run_id: str, record: dict[str, Any]) -> None:
        """Replace ``runs/<run_id>.json`` whole (owner-only), through a temporary file that a
        later run removes if this process dies before the rename."""
        with _writing(f"the run record in {self.runs_dir}"):
            self.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            _replace_owner_only(
                self.runs_dir / f"{run_id}.json", json.dumps(record, default=str, indent=1)
            )

    def _log_run(
        self,
        command: str,
        drop_id: str,
        result: DropIngest | None,
        error: BaseException | None,
        started: datetime,
        run_id: str | None = None,
        txn: Any = None,
    ) -> None:
        """One JSON file per run, success or failure; counts and reasons, never personal data."""
        run_id = run_id or new_run_id()
        committed = getattr(txn, "committed", None)
        record: dict[str, Any] = {
            "run_id": run_id,
            "command": command,
            "drop_id": drop_id,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "outcome": _outcome(error) if error else ("loaded" if committed else "nothing_new"),
            "error": failure_line(error, self.runs_dir) if error else None,
            "generation": committed.number if committed else None,
        }
        if result is not None:
            record.update(
                {
                    "drop_path": result.path,
                    "as_of": result.as_of.isoformat(),
                    "files": result.files,
                    "skipped_files": result.skipped_files,
                    "unrecognised_files": result.unrecognised_files,
                    "ignored_files": result.ignored_files,
                    "tables": {k: asdict(v) for k, v in result.tables.items()},
                    "rejections": result.rejections,
                    "days_touched": [d.isoformat() for d in result.days_touched],
                    "seconds": round(result.seconds, 3),
                }
            )
        self._write_run_record(run_id, record)


_TEMPORARY_RECORD = re.compile(r"^\.[^/]+\.json\.(?P<pid>\d+)\.tmp$")


def _replace_owner_only(target: Path, text: str) -> None:
    """``target`` becomes ``text`` whole, through a temporary file named for this process (a
    later run removes it if this one dies before the rename)."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


_DATABASE_STALE = (
    "the analysts' database could not be rebuilt",
    "is rebuilt by the next run or `access-audit database`",
    "committed_database_stale",
)
_RECORD_UNWRITTEN = ("its run record could not be written", "", "committed_record_unwritten")


@contextlib.contextmanager
def _after_commit(
    committed: Generation | None, runs_dir: Path, step: tuple[str, str, str]
) -> Iterator[None]:
    """A failure in a step after ``committed`` was committed, as one honest line: the stores
    are committed as generation N; this step failed (why) and what puts it right. With nothing
    committed the failure passes unchanged."""
    try:
        yield
    except Exception as exc:
        if committed is None or isinstance(exc, CommittedButIncompleteError):
            raise
        what, remedy, outcome = step
        message = (
            f"stores committed as generation {committed.number}; {what} "
            f"({failure_line(exc, runs_dir)})" + (f" and {remedy}" if remedy else "")
        )
        raise CommittedButIncompleteError(message, outcome) from exc


def _outcome(error: BaseException) -> str:
    """A failed run's outcome: ``failed``, or what a run that did commit left undone."""
    return error.outcome if isinstance(error, CommittedButIncompleteError) else "failed"


def _failed_drops_line(failed: Sequence[DropFailure], loaded: int) -> str:
    listed = "; ".join(f"{f.drop}: {f.error}" for f in failed)
    kept = f" ({loaded} loaded and committed)" if loaded else ""
    return one_line(f"{len(failed)} drop(s) failed to load{kept}: {listed}")


def _fails_the_drop_alone(exc: BaseException) -> bool:
    """A drop's own problem (bad files), or a bug met while reading it, fails that drop and the
    other drops are still tried; a refused write (disk full) or an interrupt stops the run."""
    if isinstance(exc, AccessAuditError):
        return not isinstance(exc, StorageError | StoreDamagedError)
    return isinstance(exc, Exception) and storage_problem(exc) is None


def drop_error(exc: BaseException, traceback_folder: Path | None) -> AccessAuditError:
    """A drop's failure as a one-line error for the report and the run log.

    An unexpected exception (a bug) must not stop the other drops being tried, and its message
    may quote values from the data, so only its type and where it was raised are kept."""
    if isinstance(exc, AccessAuditError):
        return exc
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "access_audit" in f.filename]
    where = f" in {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    saved = ""
    if traceback_folder is not None:
        with contextlib.suppress(OSError):
            saved = f"; the full traceback is in {write_traceback(exc, traceback_folder)}"
    return AccessAuditError(
        f"unexpected {type(exc).__name__}{where} while loading this drop "
        f"(a bug: please report it; the message is withheld as it may quote personal data{saved})"
    )


def _len() -> Any:
    import polars as pl

    return pl.len()
