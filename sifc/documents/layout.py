"""What the printed documents share: fonts, labels (from the message catalogues), the page frame, the seal.

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
from sifc.federation import directory
from sifc.i18n import Lang, known, translate
from sifc.keyring import SigningKey

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_fonts: tuple[str, str] | None = None

def label(key: str, lang: str, **params: Any) -> str:
    """A title or label in ``lang`` (French when the language is unknown): msgid ``document.label.<key>``."""
    return translate(f"document.label.{key}", _lang(lang), **params)


def authority(name: str | None, lang: str) -> str | None:
    """The approving authority (``sous_prefet``, ``prefet``, ``gouverneur``) in words; others as given."""
    key = f"document.authority.{name}"
    return translate(key, _lang(lang)) if name and known(key) else name


def _lang(lang: str) -> Lang:
    return "en" if lang == "en" else "fr"


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


CODE_LINE = 64  # hex digits on one printed line: an HMAC code whole, an Ed25519 signature in two lines


def code_lines(code: str) -> list[str]:
    """The code as printed: groups of four digits, 64 digits a line (an Ed25519 code takes two lines)."""
    return [verification.grouped(code[i:i + CODE_LINE]) for i in range(0, len(code), CODE_LINE)] or [""]


def _page(frame: Frame) -> Callable[[Any, Any], None]:
    def draw(canvas: Any, doc: Any) -> None:
        regular, bold = fonts()
        canvas.saveState()
        canvas.setFont(regular, 7)
        # The code's lines stacked upwards from the verification line, within the bottom margin (50 pt).
        head = f"{label('code', frame.lang)} : "
        indent = canvas.stringWidth(head, regular, 7)
        lines = code_lines(frame.code)
        canvas.drawString(40, 30 + 9 * (len(lines) - 1), head + lines[0])
        for number, line in enumerate(lines[1:], start=1):  # aligned under the first line's digits
            canvas.drawString(40 + indent, 30 + 9 * (len(lines) - 1 - number), line)
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
    return [Spacer(1, 10), Paragraph(f"<b>{label('code', frame.lang)}</b> : " + "<br/>".join(code_lines(frame.code)),
                                     style["body"]),
            Paragraph(escape(label("verify_at", frame.lang, url=frame.verify_url)), style["small"]),
            Paragraph(escape(f"{frame.verify_url}/{frame.code}"), style["small"])]


def escape(value: Any) -> str:
    """Text for a platypus paragraph (its mini-markup escaped)."""
    from xml.sax.saxutils import escape as xml_escape

    return xml_escape("—" if value is None else str(value))


def issue(session: Session, *, seal_key: SigningKey, content: dict[str, Any], issued: Issue,
          build: Callable[[Sealed], bytes], title: str) -> bytes:
    """Seal ``content``, build its PDF with the code, embed the content, keep the document; return the PDF.

    The register of issued documents is the commune's: a node that does not own it is refused before the PDF
    is built (ADR 0004).
    """
    directory.ensure_owned(session, [issued.commune_code])
    sealed = verification.seal(seal_key, content)
    pdf = verification.embed(build(sealed), sealed, title=title)
    verification.record(session, sealed=sealed, pdf=pdf, issue=issued)
    return pdf
