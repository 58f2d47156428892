"""Other audit formats into the export bundle (an input edge, ahead of the ingest stage)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from access_audit.errors import AccessAuditError
from access_audit.escape import csv_text
from access_audit.interop.fhir import ACCESS_LOG_COLUMNS, Unconvertible, convert_files
from access_audit.private_files import private_folder, replacing, write_private_text


@dataclass(frozen=True)
class FhirDrop:
    access_log: Path
    rows: int
    unconvertible: list[Unconvertible]
    unconvertible_file: Path | None


def write_fhir_drop(sources: list[Path], out: Path) -> FhirDrop:
    """Write ``out/access_log_fhir.csv`` (and the resources that could not be converted).

    Both are owner-only. The access log is data for ``ingest`` and is written exactly; the list
    of unconvertible resources is for people, often opened in a spreadsheet, so its cells are
    neutralised like every CSV made for people (``escape.csv_text``)."""
    import polars as pl

    missing = [str(p) for p in sources if not p.is_file()]
    if missing:
        raise AccessAuditError(f"{missing[0]}: no such file")
    conversion = convert_files(sources)
    if not conversion.rows:
        # an empty access_log would load as a drop with no accesses: refuse, and write nothing
        skipped = conversion.unconvertible
        first = (
            f"; the first: {skipped[0].source} #{skipped[0].position}: {skipped[0].reason}"
            if skipped
            else ""
        )
        raise AccessAuditError(
            f"no AuditEvent could be converted from {len(sources)} file(s) "
            f"({len(skipped)} resource(s) could not be converted{first}); nothing was written"
        )
    private_folder(out)
    target = out / "access_log_fhir.csv"
    frame = pl.DataFrame(
        conversion.rows, schema={c: pl.String for c in ACCESS_LOG_COLUMNS}, orient="row"
    )
    with replacing(target) as temporary:
        frame.write_csv(temporary)
    rejected_path = None
    # an earlier run's list must not stand for this one's input
    (out / "fhir-unconvertible.csv").unlink(missing_ok=True)
    if conversion.unconvertible:
        rejected_path = out / "fhir-unconvertible.csv"
        unconvertible = pl.DataFrame(
            [vars(u) for u in conversion.unconvertible],
            schema={
                "source": pl.String,
                "position": pl.Int64,
                "event_id": pl.String,
                "reason": pl.String,
            },
            orient="row",
        )
        write_private_text(rejected_path, csv_text(unconvertible))
    return FhirDrop(target, frame.height, conversion.unconvertible, rejected_path)
