"""The commune settings' keys: each declared once, with its JSON schema, unit and meaning (ADR 0005 §1).

A value of law or local practice (a threshold, a duration, the documents a step rests on) is read
from the settings in force on a date, never from a constant in code. Each key's value is JSON; its
shape is a pydantic type, whose JSON schema the API and ``docs/commune-settings.md`` show and which
checks every value written (``jsonschema`` is only a development dependency; pydantic is already the
service's validator). ``docs/commune-settings.md`` documents every key (a unit test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from sifc.errors import InvalidInput, NotFound

ProcedureKind = Literal["affectation", "desaffectation", "reaffectation_heritiers", "regularisation"]
SessionKind = Literal["commission_domaniale", "conseil_municipal"]
PROCEDURE_KINDS: tuple[str, ...] = get_args(ProcedureKind)
SESSION_KINDS: tuple[str, ...] = get_args(SessionKind)

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Days = Annotated[int, Field(ge=0, le=3650)]


def _increasing(value: tuple[float, float]) -> tuple[float, float]:
    if not value[0] < value[1]:
        raise ValueError("le premier seuil doit être inférieur au second")
    return value


class Quorum(BaseModel):
    """A session's quorum: a fraction of the members (0–1] or a count of members present."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["fraction", "count"]
    value: Annotated[float, Field(gt=0, le=1000)]


@dataclass(frozen=True)
class Key:
    """One setting: its name, the shape of its value, its unit and what it decides."""

    name: str
    shape: Any
    unit: str
    meaning: str
    env_fallback: str | None = None  # the Settings field read (logged ``unsourced``) when no row exists

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        """The validator of the key's values."""
        return TypeAdapter(self.shape)

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON schema of the key's values."""
        schema: dict[str, Any] = self.adapter.json_schema()
        return schema

    def validate(self, value: Any) -> Any:
        """``value`` checked against the key's shape and returned as JSON (422 naming the key otherwise)."""
        try:
            checked = self.adapter.validate_json(orjson.dumps(value), strict=True)
        except (ValidationError, TypeError) as error:
            problems = error.errors() if isinstance(error, ValidationError) else [{"msg": str(error), "loc": ()}]
            first = problems[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "valeur"
            raise InvalidInput("setting.bad_value", key=self.name, where=where,
                               problem=str(first.get("msg", ""))[:200]) from None
        return self.adapter.dump_python(checked, mode="json")


KEYS: tuple[Key, ...] = (
    Key("approval_thresholds_ha",
        Annotated[tuple[Annotated[float, Field(gt=0)], Annotated[float, Field(gt=0)]], AfterValidator(_increasing)],
        "ha", "Superficies jusqu'auxquelles une délibération d'affectation est approuvée par le sous-préfet, "
        "puis le préfet ; au-delà du second seuil, le gouverneur.", env_fallback="approval_thresholds_ha"),
    Key("desaffectation_notice_days", Days, "jours",
        "Délai entre la mise en demeure et la date d'effet d'une désaffectation.",
        env_fallback="desaffectation_notice_days"),
    Key("required_sources", dict[ProcedureKind, dict[Name, list[Name]]], "types de pièces",
        "Pièces exigées à chaque étape de chaque type de procédure (type de procédure → étape → types de "
        "source dont une au moins doit figurer parmi les pièces de l'étape)."),
    Key("procedure_kinds", Annotated[list[ProcedureKind], Field(min_length=1)], "types",
        "Types de procédure que la commune instruit."),
    Key("session_quorum", dict[SessionKind, Quorum], "fraction ou nombre",
        "Quorum de chaque type de séance : une fraction des membres ou un nombre de présents."),
    Key("display_days", Annotated[int, Field(ge=1, le=3650)], "jours", "Durée de l'affichage public."),
    Key("display_shows_names", bool, "oui/non",
        "L'affichage public imprimé nomme-t-il les détenteurs présumés (jamais sur le web public) ?"),
    Key("claim_days", Annotated[int, Field(ge=1, le=3650)], "jours",
        "Délai cible pour traiter une réclamation."),
    Key("target_days", dict[Name, dict[Name, Days]], "jours",
        "Délais cibles par étape : type de procédure → étape → jours, et « dispute » → état → jours."),
    Key("fees_required_before", dict[ProcedureKind, Name], "étape",
        "Étape qu'une procédure ne franchit qu'une fois les frais payés, par type de procédure."),
    Key("receipt_mode", Literal["quittance_papier", "recu_pdf"], "mode",
        "Quittance papier du Trésor (numéro saisi) ou reçu PDF numéroté par SIFC."),
    Key("gender_min_count", Annotated[int, Field(ge=1, le=1000)], "personnes",
        "Effectif au-dessous duquel un indicateur par sexe n'est pas publié."),
)

_BY_NAME = {key.name: key for key in KEYS}


def get(name: str) -> Key:
    """The key named ``name``; 404 for an unknown key (the message lists the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise NotFound("setting.unknown_key", key=name[:64], keys=", ".join(_BY_NAME)) from None


def names() -> tuple[str, ...]:
    """Every key's name, in the registry's order."""
    return tuple(_BY_NAME)
