"""JSON answers of figures: a unit's parcel statistics (``/stats``) and a dashboard (``/dashboards``).

Field names and types are those :func:`sifc.parcels.quality.statistics` and :func:`sifc.dashboards.get`
write: public aggregates only, no personal field. The routes answer these dicts as they are built;
the models only document them (``api.responses.documented_as``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from api.responses import documented_as

UNSET = "Parcelles sans valeur pour cet attribut : null."


class BreakdownOut(BaseModel):
    """Current parcels sharing one value of an attribute (land use, tenure regime), most numerous first."""

    value: str | None = Field(description=UNSET)
    parcels: int
    area_m2: float


class UnitStatisticsOut(BaseModel):
    """Current parcels of a commune, a department or a pole: counts, areas, NICAD coverage and breakdowns."""

    level: Literal["commune", "department", "pole"]
    code: str
    name: str
    parcels: int
    communes_with_parcels: int
    total_area_m2: float
    mean_area_m2: float | None = Field(description="null sans parcelle.")
    with_nicad: int
    share_with_nicad: float | None = Field(description="Part (0 à 1) ; null sans parcelle.")
    by_land_use: list[BreakdownOut]
    by_tenure_regime: list[BreakdownOut]


class ParcelTotalsOut(BaseModel):
    count: int
    area_m2: float


class NicadStatusOut(BaseModel):
    value: str | None = Field(description=UNSET)
    parcels: int


class NicadCoverageOut(BaseModel):
    parcels: int
    with_nicad: int
    coverage: float | None = Field(description="Part (0 à 1) des parcelles avec NICAD ; null sans parcelle.")
    by_status: list[NicadStatusOut]


class ProcedureStateOut(BaseModel):
    state: str = Field(description="Dernière étape de la procédure (`registered` … `notified`, `refused`).")
    procedures: int


class StepMedianOut(BaseModel):
    step: str = Field(description="L'étape atteinte.")
    median_days: float = Field(description="Médiane des jours depuis l'étape précédente (percentile_cont).")
    transitions: int = Field(description="Nombre d'étapes mesurées.")


class ProceduresOut(BaseModel):
    total: int
    by_state: list[ProcedureStateOut] = Field(description="Chaque état, dans l'ordre des étapes, même à 0.")
    in_progress: int = Field(description="Procédures ni notifiées ni refusées.")
    overdue: int = Field(default=0, description=(
        "Dossiers en retard (procédures, réclamations) : l'étape attendue a dépassé le délai `target_days` "
        "(ou `claim_days`) en vigueur ; sans délai fixé, aucun retard."))
    median_days: list[StepMedianOut] = Field(default=[], description="Durée médiane de chaque étape.")


class ImportMonthOut(BaseModel):
    month: str = Field(description="Mois (UTC), `AAAA-MM`.", pattern=r"^\d{4}-\d{2}$")
    batches: int
    parcel_versions: int = Field(description="Versions de parcelles écrites dans l'unité.")
    accepted: int = Field(description="Entités acceptées par les lots, toutes communes du fichier confondues.")


class ConflictsOut(BaseModel):
    """Overlapping pairs of current parcels, as ``/communes/{code}/overlaps`` finds them."""

    tolerance_m2: float
    computed: bool = Field(description="false : trop de parcelles, chevauchements non recherchés.")
    pairs: int
    area_m2: float
    truncated: bool = Field(description="true : plus de paires que le plafond, `pairs` est un minimum.")


class PoleCommuneOut(BaseModel):
    """One commune of a pole that has current parcels."""

    code: str
    name: str
    parcels: int
    area_m2: float
    with_nicad: int
    nicad_coverage: float | None
    procedures: int
    conflicts: int | None = Field(description="null quand les chevauchements ne sont pas recherchés.")
    overdue: int = 0
    median_days: list[StepMedianOut] = []
    women_share: float | None = Field(default=None, description="Part des femmes parmi les titulaires ; null si "
                                                                "non publiée (petits effectifs, seuil non fixé).")


class GenderCommuneOut(BaseModel):
    """A commune's holders of current affectations by sex (``tenure_indicator``); small counts withheld."""

    commune_code: str
    computed_at: datetime
    holders: int
    women: int | None
    men: int | None
    unrecorded: int | None = Field(description="Personnes dont le sexe n'est pas renseigné.")
    entities: int | None = Field(description="Groupements et personnes morales.")
    min_count: int | None = Field(description="Le seuil des petits effectifs (réglage gender_min_count).")
    withheld: Literal["setting_missing", "small_counts", "no_holders"] | None
    women_share: float | None


class GenderTotalOut(BaseModel):
    """The published communes together."""

    women: int | None
    men: int | None
    women_share: float | None
    communes_published: int
    communes_computed: int
    communes: int


class GenderOut(BaseModel):
    """Gender indicators of tenure (ADR 0005 §3): aggregates only, never a person."""

    indicator: Literal["holders_by_sex"]
    communes: list[GenderCommuneOut]
    total: GenderTotalOut


class DashboardOut(BaseModel):
    """The dashboard of a commune or a pole."""

    level: Literal["commune", "pole"]
    code: str
    name: str
    generated_at: datetime
    parcels: ParcelTotalsOut
    by_land_use: list[BreakdownOut]
    by_tenure_regime: list[BreakdownOut]
    nicad: NicadCoverageOut
    procedures: ProceduresOut
    imports: list[ImportMonthOut]
    conflicts: ConflictsOut
    communes: list[PoleCommuneOut] | None = Field(default=None, description="Pour un pôle seulement.")
    gender: GenderOut | None = None


UnitStatistics = Annotated[dict[str, Any], documented_as(UnitStatisticsOut)]
Dashboard = Annotated[dict[str, Any], documented_as(DashboardOut)]
