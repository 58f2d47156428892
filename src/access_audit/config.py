"""Workspace settings: one typed tree, validated once when a home's `access-audit.toml` is loaded.

The tree has the home's own sections ([ingest], [store], [cases], [columns.<table>]) and the
scoring sections ([scoring], [explanations.<kind>], [indicators.<name>], [patterns], [reviews],
[reports], [learning]), whose defaults are `score/rules.toml`. That file is validated by the same
models, then the home's file is laid over it and the result validated again. Adding a setting is
adding a field to one model below; an unknown section or key, or a value of the wrong type, is a
one-line `AccessAuditError` naming the key's path.

pydantic is imported here, so this module is imported lazily by the CLI (``--help`` stays fast).
"""

from __future__ import annotations

import functools
import re
import tomllib
import zoneinfo
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from access_audit.errors import AccessAuditError
from access_audit.schema import TABLES_BY_NAME

CONFIG_FILE_NAME = "access-audit.toml"
DEFAULTS_FILE_NAME = "rules.toml"

AmbiguousPolicy = Literal["reject", "earliest", "latest"]
ExplanationSource = Literal[
    "user_assignment", "team_assignment", "call", "created_incident", "justification"
]
IndicatorScope = Literal["unexplained", "explained", "any"]
PeerUserRate = Literal["day", "lookback", "adaptive"]


class Section(BaseModel):
    """A table of settings: TOML's types as they are (no '5' for 5), unknown keys refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# Durations are bounded so that date arithmetic cannot overflow: no window, grace or retention
# is longer than a century of records.
MAX_DAYS = 36_600
Days = Annotated[int, Field(ge=0, le=MAX_DAYS)]
PositiveDays = Annotated[int, Field(ge=1, le=MAX_DAYS)]
Hours = Annotated[float, Field(ge=0, le=24 * MAX_DAYS, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=24 * 3600 * MAX_DAYS, allow_inf_nan=False)]
NonEmptyText = Annotated[str, Field(min_length=1)]


# -- the home's own sections ----------------------------------------------------------------------
def _known_time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "time_zone", "unknown time zone '{name}'", {"name": name}
        ) from None
    return name


class IngestConfig(Section):
    """How drops are read ([ingest])."""

    timezone: Annotated[str, AfterValidator(_known_time_zone)] = "Europe/London"
    ambiguous_local_times: AmbiguousPolicy = "reject"
    """The repeated autumn hour: reject the row (default), or take the earlier or later instant."""
    _column_mappings: dict[str, dict[str, str]] = PrivateAttr(default_factory=dict)

    @property
    def column_mappings(self) -> dict[str, dict[str, str]]:
        """Per table, spec column name -> the force's own column name (from [columns.<table>])."""
        return self._column_mappings

    timestamp_window: bool = True
    """Reject timestamps outside [earliest_timestamp, the drop's date + max_days_after_drop]."""
    earliest_timestamp: Annotated[date, Field(strict=False)] = date(1990, 1, 1)
    """Before any force's audited records system: an earlier instant is a typo or a default."""
    max_days_after_drop: Annotated[int, Field(ge=0, le=3660)] = 7
    """A drop covers its own day; a week ahead leaves room for rostered shifts and assignments
    planned in advance, while a year-2100 typo is refused."""


VerifyMode = Literal["full", "quick"]


def _key_file_named(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("string_too_short", "must not be empty", {})
    return value


def _key_file(path: Path | None) -> Path | None:
    return None if path is None else path.expanduser()


class StoreConfig(Section):
    """The generations of the stores ([store])."""

    keep_generations: Annotated[int, Field(ge=2)] = 5
    """The fewest committed generations kept on disk, whatever their age."""
    keep_hours: Hours = 36.0
    """A generation is kept while it was current within this many hours, so an analyst's DuckDB
    session opened on it keeps working (see store.py)."""
    lock_timeout_seconds: Seconds = 600.0
    verify_before_build: VerifyMode = "full"
    """How nightly, score and ingest check the generation they build on: full (re-hash every
    file) or quick (sizes and Parquet row counts)."""
    signing_key: Annotated[
        Path | None,
        Field(strict=False),
        BeforeValidator(_key_file_named),
        AfterValidator(_key_file),
    ] = None
    """An Ed25519 private key (PEM), outside the home: each commit signs its head (signing.py)."""


class CasesConfig(Section):
    """How flags are grouped into cases ([cases], see review/cases.py)."""

    span_days: PositiveDays = 30
    """A case holds one user's flags on one subject (or their user-level flags) from its first
    flag's day for this many days; a later flag starts the next case."""
    due_days: PositiveDays = 28
    """An assignment without --due is due this many days after it is made."""


class EvidenceConfig(Section):
    """The printable page of an evidence pack ([evidence], see evidence/page.py)."""

    page_rows: PositiveInt = 1000
    """The page (HTML and PDF) lists this many accesses at most; beyond it, it shows counts per
    day and per subject and the rows the flags hold first. ``accesses.csv`` always holds every
    access: a page of tens of thousands of rows is more than Chromium can print."""


def _spark_options(options: dict[str, Any]) -> dict[str, Any]:
    for name in options:
        if not name.startswith("spark."):
            raise PydanticCustomError(
                "unknown_name", "is not a Spark option (spark.*)", {"at": (name,)}
            )
    return options


class SparkConfig(Section):
    """[spark]: where `--engine spark` runs (score/spark.py); the Spark engine is optional
    (``pip install 'access-audit[spark]'``)."""

    master: Annotated[str, Field(pattern=r"\S")] = "local[2]"
    """The Spark master: local[N], spark://host:7077, yarn, k8s://…; ignored under spark-submit,
    which names its own."""
    options: Annotated[
        dict[str, str | int | float | bool],
        AfterValidator(_spark_options),
    ] = Field(default_factory=dict)
    """Any spark.* settings, e.g. "spark.executor.memory" = "8g"."""


def _known_columns(mappings: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    for table, mapping in mappings.items():
        spec = TABLES_BY_NAME.get(table)
        if spec is None:
            raise PydanticCustomError(
                "unknown_name", "names no export table", {"at": (table,), "table": True}
            )
        for column in mapping:
            if column not in spec.column_index:
                raise PydanticCustomError(
                    "unknown_name",
                    "is not a column of {name}",
                    {"at": (table, column), "name": table},
                )
    return mappings


ColumnMappings = Annotated[
    dict[str, dict[str, Annotated[str, Field(pattern=r"\S")]]], AfterValidator(_known_columns)
]


# -- the scoring sections (defaults in score/rules.toml) -----------------------------------------
class ScoringSettings(Section):
    scale: float = Field(gt=0, allow_inf_nan=False)
    alert_threshold: float = Field(ge=0, le=100)
    lookback_days: PositiveDays
    reexplain_days: Days
    chunk_days: PositiveDays
    refit_days: PositiveDays
    """The pattern model and the collaborative groups are fitted every this many days (anchors
    counted from 1970-01-01), each day scored against its latest anchor's (score/anchors.py)."""


def _compiles(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise PydanticCustomError(
                "pattern", "not a valid regular expression ({why})", {"why": str(exc)}
            ) from None
    return pattern


# The fields each text may name, as the explain and flag stages fill them (score/rules.render).
TEXT_FIELDS: dict[str, frozenset[str]] = {
    "user_assignment": frozenset({"via", "role", "team"}),
    "team_assignment": frozenset({"via", "role", "team"}),
    "call": frozenset({"via"}),
    "created_incident": frozenset({"via"}),
    "justification": frozenset({"via"}),
    "indicator": frozenset({"evidence"}),
    "mined": frozenset({"unit", "via", "support", "users", "confidence"}),
}


def _check_text_fields(text: str, allowed: frozenset[str], at: tuple[str, ...]) -> None:
    unknown = sorted(set(re.findall(r"\{(\w+)\}", text)) - allowed)
    if unknown:
        raise PydanticCustomError(
            "unknown_name",
            "names no field '{field}' (it may use {allowed})",
            {
                "at": at,
                "field": f"{{{unknown[0]}}}",
                "allowed": ", ".join(f"{{{name}}}" for name in sorted(allowed)),
            },
        )


class ExplanationSettings(Section):
    """One kind of path from a user to a record; windows in hours."""

    source: ExplanationSource
    text: NonEmptyText
    grace_before_hours: Hours
    grace_after_hours: Hours
    pattern: Annotated[str | None, AfterValidator(_compiles)] = None

    @model_validator(mode="after")
    def _text_fields_resolve(self) -> ExplanationSettings:
        _check_text_fields(self.text, TEXT_FIELDS[self.source], ("text",))
        return self


class ExplanationsSettings(Section):
    """[explanations.<kind>]: every kind the explain stage builds, in the order tried."""

    assigned: ExplanationSettings
    team_assigned: ExplanationSettings
    handled_call: ExplanationSettings
    created_incident: ExplanationSettings
    cited_incident: ExplanationSettings


class IndicatorSettings(Section):
    """A risk indicator: points, which accesses it applies to, and its sentence."""

    weight: NonNegativeFloat
    when: IndicatorScope
    text: NonEmptyText
    trigger: bool = False
    """A trigger makes an episode reviewable; other indicators only add to a triggered one."""
    peer_scope: IndicatorScope | None = None
    """The lookups its peer base rate is measured over; by default the ones it applies to."""

    @model_validator(mode="after")
    def _text_fields_resolve(self) -> IndicatorSettings:
        _check_text_fields(self.text, TEXT_FIELDS["indicator"], ("text",))
        return self


class MetOnDutySettings(IndicatorSettings):
    call_days: Days
    assignment_days: Days


class DormantIncidentSettings(IndicatorSettings):
    dormant_days: PositiveDays


class UnlinkedSubjectSettings(IndicatorSettings):
    grace_hours: Hours
    """A link from an incident opened, or a call started, up to this long after the lookup counts
    (work is recorded late); a later one does not clear it."""


class SameSurnameSettings(IndicatorSettings):
    common_count: PositiveInt
    rare_count: PositiveInt


class CrowdSettings(IndicatorSettings):
    min_users: PositiveInt
    """Unrelated teams (a user with no team is their own) that looked the subject up."""
    window_days: PositiveDays = 2
    """Days up to the scored day over which the crowd is counted."""
    member_weight: bool = False
    """Count each team by how unusual an unexplained read of that kind of record is for its
    reader: the share of such lookups their peers (team and role) explain, over the look-back."""
    calibrate: bool = True
    """Weigh a crowd by how much rarer it is than the audiences as large that formed by chance
    in the look-back (score/indicators.py, crowd)."""


class RepeatedSettings(IndicatorSettings):
    min_days: PositiveDays


class OffShiftSettings(IndicatorSettings):
    grace_hours: Hours


class ExplainedExcessSettings(IndicatorSettings):
    min_count: PositiveInt
    """Contact views of one subject in the look-back below which the pair is never weighed."""
    model: Literal["chance", "ratio"] = "chance"
    """"chance": against a negative binomial of the role's other users' pairs; "ratio": at least
    `peer_ratio` times the role's pooled rate."""
    min_role_users: PositiveInt = 8
    """With model = "chance": a role with fewer other users with pairs is measured against the
    force's other users' pairs (as [patterns] min_role_users)."""
    peer_ratio: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """With model = "ratio" only: times the role's pooled rate of contact views per day
    (DEFAULT_PEER_RATIO when unset)."""

    @model_validator(mode="after")
    def _peer_ratio_needs_ratio(self) -> ExplainedExcessSettings:
        if self.peer_ratio is not None and self.model != "ratio":
            raise PydanticCustomError(
                "unused_setting",
                'is read only with model = "ratio" (model is "{model}")',
                {"at": ("peer_ratio",), "model": self.model},
            )
        return self


DEFAULT_PEER_RATIO = 4.0
"""[indicators.explained_excess] peer_ratio when model = "ratio" and it is not set."""


class IndicatorsSettings(Section):
    """[indicators.<name>]: every indicator the scoring code computes. An indicator with
    parameters has its own model; adding one is adding a field here and a table in rules.toml."""

    unexplained: IndicatorSettings
    victim_subject: IndicatorSettings
    vulnerable_subject: IndicatorSettings
    public_figure: IndicatorSettings
    contact_details: IndicatorSettings
    print_export: IndicatorSettings
    met_on_duty: MetOnDutySettings
    dormant_incident: DormantIncidentSettings
    unlinked_subject: UnlinkedSubjectSettings
    self_lookup: IndicatorSettings
    declared_association: IndicatorSettings
    same_surname: SameSurnameSettings
    same_postcode: IndicatorSettings
    colleague: IndicatorSettings
    crowd: CrowdSettings
    repeated: RepeatedSettings
    off_shift: OffShiftSettings
    cited_unlinked: IndicatorSettings
    explained_excess: ExplainedExcessSettings

    def named(self) -> dict[str, IndicatorSettings]:
        """Name -> settings, in declaration order."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class PatternSettings(Section):
    min_lookups: PositiveInt
    min_role_users: PositiveInt
    young_women_min_age: Annotated[int, Field(ge=0, le=150)]
    young_women_max_age: Annotated[int, Field(ge=0, le=150)]
    threshold: float = Field(gt=0, allow_inf_nan=False)
    base_points: NonNegativeFloat
    points_per_z: NonNegativeFloat
    max_points: NonNegativeFloat


class ReviewSettings(Section):
    suppress_days: Days
    not_new_risk: list[str]


class ReportSettings(Section):
    training_course: NonEmptyText
    training_overdue_months: Annotated[int, Field(ge=1, le=1200)]
    apsp_subject_codes: list[str]
    """An APSP-type alert's subject is marked by one of these (a victim, a vulnerable person) ..."""
    apsp_contact_codes: list[str]
    """... and it shows a contact-type signal: one of these indicators on the alert itself ..."""
    apsp_pattern_codes: list[str]
    """... or one of these user-level patterns raised for the same user in the period."""


class LearningSettings(Section):
    min_decisions: PositiveInt
    min_per_class: PositiveInt
    blend: float = Field(ge=0, le=1)


class AuditGapsSettings(Section):
    """[audit_gaps]: when missing audit rows make a flag (see score/audit_gaps.py)."""

    lookback_days: PositiveDays
    min_hourly_volume: NonNegativeFloat
    min_baseline_hours: Annotated[int, Field(ge=1, le=24 * MAX_DAYS)]
    max_share: float = Field(ge=0, le=1)
    min_z: NonNegativeFloat
    min_user_shift_volume: NonNegativeFloat
    min_user_shifts: PositiveInt
    min_other_volume: NonNegativeFloat
    user_max_share: float = Field(ge=0, le=1)
    user_min_z: NonNegativeFloat
    system_weight: NonNegativeFloat
    user_weight: NonNegativeFloat


class PeersSettings(Section):
    """[peers]: indicator weights scaled by how surprising each is for the user's peers."""

    enabled: bool
    prior_rate: float = Field(gt=0, lt=1)
    force_prior_lookups: NonNegativeFloat
    peer_prior_lookups: NonNegativeFloat
    user_prior_lookups: NonNegativeFloat
    full_weight_ratio: float = Field(gt=1, allow_inf_nan=False)
    user_rate: PeerUserRate
    """Whose rate is set against the peers': the user's on the scored day ('day'), over their
    look-back and the day ('lookback'), or the day's when the peers would show at least one hit
    in as many lookups, else the look-back's ('adaptive')."""


class MinedKindSettings(Section):
    """One mined explanation kind (score/mined.py): learned from the look-back before the scored
    day, it *weakly* explains an access nothing recorded explains."""

    enabled: bool
    strength: float = Field(gt=0, lt=1)
    """The share of the absence-of-explanation points it takes away: below 1, so it is always
    weaker than a recorded assignment, which takes them all (and every unexplained-only risk)."""
    text: NonEmptyText

    @model_validator(mode="after")
    def _text_fields_resolve(self) -> MinedKindSettings:
        _check_text_fields(self.text, TEXT_FIELDS["mined"], ("text",))
        return self


class MinedRuleSettings(MinedKindSettings):
    """A template kept only with enough support (lookups, users) and confidence."""

    min_support: PositiveInt
    min_users: PositiveInt
    min_confidence: float = Field(ge=0, le=1)


class UnitIncidentTypeSettings(MinedRuleSettings):
    min_lift: float = Field(gt=1)
    """The unit must open records of the incident type this many times as often as the force."""


class CollaborativeGroupSettings(MinedKindSettings):
    min_shared_records: PositiveInt
    max_record_users: PositiveInt
    neighbours: PositiveInt
    """Each user's strongest ties kept, when mutual (a mutual k-nearest-neighbour graph)."""
    min_members: PositiveInt
    min_openers: PositiveInt
    iterations: PositiveInt


class MinedSettings(Section):
    """[mined]: explanation templates mined from the look-back (after Fabbri & LeFevre 2011,
    Fabbri et al. 2013) and collaborative groups (after Chen & Malin's CADS, 2011)."""

    discounted: list[str]
    """The indicators that measure the absence of an explanation: a weak explanation scales
    their points by (1 - strength). Every other risk indicator keeps its points."""
    unit_incident_type: UnitIncidentTypeSettings
    teammate_same_day: MinedRuleSettings
    unit_reason_code: MinedRuleSettings
    collaborative_group: CollaborativeGroupSettings

    def kinds(self) -> dict[str, MinedKindSettings]:
        """Name -> settings of every mined kind, enabled or not, in declaration order."""
        names = [name for name in type(self).model_fields if name != "discounted"]
        return {name: getattr(self, name) for name in names}


PATTERN_CODE_PREFIX = "pattern_"


class Config(Section):
    """The whole settings tree of a home."""

    ingest: IngestConfig = Field(default_factory=IngestConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    cases: CasesConfig = Field(default_factory=CasesConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    columns: ColumnMappings = Field(default_factory=dict)
    """Per table, spec column name -> the force's own column name."""
    scoring: ScoringSettings
    explanations: ExplanationsSettings
    indicators: IndicatorsSettings
    patterns: PatternSettings
    reviews: ReviewSettings
    reports: ReportSettings
    learning: LearningSettings
    audit_gaps: AuditGapsSettings
    peers: PeersSettings
    mined: MinedSettings

    @model_validator(mode="after")
    def _names_resolve(self) -> Config:
        indicators = set(IndicatorsSettings.model_fields)
        for position, code in enumerate(self.reviews.not_new_risk):
            if code not in indicators:
                raise PydanticCustomError(
                    "unknown_name",
                    "'{code}' names no indicator",
                    {"at": ("reviews", "not_new_risk", position), "code": code},
                )
        apsp_lists = {
            "apsp_subject_codes": (self.reports.apsp_subject_codes, False),
            "apsp_contact_codes": (self.reports.apsp_contact_codes, False),
            "apsp_pattern_codes": (self.reports.apsp_pattern_codes, True),
        }
        for key, (codes, patterns) in apsp_lists.items():
            for position, code in enumerate(codes):
                known = code.startswith(PATTERN_CODE_PREFIX) if patterns else code in indicators
                if not known:
                    raise PydanticCustomError(
                        "unknown_name",
                        "'{code}' names no pattern" if patterns else "'{code}' names no indicator",
                        {"at": ("reports", key, position), "code": code},
                    )
        for position, code in enumerate(self.mined.discounted):
            if code not in indicators:
                raise PydanticCustomError(
                    "unknown_name",
                    "'{code}' names no indicator",
                    {"at": ("mined", "discounted", position), "code": code},
                )
        self.ingest._column_mappings = self.columns
        return self


# -- loading --------------------------------------------------------------------------------------
def load_config(home: Path) -> Config:
    """The home's settings over the defaults; defaults alone if it has no `access-audit.toml`."""
    path = home / CONFIG_FILE_NAME
    if not path.exists():
        return default_config()
    return parse_config(_read_toml(path.read_bytes(), str(path)), source=str(path))


def parse_config(raw: dict[str, Any], source: str = CONFIG_FILE_NAME) -> Config:
    """Validate a parsed `access-audit.toml` laid over the defaults."""
    default_config()  # a broken defaults file is reported as such, not as the home's mistake
    return _validate(_laid_over(_defaults(), raw), source)


@functools.cache
def default_config() -> Config:
    return _validate(_defaults(), f"score/{DEFAULTS_FILE_NAME}")


@functools.cache
def _defaults_text() -> bytes:
    # Through the top package: naming access_audit.score would import it, and with it the engines.
    return resources.files("access_audit").joinpath("score", DEFAULTS_FILE_NAME).read_bytes()


def _defaults() -> dict[str, Any]:
    return _read_toml(_defaults_text(), f"score/{DEFAULTS_FILE_NAME}")


def _read_toml(data: bytes, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AccessAuditError(f"{source}: not valid TOML ({exc})") from None


def _laid_over(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override``'s values replace ``base``'s; tables are merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _laid_over(base[key], value)
        else:
            merged[key] = value
    return merged


def _validate(raw: dict[str, Any], source: str) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise AccessAuditError(f"{source}: {describe_setting_error(exc.errors()[0])}") from None


# -- one line per mistake -------------------------------------------------------------------------
_EXPECTED = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "date_type": "expected a date (YYYY-MM-DD)",
    "date_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "expected a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "expected a date (YYYY-MM-DD)",
}


def describe_setting_error(error: ErrorDetails) -> str:
    """'[store] keep_generations: expected an integer, got 'five'' from one pydantic error."""
    context = error.get("ctx") or {}
    location = (*error["loc"], *context.get("at", ()))
    kind = error["type"]
    is_table = isinstance(error["input"], dict) if kind == "extra_forbidden" else False
    where = setting_path(location, is_table or bool(context.get("table")))
    got = _shown(error["input"])
    if kind == "extra_forbidden":
        return f"{where}: unknown {'table' if is_table else 'setting'}"
    if kind == "missing":
        return f"{where}: required setting is missing"
    if kind in _EXPECTED:
        return f"{where}: {_EXPECTED[kind]}, got {got}"
    if kind == "literal_error":
        return f"{where}: expected {context['expected']}, got {got}"
    if kind == "unknown_name":
        return f"{where}: {error['msg']}"
    bounds = {"greater_than_equal": "at least", "greater_than": "more than"}
    bounds |= {"less_than_equal": "at most", "less_than": "less than"}
    for bound, words in bounds.items():
        if kind == bound:
            limit = next(iter(v for k, v in context.items() if k in ("ge", "gt", "le", "lt")))
            return f"{where}: must be {words} {limit}, got {got}"
    if kind in ("string_too_short", "string_pattern_mismatch"):
        return f"{where}: must not be empty"
    return f"{where}: {error['msg'][:1].lower()}{error['msg'][1:]}"


def setting_path(location: tuple[int | str, ...], is_table: bool = False) -> str:
    """('indicators', 'crowd', 'min_users') -> '[indicators.crowd] min_users'; a table's own
    path is its header, ('indicators', 'crowd') -> '[indicators.crowd]'."""
    names: list[str] = []
    for part in location:
        if isinstance(part, int) and names:
            names[-1] += f"[{part}]"
        else:
            names.append(str(part))
    if len(names) == 1 or is_table:
        return f"[{'.'.join(names)}]"
    return f"[{'.'.join(names[:-1])}] {names[-1]}"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
