"""What the printed documents share: fonts, French and English labels, the page frame, the seal.

Pages are A4, built with reportlab's platypus (tables repeat their header row across pages);
DejaVu Sans is used when the system has it (every Latin script, Wolof's letters included),
Helvetica otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from sifc.documents import verification
from sifc.documents.verification import Issue, Sealed
from sifc.keyring import SigningKey

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_fonts: tuple[str, str] | None = None

LABELS: dict[str, dict[str, str]] = {
    "fiche": {"fr": "Fiche parcellaire", "en": "Parcel sheet"},
    "extrait": {"fr": "Extrait de délibération", "en": "Extract of the council's deliberation"},
    "certificat": {"fr": "Certificat d'affectation", "en": "Certificate of allocation"},
    "registre": {"fr": "Registre foncier communal", "en": "Communal land register"},
    "republic": {"fr": "République du Sénégal — Commune de {commune}",
                 "en": "Republic of Senegal — Commune of {commune}"},
    "issued_on": {"fr": "Délivré le {date}", "en": "Issued on {date}"},
    "number": {"fr": "Document n° {number}", "en": "Document no. {number}"},
    "code": {"fr": "Code de vérification", "en": "Verification code"},
    "verify_at": {"fr": "Vérifier ce document : {url} (déposer le PDF) ou {url}/<code>",
                  "en": "Verify this document: {url} (upload the PDF) or {url}/<code>"},
    "nicad": {"fr": "NICAD", "en": "NICAD"},
    "nicad_status": {"fr": "État du NICAD", "en": "NICAD status"},
    "status": {"fr": "Statut", "en": "Status"},
    "in_force": {"fr": "en vigueur", "en": "in force"},
    "commune": {"fr": "Commune", "en": "Commune"},
    "section": {"fr": "Section", "en": "Section"},
    "local_number": {"fr": "Numéro", "en": "Number"},
    "area": {"fr": "Superficie calculée", "en": "Computed area"},
    "declared_area": {"fr": "Superficie déclarée", "en": "Declared area"},
    "land_use": {"fr": "Usage", "en": "Land use"},
    "regime": {"fr": "Régime foncier", "en": "Tenure regime"},
    "vertices": {"fr": "Coordonnées des sommets (UTM 28N, EPSG:32628)",
                 "en": "Vertex coordinates (UTM 28N, EPSG:32628)"},
    "point": {"fr": "Point", "en": "Point"},
    "rights": {"fr": "Droits en vigueur", "en": "Current rights"},
    "type": {"fr": "Nature", "en": "Type"},
    "start": {"fr": "Début", "en": "Start"},
    "end": {"fr": "Fin", "en": "End"},
    "sources": {"fr": "Sources", "en": "Sources"},
    "holders": {"fr": "Titulaires", "en": "Holders"},
    "share": {"fr": "Quote-part", "en": "Share"},
    "holders_withheld": {"fr": "Titulaires non communiqués (données personnelles, loi 2008-12).",
                         "en": "Holders withheld (personal data, law 2008-12)."},
    "none": {"fr": "Aucun", "en": "None"},
    "map": {"fr": "Plan de situation (voisins à moins de 20 m)", "en": "Location map (neighbours within 20 m)"},
    "kind": {"fr": "Nature", "en": "Kind"},
    "reference": {"fr": "Référence", "en": "Reference"},
    "date": {"fr": "Date", "en": "Date"},
    "parcel": {"fr": "Parcelle", "en": "Parcel"},
    "deliberation": {"fr": "Délibération", "en": "Deliberation"},
    "session": {"fr": "Session", "en": "Session"},
    "approval": {"fr": "Approbation", "en": "Approval"},
    "authority": {"fr": "Autorité", "en": "Authority"},
    "affectation_start": {"fr": "Date d'effet de l'affectation", "en": "Allocation in force from"},
    "procedure": {"fr": "Procédure", "en": "Procedure"},
    "purpose": {"fr": "Usage demandé", "en": "Requested use"},
    "extrait_text": {
        "fr": "Le conseil municipal, en sa séance ci-dessus, a délibéré l'affectation de la parcelle désignée "
              "ci-dessous aux titulaires nommés, délibération approuvée par l'autorité indiquée.",
        "en": "The municipal council, at the session above, resolved to allocate the parcel below to the holders "
              "named, a resolution approved by the authority shown."},
    "certificat_text": {
        "fr": "Il est certifié que la parcelle désignée ci-dessous est affectée aux titulaires nommés, "
              "à la suite de la procédure achevée de la commission domaniale.",
        "en": "It is certified that the parcel below is allocated to the holders named, following the completed "
              "procedure of the land commission."},
    "parcels": {"fr": "Parcelles en vigueur : {count}", "en": "Current parcels: {count}"},
    "page": {"fr": "Page {page}", "en": "Page {page}"},
}

AUTHORITIES = {"sous_prefet": {"fr": "Sous-préfet", "en": "Sub-prefect"}, "prefet": {"fr": "Préfet", "en": "Prefect"},
               "gouverneur": {"fr": "Gouverneur", "en": "Governor"}}


def label(key: str, lang: str, **params: Any) -> str:
    """A title or label in ``lang`` (French when the language is unknown)."""
    entry = LABELS[key]
    return entry.get(lang, entry["fr"]).format(**params)


def fonts() -> tuple[str, str]:
    """The regular and bold font names, DejaVu registered once if the system has it."""
    global _fonts
    if _fonts is None:
        regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            from reportlab.pdfbase import pdfmetrics
            from reportlab.pdfbase.ttfonts import TTFont

            pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
            _fonts = ("DejaVuSans", "DejaVuSans-Bold")
        else:
            _fonts = ("Helvetica", "Helvetica-Bold")
    return _fonts


def styles() -> dict[str, Any]:
    """Paragraph styles of the documents."""
    from reportlab.lib.styles import ParagraphStyle

    regular, bold = fonts()
    return {"title": ParagraphStyle("title", fontName=bold, fontSize=16, leading=20, spaceAfter=6),
            "head": ParagraphStyle("head", fontName=bold, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4),
            "body": ParagraphStyle("body", fontName=regular, fontSize=9, leading=12),
            "small": ParagraphStyle("small", fontName=regular, fontSize=7.5, leading=9.5),
            "header": ParagraphStyle("header", fontName=bold, fontSize=8, leading=10)}


def table(rows: list[list[Any]], widths: list[float] | None = None, *, header: bool = True) -> Any:
    """A table whose first row is a header repeated on each page."""
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    regular, bold = fonts()
    if header:  # header cells wrap, so that a long label never runs into its neighbour
        style = styles()["header"]
        rows = [[Paragraph(escape(cell), style) for cell in rows[0]], *rows[1:]]
    found = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[Any] = [("FONTNAME", (0, 0), (-1, -1), regular), ("FONTSIZE", (0, 0), (-1, -1), 8),
                           ("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
    if header:
        commands += [("FONTNAME", (0, 0), (-1, 0), bold), ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)]
    found.setStyle(TableStyle(commands))
    return found


def facts(pairs: list[tuple[str, Any]]) -> Any:
    """A two-column table of label → value, without header."""
    return table([[k, "—" if v is None or v == "" else str(v)] for k, v in pairs], [150, 330], header=False)


def area(value: float | None, lang: str) -> str:
    """An area in square metres, as printed: ``1 234,50 m²`` in French, ``1,234.50 m²`` in English."""
    if value is None:
        return "—"
    found = f"{value:,.2f}"
    if lang != "en":
        found = found.replace(",", " ").replace(".", ",")
    return f"{found} m²"


@dataclass(frozen=True)
class Frame:
    """What every page prints: the title, the code and where to verify it."""

    title: str
    code: str
    verify_url: str
    lang: str
    footer: str


def _page(frame: Frame) -> Callable[[Any, Any], None]:
    def draw(canvas: Any, doc: Any) -> None:
        regular, bold = fonts()
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.drawString(40, 30, f"{label('code', frame.lang)} : {verification.grouped(frame.code)}")
        canvas.drawString(40, 21, label("verify_at", frame.lang, url=frame.verify_url))
        width, height = doc.pagesize
        canvas.drawRightString(width - 40, height - 25, f"{frame.footer} — {label('page', frame.lang, page=doc.page)}")
        canvas.restoreState()

    return draw


def render(story: list[Any], frame: Frame, *, landscape: bool = False) -> bytes:
    """The PDF of ``story`` (platypus flowables) with the code and the verification URL on every page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pagesizes import landscape as turn
    from reportlab.platypus import SimpleDocTemplate

    out = io.BytesIO()
    size = turn(A4) if landscape else A4
    doc = SimpleDocTemplate(out, pagesize=size, leftMargin=40, rightMargin=40, topMargin=40, bottomMargin=50,
                            title=frame.title, author="SIFC", creator="SIFC")
    page = _page(frame)
    doc.build(story, onFirstPage=page, onLaterPages=page)
    return out.getvalue()


def code_block(frame: Frame) -> list[Any]:
    """The code printed in the body of the last page, as well as in every footer."""
    from reportlab.platypus import Paragraph, Spacer

    style = styles()
    return [Spacer(1, 10), Paragraph(f"<b>{label('code', frame.lang)}</b> : {verification.grouped(frame.code)}",
                                     style["body"]),
            Paragraph(escape(label("verify_at", frame.lang, url=frame.verify_url)), style["small"]),
            Paragraph(escape(f"{frame.verify_url}/{frame.code}"), style["small"])]


def escape(value: Any) -> str:
    """Text for a platypus paragraph (its mini-markup escaped)."""
    from xml.sax.saxutils import escape as xml_escape

    return xml_escape("—" if value is None else str(value))


def issue(session: Session, *, seal_key: SigningKey, content: dict[str, Any], issued: Issue,
          build: Callable[[Sealed], bytes], title: str) -> bytes:
    """Seal ``content``, build its PDF with the code, embed the content, keep the document; return the PDF."""
    sealed = verification.seal(seal_key, content)
    pdf = verification.embed(build(sealed), sealed, title=title)
    verification.record(session, sealed=sealed, pdf=pdf, issue=issued)
    return pdf
