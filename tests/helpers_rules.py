"""Set commune settings in a test (ADR 0005 §1): ``set_rules(db, "SN0104-bargny", display_days=15)``.

Each value is written as a commune row from ``on`` (default 2000-01-01, before any test date), citing
the synthetic demo source, through the service (so it is checked against its key's schema).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sifc.demo import DEMO_RULES
from sifc.rules import service as rules

# The values the procedure's tests rely on: the demo's (synthetic), set for the pilots by the test database's
# fixtures (tests/conftest.py) so that every test finds the tenure rules it always had.
TENURE_RULES: dict[str, Any] = DEMO_RULES
PILOT_COMMUNES = ("SN0104-bargny", "SN1301-sandiara", "SN1303-mont-rolland")


def set_rules(session_or_conn: Any, commune_code: str, on: date = date(2000, 1, 1), **values: Any) -> None:
    """Write ``values`` (key=value) as the commune's settings from ``on``, citing the demo source."""
    for key, value in values.items():
        rules.set(session_or_conn, commune_code=commune_code, key=key, value=value, valid_from=on,
                  source=rules.DEMO_SOURCE, by=None, author="tests")


def seed_pilots(session_or_conn: Any) -> None:
    """The tenure rules (``TENURE_RULES``) for the pilot communes, as the demo sets them."""
    for code in PILOT_COMMUNES:
        set_rules(session_or_conn, code, **TENURE_RULES)
