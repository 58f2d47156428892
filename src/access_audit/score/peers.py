"""Weights from peer base rates: an indicator counts for as much as it surprises the user's peers.

A *lookup* is a user opening one record on one day (however many audit rows it wrote). For each
indicator, over the look-back, the peers' rate is the share of their lookups in the indicator's
scope (`when`) that carry it. Peers are those who do the same job in the same unit (the user's
team, their role within it), shrunk towards their role force-wide, shrunk towards the whole force,
shrunk towards a prior rate; the user's own lookups are left out of their peers'. A team is not
one job: a supervisor in a control-room team samples crime reports its call handlers never open,
so a team's rate alone would make a supervisor's routine look ten times their peers'.
The user's rate is the share of *their* lookups that day, shrunk towards the peers' rate. An
indicator's points are its prior weight (rules.toml) times

    clip(ln(user rate / peer rate) / ln([peers] full_weight_ratio), 0, 1)

so what a unit does every day (vetting looking up colleagues, a safeguarding hub reading vulnerable
people) counts for little there, and in full where it is rare. All joins and group-bys; no rows.
"""

from __future__ import annotations

import math

import polars as pl

from access_audit.score.lookback import day_lookups, user_day_hits, user_days
from access_audit.score.rules import Rules, fmt

LOOKUP = ["user_id", "record_type", "record_id", "day"]
PEER_COLUMNS = [
    "peers",
    "peer_rate",
    "today_hits",
    "today_lookups",
    "window_hits",
    "window_lookups",
    "user_rate",
]
"""What `explain` shows beside an indicator: who the peers are and their rate; the user's lookups
carrying it and in its scope, on the day and over the look-back and the day (window); and the
user's rate the surprise was taken from ('day' or 'lookback', rules.toml [peers] user_rate)."""


def _scopes(rules: Rules) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            "code": list(rules.indicators),
            "when": [i.peer_scope or i.when for i in rules.indicators.values()],
        },
        schema={"code": pl.String, "when": pl.String},
    )


def _in_scope(users: pl.LazyFrame, rules: Rules, keys: list[str]) -> pl.LazyFrame:
    """Lookups in each indicator's scope, counted by `keys`: (keys..., code, n). `users` is the
    per-user-day scope counts (lookback.user_days)."""
    counted = users.group_by(keys).agg(pl.col("unexplained", "explained", "any").sum())
    scopes = _scopes(rules)
    long = counted.unpivot(
        index=keys, on=["unexplained", "explained", "any"], variable_name="when", value_name="n"
    )
    return long.join(scopes, on="when").select(*keys, "code", pl.col("n").cast(pl.Int64))


def _hits(hits: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Lookups carrying each indicator, counted by `keys`: (keys..., code, k). `hits` is the
    per-user-day counts (lookback.user_day_hits)."""
    return hits.group_by(*keys, "code").agg(k=pl.col("k").sum().cast(pl.Int64))


def _shrunk(k: pl.Expr, n: pl.Expr, prior: pl.Expr, strength: float) -> pl.Expr:
    return (k + strength * prior) / (n + strength)


def peer_rates(
    history: pl.LazyFrame, context: pl.LazyFrame, staff: pl.LazyFrame, rules: Rules
) -> pl.LazyFrame:
    """Each (user, code): their peers' rate of the indicator over the look-back, and who the
    peers are ('team X' or 'role Y'). `history` is (system, event_id, code) of the look-back,
    `context` its accesses with their `explained` flag."""
    users, hits = _aggregates(history, context)
    return peer_rates_from(users, hits, staff, rules)


def _aggregates(history: pl.LazyFrame, context: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    return user_days(day_lookups(context)), user_day_hits(history, context)


def peer_rates_from(
    users: pl.LazyFrame, hits: pl.LazyFrame, staff: pl.LazyFrame, rules: Rules
) -> pl.LazyFrame:
    """`peer_rates` from the look-back's aggregates: per-user-day scope counts and hits."""
    settings = rules.peers
    per_user = (
        _in_scope(users, rules, ["user_id"])
        .join(_hits(hits, ["user_id"]), on=["user_id", "code"], how="left")
        .with_columns(pl.col("k").fill_null(0))
        .join(staff.select("user_id", "role", "team_id"), on="user_id", how="left")
        .with_columns(
            role=pl.col("role").fill_null("(unknown)"),
        )
    )
    force = per_user.group_by("code").agg(force_k=pl.col("k").sum(), force_n=pl.col("n").sum())
    role = per_user.group_by("role", "code").agg(role_k=pl.col("k").sum(), role_n=pl.col("n").sum())
    # the team's members of the user's role: the same job in the same unit
    team = (
        per_user.filter(pl.col("team_id").is_not_null())
        .group_by("team_id", "role", "code")
        .agg(team_k=pl.col("k").sum(), team_n=pl.col("n").sum())
    )
    p_force = _shrunk(
        pl.col("force_k"),
        pl.col("force_n"),
        pl.lit(float(settings["prior_rate"])),
        float(settings["force_prior_lookups"]),
    )
    strength = float(settings["peer_prior_lookups"])
    # leave the user's own lookups out of their peers'
    p_role = _shrunk(
        pl.col("role_k") - pl.col("k"), pl.col("role_n") - pl.col("n"), pl.col("p_force"), strength
    )
    p_team = _shrunk(
        (pl.col("team_k") - pl.col("k")).fill_null(0),
        (pl.col("team_n") - pl.col("n")).fill_null(0),
        pl.col("p_role"),
        strength,
    )
    return (
        per_user.join(force, on="code")
        .join(role, on=["role", "code"])
        .join(team, on=["team_id", "role", "code"], how="left")
        .with_columns(p_force=p_force)
        .with_columns(p_role=p_role)
        .with_columns(
            peer_rate=pl.when(pl.col("team_n").is_not_null()).then(p_team).otherwise("p_role"),
            peers=pl.when(pl.col("team_n").is_not_null())
            .then(fmt("team {} ({})", "team_id", pl.col("role").str.replace_all("_", " ")))
            .otherwise(fmt("role {}", pl.col("role").str.replace_all("_", " "))),
        )
        .select("user_id", "code", "peers", "peer_rate", window_hits="k", window_lookups="n")
    )


def peer_weighted(
    found: pl.LazyFrame,
    history: pl.LazyFrame,
    context: pl.LazyFrame,
    targets: pl.LazyFrame,
    staff: pl.LazyFrame,
    rules: Rules,
) -> pl.LazyFrame:
    """The target indicators `found`, their points scaled by how surprising each is for the
    user's peers, with the figures `explain` shows (peers, peer_rate, today_hits, today_lookups).
    `history` is every indicator over the look-back, the targets' included."""
    users, hits = _aggregates(history, context)
    return peer_weighted_from(found, targets, users, hits, staff, rules)


def peer_weighted_from(
    found: pl.LazyFrame,
    targets: pl.LazyFrame,
    users: pl.LazyFrame,
    hits: pl.LazyFrame,
    staff: pl.LazyFrame,
    rules: Rules,
) -> pl.LazyFrame:
    """`peer_weighted` from the look-back's aggregates (the targets' days included)."""
    settings = rules.peers
    keyed = found.join(
        targets.select("system", "event_id", *LOOKUP), on=["system", "event_id"], how="left"
    )
    if not settings["enabled"]:
        return keyed.with_columns(**no_peer_columns()).select(
            *found.collect_schema().names(), *PEER_COLUMNS
        )
    today_keys = ["user_id", "day"]
    target_days = targets.select("day").unique()
    today = (
        _in_scope(users.join(target_days, on="day", how="semi"), rules, today_keys)
        .join(
            _hits(hits.join(target_days, on="day", how="semi"), today_keys),
            on=[*today_keys, "code"],
            how="left",
        )
        .select(*today_keys, "code", today_lookups="n", today_hits=pl.col("k").fill_null(0))
    )
    rates = peer_rates_from(users, hits, staff, rules)
    user_strength = float(settings["user_prior_lookups"])
    over = settings["user_rate"]
    day_rate = _shrunk(
        pl.col("today_hits"), pl.col("today_lookups"), pl.col("peer_rate"), user_strength
    )
    window_rate = _shrunk(
        pl.col("window_hits"), pl.col("window_lookups"), pl.col("peer_rate"), user_strength
    )
    # the day measures a rate only if the peers would show a hit in as many lookups
    day_measures = pl.col("today_lookups") * pl.col("peer_rate") >= 1.0
    measured = {
        "day": pl.lit("day"),
        "lookback": pl.lit("lookback"),
        "adaptive": pl.when(day_measures).then(pl.lit("day")).otherwise(pl.lit("lookback")),
    }[over]
    user_rate = pl.when(pl.col("user_rate") == "lookback").then(window_rate).otherwise(day_rate)
    surprise = (user_rate / pl.col("peer_rate")).log() / math.log(
        float(settings["full_weight_ratio"])
    )
    return (
        keyed.join(today, on=[*today_keys, "code"], how="left")
        .join(rates, on=["user_id", "code"], how="left")
        .with_columns(user_rate=measured)
        .with_columns(
            points=pl.when(pl.col("peer_rate").is_not_null())
            .then(pl.col("points") * surprise.clip(0.0, 1.0))
            .otherwise(pl.col("points")),
        )
        .select(*found.collect_schema().names(), *PEER_COLUMNS)
    )


def no_peer_columns() -> dict[str, pl.Expr]:
    """The PEER_COLUMNS of an indicator no peer rate weighed (peers switched off, or none)."""
    return {
        "peers": pl.lit(None, dtype=pl.String),
        "peer_rate": pl.lit(None, dtype=pl.Float64),
        "today_hits": pl.lit(None, dtype=pl.Int64),
        "today_lookups": pl.lit(None, dtype=pl.Int64),
        "window_hits": pl.lit(None, dtype=pl.Int64),
        "window_lookups": pl.lit(None, dtype=pl.Int64),
        "user_rate": pl.lit(None, dtype=pl.String),
    }


def peer_sentence(rules: Rules) -> pl.Expr:
    """'; the same holds for 0.4% of unexplained lookups by team MASH (safeguarding officer), and
    for 1 of the 3 unexplained lookups they made today' — over the lookups the rate is taken over
    (the indicator's peer scope: unexplained, explained, or all), so it reads the same after a
    sentence that says what the lookup did and after one that says what it lacked — or, when the
    user's rate is taken over the look-back, '..., and for 4 of the 270 ... they made in the
    look-back and today (1 of 3 today)' (or '')."""
    scope: pl.Expr = pl.lit("lookups")
    for code, indicator in rules.indicators.items():
        kind = indicator.peer_scope or indicator.when
        if kind != "any":
            scope = pl.when(pl.col("code") == code).then(pl.lit(f"{kind} lookups")).otherwise(scope)
    percent = pl.col("peer_rate") * 100
    peers = fmt(
        "; the same holds for {}% of {} by {}, and for ",
        # a rate that rounds to 0.0% is still above nothing (peers' rates are shrunk to a prior)
        pl.when(percent < 0.05)
        .then(pl.lit("less than 0.1"))
        .otherwise(percent.round(1).cast(pl.String)),
        scope,
        "peers",
    )
    today = fmt("{} of the {} {} they made today", "today_hits", "today_lookups", scope)
    window = fmt(
        "{} of the {} {} they made in the look-back and today ({} of {} today)",
        "window_hits",
        "window_lookups",
        scope,
        "today_hits",
        "today_lookups",
    )
    theirs = pl.when(pl.col("user_rate") == "lookback").then(window).otherwise(today)
    return (
        pl.when(pl.col("peer_rate").is_not_null())
        .then(pl.concat_str(peers, theirs))
        .otherwise(pl.lit(""))
    )
