"""GeoJSON answers (RFC 7946): features and collections of parcels, territorial units and checks.

The properties are those the SQL of ``sifc/parcels`` and ``sifc/territories`` writes with
``json_build_object``; a property absent from an answer (the personal fields to a reader out of
scope, ``valid_to`` outside a history) is not required. With ``crs=EPSG:32628`` a collection also
carries a 2008-style ``crs`` member.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from geojson_pydantic import Feature, FeatureCollection, MultiPolygon, Point, Polygon
from geojson_pydantic.geometries import Geometry
from pydantic import BaseModel, Field

Area = Polygon | MultiPolygon


class NamedCrs(BaseModel):
    """The 2008 GeoJSON ``crs`` member, given for a CRS other than WGS 84."""

    type: Literal["name"]
    properties: dict[str, str]


class Collection(BaseModel):
    """The members SIFC adds to a FeatureCollection (OGC API - Features counts, links, ``crs``)."""

    numberMatched: int | None = Field(default=None, description="Nombre total d'entités qui répondent.")
    numberReturned: int | None = Field(default=None, description="Nombre d'entités de cette page.")
    crs: NamedCrs | None = None


class Provenance(BaseModel):
    action: str | None = Field(description="L'écriture qui a produit la version (create, update, import, mutation:…).")
    batch_id: str | None = Field(description="Le lot d'import, s'il y en a un.")
    synthetic: bool
    imported_by: str | None = Field(default=None, description="Données personnelles : lecteurs habilités seulement.")


class ParcelVersionProperties(BaseModel):
    """A parcel's version as the register holds it (``sifc.parcels.service``)."""

    id: str
    version: int
    nicad: str | None
    nicad_status: str | None
    commune_code: str
    section: str | None
    local_number: str | None
    area_m2: float | None = Field(description="Surface calculée (UTM 28N), en m².")
    declared_area_m2: float | None = None
    land_use: str | None
    tenure_regime: str | None
    source_id: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = Field(default=None, description="Dans un historique : fin de validité de la version.")
    author: str | None = Field(default=None, description="Données personnelles : lecteurs habilités seulement.")
    reason: str | None = Field(default=None, description="Texte libre : lecteurs habilités seulement.")
    closed_by: str | None = Field(default=None, description="Données personnelles, dans un historique.")
    close_reason: str | None = Field(default=None, description="Texte libre, dans un historique.")
    provenance: Provenance | None = None


class BorneProperties(BaseModel):
    """A current borne's public attributes (``sifc.bornes.service``): never who wrote it."""

    id: str
    version: int
    code: str | None = Field(default=None, description="Numéro national de la borne, s'il en existe un.")
    label: str | None = Field(default=None, description="Numéro du géomètre (« B12 »).")
    commune_code: str
    precision_m: float | None = Field(default=None, description="Précision du levé, en mètres.")
    survey_method: str = Field(description="gnss_rtk, gnss, station_totale, ruban, numerisation ou inconnu.")
    surveyed_on: date | None = None
    valid_from: datetime | None = None


class BorneFeature(Feature[Point, BorneProperties]):
    """A borne (its current version)."""


class BorneCollection(FeatureCollection[BorneFeature], Collection):
    """A page of a commune's bornes."""


class BorneVersionProperties(BorneProperties):
    """A version of a borne in its history (``sifc.bornes.service.versions``): personal fields in scope only."""

    valid_to: datetime | None = Field(default=None, description="Fin de validité de la version (aucune : en vigueur).")
    author: str | None = Field(default=None, description="Données personnelles : lecteurs habilités seulement.")
    reason: str | None = Field(default=None, description="Texte libre : lecteurs habilités seulement.")
    source: str | None = Field(default=None, description="Plan, levé ou fichier d'origine : lecteurs habilités.")
    closed_by: str | None = Field(default=None, description="Données personnelles, lecteurs habilités seulement.")
    close_reason: str | None = Field(default=None, description="Texte libre, lecteurs habilités seulement.")


class BorneVersionFeature(Feature[Point, BorneVersionProperties]):
    """A version of a borne."""


class BorneVersionCollection(FeatureCollection[BorneVersionFeature], Collection):
    """Every version of one borne, oldest first."""


class SpatialParcelProperties(BaseModel):
    """A current parcel as the spatial questions give it (``sifc.parcels.spatial``), no personal field."""

    id: str
    version: int
    nicad: str | None
    nicad_status: str | None
    commune_code: str
    section: str | None
    local_number: str | None
    area_m2: float | None
    land_use: str | None
    tenure_regime: str | None
    distance_m: float | None = Field(default=None, description="Distance au point ou à la parcelle, en mètres.")


class ParcelFeature(Feature[Area, ParcelVersionProperties]):
    """A parcel (its current version, or the version at ``at``)."""


class ParcelCollection(FeatureCollection[ParcelFeature], Collection):
    """A page of parcels, or every version of one parcel."""


class SpatialParcelFeature(Feature[Area, SpatialParcelProperties]):
    """A current parcel found by a spatial question."""


class SpatialParcelCollection(FeatureCollection[SpatialParcelFeature], Collection):
    """The current parcels a spatial question found."""


class TerritoryProperties(BaseModel):
    """A territorial unit; each level carries its own parents' codes (``sifc.territories.service``)."""

    code: str
    name: str | None
    national_code: str | None = None
    pole_code: str | None = None
    region_code: str | None = None
    department_code: str | None = None
    arrondissement_code: str | None = None
    region_codes: list[str] | None = Field(default=None, description="Pôles : leurs régions.")
    aliases: list[str] | None = Field(default=None, description="Communes : autres graphies connues.")
    official_area_km2: float | None = None
    area_km2: float | None = None
    boundary_status: Literal["official", "provisional"] | None = None
    source: str | None = None
    valid_from: datetime | None = None
    collectivite_territoriale: bool | None = None


class TerritoryFeature(Feature[Area, TerritoryProperties]):
    """A territorial unit (geometry null with ``geometry=false``)."""


class TerritoryCollection(FeatureCollection[TerritoryFeature], Collection):
    """A page of territorial units."""


class OverlapProperties(BaseModel):
    parcel_a: str
    nicad_a: str | None
    parcel_b: str
    nicad_b: str | None
    area_m2: float


class OverlapFeature(Feature[Geometry, OverlapProperties]):
    """The ground two current parcels share."""


class OverlapCollection(FeatureCollection[OverlapFeature], Collection):
    """One feature per overlapping pair."""


class BoundaryIssueProperties(BaseModel):
    id: str
    nicad: str | None
    commune_code: str
    area_m2: float
    outside_m2: float
    issue: Literal["outside", "straddling"]


class BoundaryIssueFeature(Feature[Geometry, BoundaryIssueProperties]):
    """A parcel outside its commune or across its boundary."""


class BoundaryIssueCollection(FeatureCollection[BoundaryIssueFeature], Collection):
    """The parcels outside or across their commune's boundary."""


class GapProperties(BaseModel):
    area_m2: float
    width_below_m: float


class GapFeature(Feature[Geometry, GapProperties]):
    """A void between neighbouring parcels narrower than the asked width."""


class GapCollection(FeatureCollection[GapFeature], Collection):
    """The gaps, largest first."""


class Link(BaseModel):
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class OgcFeature(Feature[Geometry, dict[str, Any]]):
    """An item of an OGC collection: the properties of that collection (see its ``queryables``)."""

    links: list[Link] | None = None


class OgcFeatureCollection(FeatureCollection[OgcFeature], Collection):
    """A page of an OGC collection's items (OGC API - Features, Part 1, 7.15)."""

    links: list[Link] | None = None
    timeStamp: str | None = None


class RejectFeature(Feature[Geometry, dict[str, Any]]):
    """A feature an import refused, with its reasons."""


class RejectCollection(FeatureCollection[RejectFeature]):
    """The rejected features of an import job, to draw on a map."""


class ExportProperties(BaseModel):
    """A parcel's public attributes as exported (``sifc.exports.COLUMNS``): no holder, no author."""

    parcel_id: str
    version: int
    nicad: str | None
    nicad_status: str | None
    commune_code: str
    section: str | None
    local_number: str | None
    source_id: str | None
    area_m2: float | None
    declared_area_m2: float | None
    land_use: str | None
    tenure_regime: str | None
    valid_from: datetime | None


class ExportFeature(Feature[Area, ExportProperties]):
    """An exported parcel."""


class ExportCollection(FeatureCollection[ExportFeature]):
    """The GeoJSON export: one layer, ``name`` ``parcelles`` (and ``crs`` outside WGS 84)."""

    name: str | None = None
    crs: NamedCrs | None = None


class BorneExportProperties(BaseModel):
    """A borne's public attributes as exported (``sifc.exports.BORNE_COLUMNS``): no author, no officer's text."""

    borne_id: str
    version: int
    code: str | None
    commune_code: str
    label: str | None
    source_id: str | None
    precision_m: float | None
    survey_method: str
    surveyed_on: date | None
    valid_from: datetime | None


class BorneExportFeature(Feature[Point, BorneExportProperties]):
    """An exported borne."""


class BorneExportCollection(FeatureCollection[BorneExportFeature]):
    """The GeoJSON export of bornes: one layer, ``name`` ``bornes`` (and ``crs`` outside WGS 84)."""

    name: str | None = None
    crs: NamedCrs | None = None
