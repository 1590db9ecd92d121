"""NICAD — Numéro d'Identification Cadastrale (décret 2012-396).

The DGID cadastre assigns it; the land office never invents one. Two forms are standard:
the published 16-character form ``RR D AAA CC SSS PPPPP`` and the 13-digit form of survey
data (the commune's 8-digit national code then a 5-digit number). Both begin with the
commune's 8-digit national code. Other lengths are accepted and flagged non-standard: a
parcel is never rejected for its NICAD's shape alone.
"""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDERS = {"", "0", "N/A", "NA", "-", "--", "NULL", "NONE", "NAN", "?"}
STANDARD_LENGTHS = (13, 16)
COMMUNE_PREFIX_LENGTH = 8

STATUS_ASSIGNED = "attribue"
STATUS_MISSING = "absent"
STATUS_TO_REASSIGN = "a_reattribuer"


def clean(value: object) -> str | None:
    """The NICAD a source value holds, or None for the placeholders that mean "no NICAD"."""
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            value = int(value)
    text = str(value).strip()
    if text.upper() in PLACEHOLDERS:
        return None
    return "".join(text.split())  # survey tables insert spaces between the groups


@dataclass(frozen=True)
class NicadCheck:
    """What is worth telling about a NICAD: its shape and its commune prefix."""

    standard: bool
    prefix_matches: bool | None  # None when the commune has no national code


def check(nicad: str, commune_national_code: str | None) -> NicadCheck:
    """Check ``nicad``'s length and, when the commune has a national code, its prefix."""
    prefix = None
    if commune_national_code:
        prefix = nicad[:COMMUNE_PREFIX_LENGTH] == commune_national_code
    return NicadCheck(standard=len(nicad) in STANDARD_LENGTHS, prefix_matches=prefix)
