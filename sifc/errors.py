"""Domain exceptions. ``api/`` maps them to HTTP problems, the CLI to one readable line."""

from __future__ import annotations

from typing import Any

from sifc.i18n import Lang, level_name, translate


class SifcError(Exception):
    """Base of every error a user can cause; carries a message key and its parameters."""

    status = 400
    key = "http.validation"
    headers: dict[str, str] | None = None  # extra response headers (WWW-Authenticate, Retry-After)

    def __init__(self, key: str | None = None, /, **params: Any) -> None:
        self.key = key or self.key
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: Lang = "fr") -> str:
        """The message in ``lang``."""
        params = dict(self.params)
        level = params.get("level")
        if isinstance(level, str):
            params["level"] = level_name(level, lang)
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


class Unauthorized(SifcError):
    """No credentials where they are needed, or credentials that are expired, tampered or unknown.

    ``headers`` carries the ``WWW-Authenticate`` challenge RFC 9110 §15.5.2 requires with a 401.
    """

    status = 401
    key = "auth.required"

    def __init__(self, key: str | None = None, /, *, error: str | None = None, **params: Any) -> None:
        super().__init__(key, **params)
        challenge = 'Bearer realm="sifc"'
        if error:  # RFC 6750 §3.1 error codes: invalid_token, ...
            challenge += f', error="{error}"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(SifcError):
    """Authenticated, but the role or the commune scope does not allow the action."""

    status = 403
    key = "auth.forbidden"


class TooManyRequests(SifcError):
    """Too many attempts (rate limit, or an account locked after repeated failures)."""

    status = 429
    key = "auth.rate_limited"

    def __init__(self, key: str | None = None, /, *, retry_after: float, **params: Any) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(key, seconds=seconds, minutes=max(1, (seconds + 59) // 60), **params)
        self.headers = {"Retry-After": str(seconds)}


class ConfigurationError(SifcError, ValueError):
    """Settings the service refuses to start with (a ValueError, so pydantic reports it)."""

    status = 500


class PreconditionFailed(SifcError):
    """``If-Match`` names a version that is no longer the current one (RFC 9110 §13.1.1): reread, then write."""

    status = 412
    key = "http.precondition_failed"


class PreconditionRequired(SifcError):
    """A write without ``If-Match`` (RFC 6585 §3): the lost-update problem is refused, not guessed around."""

    status = 428
    key = "http.precondition_required"
