"""Domain exceptions. ``api/`` maps them to HTTP problems, the CLI to one readable line."""

from __future__ import annotations

from typing import Any

from sifc.i18n import Lang, level_name, translate


class SifcError(Exception):
    """Base of every error a user can cause; carries a message key and its parameters."""

    status = 400
    key = "http.validation"
    headers: dict[str, str] | None = None  # extra response headers (WWW-Authenticate, Retry-After)
    title_key: str | None = None  # a title of its own, where the status's is too vague
    extensions: dict[str, Any] | None = None  # extension members of the problem (RFC 9457 §3.2)

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


class NotOwner(Forbidden):
    """A write into a commune another node of the federation owns (ADR 0004): the owner is named.

    A pole node writes its own communes only, the national node none: the caller is sent to
    ``owner_node`` at ``owner_url`` (``None`` when the directory does not know the commune's pole).
    """

    key = "federation.not-owner"
    title_key = "federation.not-owner.title"

    def __init__(self, *, commune: str, owner_node: str | None = None, owner_url: str | None = None) -> None:
        self.extensions = {"commune": commune, "owner_node": owner_node, "owner_url": owner_url}
        super().__init__(commune=commune, owner_node=owner_node or "", owner_url=owner_url or "")

    def message(self, lang: Lang = "fr") -> str:
        """The message in ``lang``: it names the owning node when the directory knows it."""
        if self.extensions and self.extensions.get("owner_node"):
            return translate("federation.not-owner", lang, **self.params)
        return translate("federation.not-owner.unknown", lang, **self.params)
