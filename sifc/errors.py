"""Domain exceptions. ``api/`` maps them to HTTP problems, the CLI to one readable line."""

from __future__ import annotations

from typing import Any

from sifc.i18n import LEVEL_NAMES, Lang, translate


class SifcError(Exception):
    """Base of every error a user can cause; carries a message key and its parameters."""

    status = 400
    key = "http.validation"

    def __init__(self, key: str | None = None, /, **params: Any) -> None:
        self.key = key or self.key
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: Lang = "fr") -> str:
        """The message in ``lang``."""
        params = dict(self.params)
        level = params.get("level")
        if isinstance(level, str) and level in LEVEL_NAMES:
            params["level"] = LEVEL_NAMES[level][lang]
        return translate(self.key, lang, **params)


class NotFound(SifcError):
    """A requested object does not exist."""

    status = 404
    key = "http.not_found"


class Conflict(SifcError):
    """The request contradicts the current state (overlap, NICAD taken, stale version)."""

    status = 409


class Gone(SifcError):
    """The object existed and was retired; its history remains readable."""

    status = 410


class InvalidInput(SifcError):
    """The request or the file is well-formed but unacceptable."""

    status = 422


class TooLarge(SifcError):
    """An upload beyond the configured limit."""

    status = 413
    key = "upload.too_large"


class UnsupportedFormat(SifcError):
    """An upload of a kind the importer does not read."""

    status = 415
    key = "upload.unsupported"


class ImportRejected(SifcError):
    """A file was refused whole; nothing was written."""

    status = 422


class DatabaseUnavailable(SifcError):
    """The database cannot be reached or lacks what the service needs."""

    status = 503
