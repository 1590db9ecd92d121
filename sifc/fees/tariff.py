"""A fee schedule's rule and the amount it gives for a parcel: whole francs CFA (XOF), no float kept.

Three shapes, each the transcription of a commune's délibération (there is no default amount: ADR 0005
§7, open question 5):

- ``{"kind": "fixed", "amount": 25000}``: the same amount for every file;
- ``{"kind": "per_m2", "rate": 100, "minimum": 10000, "maximum": 500000}``: ``rate`` francs per square
  metre of the parcel (``minimum`` and ``maximum`` optional);
- ``{"kind": "per_ha_bands", "bands": [{"up_to_ha": 1, "amount": 50000}, {"up_to_ha": 5, "per_ha": 40000},
  {"up_to_ha": null, "per_ha": 30000}]}``: the first band whose ceiling is not below the parcel's area
  applies, either a flat ``amount`` or ``per_ha`` francs per hectare of the whole parcel; ceilings increase
  and the last band has none, so that every area falls in a band.

A product of an area and a rate is rounded to the nearest franc, half up (the commune's délibération may
say otherwise: then it is written as bands of flat amounts).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sifc.errors import InvalidInput

KINDS = ("fixed", "per_m2", "per_ha_bands")
MAX_AMOUNT = 10**12  # a thousand billion francs: beyond any fee, below bigint
MAX_BANDS = 50
FIELDS = {"fixed": {"kind", "amount"}, "per_m2": {"kind", "rate", "minimum", "maximum"},
          "per_ha_bands": {"kind", "bands"}}


def _francs(value: Any, field: str, *, positive: bool = False) -> int:
    """A whole number of francs (an int, not a bool, not a float), within bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or value < (1 if positive else 0) or value > MAX_AMOUNT:
        raise InvalidInput("fees.rule_amount", field=field)
    return value


def _hectares(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < float(value) <= 1_000_000:
        raise InvalidInput("fees.rule_bands")
    return float(value)


def _bands(bands: Any) -> list[dict[str, Any]]:
    if not isinstance(bands, list) or not 1 <= len(bands) <= MAX_BANDS:
        raise InvalidInput("fees.rule_bands")
    checked, ceiling = [], 0.0
    for index, band in enumerate(bands):
        last = index == len(bands) - 1
        if not isinstance(band, dict) or set(band) - {"up_to_ha", "amount", "per_ha"} or "up_to_ha" not in band:
            raise InvalidInput("fees.rule_bands")
        if ("amount" in band) == ("per_ha" in band):
            raise InvalidInput("fees.rule_bands")
        up_to = band["up_to_ha"]
        if last != (up_to is None):
            raise InvalidInput("fees.rule_bands")
        if up_to is not None:
            bound = _hectares(up_to, "up_to_ha")
            if bound <= ceiling:
                raise InvalidInput("fees.rule_bands")
            ceiling = bound
        entry: dict[str, Any] = {"up_to_ha": up_to}
        if "amount" in band:
            entry["amount"] = _francs(band["amount"], f"bands[{index}].amount")
        else:
            entry["per_ha"] = _francs(band["per_ha"], f"bands[{index}].per_ha", positive=True)
        checked.append(entry)
    return checked


def validate(rule: Any) -> dict[str, Any]:
    """``rule`` checked and normalised; 422 naming what is wrong (in French) otherwise."""
    if not isinstance(rule, dict) or rule.get("kind") not in KINDS:
        raise InvalidInput("fees.rule_kind", kind=str(rule.get("kind") if isinstance(rule, dict) else rule)[:40],
                           kinds=", ".join(KINDS))
    kind = rule["kind"]
    extra = sorted(set(rule) - FIELDS[kind])
    if extra:
        raise InvalidInput("fees.rule_fields", fields=", ".join(str(e)[:40] for e in extra[:5]))
    if kind == "fixed":
        return {"kind": kind, "amount": _francs(rule.get("amount"), "amount")}
    if kind == "per_m2":
        checked: dict[str, Any] = {"kind": kind, "rate": _francs(rule.get("rate"), "rate", positive=True)}
        for bound in ("minimum", "maximum"):
            if rule.get(bound) is not None:
                checked[bound] = _francs(rule[bound], bound)
        if "minimum" in checked and "maximum" in checked and checked["minimum"] > checked["maximum"]:
            raise InvalidInput("fees.rule_amount", field="minimum")
        return checked
    return {"kind": kind, "bands": _bands(rule.get("bands"))}


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def amount(rule: dict[str, Any], *, area_m2: float) -> int:
    """The fee in francs for a parcel of ``area_m2`` under a validated ``rule``."""
    area = Decimal(repr(float(area_m2)))
    if rule["kind"] == "fixed":
        return int(rule["amount"])
    if rule["kind"] == "per_m2":
        found = _round(area * rule["rate"])
        if rule.get("minimum") is not None:
            found = max(found, int(rule["minimum"]))
        if rule.get("maximum") is not None:
            found = min(found, int(rule["maximum"]))
        return found
    hectares = area / 10_000
    for band in rule["bands"]:
        if band["up_to_ha"] is None or hectares <= Decimal(repr(float(band["up_to_ha"]))):
            return int(band["amount"]) if "amount" in band else _round(hectares * band["per_ha"])
    raise InvalidInput("fees.rule_bands")  # unreachable for a validated rule: the last band is open
