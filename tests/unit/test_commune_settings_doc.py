"""docs/commune-settings.md describes every key of sifc/rules/keys.py, and every national default cites its text.

A key added to the registry without its section, or a default whose ``docs_anchor`` leads nowhere or whose
section gives no citation, fails here (ADR 0005 §1: no default without a source).
"""

from __future__ import annotations

import re
from pathlib import Path

from sifc.rules import defaults, keys

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "commune-settings.md"
NO_DEFAULT = "**Aucune valeur par défaut : la commune la fixe"


def _sections(page: str) -> dict[str, str]:
    """Each key's section: the text from its anchor to the next one."""
    parts = re.split(r'<a id="(\w+)"></a>', page)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_every_key_has_its_section_saying_its_default():
    sections = _sections(PAGE.read_text(encoding="utf-8"))
    assert set(sections) == set(keys.names())
    for name, section in sections.items():
        assert f"### `{name}`" in section, name
        assert "**Défaut national**" in section or NO_DEFAULT in section, name


def test_every_default_points_to_a_section_that_cites_its_text():
    sections = _sections(PAGE.read_text(encoding="utf-8"))
    for entry in defaults.read(REPO / "data" / defaults.FILE):
        page, _, anchor = entry["docs_anchor"].partition("#")
        assert page == "docs/commune-settings.md" and anchor == entry["key"], entry["key"]
        section = sections[anchor]
        assert "**Défaut national**" in section and "**Citation**" in section, entry["key"]
        assert entry["valid_from"].isoformat() in entry["source"] or "Citation" in section
        # The text the row cites is named in the section too (its number).
        number = re.search(r"n° ([\d-]+)", entry["source"])
        assert number and number.group(1) in section, entry["key"]


def test_a_key_without_a_default_says_the_commune_sets_it():
    sections = _sections(PAGE.read_text(encoding="utf-8"))
    with_default = {entry["key"] for entry in defaults.read(REPO / "data" / defaults.FILE)}
    for name in set(keys.names()) - with_default:
        assert NO_DEFAULT in sections[name], name
