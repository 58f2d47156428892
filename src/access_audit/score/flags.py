"""Flags, not rows: a user's accesses to one subject on one day become one scored episode.

An episode is reviewable when one of its accesses carries a *trigger* indicator (unexplained, own
record, declared association, a justification that does not fit, explained-but-excessive); the
other indicators add to it. Points add up per indicator (the strongest instance of each), the score
is 100 * (1 - exp(-points / scale)), and every reason carries its share of the points.
"""

from __future__ import annotations

import polars as pl

from access_audit.score.mined import WEAKLY, weak_sentence
from access_audit.score.peers import PEER_COLUMNS, no_peer_columns, peer_sentence
from access_audit.score.rules import Rules, fmt, render
from access_audit.tables import FLAG_EVENTS, FLAGS

FLAG_SCHEMA = FLAGS.full_schema()
FLAG_EVENT_SCHEMA = FLAG_EVENTS.full_schema()
GROUP = ["user_id", "record_type", "record_id", "day"]


def _exact_sum(points: pl.Expr) -> pl.Expr:
    """A sum of points that does not depend on the order the engine adds them in (a float sum
    does, in its last bit): in integer nano-points, so re-scoring unchanged data gives
    identical flags and commits nothing new."""
    return (points * 1e9).round().cast(pl.Int64).sum() / 1e9


def score_from_points(points: pl.Expr, scale: float) -> pl.Expr:
    return (100 * (1 - (-points / scale).exp())).round(1)


def flag_id_part(value: pl.Expr | str) -> pl.Expr:
    """An id as one part of a flag id: ``%`` and ``-`` percent-encoded (``%25``, ``%2D``), so
    the ``-`` between parts is never inside one and different (day, user, subject) tuples never
    share a flag id. Ids without either character are unchanged, so flag ids stay readable and
    earlier reviews still name their flags."""
    column = pl.col(value) if isinstance(value, str) else value
    return column.str.replace_all("%", "%25", literal=True).str.replace_all(
        "-", "%2D", literal=True
    )


def flag_id(day: pl.Expr, user: pl.Expr, subject: pl.Expr) -> pl.Expr:
    """``F<yyyymmdd>-<user>-<subject>``, each id part encoded by ``flag_id_part``: injective,
    stable across re-runs, typeable."""
    return fmt("F{}-{}-{}", day.dt.strftime("%Y%m%d"), flag_id_part(user), flag_id_part(subject))


def reason_text(rules: Rules) -> pl.Expr:
    """Each indicator's sentence from rules.toml, filled with its evidence."""
    expression: pl.Expr = pl.lit(None, dtype=pl.String)
    for code, indicator in reversed(list(rules.indicators.items())):
        text = render(indicator.text, evidence=pl.col("evidence").fill_null(""))
        expression = pl.when(pl.col("code") == code).then(text).otherwise(expression)
    return expression


def episodes(
    targets: pl.LazyFrame, indicators: pl.LazyFrame, rules: Rules
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Daily (user, subject) episodes with a trigger, scored; and which events each holds."""
    triggers = [code for code, ind in rules.indicators.items() if ind.trigger]
    if "peer_rate" not in indicators.collect_schema().names():
        indicators = indicators.with_columns(**no_peer_columns())
    if WEAKLY not in indicators.collect_schema().names():
        indicators = indicators.with_columns(pl.lit(None, dtype=pl.String).alias(WEAKLY))
    keyed = indicators.join(targets.select("system", "event_id", *GROUP), on=["system", "event_id"])
    per_code = keyed.group_by(*GROUP, "code").agg(
        # the strongest instance; ties broken by the evidence text, so re-runs are identical
        pl.col("points").max(),
        pl.col("evidence", *PEER_COLUMNS, WEAKLY)
        .sort_by(["points", "evidence"], descending=[True, False], nulls_last=True)
        .first(),
    )
    triggered = per_code.filter(pl.col("code").is_in(triggers)).select(GROUP).unique()
    reasons = (
        per_code.join(triggered, on=GROUP)
        .with_columns(text=pl.concat_str(reason_text(rules), peer_sentence(rules), weak_sentence()))
        .with_columns(total=_exact_sum(pl.col("points")).over(GROUP))
        .group_by(GROUP)
        .agg(
            points=_exact_sum(pl.col("points")),
            reasons=pl.struct(
                "code", "text", weight=(pl.col("points") / pl.col("total")).fill_nan(0.0).round(3)
            ).sort_by(["points", "code"], descending=[True, False]),
        )
    )
    activity = (
        targets.join(triggered, on=GROUP)
        .group_by(GROUP)
        .agg(
            first_access_at=pl.col("occurred_at").min(),
            last_access_at=pl.col("occurred_at").max(),
            event_count=pl.len(),
            unexplained_count=(~pl.col("explained")).sum().cast(pl.Int64),
        )
    )
    identity = flag_id(pl.col("day"), pl.col("user_id"), pl.col("record_id"))
    score = score_from_points(pl.col("points"), rules.scale)
    flags = reasons.join(activity, on=GROUP).select(
        flag_id=identity,
        kind=pl.lit("episode"),
        user_id="user_id",
        subject_type="record_type",
        subject_id="record_id",
        person_id=pl.when(pl.col("record_type") == "person").then("record_id"),
        first_access_at="first_access_at",
        last_access_at="last_access_at",
        score=score,
        rule_score=score,
        points="points",
        alert=score >= rules.alert_threshold,
        reasons="reasons",
        event_count="event_count",
        unexplained_count="unexplained_count",
        model_version=pl.lit(rules.version),
        note=pl.lit(None, dtype=pl.String),
        rules_version=pl.lit(rules.version),
        cleared_at=pl.lit(None, dtype=FLAG_SCHEMA["cleared_at"]),
        pattern_subjects=pl.lit(None, dtype=FLAG_SCHEMA["pattern_subjects"]),
        pattern_lookback_days=pl.lit(None, dtype=FLAG_SCHEMA["pattern_lookback_days"]),
        day="day",
    )
    events = targets.join(triggered, on=GROUP).select(
        flag_id=identity, system="system", event_id="event_id", day="day"
    )
    return flags, events
