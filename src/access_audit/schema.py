"""The export-bundle tables as data: columns, kinds, keys and load semantics.

Everything the ingest stage validates, and every stored table's shape, comes from this registry
(../shared/spec/export-bundle.md). Adding a column or a table is adding a row here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["id", "text", "timestamp", "date", "enum", "markers"]
LoadMode = Literal["append", "upsert"]


@dataclass(frozen=True)
class Column:
    """One column of an export table and how its raw text becomes a stored value."""

    name: str
    kind: ColumnKind = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    case: Literal["lower", "upper", "keep"] = "keep"
    personal: bool = False
    """Holds personal data: never shown in log output or CLI listings of rejected values."""


@dataclass(frozen=True)
class TableSpec:
    """One export table: how it is recognised, validated and stored."""

    name: str
    store: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    mode: LoadMode
    exactly_one_of: tuple[str, ...] = ()
    record_required_unless: tuple[str, str] | None = None
    description: str = ""
    column_index: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_index", {c.name: c for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        """Columns a file must have (the `one of` pair counts as optional per column)."""
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return self.column_index[name]


ACTIONS = ("search", "view", "view_contact", "create", "update", "print", "export")
RECORD_TYPES = ("person", "incident", "vehicle", "address", "phone")
SEXES = ("F", "M")
DIRECTIONS = ("inbound", "outbound")
PERSON_ROLES = ("victim", "suspect", "witness", "reporter", "other")
KNOWN_MARKERS = (
    "vulnerable_adult",
    "domestic_abuse_victim",
    "sexual_offence_victim",
    "child",
    "public_figure",
    "staff_member",
)

ACCESS_LOG = TableSpec(
    name="access_log",
    store="access_events",
    mode="append",
    key=("system", "event_id"),
    record_required_unless=("action", "search"),
    description="One row per audited action a user took in a records system.",
    columns=(
        Column("event_id", "id", required=True),
        Column("occurred_at", "timestamp", required=True),
        Column("user_id", "id", required=True),
        Column("system", "id", required=True, case="upper"),
        Column("action", "enum", required=True, choices=ACTIONS, case="lower"),
        Column("record_type", "enum", required=True, choices=RECORD_TYPES, case="lower"),
        Column("record_id", "id"),
        Column("search_text", "text", personal=True),
        Column("reason_code", "id"),
        Column("justification", "text", personal=True),
        Column("workstation", "id"),
    ),
)

STAFF = TableSpec(
    name="staff",
    store="staff",
    mode="upsert",
    key=("user_id",),
    description="Members of staff: role, team, home postcode, own person record.",
    columns=(
        Column("user_id", "id", required=True),
        Column("surname", "text", required=True, personal=True),
        Column("forenames", "text", personal=True),
        Column("sex", "enum", choices=SEXES, case="upper"),
        Column("role", "id", required=True, case="lower"),
        Column("team_id", "id"),
        Column("postcode", "text", personal=True, case="upper"),
        Column("person_id", "id"),
        Column("employed_from", "date"),
        Column("employed_to", "date"),
    ),
)

PERSONS = TableSpec(
    name="persons",
    store="persons",
    mode="upsert",
    key=("person_id",),
    description="People held in the records systems, with their markers.",
    columns=(
        Column("person_id", "id", required=True),
        Column("surname", "text", required=True, personal=True),
        Column("forenames", "text", personal=True),
        Column("sex", "enum", choices=SEXES, case="upper"),
        Column("date_of_birth", "date", personal=True),
        Column("postcode", "text", personal=True, case="upper"),
        Column("markers", "markers"),
    ),
)

INCIDENTS = TableSpec(
    name="incidents",
    store="incidents",
    mode="upsert",
    key=("incident_id",),
    description="Crime and occurrence records.",
    columns=(
        Column("incident_id", "id", required=True),
        Column("category", "id", required=True, case="lower"),
        Column("opened_at", "timestamp", required=True),
        Column("closed_at", "timestamp"),
    ),
)

INCIDENT_PERSONS = TableSpec(
    name="incident_persons",
    store="incident_persons",
    mode="upsert",
    key=("incident_id", "person_id", "role"),
    description="Which people an incident links, and in what role.",
    columns=(
        Column("incident_id", "id", required=True),
        Column("person_id", "id", required=True),
        Column("role", "enum", required=True, choices=PERSON_ROLES, case="lower"),
    ),
)

ASSIGNMENTS = TableSpec(
    name="assignments",
    store="assignments",
    mode="upsert",
    key=("incident_id", "user_id", "team_id", "role", "assigned_from"),
    exactly_one_of=("user_id", "team_id"),
    description="Who (a user or a whole team) was assigned to an incident, and when.",
    columns=(
        Column("incident_id", "id", required=True),
        Column("user_id", "id"),
        Column("team_id", "id"),
        Column("role", "id", required=True, case="lower"),
        Column("assigned_from", "timestamp", required=True),
        Column("assigned_to", "timestamp"),
    ),
)

CALLS = TableSpec(
    name="calls",
    store="calls",
    mode="upsert",
    key=("call_id",),
    description="Telephony and front-counter contacts handled by a user.",
    columns=(
        Column("call_id", "id", required=True),
        Column("user_id", "id", required=True),
        Column("started_at", "timestamp", required=True),
        Column("ended_at", "timestamp", required=True),
        Column("direction", "enum", required=True, choices=DIRECTIONS, case="lower"),
        Column("person_id", "id"),
        Column("incident_id", "id"),
    ),
)

SHIFTS = TableSpec(
    name="shifts",
    store="shifts",
    mode="upsert",
    key=("user_id", "starts_at"),
    description="Rostered shifts.",
    columns=(
        Column("user_id", "id", required=True),
        Column("starts_at", "timestamp", required=True),
        Column("ends_at", "timestamp", required=True),
    ),
)

ASSOCIATIONS = TableSpec(
    name="associations",
    store="associations",
    mode="upsert",
    key=("user_id", "person_id"),
    description="The notifiable-associations register.",
    columns=(
        Column("user_id", "id", required=True),
        Column("person_id", "id", required=True),
        Column("relationship", "id", required=True, case="lower"),
        Column("declared_at", "date", required=True),
    ),
)

TRAINING = TableSpec(
    name="training",
    store="training",
    mode="upsert",
    key=("user_id", "course", "completed_at"),
    description="Completed training courses (APSP, data protection, ...).",
    columns=(
        Column("user_id", "id", required=True),
        Column("course", "id", required=True),
        Column("completed_at", "date", required=True),
    ),
)

TABLES: tuple[TableSpec, ...] = (
    ACCESS_LOG,
    STAFF,
    PERSONS,
    INCIDENTS,
    INCIDENT_PERSONS,
    ASSIGNMENTS,
    CALLS,
    SHIFTS,
    ASSOCIATIONS,
    TRAINING,
)
TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}

# Table names that are prefixes of others must be tried longest first:
# `incident_persons_1.csv` belongs to incident_persons, not incidents.
TABLE_NAMES_LONGEST_FIRST: tuple[str, ...] = tuple(sorted(TABLES_BY_NAME, key=len, reverse=True))

# Columns every stored row carries besides its table's own: where it came from.
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "extra",
    "drop_id",
    "source_file",
    "source_line",
    "run_id",
    "as_of",
)


def table_for_file(file_name: str) -> TableSpec | None:
    """The table a file belongs to: the longest table name its name starts with.

    As the export bundle says, every file whose name starts with a table's name belongs to it,
    whatever follows: `access_log (1).csv`, `access_log copy.csv`, `incidents_2.csv`."""
    lowered = file_name.lower()
    for name in TABLE_NAMES_LONGEST_FIRST:
        if lowered.startswith(name):
            return TABLES_BY_NAME[name]
    return None
