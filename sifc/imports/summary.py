"""Readable summary of a parcel import for the command line (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sifc.i18n import Lang
from sifc.imports.parcels import FILE_NOTES, REASONS, WARNINGS, ParcelImportReport, describe


def print_summary(console: Console, report: ParcelImportReport, lang: Lang) -> None:
    """Counts, reasons and warnings of ``report``, in ``lang``."""
    fr = lang == "fr"
    if report.already_imported:
        done = {k: str(v) for k, v in report.already_imported.items()}
        console.print((f"Fichier déjà importé (lot {done['batch_id']}, {done['file']}, {done['date'][:10]}) : "
                       "rien n'a changé." if fr else
                       f"File already imported (batch {done['batch_id']}, {done['file']}, {done['date'][:10]}): "
                       "nothing changed."), markup=False)
        return
    head = Table(title=f"{'Import' if fr else 'Import'} : {report.file}", show_header=False)
    head.add_column(no_wrap=True)
    head.add_column(overflow="fold")
    rows = [
        ("format", f"{report.format} — {report.geometry_type}"),
        ("SCR" if fr else "CRS", f"{report.crs} ({report.crs_origin})"),
        ("encodage" if fr else "encoding", f"{report.encoding} ({report.encoding_origin})"),
        ("correspondance" if fr else "mapping", ", ".join(f"{k}←{v}" for k, v in report.mapping.items()) or "—"),
        ("entités lues" if fr else "features read", str(report.read)),
        ("géométries absentes / vides" if fr else "null / empty geometries",
         f"{report.null_geometries} / {report.empty_geometries}"),
        ("géométries invalides" if fr else "invalid geometries", str(report.invalid)),
        ("parcelles acceptées" if fr else "parcels accepted", str(report.accepted)),
        ("rejetées" if fr else "rejected", str(report.rejected)),
        ("doublons exacts ignorés" if fr else "exact duplicates skipped", str(report.duplicates)),
        ("nouvelles / modifiées / inchangées" if fr else "new / changed / unchanged",
         " / ".join(str(report.changes.get(k, 0)) for k in ("new", "changed", "unchanged"))),
    ]
    for key, value in rows:
        head.add_row(key, value)
    console.print(head)
    for note in report.file_notes:
        code = str(note["code"])
        label = describe("note", code, lang) if code in FILE_NOTES else code
        console.print(f"{'Fichier' if fr else 'File'} : {label}", markup=False)
    for code, count in report.rejected_by_reason.items():
        kind = ("Doublon" if fr else "Duplicate") if code == "duplicate" else ("Rejet" if fr else "Rejected")
        reason = describe("reason", code, lang) if code in REASONS else code
        console.print(f"{kind} [{code}] {reason} : {count}", markup=False)
    for code, count in report.warnings_by_code.items():
        label = describe("warning", code, lang) if code in WARNINGS else code
        console.print(f"{'Avertissement' if fr else 'Warning'} [{code}] {label} : {count}", markup=False)
    if report.communes:
        console.print(("Communes : " if fr else "Communes: ")
                      + ", ".join(f"{code} ({n})" for code, n in report.communes.items()))
    if report.dry_run:
        console.print("Simulation : rien n'a été enregistré." if fr else "Dry run: nothing was saved.")
    elif report.batch_id:
        console.print(f"Lot {report.batch_id} enregistré." if fr else f"Batch {report.batch_id} saved.")
