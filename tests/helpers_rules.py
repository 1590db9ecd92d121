"""Set commune settings in a test (ADR 0005 §1): ``set_rules(db, "SN0104-bargny", display_days=15)``.

Each value is written as a commune row from ``on`` (default 2000-01-01, before any test date), citing
the synthetic demo source, through the service (so it is checked against its key's schema).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sifc.rules import service as rules

# The values the procedure's tests rely on (the shape of today's practice; synthetic).
TENURE_RULES: dict[str, Any] = {
    "approval_thresholds_ha": [10.0, 50.0],
    "desaffectation_notice_days": 30,
    "required_sources": {"affectation": {"surveyed": ["proces_verbal"], "deliberated": ["deliberation"],
                                         "approved": ["approbation"]}},
}


def set_rules(session_or_conn: Any, commune_code: str, on: date = date(2000, 1, 1), **values: Any) -> None:
    """Write ``values`` (key=value) as the commune's settings from ``on``, citing the demo source."""
    for key, value in values.items():
        rules.set(session_or_conn, commune_code=commune_code, key=key, value=value, valid_from=on,
                  source=rules.DEMO_SOURCE, by=None, author="tests")
