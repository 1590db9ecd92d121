"""Text helpers: the search form of names and stable slugs."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-‐‑–—_'’`.,/()]+")
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def search_form(name: str) -> str:
    """Fold ``name`` for matching: no accents, lower case, hyphens and apostrophes as spaces.

    "Mont-Rolland", "MONT ROLLAND" and "mont  rolland" share one search form, as do
    "Dindéfélo" and "DINDEFELO"; true variants ("Mont Roland") need the alias table.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SEPARATORS.sub(" ", stripped.casefold()).strip()


def slug(name: str) -> str:
    """ASCII slug of ``name`` for stable codes (``Mont Rolland`` → ``mont-rolland``)."""
    return _NON_SLUG.sub("-", search_form(name)).strip("-")
