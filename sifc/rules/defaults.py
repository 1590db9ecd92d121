"""The national defaults of the commune settings, loaded with the territorial reference (ADR 0005 §1).

``setting_default`` is national-owned like ``commune``: the national node (or a single node) loads it
from ``data/senegal/setting_defaults.yaml`` (``FILE``, under the data directory) in ``sifc territories
load``, and a pole receives the national copy at its subscription (which replaces its own), so no node
inserts defaults by migration.
Idempotent: an unchanged default is not touched; every entry is checked against its key's schema and
must cite a text and the ``docs/`` page that cites it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, cast

import orjson
import yaml
from sqlalchemy import CursorResult, text
from sqlalchemy.orm import Session

from sifc.errors import ConfigurationError
from sifc.rules import keys

FILE = "senegal/setting_defaults.yaml"


def read(path: Path) -> list[dict[str, Any]]:
    """The defaults of ``path``, checked (key known, value valid, source and docs anchor given)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    checked = []
    for entry in entries:
        key = keys.get(str(entry.get("key")))
        source = str(entry.get("source") or "").strip()
        anchor = str(entry.get("docs_anchor") or "").strip()
        if not source or not anchor or not isinstance(entry.get("valid_from"), date):
            raise ConfigurationError("setting.default_uncited", key=key.name, file=str(path))
        checked.append({"key": key.name, "valid_from": entry["valid_from"], "valid_to": entry.get("valid_to"),
                        "value": key.validate(entry.get("value")), "source": source, "docs_anchor": anchor})
    return checked


def load(session: Session, data_dir: Path) -> int:
    """Upsert the defaults of ``data_dir``; return how many rows changed (0 on a second load)."""
    path = data_dir / FILE
    if not path.is_file():
        return 0
    # A database still before migration 0018 (the migration tests load the reference into older schemas) has
    # no defaults to hold: the reference loads without them, as it did then.
    if session.execute(text("SELECT to_regclass('setting_default')")).scalar() is None:
        return 0
    changed = 0
    for entry in read(path):
        result = session.execute(text("""
            INSERT INTO setting_default (key, valid_from, valid_to, value, source, docs_anchor)
            VALUES (:key, :valid_from, :valid_to, CAST(:value AS jsonb), :source, :docs_anchor)
            ON CONFLICT (key, valid_from) DO UPDATE SET valid_to = EXCLUDED.valid_to, value = EXCLUDED.value,
                source = EXCLUDED.source, docs_anchor = EXCLUDED.docs_anchor
            WHERE (setting_default.valid_to, setting_default.value, setting_default.source,
                   setting_default.docs_anchor)
                  IS DISTINCT FROM (EXCLUDED.valid_to, EXCLUDED.value, EXCLUDED.source, EXCLUDED.docs_anchor)"""),
            {**entry, "value": orjson.dumps(entry["value"]).decode()})
        changed += cast(CursorResult[Any], result).rowcount
    return changed
