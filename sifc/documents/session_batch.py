"""A council session's documents, built by a documents job (ADR 0005 §4 and § Jobs and batch documents).

Builders registered with :mod:`sifc.documents.jobs`:

- ``session_batch``: for each procedure the session granted, in the agenda's order, its extrait de
  délibération then its certificat d'affectation — each issued exactly as the single documents are
  (:func:`sifc.documents.procedure_documents.build`: sealed, recorded in ``issued_document``, the read
  logged), so every page verifies with ``/documents/verify`` — then the session's register. One
  combined PDF and, in the zip, one PDF per document. Today's rule stands: both documents exist once
  the procedure is notified (décret 72-1288); a granted procedure not yet notified is listed in the
  job's report (``skipped``) and in the register, without documents.
- ``session_register``: the register alone.
- ``procedure_batch``: the documents of a list of notified procedures of one commune (no session).

The register (``registre_session``) names no person: the session's facts, then per agenda item the
procedure's reference, the parcel, the decision and the numbers of the documents issued for it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Action, Principal, require
from sifc.documents import jobs, layout, procedure_documents, verification
from sifc.documents.layout import label
from sifc.documents.verification import Issue, Sealed
from sifc.errors import Conflict, Forbidden, InvalidInput, NotFound

DOCUMENTS = ("extrait_deliberation", "certificat_affectation")
SESSION_BUILDERS = ("session_batch", "session_register")
PROCEDURES_MAX = 2000


def _session_id(params: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(str(params.get("session_id")))
    except ValueError as error:
        raise NotFound("document_job.session_not_found", id=str(params.get("session_id"))[:64]) from error


def _council_session(session: Session, session_id: uuid.UUID) -> dict[str, Any]:
    row = session.execute(text("SELECT * FROM council_session WHERE id = :id"), {"id": session_id}).mappings().first()
    if row is None:
        raise NotFound("document_job.session_not_found", id=str(session_id))
    return dict(row)


def check_session(session: Session, params: dict[str, Any], commune_code: str) -> None:
    """Refuse at submission a session that is unknown (404), of another commune (400) or not deliberated (409)."""
    found = _council_session(session, _session_id(params))
    if found["commune_code"] != commune_code:
        raise InvalidInput("document_job.session_commune", id=str(found["id"]), commune=commune_code)
    if found["state"] != "deliberated":
        raise Conflict("document_job.session_not_deliberated", id=str(found["id"]), state=str(found["state"]))


def submit_session(session: Session, *, session_id: str, by: Principal, author: str, lang: str = "fr",
                   builder: str = "session_batch") -> str:
    """Queue the documents of a deliberated session; return the job's id.

    A writer of tenure (401/403 before anything is read), in the session's commune (403), of a session
    that exists (404) and is deliberated (409, in French: « La session n'est pas encore délibérée »).
    """
    require(by, Action.WRITE_TENURE)
    if builder not in SESSION_BUILDERS:
        raise InvalidInput("document_job.unknown_builder", name=builder[:64], names=", ".join(SESSION_BUILDERS))
    found = _council_session(session, _session_id({"session_id": session_id}))
    if not by.covers(found["commune_code"]):
        raise Forbidden("auth.out_of_scope", communes=found["commune_code"])
    return jobs.submit(session, builder=builder, params={"session_id": str(found["id"])},
                       commune_code=found["commune_code"], by=by, author=author, lang=lang)


# --- the per-procedure documents ------------------------------------------------------------------------

def _procedure_documents(session: Session, procedures: list[dict[str, Any]], progress: jobs.Progress,
                         *, start: int = 0, total: int | None = None) -> tuple[list[tuple[str, bytes]],
                                                                              dict[str, list[str]],
                                                                              list[dict[str, Any]]]:
    """The two documents of each procedure (in order), their numbers per procedure, the procedures skipped."""
    items: list[tuple[str, bytes]] = []
    numbers: dict[str, list[str]] = {}
    skipped: list[dict[str, Any]] = []
    total = total if total is not None else len(procedures)
    for index, procedure in enumerate(procedures, start=1):
        pid = str(procedure["procedure_id"])
        reference = procedure.get("reference") or pid
        issued: list[tuple[str, bytes]] = []
        try:
            for kind in DOCUMENTS:
                pdf = procedure_documents.build(
                    session, kind=kind, procedure_id=pid, reader=progress.by, lang=progress.lang,
                    seal_key=progress.seal_key, verify_url=progress.verify_url, issued_by=progress.issued_by)
                issued.append((f"{index:04d}-{_safe(reference)}-{kind.replace('_', '-')}.pdf", pdf))
        except Conflict as refused:
            if refused.key != "document.procedure_not_completed":
                raise
            skipped.append({"procedure_id": pid, "reference": procedure.get("reference"),
                            "state": refused.params.get("state")})
            issued = []
        items.extend(issued)
        numbers[pid] = [_number(pdf) for _, pdf in issued]
        progress(start + index, total)
    return items, numbers, skipped


def _safe(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in value)[:60]


def _number(pdf: bytes) -> str:
    """The document's number (its facts' ``number``), read back from the embedded content."""
    import io

    import orjson
    from pypdf import PdfReader

    content = PdfReader(io.BytesIO(pdf)).attachments[verification.ATTACHMENT][0]
    return str(orjson.loads(content)["number"])


# --- the session's register -------------------------------------------------------------------------------

def _items(session: Session, session_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = session.execute(text("""
        SELECT i.position, i.procedure_id, i.decision, p.reference, p.kind, pa.nicad, pa.section, pa.local_number
        FROM session_item i JOIN tenure_procedure p ON p.id = i.procedure_id
        LEFT JOIN parcel pa ON pa.parcel_id = p.parcel_id
        WHERE i.session_id = :id ORDER BY i.position, i.procedure_id"""), {"id": session_id}).mappings().all()
    return [dict(r) for r in rows]


def _commune_name(session: Session, code: str) -> str:
    return str(session.execute(text("SELECT name FROM commune WHERE code = :c"), {"c": code}).scalar() or code)


def _register(session: Session, council: dict[str, Any], items: list[dict[str, Any]],
              numbers: dict[str, list[str]], progress: jobs.Progress) -> bytes:
    """The session's register, sealed and kept as a ``registre_session`` document."""
    lang = progress.lang
    commune = {"code": council["commune_code"], "name": _commune_name(session, council["commune_code"])}
    facts = {**verification.new_header("registre_session", lang), "commune": commune,
             "session": {"id": str(council["id"]), "kind": council.get("kind"), "reference": council.get("reference"),
                         "held_on": _iso(council.get("held_on")),
                         "deliberation_number": council.get("deliberation_number"),
                         "deliberated_on": _iso(council.get("deliberated_on"))},
             "items": [{"position": i["position"], "procedure_id": str(i["procedure_id"]), "reference": i["reference"],
                        "kind": i["kind"], "nicad": i["nicad"], "decision": i["decision"],
                        "documents": numbers.get(str(i["procedure_id"]), [])} for i in items]}
    title = f"{label('registre_session', lang)} — {commune['name']}"

    def pdf(sealed: Sealed) -> bytes:
        frame = layout.Frame(title, sealed.code, progress.verify_url, lang, commune["name"])
        return layout.render(_register_story(facts, frame), frame)

    summary = {k: facts[k] for k in ("document", "number", "issued_at", "commune", "session")}
    summary["items"] = len(items)
    issued = Issue("registre_session", "council_session", str(council["id"]), council["commune_code"], summary,
                   False, progress.issued_by)
    return layout.issue(session, seal_key=progress.seal_key, content=facts, issued=issued, build=pdf, title=title)


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value is not None else None)


def _register_story(facts: dict[str, Any], frame: layout.Frame) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    lang, style = frame.lang, layout.styles()
    council = facts["session"]
    head = [label("position", lang), label("reference", lang), label("nicad", lang), label("decision", lang),
            label("documents", lang)]
    rows: list[list[Any]] = [head] + [
        [str(i["position"]), i["reference"] or "—", i["nicad"] or "—", label(f"decision_{i['decision']}", lang)
         if i["decision"] else "—", str(len(i["documents"]))] for i in facts["items"]]
    return [
        Paragraph(layout.escape(label("republic", lang, commune=facts["commune"]["name"])), style["small"]),
        Paragraph(label("registre_session", lang), style["title"]),
        Paragraph(layout.escape(label("issued_on", lang, date=facts["issued_at"][:10])) + " — "
                  + layout.escape(label("number", lang, number=facts["number"])), style["small"]),
        Spacer(1, 6),
        layout.facts([(label("commune", lang), f"{facts['commune']['name']} ({facts['commune']['code']})"),
                      (label("session", lang), " — ".join(v for v in (council["reference"], council["held_on"]) if v)),
                      (label("deliberation", lang), " — ".join(v for v in (council["deliberation_number"],
                                                                           council["deliberated_on"]) if v))]),
        Spacer(1, 6),
        layout.table(rows, [50, 140, 110, 90, 80]),
        *layout.code_block(frame),
    ]


# --- the builders -------------------------------------------------------------------------------------------

def build_session_batch(session: Session, params: dict[str, Any], progress: jobs.Progress) -> jobs.BuiltBatch:
    """Every granted procedure's extract and certificate, then the session's register."""
    council = _council_session(session, _session_id(params))
    check_session(session, {"session_id": council["id"]}, progress.commune_code)
    items = _items(session, council["id"])
    granted = [{"procedure_id": i["procedure_id"], "reference": i["reference"]} for i in items
               if i["decision"] == "granted"]
    progress(0, len(granted) + 1)
    documents, numbers, skipped = _procedure_documents(session, granted, progress, total=len(granted) + 1)
    register = _register(session, council, items, numbers, progress)
    progress(len(granted) + 1, len(granted) + 1)
    documents.append(("registre-session.pdf", register))
    return jobs.BuiltBatch(items=documents, report={
        "session_id": str(council["id"]), "granted": len(granted), "printed": len(granted) - len(skipped),
        "skipped": skipped})


def build_session_register(session: Session, params: dict[str, Any], progress: jobs.Progress) -> jobs.BuiltBatch:
    """The session's register alone (the numbers of documents issued by earlier batches are not repeated)."""
    council = _council_session(session, _session_id(params))
    check_session(session, {"session_id": council["id"]}, progress.commune_code)
    progress(0, 1)
    register = _register(session, council, _items(session, council["id"]), {}, progress)
    progress(1, 1)
    return jobs.BuiltBatch(items=[("registre-session.pdf", register)], report={"session_id": str(council["id"])})


def _procedure_ids(params: dict[str, Any]) -> list[str]:
    ids = params.get("procedure_ids")
    if not isinstance(ids, list) or not ids or len(ids) > PROCEDURES_MAX:
        raise InvalidInput("document_job.bad_procedures", limit=PROCEDURES_MAX)
    try:
        return [str(uuid.UUID(str(i))) for i in ids]
    except ValueError as error:
        raise InvalidInput("document_job.bad_procedures", limit=PROCEDURES_MAX) from error


def check_procedures(session: Session, params: dict[str, Any], commune_code: str) -> None:
    """Every procedure of a ``procedure_batch`` exists and is of the job's commune (400 otherwise)."""
    ids = _procedure_ids(params)
    found = session.execute(text("SELECT count(*) FROM tenure_procedure WHERE id = ANY(CAST(:ids AS uuid[])) "
                                 "AND commune_code = :c"), {"ids": ids, "c": commune_code}).scalar()
    if found != len(set(ids)):
        raise InvalidInput("document_job.procedures_commune", commune=commune_code)


def build_procedure_batch(session: Session, params: dict[str, Any], progress: jobs.Progress) -> jobs.BuiltBatch:
    """The extract and certificate of each listed procedure, in the order given."""
    check_procedures(session, params, progress.commune_code)
    ids = _procedure_ids(params)
    references: dict[str, str | None] = dict(session.execute(text("SELECT id::text, reference FROM tenure_procedure "
                                           "WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}).all())
    procedures = [{"procedure_id": i, "reference": references.get(i)} for i in ids]
    documents, _numbers, skipped = _procedure_documents(session, procedures, progress)
    return jobs.BuiltBatch(items=documents, report={"procedures": len(ids), "printed": len(ids) - len(skipped),
                                                    "skipped": skipped})


jobs.register("session_batch", build_session_batch, check=check_session)
jobs.register("session_register", build_session_register, check=check_session)
jobs.register("procedure_batch", build_procedure_batch, check=check_procedures)
