"""The récépissé of a request: what the applicant takes home from the land office, with the tracking code.

It states the file number, the date of registration, the commune and the kind of request, and prints a
tracking code with how to follow the file on the public page or the API. The code is printed, never
sealed into the document's facts (so that a verification answer never carries it) nor kept (only its
hash is: :mod:`sifc.tracking.codes`); every print issues a new code and revokes the previous one.
Nothing personal is printed: the applicant holds the paper.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Principal
from sifc.documents import layout, verification
from sifc.documents.layout import label
from sifc.documents.verification import Issue, Sealed
from sifc.errors import NotFound
from sifc.keyring import SigningKey
from sifc.tracking import codes
from sifc.versioning import parse_id

KIND = "recepisse"
TRACK_PAGE = "/app/pages/suivi.html"
TRACK_API = "/suivi"


def _content(session: Session, *, procedure_id: str, lang: str) -> dict[str, Any]:
    """The récépissé's facts: the file's number, kind, commune and date of registration (nothing personal)."""
    pid = parse_id(procedure_id, key="procedure.not_found", kind="procédure")
    row = session.execute(text("""
        SELECT p.id, p.reference, p.kind, p.commune_code, c.name AS commune_name, s.occurred_on AS registered_on
        FROM tenure_procedure p JOIN commune c ON c.code = p.commune_code
        JOIN procedure_step s ON s.procedure_id = p.id AND s.seq = 1
        WHERE p.id = :id"""), {"id": pid}).mappings().first()
    if row is None:
        raise NotFound("procedure.not_found", id=str(pid))
    return {**verification.new_header(KIND, lang),
            "procedure": {"id": str(row["id"]), "file_number": row["reference"] or str(row["id"]),
                          "kind": row["kind"], "registered_on": row["registered_on"].isoformat()},
            "commune": {"code": row["commune_code"], "name": row["commune_name"]}}


def _story(facts: dict[str, Any], frame: layout.Frame, tracking_code: str, base_url: str) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    lang, style = frame.lang, layout.styles()
    procedure = facts["procedure"]
    return [
        Paragraph(layout.escape(label("republic", lang, commune=facts["commune"]["name"])), style["small"]),
        Paragraph(label("recepisse", lang), style["title"]),
        Paragraph(layout.escape(label("issued_on", lang, date=facts["issued_at"][:10])) + " — "
                  + layout.escape(label("number", lang, number=facts["number"])), style["small"]),
        Spacer(1, 6),
        Paragraph(layout.escape(label("recepisse_text", lang)), style["body"]),
        layout.facts([(label("file_number", lang), procedure["file_number"]),
                      (label("registered_on", lang), procedure["registered_on"]),
                      (label("commune", lang), f"{facts['commune']['name']} ({facts['commune']['code']})"),
                      (label("request_kind", lang), procedure["kind"])]),
        Paragraph(label("tracking_code", lang), style["head"]),
        Paragraph(f"<b>{layout.escape(tracking_code)}</b>", style["title"]),
        Paragraph(layout.escape(label("track_how", lang, page=base_url + TRACK_PAGE,
                                      api=f"{base_url}{TRACK_API}/{procedure['file_number']}/<code>")),
                  style["body"]),
        Paragraph(layout.escape(label("tracking_keep", lang)), style["small"]),
        *layout.code_block(frame),
    ]


def build(session: Session, *, procedure_id: str, by: Principal | None, author: str, lang: str,
          seal_key: SigningKey, verify_url: str, base_url: str) -> bytes:
    """A new récépissé of the procedure, with a new tracking code (the previous one revoked), sealed and kept.

    ``by`` must write tenure in the procedure's commune (403); 404 for an unknown procedure.
    """
    return build_with_code(session, procedure_id=procedure_id, by=by, author=author, lang=lang, seal_key=seal_key,
                           verify_url=verify_url, base_url=base_url)[0]


def build_with_code(session: Session, *, procedure_id: str, by: Principal | None, author: str, lang: str,
                    seal_key: SigningKey, verify_url: str, base_url: str) -> tuple[bytes, str]:
    """:func:`build`, and the tracking code it printed (for a console that shows it once)."""
    facts = _content(session, procedure_id=procedure_id, lang=lang)
    tracking_code = codes.issue(session, procedure_id=facts["procedure"]["id"], by=by, author=author)
    codes.issued_now(session, facts["procedure"]["id"])  # printed here, not handed over again
    title = f"{label('recepisse', lang)} {facts['procedure']['file_number']}"

    def pdf(sealed: Sealed) -> bytes:
        frame = layout.Frame(title, sealed.code, verify_url, lang, title)
        return layout.render(_story(facts, frame, tracking_code, base_url), frame)

    summary = {k: v for k, v in facts.items() if k not in ("lang", "format")}
    issued = Issue(KIND, "procedure", facts["procedure"]["id"], facts["commune"]["code"], summary, False, author)
    return layout.issue(session, seal_key=seal_key, content=facts, issued=issued, build=pdf, title=title), tracking_code
