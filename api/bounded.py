"""Request-schema types bounded by :mod:`sifc.bounds`: the API refuses (422) what the services and the database would.

The numbers' bounds are in the OpenAPI document (``exclusiveMinimum``, ``maximum``); a date's
bounds, one of which moves with the calendar ("not after tomorrow"), are in ``x-sifc-bounds``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from sifc import bounds
from sifc.errors import InvalidInput


def _within(name: str) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        found = bounds.bound(name)
        if not found.admits(value):
            raise PydanticCustomError("out_of_bounds", "must lie within {bounds}",
                                      {"bounds": found.describe("en"), "bounds_fr": found.describe()})
        return value
    return validate


def _json(value: dict[str, Any]) -> dict[str, Any]:
    try:
        checked: dict[str, Any] = bounds.check_json(value, field="details")
        return checked
    except InvalidInput as error:
        raise PydanticCustomError("json_out_of_bounds", "{reason}",
                                  {"reason": error.message("en"), "reason_fr": error.message("fr")}) from error


def _extra(name: str) -> dict[str, Any]:
    return {"x-sifc-bounds": bounds.bound(name).describe("en")}


_area = bounds.bound("parcel.declared_area_m2")
DeclaredArea = Annotated[float, Field(gt=_area.low, le=_area.high, allow_inf_nan=False, description=(
    "Superficie déclarée (m²) : positive, au plus celle du Sénégal (docs/bounds.md)."))]
_precision = bounds.bound("borne.precision_m")
BornePrecision = Annotated[float, Field(gt=_precision.low, le=_precision.high, allow_inf_nan=False, description=(
    "Précision du levé de la borne, en mètres : ]0, 50] (docs/bounds.md)."))]
_carry = bounds.bound("mutation.carry_index")
CarryIndex = Annotated[int, Field(ge=_carry.low, le=_carry.high)]


def _bounded_date(name: str) -> Any:
    """A date type checked against the bound ``name`` of ``sifc.bounds``, which the schema documents."""
    return Annotated[date, AfterValidator(_within(name)), Field(json_schema_extra=_extra(name))]


SourceDate = _bounded_date("source.document_date")
RightStart = _bounded_date("rrr.start_date")
RightEndDate = _bounded_date("rrr.end_date")
NoticeDate = _bounded_date("rrr.notice_date")
ProcedureDate = _bounded_date("procedure.registered_on")
StepDate = _bounded_date("procedure.occurred_on")
MutationDate = _bounded_date("mutation.occurred_on")
SurveyDate = _bounded_date("borne.surveyed_on")
JsonDetails = Annotated[dict[str, Any], AfterValidator(_json)]
