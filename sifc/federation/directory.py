"""The node and the others: its role, which communes it may write, and who owns the rest (ADR 0004).

A pole node writes the communes of its pole, the national node none, a single node every one
(``sifc_owns``, migration 0016). The database refuses any other write (trigger
``sifc_20_owner_guard``, SQLSTATE ``SF403``); the services ask first (:func:`ensure_owned`), so a
request is refused before anything is half-done, and the guard stays the backstop for a path
that forgot to ask. Either way the caller meets one error, :class:`sifc.errors.NotOwner`, naming
the node that owns the commune (the directory ``federation_node``, replicated from the national
node) so it can go there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.errors import NotOwner

NOT_OWNER_SQLSTATE = "SF403"
_GUARD_MESSAGE = re.compile(r"commune (\S+) is not owned by this node")


@dataclass(frozen=True)
class ThisNode:
    """The place of the node in the federation (``sifc_node``, never replicated)."""

    node_id: str
    role: str  # single | pole | national
    pole_code: str | None
    url: str | None
    personal: str  # pole | national: where holders' identities are kept

    @property
    def national(self) -> bool:
        """Whether this is the national node (it reads every pole's copy and writes none)."""
        return self.role == "national"


@dataclass(frozen=True)
class Node:
    """Another node of the federation, as the directory names it."""

    node_id: str
    role: str
    pole_code: str | None
    url: str


SINGLE = ThisNode(node_id="local", role="single", pole_code=None, url=None, personal="pole")


def this_node(session: Session) -> ThisNode:
    """The node's own row of ``sifc_node`` (a single node when the row is missing)."""
    row = session.execute(text("SELECT node_id, role, pole_code, url, personal FROM sifc_node")).first()
    if row is None:
        return SINGLE
    return ThisNode(node_id=row.node_id, role=row.role, pole_code=row.pole_code, url=row.url,
                    personal=row.personal)


def poles(session: Session) -> list[Node]:
    """The pole nodes of the directory, by node id."""
    rows = session.execute(text("SELECT node_id, role, pole_code, url FROM federation_node WHERE role = 'pole' "
                                "ORDER BY node_id")).all()
    return [Node(node_id=row.node_id, role=row.role, pole_code=row.pole_code, url=row.url) for row in rows]


def owner_of(session: Session, commune: str) -> Node | None:
    """The pole node that owns ``commune`` (through its region's pole), if the directory knows it."""
    row = session.execute(text("""
        SELECT f.node_id, f.role, f.pole_code, f.url
        FROM commune c JOIN region r ON r.code = c.region_code
        JOIN federation_node f ON f.role = 'pole' AND f.pole_code = r.pole_code
        WHERE c.code = :commune ORDER BY f.node_id LIMIT 1"""), {"commune": commune}).first()
    if row is None:
        return None
    return Node(node_id=row.node_id, role=row.role, pole_code=row.pole_code, url=row.url)


def not_owner(session: Session, commune: str) -> NotOwner:
    """The refusal of a write into ``commune``, naming the node that owns it."""
    owner = owner_of(session, commune)
    return NotOwner(commune=commune, owner_node=owner.node_id if owner else None,
                    owner_url=owner.url if owner else None)


def unowned(session: Session, communes: Iterable[str | None]) -> list[str]:
    """Those of ``communes`` this node may not write, in order (one query; none on a single node)."""
    codes = sorted({code for code in communes if code})
    if not codes:
        return []
    found = session.execute(text("SELECT code FROM unnest(CAST(:codes AS text[])) AS code "
                                 "WHERE NOT sifc_owns(code) ORDER BY code"), {"codes": codes}).scalars()
    return list(found)


def ensure_owned(session: Session, communes: Iterable[str | None]) -> None:
    """Refuse (:class:`NotOwner`) a write into a commune this node does not own, before anything is written."""
    refused = unowned(session, communes)
    if refused:
        raise not_owner(session, refused[0])


def refused_commune(error: BaseException) -> str | None:
    """The commune of the ownership guard's refusal in a database error, or ``None`` for any other error.

    The guard raises SQLSTATE ``SF403`` with the commune as its DETAIL; SQLAlchemy wraps psycopg's
    error (``.orig``), whose ``sqlstate`` and ``diag`` say which.
    """
    cause = getattr(error, "orig", None) or error
    if getattr(cause, "sqlstate", None) != NOT_OWNER_SQLSTATE:
        return None
    diag = getattr(cause, "diag", None)
    detail = (getattr(diag, "message_detail", None) or "").strip()
    if detail:
        return detail
    found = _GUARD_MESSAGE.search(getattr(diag, "message_primary", None) or str(cause))
    return found.group(1) if found else ""


def translate(session: Session, error: BaseException) -> NotOwner | None:
    """The :class:`NotOwner` an ownership guard's refusal means, looked up on ``session``; else ``None``.

    ``session`` must be usable: the refused transaction rolled back, or another one.
    """
    commune = refused_commune(error)
    if commune is None:
        return None
    return not_owner(session, commune) if commune else NotOwner(commune="?")


# --- what the national node can say of each pole's copy ---------------------------------------------

@dataclass(frozen=True)
class PoleFeed:
    """One pole's copy at the national node: its data's age, the subscription's backlog and state."""

    node_id: str
    data_age_s: float | None  # now() - the pole's last heartbeat that arrived; None before the first
    lag_bytes: int | None  # WAL received from the pole and not yet applied (None without a worker)
    status: str  # streaming | stopped (enabled, no worker: failing or starting) | disabled | missing

    def as_dict(self) -> dict[str, float | int | str | None]:
        """The pole's entry of ``/health``'s ``federation.poles``."""
        return {"data_age_s": self.data_age_s, "lag_bytes": self.lag_bytes, "status": self.status}


# pg_stat_subscription is readable by every role; of pg_subscription the service's role may read every column
# but the connection string (subconninfo, which may hold a password): it is never selected.
_SUBSCRIPTIONS = text("""
    SELECT s.subname, s.subenabled, st.pid,
           greatest(pg_wal_lsn_diff(st.received_lsn, st.latest_end_lsn), 0)::bigint AS lag_bytes
    FROM pg_subscription s
    LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL
    WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())""")


def subscription_name(node_id: str) -> str:
    """The national node's subscription to the pole ``node_id`` (``sifc node subscribe``)."""
    return f"sifc_from_{node_id.replace('-', '_')}"


def pole_feeds(session: Session) -> list[PoleFeed]:
    """Each pole of the directory as the national node receives it, by node id."""
    from sifc.federation.status import data_age  # NODEOPS' heartbeat ages (migration 0017)

    ages = data_age(session)
    subscriptions = {row.subname: row for row in session.execute(_SUBSCRIPTIONS)}
    feeds = []
    for pole in poles(session):
        sub = subscriptions.get(subscription_name(pole.node_id)) or subscriptions.get(f"sifc_from_{pole.node_id}")
        if sub is None:
            status, lag = "missing", None
        elif not sub.subenabled:
            status, lag = "disabled", None
        elif sub.pid is None:
            status, lag = "stopped", None
        else:
            status, lag = "streaming", None if sub.lag_bytes is None else int(sub.lag_bytes)
        age = ages.get(pole.node_id)
        feeds.append(PoleFeed(pole.node_id, None if age is None else round(float(age), 1), lag, status))
    return feeds


def health(session: Session) -> dict[str, object]:
    """``/health``'s ``federation`` member: the role; the node id off a single node; each pole at the national.

    The national node also says its personal-data policy (``pole``: identities stay at the poles), never
    the reference of its legal basis, which ``sifc node status`` shows to the operator.
    """
    node = this_node(session)
    if node.role == "single":
        return {"role": node.role}
    answer: dict[str, object] = {"role": node.role, "node_id": node.node_id}
    if node.national:
        answer["personal"] = node.personal
        answer["poles"] = {feed.node_id: feed.as_dict() for feed in pole_feeds(session)}
    return answer
