"""Commune settings (ADR 0005 §1): the values in force, their history, and a new dated, sourced value.

The values are public law or practice (a délibération is public), so reading them is public; who
recorded a value is personal, served in scope only and logged. Writing needs a land officer or an
administrator whose scope covers the commune, at the node that owns it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import PrincipalDep, SessionDep, allow
from sifc.auth.principal import Action, Principal
from sifc.rules import keys
from sifc.rules import service as rules

router = APIRouter(tags=["Réglages de la commune"])

Writer = Annotated[Principal, allow(Action.WRITE_TENURE)]
Code = Annotated[str, Path(max_length=100, description="Code de la commune (ex. SN0104-bargny).")]
SettingKey = Annotated[str, Path(max_length=64, description="Nom du réglage (ex. display_days).")]


class SettingInForce(BaseModel):
    """A key's value in force, where it comes from and what it cites (no author)."""

    key: str
    value: Any = Field(description="La valeur (JSON) ; null si le réglage n'est pas fixé.")
    origin: Literal["commune", "default", "environment", "none"] = Field(description=(
        "commune : délibération de la commune ; default : valeur nationale par défaut ; environment : "
        "reprise de la configuration sans source (à remplacer) ; none : non fixé (l'opération qui en a "
        "besoin est refusée)."))
    valid_from: date | None = None
    source: str | None = Field(default=None, description="Le texte cité (délibération, arrêté, décret et article).")
    source_document_id: str | None = None
    docs_anchor: str | None = None
    unit: str
    meaning: str
    schema_: dict[str, Any] = Field(alias="schema", description="Schéma JSON des valeurs admises.")


class SettingsInForce(BaseModel):
    """Every setting of a commune in force on a date."""

    commune_code: str
    on: date
    settings: list[SettingInForce]


class CommuneSettingOut(BaseModel):
    """One row of the commune (``set_by`` for a reader of personal data in its commune only)."""

    id: str
    valid_from: date
    value: Any
    source: str
    source_document_id: str | None = None
    recorded_at: str
    set_by: str | None = None


class DefaultOut(BaseModel):
    """A national default and the text it rests on."""

    valid_from: date
    valid_to: date | None = None
    value: Any
    source: str
    docs_anchor: str


class SettingHistory(BaseModel):
    """A key's rows for a commune (in recording order) and its national defaults."""

    commune_code: str
    key: str
    commune: list[CommuneSettingOut]
    defaults: list[DefaultOut]


class SettingIn(BaseModel):
    """A new value from a date, citing the text that sets it."""

    value: Any = Field(description="La valeur (JSON), conforme au schéma du réglage.")
    valid_from: date = Field(description="Date d'effet.")
    source: str = Field(min_length=1, max_length=500, description=(
        "Le texte qui la fixe : délibération ou arrêté, numéro et date."))
    source_document_id: str | None = Field(default=None, max_length=64,
                                           description="Id de la source numérisée (facultatif).")


class SettingWritten(BaseModel):
    """The row written."""

    id: str
    commune_code: str
    key: str
    value: Any
    valid_from: date
    source: str
    source_document_id: str | None = None
    recorded_at: str


@router.get("/communes/{code}/settings", response_model=SettingsInForce, response_model_by_alias=True,
            summary="Les réglages en vigueur d'une commune, avec leur source")
def settings_in_force(code: Code, session: SessionDep,
                      on: Annotated[date | None, Query(description="Date ; défaut : aujourd'hui.")] = None
                      ) -> dict[str, Any]:
    """Public : valeur, origine, date d'effet et texte cité de chaque réglage ; jamais qui l'a inscrit."""
    day = on or date.today()
    found = rules.current(session, commune_code=code, on=day)
    return {"commune_code": code, "on": day,
            "settings": [{**row, "schema": keys.get(row["key"]).schema} for row in found]}


@router.get("/communes/{code}/settings/{setting_key}/history", response_model=SettingHistory,
            summary="Toutes les valeurs d'un réglage pour une commune, et les valeurs nationales par défaut")
def setting_history(code: Code, setting_key: SettingKey, session: SessionDep,
                    principal: PrincipalDep) -> dict[str, Any]:
    """Public ; qui a inscrit chaque valeur pour un lecteur de données personnelles de la commune, lecture
    inscrite au journal des accès."""
    return rules.history(session, commune_code=code, key=setting_key,
                         reader=principal if principal.authenticated else None)


@router.post("/communes/{code}/settings/{setting_key}", status_code=201, response_model=SettingWritten,
             summary="Fixer un réglage à partir d'une date, en citant sa source")
def set_setting(code: Code, setting_key: SettingKey, body: SettingIn, session: SessionDep,
                principal: Writer) -> dict[str, Any]:
    """Agent foncier ou administrateur de la commune. Une ligne de plus, jamais une retouche : la valeur vaut à
    partir de `valid_from` jusqu'à la suivante ; une erreur se corrige par une nouvelle ligne à la même date.
    422 si la valeur ne suit pas le schéma du réglage ou sans source."""
    return rules.set(session, commune_code=code, key=setting_key, value=body.value, valid_from=body.valid_from,
                     source=body.source, source_document_id=body.source_document_id, by=principal,
                     author=principal.name)
