"""The message catalogues: every msgid the code uses is translated in every language, and the
catalogues agree on their msgids (docs/adr/0002-message-catalogues.md, docs/translation.md).

The msgids are found the way ``pybabel extract`` finds them (Babel's Python extractor), with the
keywords of this code base: ``translate(key, ...)`` and every domain exception built with a key
(``NotFound("parcel.not_found", ...)``), plus the ``key = "..."`` defaults of those exceptions and
the label helpers that prefix their keys (documents, dashboards).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from sifc.i18n import DOMAIN, LANGUAGES, LOCALE_DIR, translate

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("sifc", "api", "cli") for p in sorted((ROOT / d).rglob("*.py"))]
KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
# Helpers that prefix their key: (file, function, prefix).
# Every catalogue present, declared in sifc.i18n or not yet (a language being translated).
CATALOGUES = sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file())
PREFIXED = [("sifc/documents", "label", "document.label."), ("sifc/dashboard_charts.py", "label", "chart."),
            ("sifc/imports/summary.py", "say", "import.summary."),
            ("sifc/territories/communes_import.py", "say", "commune_import.")]


def _po(lang: str):
    with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        return read_po(po, locale=lang, domain=DOMAIN)


def _error_classes() -> set[str]:
    """Names of ``SifcError`` and of every class deriving from it, in the whole code base."""
    bases: dict[str, set[str]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(
                    b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                    if isinstance(b, (ast.Name, ast.Attribute)))
    found = {"SifcError"}
    while True:
        more = {name for name, parents in bases.items() if parents & found} - found
        if not more:
            return found
        found |= more


def _default_keys() -> Iterator[tuple[str, str]]:
    """``key = "..."`` class attributes (an exception's default message)."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.ClassDef)):
                for item in node.body:
                    if (isinstance(item, ast.Assign) and any(getattr(t, "id", "") == "key" for t in item.targets)
                            and isinstance(item.value, ast.Constant) and isinstance(item.value.value, str)):
                        yield item.value.value, f"{path.relative_to(ROOT)}:{item.lineno}"


def _branches(node: ast.expr) -> list[str]:
    """The strings a conditional expression can give (not those its conditions compare with)."""
    if isinstance(node, ast.IfExp):
        return _branches(node.body) + _branches(node.orelse)
    return [node.value] if isinstance(node, ast.Constant) and isinstance(node.value, str) else []


def _chosen_keys(path: Path, keywords: set[str]) -> Iterator[tuple[list[str], str, int]]:
    """Keys chosen by a condition, ``NotFound("a.b" if x else "a.c")``: the keys, and the one string Babel's
    extractor glues all the literals of the condition into (to be ignored)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.IfExp)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) in keywords):
            literals = sorted(_unbracketed(node.args[0]), key=lambda c: (c.lineno, c.col_offset))
            yield _branches(node.args[0]), "".join(str(c.value) for c in literals), node.lineno


def _unbracketed(node: ast.AST) -> Iterator[ast.Constant]:
    """The string literals of an expression outside brackets (Babel skips those within)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node
    elif not isinstance(node, (ast.Subscript, ast.Call, ast.List, ast.Tuple, ast.Dict, ast.Set)):
        for child in ast.iter_child_nodes(node):
            yield from _unbracketed(child)


def used_msgids() -> dict[str, str]:
    """msgid -> where it is first used, as extracted from the sources."""
    keywords: dict[str, tuple[int, ...] | None] = {name: (1,) for name in _error_classes()}
    keywords["translate"] = keywords["say"] = (1,)
    used: dict[str, str] = {}
    for path in SOURCES:
        relative = str(path.relative_to(ROOT))
        glued = set()
        for keys, glue, line in _chosen_keys(path, set(keywords)):
            glued.add(glue)
            for key in filter(KEY.match, keys):
                used.setdefault(key, f"{relative}:{line}")
        for line, message, _comments, _context in extract_from_file("python", str(path), keywords=keywords):
            if isinstance(message, str) and KEY.match(message) and message not in glued:
                used.setdefault(message, f"{relative}:{line}")
        for where, function, prefix in PREFIXED:
            if relative.startswith(where):
                chosen = list(_chosen_keys(path, {function}))
                for keys, _glue, line in chosen:
                    for key in keys:
                        used.setdefault(prefix + key, f"{relative}:{line}")
                glued = {glue for _keys, glue, _line in chosen}
                for line, message, _c, _x in extract_from_file("python", str(path), keywords={function: (1,)}):
                    if isinstance(message, str) and message not in glued:
                        used.setdefault(prefix + message, f"{relative}:{line}")
    for message, where in _default_keys():
        used.setdefault(message, where)
    return used


def test_extraction_finds_the_messages_of_the_code():
    used = used_msgids()
    # One of each way of using a key, so that a broken extraction cannot pass silently.
    for msgid in ("http.not_found", "parcel.not_found", "upload.too_large", "document.label.fiche", "chart.title",
                  "cli.accounts.password", "import.summary.duplicate", "commune_import.clipped_emptied"):
        assert msgid in used, msgid
    assert len(used) > 200


def test_every_declared_language_has_a_catalogue():
    assert set(LANGUAGES) <= set(CATALOGUES)


@pytest.mark.parametrize("lang", CATALOGUES)
def test_every_msgid_used_in_the_code_is_translated(lang):
    strings = {m.id: m.string for m in _po(lang) if m.id}
    missing = {k: where for k, where in used_msgids().items() if not strings.get(k)}
    assert not missing, f"msgids without a {lang} msgstr: {missing}"


def test_catalogues_have_the_same_msgids_all_translated_none_fuzzy():
    reference = {m.id for m in _po("fr") if m.id}
    for lang in CATALOGUES:
        catalogue = _po(lang)
        ids = {m.id for m in catalogue if m.id}
        assert ids == reference, (lang, sorted(ids ^ reference))
        empty = [m.id for m in catalogue if m.id and not m.string]
        fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
        assert not empty and not fuzzy, (lang, empty, fuzzy)


def test_translations_use_only_known_placeholders():
    """A translation names only parameters the French or English message names (else ``format`` fails).

    French and English may each use fewer, or a language-specific one (``bounds_en``).
    """
    fields = re.compile(r"(?<!\{)\{([a-z_0-9]+)\}(?!\})")
    known_fields: dict[str, set[str]] = {}
    for lang in ("fr", "en"):
        for m in _po(lang):
            if m.id:
                known_fields.setdefault(m.id, set()).update(fields.findall(m.string))
    for lang in CATALOGUES:
        wrong = {m.id: set(fields.findall(m.string)) - known_fields.get(m.id, set()) for m in _po(lang) if m.id}
        assert not {k: v for k, v in wrong.items() if v}, lang


def test_every_string_of_the_web_map_is_in_the_catalogues():
    """The map's ``t("key")`` calls and ``data-i18n`` attributes name ``web.<key>`` msgids."""
    web = ROOT / "web" / "src"
    used = set(re.findall(r"\bt\(\"([a-z_.]+)\"\)", (web / "app.js").read_text(encoding="utf-8")))
    used |= set(re.findall(r"data-i18n(?:-placeholder)?=\"([a-z_.]+)\"", (web / "index.html").read_text(encoding="utf-8")))
    assert len(used) > 50
    for lang in CATALOGUES:
        strings = {m.id: m.string for m in _po(lang) if m.id}
        assert not [k for k in used if not strings.get(f"web.{k}")], lang


def test_translate_reads_the_catalogues():
    assert translate("http.not_found", "fr") == "Ressource introuvable."
    assert translate("http.not_found", "en") == "Resource not found."
    assert translate("parcel.not_found", "en", id="X") == "No parcel with id 'X'."
    assert translate("no.such.key", "en") == "no.such.key"
