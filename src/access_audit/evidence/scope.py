"""What an evidence pack holds, as pure frame transforms over the stores: the flags, every access in
their scope with what explains it (or why nothing does), the user's shifts and assignments around
those accesses, their training and the review history. No I/O here; ``pack.py`` writes it out.

The scope of a flag:

- an episode flag (a user and a subject on a day): every stored access by that user to that
  subject, on any day, so a hearing sees the whole history with the subject, not one day's;
- a pattern flag (a user's skew, e.g. contact harvesting, over the look-back): the accesses
  behind its figure: every access by the user, over the pattern's look-back window (the days
  its figure was scored over, stored with the flag: ``score.pattern_scope``; today's
  ``lookback_days`` for a flag stored before that, and the pack says so), to the subjects its
  figure counts (``score.pattern_scope.pattern_subjects``); its own accesses (``flag_events``) are
  that day's;
- an audit gap: no accesses (it is a hole in the trail); its window is in the flag itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from access_audit.exprs import fmt
from access_audit.review.queue import ISO_UTC, current_reviews
from access_audit.score.pattern_scope import pattern_subjects
from access_audit.score.pattern_scope import pattern_windows as flag_windows

AROUND = timedelta(hours=24)
"""Shifts and assignments are shown when they fall within this long of an access in scope."""
OPEN_ENDED = pl.datetime(9999, 1, 1, time_zone="UTC")
KEYS = ["system", "event_id"]
ISO_LOCAL = "%Y-%m-%dT%H:%M:%S%:z"


@dataclass(frozen=True)
class EvidenceScope:
    """The stores an evidence pack reads (one pinned, verified generation, and the reviews)."""

    flags: pl.LazyFrame
    flag_events: pl.LazyFrame
    events: pl.LazyFrame
    explanations: pl.LazyFrame
    indicators: pl.LazyFrame
    shifts: pl.LazyFrame
    assignments: pl.LazyFrame
    incident_persons: pl.LazyFrame
    staff: pl.LazyFrame
    training: pl.LazyFrame
    reviews: pl.LazyFrame


@dataclass(frozen=True)
class EvidenceTables:
    """Everything a pack shows, one frame per file; text columns ready to print."""

    flags: pl.DataFrame
    accesses: pl.DataFrame
    shifts: pl.DataFrame
    assignments: pl.DataFrame
    training: pl.DataFrame
    apsp: pl.DataFrame
    """Per user: the last APSP-type course and whether it was overdue at their last access."""
    reviews: pl.DataFrame
    users: pl.DataFrame
    """Per user in the pack: role and team (identifiers only; names stay in the systems)."""
    timezone: str
    case_history: pl.DataFrame | None = None
    """The case log's lines about the cases exported (``case_history_rows``); None when the pack
    was asked for by flag ids only."""


def missing_flags(flags: pl.LazyFrame, flag_ids: Sequence[str]) -> list[str]:
    """The ids among ``flag_ids`` that name no stored flag, in the order given."""
    found = set(
        flags.filter(pl.col("flag_id").is_in(list(flag_ids)))
        .select("flag_id")
        .collect()["flag_id"]
        .to_list()
    )
    return [f for f in flag_ids if f not in found]


def _utc(column: str) -> pl.Expr:
    return pl.col(column).dt.strftime(ISO_UTC)


def _local(column: str, timezone: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(timezone).dt.strftime(ISO_LOCAL)


def flags_in_pack(scope: EvidenceScope, flag_ids: Sequence[str]) -> pl.LazyFrame:
    """The pack's flags with their current review state, in the order given."""
    order = pl.LazyFrame({"flag_id": list(flag_ids), "position": range(len(flag_ids))})
    return (
        scope.flags.join(order, on="flag_id")
        .join(current_reviews(scope.reviews), on="flag_id", how="left")
        .with_columns(pl.col("status").fill_null("open"))
        .sort("position")
    )


def pattern_windows(flags: pl.LazyFrame, events: pl.LazyFrame, lookback_days: int) -> pl.LazyFrame:
    """(flag_id, user_id, record_type, record_id, window_from, window_to, window_days,
    window_stored): for each pattern flag, each subject its figure counts and the days it
    counted them over (the look-back stored with the flag; ``lookback_days``, today's setting,
    for a flag stored before it, ``window_stored`` false). A flag stored before its subjects
    were, whose reason's list cannot be read back exactly, names none here (``write_evidence``
    refuses it: ``unreadable_subjects``)."""
    return (
        flag_windows(flags, lookback_days)
        .join(pattern_subjects(flags, events, lookback_days).filter("exact"), on="flag_id")
        .select(
            "flag_id",
            "user_id",
            "window_from",
            "window_to",
            "window_days",
            "window_stored",
            record_type=pl.lit("person"),
            record_id="subject_id",
        )
    )


def _scope_keys(flags: pl.LazyFrame, scope: EvidenceScope, lookback_days: int) -> pl.LazyFrame:
    """(system, event_id, flag_id, held): each access in a flag's scope, and whether the flag
    itself holds it (``held``) or it is another access by the user to the flag's subject (for a
    pattern flag: to a subject behind its figure, within its look-back)."""
    held = scope.flag_events.join(flags.select("flag_id"), on="flag_id").select(
        *KEYS, "flag_id", held=pl.lit(True)
    )
    subjects = flags.filter(pl.col("kind") == "episode").select(
        "flag_id", "user_id", record_type="subject_type", record_id="subject_id"
    )
    on = ["user_id", "record_type", "record_id"]
    same_subject = scope.events.join(subjects, on=on).select(*KEYS, "flag_id", held=pl.lit(False))
    behind_pattern = (
        scope.events.join(pattern_windows(flags, scope.events, lookback_days), on=on)
        .filter(pl.col("day").is_between("window_from", "window_to"))
        .select(*KEYS, "flag_id", held=pl.lit(False))
    )
    return (
        pl.concat([held, same_subject, behind_pattern])
        .group_by(*KEYS, "flag_id")
        .agg(pl.col("held").any())
        .group_by(KEYS)
        .agg(
            flag_ids=pl.col("flag_id").sort().str.join("; "),
            held_by_flag=pl.col("held").any(),
        )
    )


def _explained(scope: EvidenceScope, keys: pl.LazyFrame, days: pl.LazyFrame) -> pl.LazyFrame:
    why = (
        scope.explanations.join(days, on="day", how="semi")
        .join(keys, on=KEYS, how="semi")
        .group_by(KEYS)
        .agg(explanations=pl.col("detail").unique().sort().str.join("; "))
    )
    risk = (
        scope.indicators.join(days, on="day", how="semi")
        .join(keys, on=KEYS, how="semi")
        .sort(["points", "code"], descending=[True, False])
        .group_by(KEYS, maintain_order=True)
        .agg(
            unexplained=(pl.col("code") == "unexplained").any(),
            indicators=fmt(
                "{} ({} points){}",
                "code",
                pl.col("points").round(1),
                pl.when(pl.col("evidence").fill_null("") != "")
                .then(fmt(": {}", "evidence"))
                .otherwise(pl.lit("")),
            ).str.join("; "),
        )
    )
    return why.join(risk, on=KEYS, how="full", coalesce=True)


def _why(unexplained_text: str) -> pl.Expr:
    """What explains an access, or why nothing does."""
    return (
        pl.when(pl.col("explanations").is_not_null())
        .then(pl.col("explanations"))
        .when(pl.col("record_id").is_null())
        .then(pl.lit("a search that opened no record: nothing to explain"))
        .when(pl.col("unexplained").fill_null(False))
        .then(pl.lit(f"nothing explains it: {unexplained_text}"))
        .otherwise(pl.lit("not assessed: its day has not been scored"))
    )


def _shift_at(events: pl.LazyFrame, shifts: pl.LazyFrame) -> pl.LazyFrame:
    """(system, event_id, shift): the rostered shift each access falls in, if any."""
    return (
        events.select(*KEYS, "user_id", "occurred_at")
        .join(shifts.select("user_id", "starts_at", "ends_at"), on="user_id")
        .filter(pl.col("occurred_at").is_between("starts_at", "ends_at", closed="left"))
        .group_by(KEYS)
        .agg(shift=fmt("{} to {}", _utc("starts_at"), _utc("ends_at")).sort().str.join("; "))
    )


def access_rows(
    scope: EvidenceScope,
    flags: pl.LazyFrame,
    timezone: str,
    unexplained_text: str,
    lookback_days: int,
) -> pl.LazyFrame:
    """Every access in the pack's scope, oldest first, with UTC and local times, what explains
    it or why nothing does, its risk indicators and the shift it fell in."""
    keys = _scope_keys(flags, scope, lookback_days)
    accesses = scope.events.join(keys, on=KEYS)
    days = accesses.select("day").unique()
    annotated = accesses.join(_explained(scope, keys, days), on=KEYS, how="left").join(
        _shift_at(accesses, scope.shifts), on=KEYS, how="left"
    )
    return annotated.sort("occurred_at", "system", "event_id").select(
        "flag_ids",
        "held_by_flag",
        "system",
        "event_id",
        occurred_at_utc=_utc("occurred_at"),
        occurred_at_local=_local("occurred_at", timezone),
        user_id="user_id",
        action="action",
        record_type="record_type",
        record_id="record_id",
        reason_code="reason_code",
        justification="justification",
        explained=pl.col("explanations").is_not_null(),
        explanation=_why(unexplained_text),
        indicators=pl.col("indicators").fill_null(""),
        shift=pl.col("shift").fill_null("outside any rostered shift"),
        occurred_at="occurred_at",
    )


def _windows(accesses: pl.LazyFrame) -> pl.LazyFrame:
    """(user_id, around_from, around_to) for each moment in scope (an access, a flag's ends)."""
    return accesses.select(
        "user_id",
        around_from=pl.col("occurred_at") - AROUND,
        around_to=pl.col("occurred_at") + AROUND,
    ).unique()


def shifts_around(scope: EvidenceScope, accesses: pl.LazyFrame, timezone: str) -> pl.LazyFrame:
    """The users' rostered shifts that overlap a day either side of any access in scope (or a
    flag's first or last moment)."""
    return (
        scope.shifts.select("user_id", "starts_at", "ends_at")
        .join(_windows(accesses), on="user_id")
        .filter(
            (pl.col("starts_at") <= pl.col("around_to"))
            & (pl.col("ends_at") >= pl.col("around_from"))
        )
        .select("user_id", "starts_at", "ends_at")
        .unique()
        .sort("user_id", "starts_at")
        .select(
            "user_id",
            starts_at_utc=_utc("starts_at"),
            ends_at_utc=_utc("ends_at"),
            starts_at_local=_local("starts_at", timezone),
            ends_at_local=_local("ends_at", timezone),
        )
    )


def assignments_around(
    scope: EvidenceScope, accesses: pl.LazyFrame, subjects: pl.LazyFrame, timezone: str
) -> pl.LazyFrame:
    """The users' own assignments, and their team's, that were active within a day of any
    access in scope (or a flag's first or last moment); ``links_subject`` says whether the
    incident is, or links, a subject of the pack's accesses."""
    teams = scope.staff.select("user_id", "team_id").filter(pl.col("team_id").is_not_null())
    own = scope.assignments.filter(pl.col("user_id").is_not_null()).select(
        "user_id", "incident_id", "role", "assigned_from", "assigned_to", via=pl.lit("own")
    )
    team = (
        scope.assignments.filter(pl.col("team_id").is_not_null())
        .drop("user_id")
        .join(teams, on="team_id")
        .select(
            "user_id",
            "incident_id",
            "role",
            "assigned_from",
            "assigned_to",
            via=fmt("team {}", "team_id"),
        )
    )
    linked = pl.concat(
        [
            subjects.filter(pl.col("record_type") == "incident").select(incident_id="record_id"),
            scope.incident_persons.join(
                subjects.filter(pl.col("record_type") == "person").select(person_id="record_id"),
                on="person_id",
            ).select("incident_id"),
        ]
    ).unique()
    return (
        pl.concat([own, team])
        .join(_windows(accesses), on="user_id")
        .filter(
            (pl.col("assigned_from") <= pl.col("around_to"))
            & (pl.col("assigned_to").fill_null(OPEN_ENDED) >= pl.col("around_from"))
        )
        .select("user_id", "incident_id", "role", "via", "assigned_from", "assigned_to")
        .unique()
        .join(linked.with_columns(links_subject=pl.lit(True)), on="incident_id", how="left")
        .sort("user_id", "assigned_from", "incident_id")
        .select(
            "user_id",
            "incident_id",
            "role",
            "via",
            links_subject=pl.col("links_subject").fill_null(False),
            assigned_from_utc=_utc("assigned_from"),
            assigned_to_utc=_utc("assigned_to").fill_null("open"),
            assigned_from_local=_local("assigned_from", timezone),
            assigned_to_local=_local("assigned_to", timezone).fill_null("open"),
        )
    )


def training_position(
    training: pl.LazyFrame,
    users: pl.LazyFrame,
    last_access: pl.LazyFrame,
    course: str,
    overdue_months: int,
) -> pl.LazyFrame:
    """Per user: the last ``course`` (APSP) completed, and whether it was overdue at their last
    access in scope (older than ``overdue_months``, or never recorded), as the report judges."""
    last_course = (
        training.filter(pl.col("course") == course)
        .group_by("user_id")
        .agg(last_completed=pl.col("completed_at").max())
    )
    months = timedelta(days=round(overdue_months * 30.44))
    return (
        users.join(last_access, on="user_id", how="left")
        .join(last_course, on="user_id", how="left")
        .with_columns(
            course=pl.lit(course),
            overdue=pl.col("last_completed").is_null()
            | (pl.col("last_completed") < (pl.col("last_access").dt.date() - months)),
        )
        .sort("user_id")
        .select(
            "user_id",
            "course",
            last_completed=pl.col("last_completed").cast(pl.String).fill_null("never"),
            judged_at=_utc("last_access"),
            position=pl.when(pl.col("overdue"))
            .then(pl.lit(f"OVERDUE (older than {overdue_months} months or never)"))
            .otherwise(pl.lit("in date")),
        )
    )


def quoted(ids: pl.Expr) -> pl.Expr:
    """A list of ids as text no id can blur: each in double quotes (a quote or backslash in it
    escaped by a backslash), joined by ", " — ``P, 9001`` reads as one id, not two."""
    escaped = (
        pl.element()
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all('"', '\\"', literal=True)
    )
    return ids.list.eval(fmt('"{}"', escaped)).list.join(", ")


def flag_scope_text(flags: pl.LazyFrame, events: pl.LazyFrame, lookback_days: int) -> pl.LazyFrame:
    """(flag_id, scope): which accesses the pack holds for each flag, in words."""
    behind = (
        pattern_windows(flags, events, lookback_days)
        .group_by("flag_id")
        .agg(
            pl.col("window_from", "window_to", "window_days", "window_stored").first(),
            subjects=pl.col("record_id").unique().sort(),
        )
        .select(
            "flag_id",
            pattern=fmt(
                "every access by the user from {} to {} (the pattern's look-back: the {} days "
                "before the flag's day, and that day{}) to the {} subject(s) its figure counts: {}",
                pl.col("window_from").cast(pl.String),
                pl.col("window_to").cast(pl.String),
                pl.col("window_days"),
                pl.when(pl.col("window_stored"))
                .then(pl.lit(""))
                .otherwise(
                    pl.lit(
                        "; the flag was stored without the look-back its figure was scored with, "
                        "so today's [scoring] lookback_days is used"
                    )
                ),
                pl.col("subjects").list.len(),
                quoted(pl.col("subjects")),
            ),
        )
    )
    return flags.join(behind, on="flag_id", how="left").select(
        "flag_id",
        scope=pl.when(pl.col("kind") == "episode")
        .then(pl.lit("every access by the user to this subject, on any stored day"))
        .when(pl.col("pattern").is_not_null())
        .then(pl.col("pattern"))
        .when(pl.col("kind") == "pattern")
        .then(pl.lit("the flag's own accesses (it names no subjects behind its figure)"))
        .otherwise(pl.lit("its own accesses, if any (an audit gap is a hole in the trail)")),
    )


def _flag_rows(flags: pl.LazyFrame, events: pl.LazyFrame, lookback_days: int) -> pl.LazyFrame:
    reasons = pl.col("reasons").list.eval(
        fmt(
            "{} ({}%)",
            pl.element().struct.field("text"),
            (pl.element().struct.field("weight") * 100).round(0).cast(pl.Int64),
        )
    )
    return flags.select(
        "flag_id",
        "kind",
        "user_id",
        "subject_type",
        "subject_id",
        day=pl.col("day").cast(pl.String),
        score=pl.col("score").round(1),
        rule_score=pl.col("rule_score").round(1),
        alert="alert",
        first_access_at_utc=_utc("first_access_at"),
        last_access_at_utc=_utc("last_access_at"),
        reasons=reasons.list.join("; "),
        status="status",
        outcome="outcome",
        note="note",
        review_note="review_note",
        cleared_at_utc=_utc("cleared_at"),
        rules_version="rules_version",
        model_version="model_version",
    ).join(
        flag_scope_text(flags, events, lookback_days),
        on="flag_id",
        how="left",
        maintain_order="left",
    )


def case_history_rows(log: pl.LazyFrame, case_ids: Sequence[str]) -> pl.LazyFrame:
    """The assignments and decisions on ``case_ids`` from the case log (``CASE_LOG_SCHEMA``), in
    the order written, one text value per cell: times ISO 8601 UTC, flag and review ids joined by
    spaces."""
    return log.filter(pl.col("case_id").is_in(list(case_ids))).select(
        "case_id",
        "action",
        recorded_at_utc=_utc("recorded_at"),
        analyst="analyst",
        assignee="assignee",
        due=pl.col("due").cast(pl.String),
        status="status",
        outcome="outcome",
        purpose="purpose",
        note="note",
        flag_ids=pl.col("flag_ids").list.join(" "),
        review_ids=pl.col("review_ids").list.join(" "),
    )


def gather_evidence(
    scope: EvidenceScope,
    flag_ids: Sequence[str],
    *,
    timezone: str,
    unexplained_text: str,
    training_course: str,
    overdue_months: int,
    lookback_days: int,
) -> EvidenceTables:
    """Everything a pack shows about ``flag_ids`` (which must exist: see ``missing_flags``);
    ``lookback_days`` (``[scoring] lookback_days``) stands in for the look-back of a pattern
    flag stored without its own (``score.pattern_scope.pattern_windows``)."""
    flags = flags_in_pack(scope, flag_ids).collect().lazy()
    accesses = access_rows(scope, flags, timezone, unexplained_text, lookback_days).collect()
    in_scope = accesses.lazy().select("user_id", "occurred_at")
    # shifts and assignments around each access, and around each flag's own window (an audit
    # gap of a vanished user has no access, but the shift it vanished from matters)
    moments = pl.concat(
        [
            in_scope,
            flags.select("user_id", occurred_at=pl.col("first_access_at")),
            flags.select("user_id", occurred_at=pl.col("last_access_at")),
        ]
    ).filter(pl.col("user_id").is_not_null() & pl.col("occurred_at").is_not_null())
    subjects = (
        accesses.lazy()
        .filter(pl.col("record_id").is_not_null())
        .select("record_type", "record_id")
        .unique()
    )
    users = (
        pl.concat([flags.select("user_id"), in_scope.select("user_id")])
        .filter(pl.col("user_id").is_not_null())
        .unique()
    )
    # judged at the user's last access in scope, or the flag's end (an audit gap has no access)
    last_access = (
        pl.concat([in_scope, flags.select("user_id", occurred_at=pl.col("last_access_at"))])
        .group_by("user_id")
        .agg(last_access=pl.col("occurred_at").max())
    )
    reviews = (
        scope.reviews.join(flags.select("flag_id"), on="flag_id", how="semi")
        .sort("reviewed_at", "review_id")
        .select(
            "review_id",
            "flag_id",
            reviewed_at_utc=_utc("reviewed_at"),
            reviewer="reviewer",
            status="status",
            outcome="outcome",
            purpose="purpose",
            note="note",
        )
    )
    return EvidenceTables(
        flags=_flag_rows(flags, scope.events, lookback_days).collect(),
        accesses=accesses.drop("occurred_at"),
        shifts=shifts_around(scope, moments, timezone).collect(),
        assignments=assignments_around(scope, moments, subjects, timezone).collect(),
        training=scope.training.join(users, on="user_id", how="semi")
        .sort("user_id", "completed_at", "course", descending=[False, True, False])
        .select("user_id", "course", completed_at=pl.col("completed_at").cast(pl.String))
        .collect(),
        apsp=training_position(
            scope.training, users, last_access, training_course, overdue_months
        ).collect(),
        reviews=reviews.collect(),
        users=users.join(scope.staff.select("user_id", "role", "team_id"), on="user_id", how="left")
        .sort("user_id")
        .collect(),
        timezone=timezone,
    )
