"""Scopes: check that their units exist, store them, expand them to commune codes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import ScopeEntry
from sifc.errors import InvalidInput

_LEVEL_TABLES = {"pole": "pole", "region": "region", "department": "department", "commune": "commune"}


def parse(texts: Iterable[str]) -> tuple[ScopeEntry, ...]:
    """Scope entries from ``level:code`` texts, deduplicated and sorted."""
    return tuple(sorted({ScopeEntry.parse(item) for item in texts}))


def check(session: Session, scope: Sequence[ScopeEntry]) -> None:
    """Refuse a scope naming a unit the territorial reference does not hold."""
    for entry in scope:
        if entry.level == "country":
            continue
        table = _LEVEL_TABLES[entry.level]  # whitelisted: never user text in SQL
        found = session.execute(text(f"SELECT 1 FROM {table} WHERE code = :code"), {"code": entry.code}).first()
        if found is None:
            raise InvalidInput("auth.unknown_scope", level=entry.level, code=entry.code)


def expand(session: Session, scope: Sequence[ScopeEntry]) -> tuple[bool, frozenset[str]]:
    """``(everywhere, communes)``: a national scope, or the codes of the communes the scope covers.

    Expanded by the database (``scope_communes``), so that a department or pole scope follows
    the communes the reference holds today.
    """
    if any(entry.level == "country" for entry in scope):
        return True, frozenset()
    if not scope:
        return False, frozenset()
    rows = session.execute(text("""
        SELECT DISTINCT c.code
        FROM unnest(CAST(:levels AS text[]), CAST(:codes AS text[])) AS s(level, code)
        CROSS JOIN LATERAL scope_communes(s.level, s.code) AS c(code)"""),
        {"levels": [e.level for e in scope], "codes": [e.code for e in scope]}).scalars()
    return False, frozenset(rows)


def load(session: Session, table: str, owner_column: str, owner_id: int) -> tuple[ScopeEntry, ...]:
    """The scope rows of one user (``app_user_scope``) or key (``api_key_scope``)."""
    assert table in ("app_user_scope", "api_key_scope") and owner_column in ("user_id", "key_id")
    rows = session.execute(text(f"SELECT level, code FROM {table} WHERE {owner_column} = :id ORDER BY level, code"),
                           {"id": owner_id}).all()
    return tuple(ScopeEntry(level, code) for level, code in rows)


def store(session: Session, table: str, owner_column: str, owner_id: int, scope: Sequence[ScopeEntry]) -> None:
    """Write the scope rows of one user or key."""
    assert table in ("app_user_scope", "api_key_scope") and owner_column in ("user_id", "key_id")
    for entry in scope:
        session.execute(text(f"INSERT INTO {table} ({owner_column}, level, code) VALUES (:id, :level, :code)"),
                        {"id": owner_id, "level": entry.level, "code": entry.code})
