"""FHIR AuditEvent examples from public standards, taken as they are: fixtures/fhir_auditevent,
copied unchanged from the workplace's shared/external, with sources and licences in SOURCES.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from access_audit.cli import app
from access_audit.errors import AccessAuditError
from access_audit.interop.fhir import audit_event_to_row, convert_files
from access_audit.workspace import Workspace

EXTERNAL = Path(__file__).resolve().parents[1] / "fixtures" / "fhir_auditevent"
EXAMPLES = sorted(p for p in EXTERNAL.glob("*/*") if p.suffix in (".json", ".xml"))


def test_the_examples_are_there() -> None:
    assert len(EXAMPLES) == 8, f"expected the eight FHIR examples under {EXTERNAL}"


def _by_id() -> dict[str, dict[str, str | None]]:
    return {str(r["event_id"]): r for r in convert_files(EXAMPLES).rows}


def test_r4_vread_is_a_view_of_the_patient() -> None:
    row = _by_id()["example-rest"]
    assert row == {
        "event_id": "example-rest",
        "occurred_at": "2013-06-20T23:42:24Z",
        "user_id": "95",
        "system": "hl7connect.healthintersections.com.au",
        "action": "view",
        "record_type": "person",
        "record_id": "example",
        "search_text": None,
        "reason_code": None,
        "justification": None,
        "workstation": "Workstation1.ehr.familyclinic.com",
    }


def test_balp_query_decodes_the_search_and_names_the_patient() -> None:
    row = _by_id()["ex-auditBasicQueryGetServer"]
    assert row["action"] == "search"
    assert row["record_id"] == "ex-patient"
    assert str(row["search_text"]).startswith("GET test.fhir.org/r4/Observation?patient=ex-patient")


def test_r6_xml_disclosure_is_an_export_with_its_authorization() -> None:
    row = _by_id()["example-disclosure"]
    assert (row["action"], row["user_id"], row["reason_code"], row["record_id"]) == (
        "export",
        "SomeIdiot@nowhere",
        "HMARKT",
        "example",
    )


def test_a_resource_without_a_subject_is_reported_not_dropped() -> None:
    conversion = convert_files(EXAMPLES)
    assert len(conversion.rows) + len(conversion.unconvertible) == 8
    assert [(u.event_id, u.reason) for u in conversion.unconvertible] == [
        ("ex-auditPoke-SAML-QDI-Comp", "no patient entity for a non-search action")
    ]


def test_bundles_are_unpacked() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "AuditEvent",
                    "id": "a",
                    "action": "R",
                    "recorded": "2026-11-21T10:00:00Z",
                    "agent": [{"who": {"identifier": {"value": "U1"}}, "requestor": True}],
                    "entity": [{"what": {"reference": "Patient/P1"}}],
                }
            },
            {"resource": {"resourceType": "Patient", "id": "p"}},
        ],
    }
    row, _ = audit_event_to_row(bundle["entry"][0]["resource"])  # type: ignore[index]
    assert row is not None and row["record_id"] == "P1"
    assert audit_event_to_row({"resourceType": "Patient"}) == (None, "not an AuditEvent (Patient)")


def test_converted_drop_ingests_without_rejections(tmp_path: Path) -> None:
    runner = CliRunner()
    drop = tmp_path / "fhir-2026-11-21"
    converted = runner.invoke(app, ["convert-fhir", *map(str, EXAMPLES), "--out", str(drop)])
    assert converted.exit_code == 0, converted.output
    assert "7 access_log row(s) written" in converted.output
    workspace = Workspace.open(tmp_path / "home")
    report = workspace.ingest([drop])
    assert report.ok
    assert report.loaded[0].tables["access_log"].loaded == 7
    assert report.loaded[0].rows_rejected == 0
    assert report.loaded[0].unrecognised_files == ["fhir-unconvertible.csv"]


def test_xml_with_entities_is_refused(tmp_path: Path) -> None:
    hostile = tmp_path / "evil.xml"
    hostile.write_text('<!DOCTYPE x [<!ENTITY a "aaaa">]><AuditEvent xmlns="http://hl7.org/fhir"/>')
    with pytest.raises(AccessAuditError, match="DTD or entities is refused"):
        convert_files([hostile])


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            '{"resourceType": "Patient", "id": "p"}',
            "1 resource(s) could not be converted; the first",
        ),
        ('{"resourceType": "Bundle", "entry": []}', "0 resource(s) could not be converted"),
    ],
)
def test_nothing_converted_is_an_error_and_writes_no_drop(
    tmp_path: Path, content: str, said: str
) -> None:
    """An empty access_log would ingest as a night with no accesses: refused, nothing written."""
    source = tmp_path / "events.json"
    source.write_text(content, encoding="utf-8")
    drop = tmp_path / "drop"
    result = CliRunner().invoke(app, ["convert-fhir", str(source), "--out", str(drop)])
    assert result.exit_code == 2
    assert said in result.output
    assert "nothing was written" in result.output
    assert not drop.exists()


def test_a_second_conversion_into_the_folder_leaves_no_earlier_unconvertible_list(
    tmp_path: Path,
) -> None:
    drop = tmp_path / "drop"
    runner = CliRunner()
    first = runner.invoke(app, ["convert-fhir", *map(str, EXAMPLES), "--out", str(drop)])
    assert first.exit_code == 0 and (drop / "fhir-unconvertible.csv").exists()
    convertible = [p for p in EXAMPLES if "vread" in p.name]
    assert convertible
    second = runner.invoke(app, ["convert-fhir", str(convertible[0]), "--out", str(drop)])
    assert second.exit_code == 0, second.output
    assert "0 resource(s) could not be converted" in second.output
    assert not (drop / "fhir-unconvertible.csv").exists()
