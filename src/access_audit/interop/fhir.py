"""FHIR AuditEvent (R4, IHE BALP, R5/R6; JSON, NDJSON, Bundles or XML) into export-bundle rows.

Some records systems audit in FHIR rather than exporting the bundle's ``access_log``. This module
is an input edge: it parses documents (one Python object per document — there is no frame to
vectorise yet) into ``access_log`` rows with the spec's column names, which then go through the
ordinary ingest stage and its validation. A resource that cannot become a row (no time, no
requesting agent, no subject for a non-search) is returned with its reason, never dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from access_audit.errors import AccessAuditError

FHIR_NS = "{http://hl7.org/fhir}"

# FHIR's action code (C/R/U/D/E) to the export bundle's action.
ACTION_BY_CODE: dict[str, str] = {"C": "create", "R": "view", "U": "update", "D": "update"}
# Subtypes (restful interactions and common IHE transactions) that are searches.
SEARCH_SUBTYPES = frozenset(
    {
        "search",
        "search-type",
        "search-system",
        "search-compartment",
        "history-instance",
        "ITI-9",
        "ITI-21",
        "ITI-47",
        "ITI-67",
        "ITI-78",
    }
)
EXPORT_TYPES = frozenset({"110106"})  # DICOM "Export"
# An entity is the patient when its R4 type is 1 (Person) with role 1 (Patient), or its role is.
PATIENT_ROLE_CODES = frozenset({"1", "patient"})

ACCESS_LOG_COLUMNS = (
    "event_id",
    "occurred_at",
    "user_id",
    "system",
    "action",
    "record_type",
    "record_id",
    "search_text",
    "reason_code",
    "justification",
    "workstation",
)


@dataclass(frozen=True)
class Unconvertible:
    source: str
    position: int
    event_id: str | None
    reason: str


@dataclass
class FhirConversion:
    rows: list[dict[str, str | None]] = field(default_factory=list)
    unconvertible: list[Unconvertible] = field(default_factory=list)


def convert_files(paths: list[Path]) -> FhirConversion:
    """Every AuditEvent in the files, as access_log rows, and those that could not be."""
    conversion = FhirConversion()
    for path in paths:
        for position, resource in enumerate(_resources(path), start=1):
            row, reason = audit_event_to_row(resource)
            if row is not None:
                conversion.rows.append(row)
            else:
                conversion.unconvertible.append(
                    Unconvertible(path.name, position, _text(resource.get("id")), reason or "")
                )
    return conversion


def audit_event_to_row(event: dict[str, Any]) -> tuple[dict[str, str | None] | None, str | None]:
    """(row, None) or (None, why not). ``event`` is the JSON shape of one AuditEvent."""
    if event.get("resourceType") != "AuditEvent":
        return None, f"not an AuditEvent ({event.get('resourceType')})"
    recorded = _text(event.get("recorded")) or _text(_get(event, "period", "start"))
    if recorded is None:
        return None, "no recorded time"
    agents = _list(event.get("agent"))
    requestor = next((a for a in agents if _truthy(a.get("requestor"))), None)
    user = _agent_id(requestor) if requestor is not None else None
    if user is None:
        return None, "no requesting agent"
    entities = _list(event.get("entity"))
    query = next((_text(e.get("query")) for e in entities if e.get("query")), None)
    action = _action(event, query is not None)
    subject = _patient_id(entities)
    if subject is None and action != "search":
        return None, "no patient entity for a non-search action"
    return {
        "event_id": _text(event.get("id")) or _content_id(event),
        "occurred_at": recorded,
        "user_id": user,
        "system": _observer(event) or "FHIR",
        "action": action,
        "record_type": "person",
        "record_id": subject,
        "search_text": _decode_query(query),
        "reason_code": _reason_code(event, requestor),
        "justification": _text(_first(_list(event.get("purposeOfEvent")), "text")),
        "workstation": _workstation(requestor, agents),
    }, None


# -- reading ----------------------------------------------------------------------------------
def _resources(path: Path) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccessAuditError(f"{path.name}: cannot be read ({exc})") from exc
    stripped = text.lstrip()
    if stripped.startswith("<"):
        yield from _unbundle(_xml_document(path.name, stripped))
        return
    try:
        documents = (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if path.suffix.lower() == ".ndjson"
            else [json.loads(text)]
        )
    except json.JSONDecodeError as exc:
        raise AccessAuditError(
            f"{path.name}: not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from exc
    for document in documents:
        yield from _unbundle(document)


def _unbundle(document: Any) -> Iterator[dict[str, Any]]:
    if not isinstance(document, dict):
        return
    if document.get("resourceType") == "Bundle":
        for entry in _list(document.get("entry")):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                yield from _unbundle(resource)
    else:
        yield document


def _xml_document(name: str, text: str) -> dict[str, Any]:
    """FHIR XML to its JSON shape: ``<x value="v"/>`` is "v", repeats become lists."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise AccessAuditError(f"{name}: XML with a DTD or entities is refused")
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise AccessAuditError(f"{name}: not valid XML ({exc})") from exc
    if root.tag == f"{FHIR_NS}Bundle":
        resources = [
            {"resource": _xml_resource(child[0])}
            for entry in root.iter(f"{FHIR_NS}entry")
            for child in entry.findall(f"{FHIR_NS}resource")
            if len(child)
        ]
        return {"resourceType": "Bundle", "entry": resources}
    return _xml_resource(root)


def _xml_resource(element: ElementTree.Element) -> dict[str, Any]:
    converted = _xml_value(element)
    resource = converted if isinstance(converted, dict) else {}
    resource["resourceType"] = element.tag.removeprefix(FHIR_NS)
    return resource


def _xml_value(element: ElementTree.Element) -> Any:
    children = [c for c in element if c.tag.startswith(FHIR_NS) and c.tag != f"{FHIR_NS}text"]
    if not children:
        return element.get("value")
    shaped: dict[str, Any] = {}
    for child in children:
        key = child.tag.removeprefix(FHIR_NS)
        value = _xml_value(child)
        if key in shaped:
            existing = shaped[key]
            shaped[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            shaped[key] = value
    return shaped


# -- mapping ----------------------------------------------------------------------------------
def _action(event: dict[str, Any], has_query: bool) -> str:
    type_codes = {_text(c.get("code")) for c in _codings(event.get("type"))}
    subtype_codes = {_text(c.get("code")) for s in _list(event.get("subtype")) for c in _codings(s)}
    code = _text(event.get("action"))
    if type_codes & EXPORT_TYPES:
        return "export"
    if has_query or subtype_codes & SEARCH_SUBTYPES:
        return "search"
    return ACTION_BY_CODE.get(code or "", "view")


def _patient_id(entities: list[dict[str, Any]]) -> str | None:
    for entity in entities:
        roles = {_text(c.get("code")) for c in _codings(entity.get("role"))}
        types = {_text(c.get("code")) for c in _codings(entity.get("type"))}
        reference = _text(_get(entity, "what", "reference"))
        is_patient = bool(roles & PATIENT_ROLE_CODES) and (
            not types or "1" in types or bool(roles & {"patient"})
        )
        if is_patient or (reference or "").startswith("Patient/"):
            if reference and reference.startswith("Patient/"):
                return reference.split("/")[1]
            return reference or _text(_get(entity, "what", "identifier", "value"))
    return None


def _agent_id(agent: dict[str, Any]) -> str | None:
    found = agent.get("who")
    who: dict[str, Any] = found if isinstance(found, dict) else {}
    return (
        _text(_get(who, "identifier", "value"))
        or _text(who.get("reference"))
        or _text(agent.get("altId"))
        or _text(who.get("display"))
    )


def _observer(event: dict[str, Any]) -> str | None:
    observer = _get(event, "source", "observer")
    if not isinstance(observer, dict):
        return None
    return (
        _text(_get(observer, "identifier", "value"))
        or _text(observer.get("display"))
        or _text(observer.get("reference"))
    )


def _reason_code(event: dict[str, Any], requestor: dict[str, Any] | None) -> str | None:
    sources = [
        *_list(event.get("purposeOfEvent")),
        *_list(event.get("authorization")),
        *(_list(requestor.get("purposeOfUse")) if requestor else []),
        *(_list(requestor.get("authorization")) if requestor else []),
    ]
    for concept in sources:
        for coding in _codings(concept):
            if _text(coding.get("code")):
                return _text(coding.get("code"))
    return None


def _workstation(requestor: dict[str, Any] | None, agents: list[dict[str, Any]]) -> str | None:
    for agent in [a for a in [requestor] if a is not None] + agents:
        address = _text(_get(agent, "network", "address")) or _text(agent.get("networkString"))
        if address:
            return address
    return None


def _decode_query(query: str | None) -> str | None:
    if query is None:
        return None
    try:
        return base64.b64decode(query, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return query


def _content_id(event: dict[str, Any]) -> str:
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


# -- JSON-shape helpers -----------------------------------------------------------------------
def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _codings(concept: Any) -> list[dict[str, Any]]:
    """The codings of a Coding or CodeableConcept (R4 uses both; R5 wraps more in concepts)."""
    codings: list[dict[str, Any]] = []
    for item in _list(concept):
        if not isinstance(item, dict):
            continue
        if "coding" in item:
            codings.extend(c for c in _list(item["coding"]) if isinstance(c, dict))
        elif "code" in item and isinstance(item["code"], dict):
            codings.extend(_codings(item["code"]))
        else:
            codings.append(item)
    return codings


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _first(items: list[Any], key: str) -> Any:
    return next((i.get(key) for i in items if isinstance(i, dict) and i.get(key)), None)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"
