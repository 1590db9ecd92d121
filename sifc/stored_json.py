"""Stored JSON read defensively: whatever history holds, every reader can serve it.

History is immutable (the write journal, the access log, versions, documents' summaries): a value
stored before the bounds of :mod:`sifc.bounds` existed, or written by hand, stays. PostgreSQL's
``jsonb`` keeps numbers of any size (``1e308`` comes back as a 309-digit integer), which orjson
refuses to serialise (more than 64 bits) and no JSON client reads exactly; Python's parser also
accepts ``NaN`` and ``Infinity``. So every ``json``/``jsonb`` value the database returns is
parsed by :func:`loads` (the engine's deserializer, :func:`sifc.db.make_engine`): a number that
is not exactly readable (an integer beyond 2^53 − 1, a non-finite float) becomes its text, and
the reader answers 200 with the value shown as stored, instead of a 500 for ever.
"""

from __future__ import annotations

import json
import math
from typing import Any

from sifc.bounds import MAX_SAFE_INTEGER


def _integer(text: str) -> int | str:
    if len(text) > 20:  # beyond any 64-bit integer: not even converted (a 10,000-digit number is slow)
        return text
    value = int(text)
    return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else text


def _float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def loads(text: str | bytes) -> Any:
    """Stored JSON as Python values, every number exactly readable or kept as its text."""
    return json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=str)


def coerce(value: Any) -> Any:
    """A parsed JSON value made servable, as :func:`loads` makes it (for values parsed elsewhere)."""
    if isinstance(value, dict):
        return {key: coerce(item) for key, item in value.items()}
    if isinstance(value, list):
        return [coerce(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
