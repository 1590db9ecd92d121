"""Readable summary of a parcel import for the command line (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sifc.i18n import Lang, translate
from sifc.imports.parcels import FILE_NOTES, REASONS, WARNINGS, ParcelImportReport, describe


def print_summary(console: Console, report: ParcelImportReport, lang: Lang) -> None:
    """Counts, reasons and warnings of ``report``, in ``lang`` (msgids ``import.summary.*``)."""
    def say(key: str, /, **params: object) -> str:
        return translate(f"import.summary.{key}", lang, **params)

    if report.already_imported:
        done = {k: str(v) for k, v in report.already_imported.items()}
        console.print(say("already_imported", batch_id=done["batch_id"], file=done["file"], date=done["date"][:10]),
                      markup=False)
        return
    head = Table(title=say("title", file=report.file), show_header=False)
    head.add_column(no_wrap=True)
    head.add_column(overflow="fold")
    rows = [
        (say("format"), f"{report.format} — {report.geometry_type}"),
        (say("crs"), f"{report.crs} ({report.crs_origin})"),
        (say("encoding"), f"{report.encoding} ({report.encoding_origin})"),
        (say("mapping"), ", ".join(f"{k}←{v}" for k, v in report.mapping.items()) or "—"),
        (say("read"), str(report.read)),
        (say("null_empty"), f"{report.null_geometries} / {report.empty_geometries}"),
        (say("invalid"), str(report.invalid)),
        (say("accepted"), str(report.accepted)),
        (say("rejected"), str(report.rejected)),
        (say("duplicates"), str(report.duplicates)),
        (say("changes"), " / ".join(str(report.changes.get(k, 0)) for k in ("new", "changed", "unchanged"))),
    ]
    if report.bornes is not None:  # a table of bornes: its points in the registry of bornes
        rows.append((say("bornes"), " / ".join(str(report.bornes.get(k, 0)) for k in (
            "distinct", "new", "changed", "unchanged", "outside"))))
    for key, value in rows:
        head.add_row(key, value)
    console.print(head)
    for note in report.file_notes:
        code = str(note["code"])
        console.print(say("file_note", note=describe("note", code, lang) if code in FILE_NOTES else code),
                      markup=False)
    for code, count in report.rejected_by_reason.items():
        reason = describe("reason", code, lang) if code in REASONS else code
        console.print(say("duplicate" if code == "duplicate" else "rejected_reason", code=code, reason=reason,
                          count=count), markup=False)
    for code, count in report.warnings_by_code.items():
        label = describe("warning", code, lang) if code in WARNINGS else code
        console.print(say("warning", code=code, warning=label, count=count), markup=False)
    if report.communes:
        console.print(say("communes", communes=", ".join(f"{code} ({n})" for code, n in report.communes.items())))
    if report.dry_run:
        console.print(say("dry_run"))
    elif report.batch_id:
        console.print(say("saved", batch_id=report.batch_id))
