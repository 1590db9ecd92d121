"""The write audit: every write, who, when, what, before and after.

``write_audit`` is append-only for everyone (migration 0007: the service role may INSERT and
SELECT, triggers refuse UPDATE, DELETE and TRUNCATE). Before and after are the object's full
representation, personal fields included: the log is itself personal data, served only to
signed-in roles in scope (reads recorded in the access audit) and to administrators.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth import audit
from sifc.auth.principal import Principal

SYSTEM = Principal(kind="cli", role="administrateur", name="sifc", everywhere=True)


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def record(session: Session, principal: Principal | None, *, operation: str, object_kind: str, object_id: Any,
           parcel_id: uuid.UUID | str | None = None, commune_code: str | None = None,
           before: Any = None, after: Any = None, author: str | None = None) -> None:
    """Write one audit row in the writing transaction (so that a refused write leaves none).

    Without a principal (a command on the server, the demo), the actor is ``author``, the name the
    versions carry.
    """
    actor = principal or Principal(kind="cli", role=SYSTEM.role, name=author or SYSTEM.name, everywhere=True)
    session.execute(text("""
        INSERT INTO write_audit (actor_kind, actor_id, actor, role, operation, object_kind, object_id, parcel_id,
                                 commune_code, before, after)
        VALUES (:kind, :actor_id, :actor, :role, :operation, :object_kind, :object_id, :parcel_id, :commune,
                CAST(:before AS jsonb), CAST(:after AS jsonb))"""),
        {"kind": actor.kind if actor.kind != "anonymous" else "cli", "actor_id": actor.id, "actor": actor.name,
         "role": actor.role, "operation": operation, "object_kind": object_kind, "object_id": str(object_id),
         "parcel_id": str(parcel_id) if parcel_id else None, "commune": commune_code,
         "before": _json(before), "after": _json(after)})


def entries(session: Session, *, parcel_id: str | None = None, object_kind: str | None = None,
            object_id: str | None = None, actor: str | None = None, limit: int = 100,
            offset: int = 0, communes: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Audit rows, newest first, filtered by parcel, object or actor (all values bound).

    ``communes``, when given, keeps only the rows of those communes (a row without a commune is national).
    """
    rows = session.execute(text("""
        SELECT id, node_id, occurred_at, actor_kind, actor_id, actor, role, operation, object_kind, object_id,
               parcel_id, commune_code, before, after
        FROM write_audit
        WHERE (CAST(:parcel AS uuid) IS NULL OR parcel_id = CAST(:parcel AS uuid))
          AND (CAST(:kind AS text) IS NULL OR object_kind = :kind)
          AND (CAST(:object AS text) IS NULL OR object_id = :object)
          AND (CAST(:actor AS text) IS NULL OR actor = :actor)
          AND (CAST(:communes AS text[]) IS NULL OR commune_code = ANY(CAST(:communes AS text[])))
        ORDER BY id DESC LIMIT :limit OFFSET :offset"""),
        {"parcel": parcel_id, "kind": object_kind, "object": object_id, "actor": actor, "limit": limit,
         "offset": offset, "communes": None if communes is None else sorted(communes)}).mappings().all()
    return [{**row, "id": str(row["id"]), "occurred_at": row["occurred_at"].isoformat(),
             "parcel_id": str(row["parcel_id"]) if row["parcel_id"] else None} for row in rows]


def write_log(session: Session, principal: Principal, *, object_kind: str | None = None,
              object_id: str | None = None, actor: str | None = None, limit: int = 100,
              offset: int = 0) -> list[dict[str, Any]]:
    """The write journal as ``principal`` may read it: every row for a national scope, else its communes' rows.

    Rows hold whole records (``before``/``after``) with personal data, so the scope filters them here,
    not in a router, for every caller alike, and the read is logged: one access-log row per object a
    returned row is about (a party, a right, a parcel...), so that a subject access request finds it.
    """
    rows = entries(session, object_kind=object_kind, object_id=object_id, actor=actor, limit=limit,
                   offset=offset, communes=None if principal.everywhere else principal.communes)
    read: dict[str, dict[str, str | None]] = {}
    for row in rows:
        if row["object_id"] is not None:
            read.setdefault(row["object_kind"], {}).setdefault(str(row["object_id"]), row["commune_code"])
    for kind, subjects in sorted(read.items()):
        audit.record_many(session, principal, service=f"{__name__}.write_log", subject_kind=kind,
                          subjects=sorted(subjects.items()))
    return rows
