"""The extrait de délibération and the certificat d'affectation of a completed procedure.

Both exist only once the procedure is notified (décret 72-1288: the affectation exists from the
notification, dated from the approval); both name the holders and their shares, so :func:`build`
serves them to readers of personal data in the commune only and logs each.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from sifc.auth import audit
from sifc.auth.principal import Principal
from sifc.documents import layout, records, verification
from sifc.documents.layout import authority, label
from sifc.documents.verification import Issue, Sealed
from sifc.errors import Conflict
from sifc.keyring import SigningKey
from sifc.tenure import procedures, rights

TITLES = {"extrait_deliberation": "extrait", "certificat_affectation": "certificat"}


def _source(session: Session, procedure: dict[str, Any], step: str, kind: str) -> dict[str, Any]:
    ids = next(s["source_ids"] for s in procedure["steps"] if s["step"] == step)
    refs = records.source_refs(session, ids)
    return next((refs[i] for i in ids if i in refs and refs[i]["kind"] == kind), {})


def _content(session: Session, *, kind: str, procedure_id: str, lang: str) -> dict[str, Any]:
    """The document's canonical facts; 409 unless the procedure is notified."""
    procedure = procedures._get(session, procedure_id, personal=True)
    if procedure["state"] != "notified" or not procedure["rrr_id"]:
        raise Conflict("document.procedure_not_completed", id=procedure["id"], state=procedure["state"])
    right = rights._get(session, procedure["rrr_id"], personal=True)
    parcel = records.latest_parcel(session, uuid.UUID(procedure["parcel_id"]))
    deliberation = _source(session, procedure, "deliberated", "deliberation")
    approval = _source(session, procedure, "approved", "approbation")
    return {**verification.new_header(kind, lang),
            "procedure": {"id": procedure["id"], "reference": procedure["reference"], "purpose": procedure["purpose"]},
            "commune": {"code": parcel["commune_code"], "name": parcel["commune_name"]},
            "parcel": {"id": str(parcel["parcel_id"]), "version": parcel["version"], "nicad": parcel["nicad"],
                       "section": parcel["section"], "local_number": parcel["local_number"],
                       "area_m2": records.rounded(parcel["area_m2"])},
            "holders": records.holder_facts(right["holders"]),
            "deliberation": {"reference": deliberation.get("reference"), "date": deliberation.get("date"),
                             "session": deliberation.get("session")},
            "approval": {"authority": approval.get("authority"), "date": approval.get("date"),
                         "reference": approval.get("reference")},
            "affectation": {"id": right["id"], "start_date": right["start_date"], "end_date": right["end_date"]}}


def summary(facts: dict[str, Any]) -> dict[str, Any]:
    """What anyone is told of the document by its code: everything but the holders and the free text."""
    told: dict[str, Any] = verification.without_free_text(
        {k: v for k, v in facts.items() if k not in ("holders", "lang", "format")})
    return told


def _story(facts: dict[str, Any], frame: layout.Frame, kind: str) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    lang, style = frame.lang, layout.styles()
    parcel, deliberation, approval = facts["parcel"], facts["deliberation"], facts["approval"]
    authority_name = authority(approval["authority"], lang)
    holders = [[label("holders", lang), label("share", lang)]] + [
        [Paragraph(layout.escape(h["name"]), style["body"]), records.share_text(h["share"])] for h in facts["holders"]]
    return [
        Paragraph(layout.escape(label("republic", lang, commune=facts["commune"]["name"])), style["small"]),
        Paragraph(label(TITLES[kind], lang), style["title"]),
        Paragraph(layout.escape(label("issued_on", lang, date=facts["issued_at"][:10])) + " — "
                  + layout.escape(label("number", lang, number=facts["number"])), style["small"]),
        Spacer(1, 6),
        Paragraph(label(f"{TITLES[kind]}_text", lang), style["body"]),
        Paragraph(label("deliberation", lang), style["head"]),
        layout.facts([(label("reference", lang), deliberation["reference"]),
                      (label("date", lang), deliberation["date"]),
                      (label("session", lang), deliberation["session"]),
                      (label("approval", lang), f"{authority_name or '—'} — {approval['date'] or '—'}"
                       + (f" ({approval['reference']})" if approval["reference"] else ""))]),
        Paragraph(label("parcel", lang), style["head"]),
        layout.facts([(label("commune", lang), f"{facts['commune']['name']} ({facts['commune']['code']})"),
                      (label("nicad", lang), parcel["nicad"]), (label("section", lang), parcel["section"]),
                      (label("local_number", lang), parcel["local_number"]),
                      (label("area", lang), layout.area(parcel["area_m2"], lang)),
                      (label("purpose", lang), facts["procedure"]["purpose"]),
                      (label("affectation_start", lang), facts["affectation"]["start_date"])]),
        Paragraph(label("holders", lang), style["head"]),
        layout.table(holders, [330, 100]),
        *layout.code_block(frame),
    ]


def build(session: Session, *, kind: str, procedure_id: str, reader: Principal, lang: str, seal_key: SigningKey,
          verify_url: str, issued_by: str) -> bytes:
    """The document's PDF, sealed and kept in the register of issued documents.

    For a ``reader`` of personal data in the procedure's commune (401, 403, 404 otherwise); logged
    as a read of the procedure.
    """
    commune = procedures.reader_commune(session, procedure_id=procedure_id, reader=reader)
    facts = _content(session, kind=kind, procedure_id=procedure_id, lang=lang)
    title = f"{label(TITLES[kind], lang)} {facts['parcel']['nicad'] or facts['parcel']['id']}"

    def pdf(sealed: Sealed) -> bytes:
        frame = layout.Frame(title, sealed.code, verify_url, lang, title)
        return layout.render(_story(facts, frame, kind), frame)

    issued = Issue(kind, "procedure", facts["procedure"]["id"], facts["commune"]["code"], summary(facts), True,
                   issued_by)
    document = layout.issue(session, seal_key=seal_key, content=facts, issued=issued, build=pdf, title=title)
    audit.record(session, reader, service=f"{__name__}.build", subject_kind="procedure", subject_id=procedure_id,
                 commune_code=commune)
    return document
