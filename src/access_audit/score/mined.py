"""Mined explanations: templates learned from the look-back, and collaborative groups.

After Fabbri & LeFevre (PVLDB 2011) and Fabbri et al. (JAMIA 2013), explanation *templates* are
mined from the log and the reference tables, each kept only with enough support and confidence;
after Chen & Malin's CADS (2011), users who open the same records form collaborative groups, and a
record in a user's group's working set is weakly explained.

Every kind is learned from the look-back strictly before the scored day (never the day itself,
never truth) and applied to that day's accesses that nothing recorded explains. A mined kind is
weaker than a recorded assignment: it never makes an access `explained` (so every unexplained-only
risk indicator still fires), it only scales the points of the indicators that measure the absence
of an explanation ([mined] discounted) by (1 - strength). Each kind is a registered builder; the
settings name exactly the registered kinds. All transforms are frames in, frame out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import polars as pl

from access_audit.exprs import fmt
from access_audit.score.explain import Inputs
from access_audit.score.rules import Rules, render
from access_audit.tables import WEAK_EXPLANATIONS

WEAK_SCHEMA = WEAK_EXPLANATIONS.schema()
LOOKUP = ["user_id", "record_type", "record_id", "day"]
RECORD = ["record_type", "record_id"]
KEYS = ["system", "event_id"]
WEAKLY = "weakly"
"""The column, on a discounted indicator, naming the weak explanation that lowered it."""


@dataclass(frozen=True)
class Mining:
    """What a mined kind reads for one scored day: the look-back before it, and the day."""

    inputs: Inputs
    history: pl.LazyFrame
    """Accesses that opened a record in the look-back strictly before `day`, with `explained`:
    read only by the kinds registered as reading accesses (empty otherwise)."""
    lookups: pl.LazyFrame
    """The same look-back as lookups (a user opening a record on a day: LOOKUP and `explained`,
    any of its rows recorded), from the stored aggregates (score/lookback.py)."""
    today: pl.LazyFrame
    """The day's accesses that opened a record, with `explained` (recorded explanations only)."""
    units: pl.LazyFrame
    """user_id -> unit (their team, else their role) and team (or null)."""
    day: date
    groups: pl.DataFrame | None = None
    """The collaborative groups (`collaborative_groups`) fitted at the day's anchor
    (score/anchors.py); None: fitted on `history`."""


Miner = Callable[[Mining, dict[str, Any]], pl.LazyFrame]
MINERS: dict[str, Miner] = {}
READING_ACCESSES: set[str] = set()
"""The kinds that read the look-back's accesses themselves (`Mining.history`), not its lookups."""


def miner(name: str, *, reads_accesses: bool = False) -> Callable[[Miner], Miner]:
    """Register a mined explanation kind under its settings name ([mined.<name>]); one that
    `reads_accesses` needs the look-back's raw accesses, the others its lookups only."""

    def register(build: Miner) -> Miner:
        MINERS[name] = build
        if reads_accesses:
            READING_ACCESSES.add(name)
        return build

    return register


def _percent(share: pl.Expr) -> pl.Expr:
    return fmt("{}%", (share * 100).round(0).cast(pl.Int64))


def _weak(
    frame: pl.LazyFrame,
    name: str,
    settings: dict[str, Any],
    unit: pl.Expr,
    via: pl.Expr,
    support: pl.Expr,
    users: pl.Expr,
    confidence: pl.Expr,
) -> pl.LazyFrame:
    """One weak explanation per event: the best-supported template that fits it."""
    detail = render(
        settings["text"],
        unit=unit,
        via=via,
        support=support,
        users=users,
        confidence=_percent(confidence),
    )
    return (
        frame.select(
            *KEYS,
            kind=pl.lit(name),
            via=via.cast(pl.String),
            detail=detail,
            strength=pl.lit(float(settings["strength"])),
            support=support.cast(pl.Int64),
            confidence=confidence.cast(pl.Float64),
        )
        .sort([*KEYS, "support", "via"], descending=[False, False, True, False])
        .unique(KEYS, keep="first", maintain_order=True)
    )


def _lookups(accesses: pl.LazyFrame) -> pl.LazyFrame:
    """A user opening a record on a day, when first, and whether any of it was recorded."""
    return accesses.group_by(LOOKUP).agg(
        at=pl.col("occurred_at").min(), explained=pl.col("explained").any()
    )


def _unexplained(m: Mining) -> pl.LazyFrame:
    return m.today.filter(~pl.col("explained"))


# -- users of unit U open records linked to incidents of type T -----------------------------------
def record_categories(inputs: Inputs) -> pl.LazyFrame:
    """Each record and the category of every incident it is or links, with when it opened."""
    incidents = inputs.incidents.select("incident_id", "category", "opened_at")
    own = incidents.select(
        record_type=pl.lit("incident"),
        record_id="incident_id",
        category="category",
        opened_at="opened_at",
    )
    people = inputs.incident_persons.select("incident_id", "person_id").join(
        incidents, on="incident_id"
    )
    linked = people.select(
        record_type=pl.lit("person"),
        record_id="person_id",
        category="category",
        opened_at="opened_at",
    )
    return pl.concat([own, linked])


def _with_categories(frame: pl.LazyFrame, inputs: Inputs, at: str) -> pl.LazyFrame:
    """The categories of the incidents a record was linked to, as they stood at `at`."""
    linked = frame.join(record_categories(inputs), on=RECORD)
    return linked.filter(pl.col("opened_at") <= pl.col(at))


@miner("unit_incident_type", reads_accesses=True)
def unit_incident_type(m: Mining, s: dict[str, Any]) -> pl.LazyFrame:
    history = _lookups(m.history).join(m.units, on="user_id")
    fits = _with_categories(history, m.inputs, "at").select(*LOOKUP, "unit", "category").unique()
    unit_total = history.group_by("unit").agg(unit_lookups=pl.len())
    force_total = history.select(force_lookups=pl.len())
    category_total = fits.group_by("category").agg(category_lookups=pl.len())
    templates = (
        fits.group_by("unit", "category")
        .agg(support=pl.len(), users=pl.col("user_id").n_unique())
        .join(unit_total, on="unit")
        .join(category_total, on="category")
        .join(force_total, how="cross")
        .with_columns(confidence=pl.col("support") / pl.col("unit_lookups"))
        .with_columns(
            lift=pl.col("confidence") / (pl.col("category_lookups") / pl.col("force_lookups"))
        )
        .filter(
            (pl.col("support") >= s["min_support"])
            & (pl.col("users") >= s["min_users"])
            & (pl.col("confidence") >= s["min_confidence"])
            & (pl.col("lift") >= s["min_lift"])
        )
        .select("unit", "category", "support", "users", "confidence")
    )
    today = _with_categories(
        _unexplained(m).join(m.units, on="user_id"), m.inputs, "occurred_at"
    ).join(templates, on=["unit", "category"])
    return _weak(
        today,
        "unit_incident_type",
        s,
        pl.col("unit"),
        pl.col("category"),
        pl.col("support"),
        pl.col("users"),
        pl.col("confidence"),
    )


# -- opened the same day as a teammate who had a recorded reason ----------------------------------
def _recorded_by_mates(lookups: pl.LazyFrame) -> pl.LazyFrame:
    """Each lookup with a teammate's recorded lookup of the same record that day (first mate)."""
    recorded = lookups.filter("explained").select("team", *RECORD, "day", mate=pl.col("user_id"))
    return (
        lookups.join(recorded, on=["team", *RECORD, "day"])
        .filter(pl.col("mate") != pl.col("user_id"))
        .group_by(*LOOKUP, "team")
        .agg(pl.col("mate").min(), pl.col("explained").first())
    )


@miner("teammate_same_day")
def teammate_same_day(m: Mining, s: dict[str, Any]) -> pl.LazyFrame:
    teams = m.units.filter(pl.col("team").is_not_null()).select("user_id", "team")
    co = _recorded_by_mates(m.lookups.join(teams, on="user_id"))
    templates = (
        co.group_by("team")
        .agg(
            support=pl.len(),
            users=pl.col("user_id").n_unique(),
            confidence=pl.col("explained").mean(),
        )
        .filter(
            (pl.col("support") >= s["min_support"])
            & (pl.col("users") >= s["min_users"])
            & (pl.col("confidence") >= s["min_confidence"])
        )
    )
    today_lookups = _lookups(m.today).join(teams, on="user_id")
    mates = _recorded_by_mates(today_lookups).drop("explained")
    today = _unexplained(m).join(mates, on=LOOKUP).join(templates, on="team")
    return _weak(
        today,
        "teammate_same_day",
        s,
        pl.col("team"),
        pl.col("mate"),
        pl.col("support"),
        pl.col("users"),
        pl.col("confidence"),
    )


# -- a reason code this unit's recorded accesses use consistently ---------------------------------
@miner("unit_reason_code", reads_accesses=True)
def unit_reason_code(m: Mining, s: dict[str, Any]) -> pl.LazyFrame:
    if "reason_code" not in m.history.collect_schema().names():
        return pl.LazyFrame(schema=WEAK_SCHEMA)
    coded = pl.col("reason_code").is_not_null()
    templates = (
        m.history.filter(coded)
        .join(m.units, on="user_id")
        .group_by("unit", "reason_code")
        .agg(
            support=pl.col("explained").sum(),
            users=pl.col("user_id").filter("explained").n_unique(),
            confidence=pl.col("explained").mean(),
        )
        .filter(
            (pl.col("support") >= s["min_support"])
            & (pl.col("users") >= s["min_users"])
            & (pl.col("confidence") >= s["min_confidence"])
        )
    )
    today = (
        _unexplained(m)
        .filter(coded)
        .join(m.units, on="user_id")
        .join(templates, on=["unit", "reason_code"])
    )
    return _weak(
        today,
        "unit_reason_code",
        s,
        pl.col("unit"),
        pl.col("reason_code"),
        pl.col("support"),
        pl.col("users"),
        pl.col("confidence"),
    )


# -- collaborative groups (CADS) ------------------------------------------------------------------
def similarity_edges(
    opened: pl.LazyFrame, min_shared: int, max_users: int, neighbours: int
) -> pl.LazyFrame:
    """User-user edges weighted by the cosine similarity of the records they opened, over the
    records few enough users opened to say who works together; each user's `neighbours`
    strongest ties, kept when mutual (a mutual k-nearest-neighbour graph: without it, a force's
    dense web of shared records makes one community of nearly everyone). Both directions."""
    degree = opened.group_by("user_id").agg(records=pl.len())
    popular = opened.group_by(RECORD).agg(n=pl.len()).filter(pl.col("n") > max_users)
    telling = opened.join(popular, on=RECORD, how="anti")
    pairs = (
        telling.join(telling, on=RECORD, suffix="_other")
        .filter(pl.col("user_id") < pl.col("user_id_other"))
        .group_by("user_id", "user_id_other")
        .agg(shared=pl.len())
        .filter(pl.col("shared") >= min_shared)
        .join(degree, on="user_id")
        .join(degree, left_on="user_id_other", right_on="user_id", suffix="_other")
        .select(
            "user_id",
            other="user_id_other",
            # rounded so that the float sums of label propagation never depend on their order
            weight=(pl.col("shared") / (pl.col("records") * pl.col("records_other")).sqrt()).round(
                9
            ),
        )
    )
    both = pl.concat([pairs, pairs.select(user_id="other", other="user_id", weight="weight")])
    nearest = (
        both.sort(["user_id", "weight", "other"], descending=[False, True, False])
        .with_columns(rank=pl.int_range(pl.len()).over("user_id"))
        .filter(pl.col("rank") < neighbours)
        .drop("rank")
    )
    mirrored = nearest.select(user_id="other", other="user_id")
    return nearest.join(mirrored, on=["user_id", "other"], how="semi")


def label_propagation(edges: pl.DataFrame, iterations: int) -> pl.DataFrame:
    """Communities by synchronous label propagation: each user takes the label with the largest
    total edge weight among their neighbours (their own on a tie, then the smallest), starting
    from their own id, until nothing changes or `iterations` rounds. Deterministic: every choice
    is a sort. Returns (user_id, group)."""
    nodes = edges.select("user_id").unique().sort("user_id")
    labels = nodes.with_columns(group=pl.col("user_id"))
    for _ in range(iterations):
        votes = (
            edges.join(labels, left_on="other", right_on="user_id")
            .group_by("user_id", "group")
            .agg(weight=pl.col("weight").sum().round(9))
            .join(labels.rename({"group": "own"}), on="user_id")
            .with_columns(is_own=pl.col("group") == pl.col("own"))
            .sort(
                ["user_id", "weight", "is_own", "group"],
                descending=[False, True, True, False],
            )
            .unique("user_id", keep="first", maintain_order=True)
            .select("user_id", new="group")
        )
        updated = (
            labels.join(votes, on="user_id", how="left")
            .select("user_id", group=pl.coalesce("new", "group"))
            .sort("user_id")
        )
        if updated.equals(labels):
            break
        labels = updated
    return labels


def collaborative_groups(lookups: pl.LazyFrame, s: dict[str, Any]) -> pl.DataFrame:
    """The collaborative groups of a look-back's lookups (or accesses): (user_id, group,
    members), groups of at least `min_members` only."""
    opened = lookups.select("user_id", *RECORD).unique()
    # Label propagation iterates until nothing changes, so it works on collected frames.
    edges = (
        similarity_edges(opened, s["min_shared_records"], s["max_record_users"], s["neighbours"])
        .collect()
        .sort("user_id", "other")
    )
    groups = label_propagation(edges, s["iterations"])
    sizes = groups.group_by("group").agg(members=pl.len())
    return groups.join(sizes, on="group").filter(pl.col("members") >= s["min_members"])


@miner("collaborative_group")
def collaborative_group(m: Mining, s: dict[str, Any]) -> pl.LazyFrame:
    opened = m.lookups.select("user_id", *RECORD).unique()
    groups = (m.groups if m.groups is not None else collaborative_groups(m.lookups, s)).lazy()
    working_set = opened.join(groups, on="user_id").group_by("group", *RECORD).agg(openers=pl.len())
    own = opened.select("user_id", *RECORD, self_opened=pl.lit(1, dtype=pl.UInt32))
    today = (
        _unexplained(m)
        .join(groups, on="user_id")
        .join(working_set, on=["group", *RECORD])
        .join(own, on=["user_id", *RECORD], how="left")
        .with_columns(others=pl.col("openers") - pl.col("self_opened").fill_null(0))
        .filter(pl.col("others") >= s["min_openers"])
    )
    return _weak(
        today,
        "collaborative_group",
        s,
        pl.col("group"),
        pl.col("group"),
        pl.col("others"),
        pl.col("members"),
        pl.col("others") / (pl.col("members") - 1),
    )


# -- the stage ------------------------------------------------------------------------------------
def units(staff: pl.LazyFrame) -> pl.LazyFrame:
    """Each user's unit (their team, else their role) and team."""
    return staff.select("user_id", unit=pl.coalesce("team_id", "role"), team="team_id").unique(
        "user_id", keep="first", maintain_order=True
    )


def reads_accesses(rules: Rules) -> bool:
    """Whether an enabled kind reads the look-back's accesses (not only its lookups)."""
    return any(name in READING_ACCESSES for name in enabled_kinds(rules))


def enabled_kinds(rules: Rules) -> dict[str, dict[str, Any]]:
    return {
        name: settings
        for name, settings in rules.mined.items()
        if isinstance(settings, dict) and settings["enabled"]
    }


def mine_day(
    inputs: Inputs,
    rules: Rules,
    history: pl.LazyFrame,
    today: pl.LazyFrame,
    day: date,
    groups: pl.DataFrame | None = None,
    lookups: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The weak explanations of the unexplained accesses of `day` in `today`, each kind learned
    from `history`'s accesses of the `lookback_days` before `day` (never the day itself or a later
    one, whatever else `history` holds). Both carry `explained` (recorded explanations only).
    `groups`: the collaborative groups to use (fitted at the day's anchor); None fits them on
    the day's own look-back. `lookups`: the look-back's lookups (score/lookback.py), of which
    the days before `day` are read; None derives them from `history`."""
    kinds = enabled_kinds(rules)
    if not kinds:
        return pl.LazyFrame(schema=WEAK_SCHEMA)
    start = day - timedelta(days=rules.lookback_days)
    opened = pl.col("record_id").is_not_null()
    before = pl.col("day").is_between(start, day, closed="left")
    history = history.filter(opened & before)
    mining = Mining(
        inputs=inputs,
        history=history,
        lookups=(_lookups(history) if lookups is None else lookups.filter(opened & before)).select(
            *LOOKUP, "explained"
        ),
        today=today.filter(opened & (pl.col("day") == day)),
        units=units(inputs.staff),
        day=day,
        groups=groups,
    )
    parts = [
        MINERS[name](mining, settings).select(WEAK_SCHEMA.names())
        for name, settings in kinds.items()
    ]
    return pl.concat(parts).cast(WEAK_SCHEMA)  # type: ignore[arg-type]


def mine(inputs: Inputs, rules: Rules, context: pl.LazyFrame, days: Sequence[date]) -> pl.LazyFrame:
    """The weak explanations of the unexplained accesses of `days`, each kind learned from the
    `lookback_days` before each day. `context` holds every access of the look-back and the days,
    with `explained` (recorded explanations only)."""
    if not enabled_kinds(rules) or not days:
        return pl.LazyFrame(schema=WEAK_SCHEMA)
    return pl.concat([mine_day(inputs, rules, context, context, day) for day in sorted(set(days))])


def weakened(found: pl.LazyFrame, weak: pl.LazyFrame, rules: Rules) -> pl.LazyFrame:
    """The indicators with the absence-of-explanation ones ([mined] discounted) scaled by
    (1 - strength) of the strongest weak explanation of their access (they never add up), and
    `weakly` naming it. Every other indicator is left as it was: a weak explanation lowers a
    score, it never erases a risk."""
    best = (
        weak.sort([*KEYS, "strength", "kind"], descending=[False, False, True, False])
        .unique(KEYS, keep="first", maintain_order=True)
        .select(*KEYS, weak_strength="strength", weak_detail="detail")
    )
    discounted = pl.col("code").is_in(list(rules.mined["discounted"]))
    hit = discounted & pl.col("weak_strength").is_not_null()
    return (
        found.join(best, on=KEYS, how="left")
        .with_columns(
            points=pl.when(hit)
            .then(pl.col("points") * (1 - pl.col("weak_strength")))
            .otherwise(pl.col("points")),
            **{WEAKLY: pl.when(hit).then(pl.col("weak_detail"))},
        )
        .drop("weak_strength", "weak_detail")
    )


def weak_sentence() -> pl.Expr:
    """'; weakly explained: users of MASH open records linked to ...' (or '')."""
    return (
        pl.when(pl.col(WEAKLY).is_not_null())
        .then(fmt("; weakly explained: {}", pl.col(WEAKLY)))
        .otherwise(pl.lit(""))
    )
