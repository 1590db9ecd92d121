"""User-facing messages, one gettext catalogue per language (French by default, English).

Every message a user can see goes through :func:`translate`, keyed by a stable
identifier (the msgid, e.g. ``http.not_found``), so the API (``Accept-Language``),
the CLI (``--lang``), the printed documents and the dashboards speak the same words.
The catalogues are ``sifc/locale/<lang>/LC_MESSAGES/sifc.po``, edited by translators
with ordinary gettext tools; they are read with Babel when first needed (no compiled
``.mo`` to keep in step: docs/adr/0002-message-catalogues.md).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from babel.messages.pofile import read_po

Lang = Literal["fr", "en"]

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "sifc"
LANGUAGES: tuple[Lang, ...] = ("fr", "en")


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The msgid -> text mapping of ``lang``'s catalogue (empty when the language has none).

    Untranslated (empty) and fuzzy entries are left out, so they fall back to French.
    """
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        return {}
    with path.open("rb") as po:
        read = read_po(po, locale=lang, domain=DOMAIN)
    return {str(message.id): str(message.string) for message in read
            if message.id and message.string and not message.fuzzy}


def section(prefix: str, lang: str) -> dict[str, str]:
    """The messages whose msgid starts with ``prefix``, keyed without it, French where ``lang`` lacks one.

    The web map's strings are the ``web.`` section, served as JSON (``/app/i18n/<lang>.json``).
    """
    merged = {**catalogue("fr"), **catalogue(lang)}
    return {key[len(prefix):]: text for key, text in merged.items() if key.startswith(prefix)}


def known(key: str) -> bool:
    """Whether ``key`` is a msgid of the French (reference) catalogue."""
    return key in catalogue("fr")


def translate(key: str, lang: Lang = "fr", /, **params: object) -> str:
    """Render message ``key`` in ``lang`` with ``params``; unknown keys render as the key.

    A message missing from ``lang``'s catalogue falls back to French.
    """
    template = catalogue(lang).get(key) or catalogue("fr").get(key)
    if template is None:
        return key
    return template.format(**params)


def level_name(level: str, lang: Lang = "fr") -> str:
    """The name of a territorial level (``pole`` ... ``commune``) in ``lang``; unknown levels as given."""
    key = f"level.{level}"
    return translate(key, lang) if known(key) else level


def pick_language(accept_language: str | None, default: Lang = "fr") -> Lang:
    """Choose ``fr`` or ``en`` from an ``Accept-Language`` header (RFC 9110 §12.5.4)."""
    if not accept_language:
        return default
    ranked: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((quality, tag.strip().lower()))
    for _quality, tag in sorted(ranked, key=lambda item: -item[0]):
        primary = tag.split("-")[0]
        if primary in ("fr", "en"):
            return primary  # type: ignore[return-value]
        if tag == "*":
            return default
    return default
