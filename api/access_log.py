"""Keep personal data out of the access log (loi 2008-12).

uvicorn logs every request line. Two of them name a person: the subject of an access request
(``/admin/subjects/{subject}``) and the filters of the access and write logs (``/admin/audit?subject=…&user=…``,
``/admin/writes?actor=…``).
Their personal parts are replaced before the record is written; other request lines are kept
whole (their parameters never hold personal data: personal fields are refused as filters).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode

REDACTED = "***"
SUBJECT_PATH = re.compile(r"^(/admin/subjects/)[^?]*")
PERSONAL_PARAMETERS = frozenset({"subject", "user", "actor"})  # actor: /admin/writes


def redact(path: str) -> str:
    """The request path with its personal parts replaced."""
    path = SUBJECT_PATH.sub(rf"\g<1>{REDACTED}", path)
    if path.startswith("/admin/") and "?" in path:
        route, query = path.split("?", 1)
        pairs = [(k, REDACTED if k in PERSONAL_PARAMETERS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        path = f"{route}?{urlencode(pairs, safe='*')}"
    return path


class PersonalDataFilter(logging.Filter):
    """Redacts uvicorn's access records (args: client, method, path, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and args[2].startswith("/admin/"):
            record.args = (*args[:2], redact(args[2]), *args[3:])
        return True


def install() -> None:
    """Attach the filter to uvicorn's access logger, once."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, PersonalDataFilter) for f in logger.filters):
        logger.addFilter(PersonalDataFilter())
