"""docs/federation.md lists, table by table, exactly the columns the registry keeps at the pole.

Under ``personal = pole`` (the default) a pole's publications leave out the registry's personal columns
(``sifc.federation.registry``); the page « Données personnelles : ce qui quitte le pôle » tells an operator
and the CDP which they are, so a column added to the registry, or taken out of it, must be said there too.
"""

from __future__ import annotations

import re
from pathlib import Path

from sifc.federation import registry

PAGE = Path(__file__).resolve().parents[2] / "docs" / "federation.md"
START, END = "<!-- registry-personal-columns:start -->", "<!-- registry-personal-columns:end -->"
ITEM = re.compile(r"^- `(\w+)` : (.+?)(?=^- |\Z)", re.MULTILINE | re.DOTALL)


def documented(page: str) -> dict[str, tuple[str, ...]]:
    """The table -> columns list between the page's markers (an item may wrap onto indented lines)."""
    block = page[page.index(START) + len(START):page.index(END)].strip() + "\n"
    return {table: tuple(re.findall(r"`(\w+)`", columns)) for table, columns in ITEM.findall(block)}


def test_the_page_lists_exactly_the_registrys_personal_columns():
    expected = {entry.table: entry.personal for entry in registry.TABLES if entry.personal}
    assert documented(PAGE.read_text(encoding="utf-8")) == expected


def test_the_reader_sees_wrapped_items():
    page = f"{START}\n- `a` : `x`, `y`,\n  `z`\n- `b` : `w`\n{END}\n"
    assert documented(page) == {"a": ("x", "y", "z"), "b": ("w",)}
