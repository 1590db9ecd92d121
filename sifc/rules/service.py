"""The commune settings in force on a date, and their writes (ADR 0005 §1).

The value of a key in force for a commune on a date is, in this order: the commune's own row (the
latest ``valid_from`` not after the date, the last recorded winning a tie: a correction is a new row),
else the national default (``setting_default``, loaded with the territorial reference and citing its
text), else, for the two keys that were environment settings before 0.6, that setting (logged
``unsourced``: it cites nothing), else nothing, and the operation that needs it refuses
(409 ``setting.missing``, naming the key) rather than guess a value of law.

The values are public law or practice (a délibération is public); who recorded one (``set_by``) is
personal, served in scope only, and that read is logged.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth import audit
from sifc.auth.principal import Action, Principal, require
from sifc.errors import Conflict, InvalidInput, NotFound
from sifc.federation import directory
from sifc.rules import keys

log = logging.getLogger(__name__)

# The source the demo and the tests cite: synthetic, to be replaced by the commune's own délibération.
DEMO_SOURCE = "Démo SIFC — valeur fictive, à remplacer par la délibération de la commune"
MAX_SOURCE = 500
EARLIEST = date(1960, 1, 1)  # the loi 64-46 on the domaine national is the oldest text a setting may rest on
LATEST = date(2100, 12, 31)


@dataclass(frozen=True)
class InForce:
    """A value in force and where it comes from: ``commune``, ``default`` or ``environment``."""

    key: str
    value: Any
    origin: str
    valid_from: date | None
    source: str | None
    source_document_id: str | None = None
    docs_anchor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (public: no author)."""
        return {"key": self.key, "value": self.value, "origin": self.origin,
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "source": self.source, "source_document_id": self.source_document_id,
                "docs_anchor": self.docs_anchor}


def _commune_row(session: Session, commune_code: str, key: str, on: date) -> Any:
    return session.execute(text("""
        SELECT value, valid_from, source, source_document_id FROM commune_setting
        WHERE commune_code = :c AND key = :k AND valid_from <= :on
        ORDER BY valid_from DESC, recorded_at DESC, id DESC LIMIT 1"""),
        {"c": commune_code, "k": key, "on": on}).first()


def _default_row(session: Session, key: str, on: date) -> Any:
    return session.execute(text("""
        SELECT value, valid_from, source, docs_anchor FROM setting_default
        WHERE key = :k AND valid_from <= :on AND (valid_to IS NULL OR valid_to > :on)
        ORDER BY valid_from DESC LIMIT 1"""), {"k": key, "on": on}).first()


def _environment(key: keys.Key, commune_code: str) -> InForce | None:
    if key.env_fallback is None:
        return None
    from sifc.settings import get_settings

    value = getattr(get_settings(), key.env_fallback)
    # A value that cites nothing: said in the log (no personal data: a key and a commune code).
    log.warning("setting %s for commune %s: unsourced, from SIFC_%s (run: sifc settings carry-over)",
                key.name, commune_code, key.env_fallback.upper())
    return InForce(key.name, key.validate(list(value) if isinstance(value, tuple) else value),
                   "environment", None, None)


def resolve(session: Session, *, commune_code: str, key: str, on: date) -> InForce | None:
    """The value of ``key`` in force for the commune on ``on``, with its origin; None when there is none."""
    declared = keys.get(key)
    row = _commune_row(session, commune_code, key, on)
    if row is not None:
        return InForce(key, row.value, "commune", row.valid_from, row.source,
                       str(row.source_document_id) if row.source_document_id else None)
    default = _default_row(session, key, on)
    if default is not None:
        return InForce(key, default.value, "default", default.valid_from, default.source,
                       docs_anchor=default.docs_anchor)
    return _environment(declared, commune_code)


def maybe_in_force(session: Session, *, commune_code: str, key: str, on: date) -> Any | None:
    """The value of ``key`` in force for the commune on ``on``; None when neither commune nor default sets it."""
    found = resolve(session, commune_code=commune_code, key=key, on=on)
    return None if found is None else found.value


def in_force(session: Session, *, commune_code: str, key: str, on: date) -> Any:
    """The value of ``key`` in force for the commune on ``on``; 409 ``setting.missing`` when there is none."""
    found = resolve(session, commune_code=commune_code, key=key, on=on)
    if found is None:
        raise Conflict("setting.missing", key=key, commune=commune_code, on=on.isoformat())
    return found.value


def current(session: Session, *, commune_code: str, on: date) -> list[dict[str, Any]]:
    """Every key with its value in force on ``on`` (public: values, sources, dates; ``origin`` none when unset)."""
    _known_commune(session, commune_code)
    found = []
    for key in keys.KEYS:
        value = resolve(session, commune_code=commune_code, key=key.name, on=on)
        body = value.as_dict() if value else InForce(key.name, None, "none", None, None).as_dict()
        found.append({**body, "unit": key.unit, "meaning": key.meaning})
    return found


def _known_commune(session: Session, commune_code: str) -> None:
    if not session.execute(text("SELECT 1 FROM commune WHERE code = :c"), {"c": commune_code}).scalar():
        raise NotFound("territory.not_found", level="commune", code=commune_code[:64])


def _source_document(session: Session, source_document_id: str | None, commune_code: str,
                     by: Principal | None) -> uuid.UUID | None:
    if not source_document_id:
        return None
    from sifc.tenure.common import sources_of

    found = sources_of(session, [source_document_id], commune_code=commune_code, by=by)
    return uuid.UUID(str(found[0]["id"]))


def set(session: Session, *, commune_code: str, key: str, value: Any, valid_from: date, source: str,  # noqa: A001
        source_document_id: str | None = None, by: Principal | None, author: str) -> dict[str, Any]:
    """Record the commune's value of ``key`` from ``valid_from``, citing ``source``; return the new row.

    Land officers and administrators in scope, at the node that owns the commune. Append-only: the
    row takes effect from ``valid_from`` until a later one; a mistaken row is corrected by a new row
    with the same ``valid_from``.
    """
    declared = keys.get(key)
    _known_commune(session, commune_code)
    if by is not None:
        require(by, Action.WRITE_TENURE, communes=[commune_code])
    directory.ensure_owned(session, [commune_code])
    checked = declared.validate(value)
    cited = (source or "").strip()
    if not cited:
        raise InvalidInput("setting.source_required", key=key)
    if len(cited) > MAX_SOURCE:
        raise InvalidInput("setting.source_too_long", max=MAX_SOURCE)
    if not EARLIEST <= valid_from <= LATEST:
        raise InvalidInput("setting.bad_date", earliest=EARLIEST.isoformat(), latest=LATEST.isoformat())
    document = _source_document(session, source_document_id, commune_code, by)
    row = session.execute(text("""
        INSERT INTO commune_setting (id, commune_code, key, valid_from, value, source, source_document_id, set_by)
        VALUES (sifc_uuid7(), :c, :k, :on, CAST(:value AS jsonb), :source, :document, :author)
        RETURNING id, recorded_at"""),
        {"c": commune_code, "k": key, "on": valid_from, "value": orjson.dumps(checked).decode(),
         "source": cited, "document": document, "author": author}).one()
    written = {"id": str(row.id), "commune_code": commune_code, "key": key, "value": checked,
               "valid_from": valid_from.isoformat(), "source": cited,
               "source_document_id": str(document) if document else None,
               "recorded_at": row.recorded_at.isoformat()}
    journal.record(session, by, author=author, operation="setting.set", object_kind="commune_setting",
                   object_id=row.id, commune_code=commune_code, after={**written, "set_by": author})
    return written


def history(session: Session, *, commune_code: str, key: str, reader: Principal | None) -> dict[str, Any]:
    """Every row of the commune for ``key`` (recording order) and the national defaults of the key.

    ``set_by`` is served only to a reader of personal data in the commune, and that read is logged.
    """
    keys.get(key)
    _known_commune(session, commune_code)
    personal = reader is not None and reader.may(Action.READ_PERSONAL, commune_code)
    rows = session.execute(text("""
        SELECT id, valid_from, value, source, source_document_id, set_by, recorded_at FROM commune_setting
        WHERE commune_code = :c AND key = :k ORDER BY recorded_at, id"""), {"c": commune_code, "k": key}).all()
    commune = [{"id": str(r.id), "valid_from": r.valid_from.isoformat(), "value": r.value, "source": r.source,
                "source_document_id": str(r.source_document_id) if r.source_document_id else None,
                "recorded_at": r.recorded_at.isoformat(), **({"set_by": r.set_by} if personal else {})}
               for r in rows]
    defaults = [{"valid_from": r.valid_from.isoformat(), "valid_to": r.valid_to.isoformat() if r.valid_to else None,
                 "value": r.value, "source": r.source, "docs_anchor": r.docs_anchor}
                for r in session.execute(text("""
                    SELECT valid_from, valid_to, value, source, docs_anchor FROM setting_default
                    WHERE key = :k ORDER BY valid_from"""), {"k": key}).all()]
    if personal and rows and reader is not None:
        audit.record(session, reader, service=f"{__name__}.history", subject_kind="commune_setting",
                     subject_id=f"{commune_code}/{key}", commune_code=commune_code)
    return {"commune_code": commune_code, "key": key, "commune": commune, "defaults": defaults}
