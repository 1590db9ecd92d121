"""The layers of a field package and their fields, described once.

The GeoPackage writer, the QGIS project writer and the return all read this description.

Stored values are the registry's own (``land_use``, ``tenure_regime`` as the parcels carry them);
labels are in French, as on the tablets. A field that is not ``editable`` is shown read-only in the
forms, which protects nothing: what decides a return is the server's record of the package
(:mod:`sifc.field.returns`), never a value read back from the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from sifc.models import SURVEY_METHODS

GPKG_NAME = "data.gpkg"
PROJECT_NAME = "projet.qgs"
PHOTO_DIR = "DCIM"
README_NAME = "LISEZMOI.txt"
# Version of the package's layout; part of the MAC, kept in the package record.
FORMAT = 1

# Value lists (stored value, French label). Values the registry holds outside a list stay as they are.
LAND_USES: tuple[tuple[str, str], ...] = (
    ("habitation", "Habitation"), ("commerce", "Commerce"), ("agriculture", "Agriculture"),
    ("équipement", "Équipement"), ("espace vert", "Espace vert"), ("voirie", "Voirie"),
    ("industrie", "Industrie"), ("mixte", "Mixte"), ("non bâti", "Non bâti"),
)
TENURE_REGIMES: tuple[tuple[str, str], ...] = (
    ("domaine national", "Domaine national"), ("titre foncier", "Titre foncier"), ("bail", "Bail"),
    ("domaine public", "Domaine public"), ("domaine privé de l'État", "Domaine privé de l'État"),
)
SURVEY_METHOD_LABELS: dict[str, str] = {
    "gnss_rtk": "GNSS RTK", "gnss": "GNSS", "station_totale": "Station totale", "ruban": "Ruban",
    "numerisation": "Numérisation", "inconnu": "Inconnue",
}
assert set(SURVEY_METHOD_LABELS) == set(SURVEY_METHODS)
SURVEY_METHOD_VALUES: tuple[tuple[str, str], ...] = tuple((m, SURVEY_METHOD_LABELS[m]) for m in SURVEY_METHODS)


@dataclass(frozen=True)
class Field:
    """One attribute of a layer.

    ``kind``: ``text``, ``int``, ``real``, ``bool`` or ``date`` (GeoPackage TEXT, INTEGER, REAL,
    BOOLEAN, DATE). ``widget``: ``TextEdit``, ``ValueMap`` (with ``values``), ``CheckBox`` or
    ``ExternalResource`` (a photo under ``DCIM/``, stored as a path relative to the project).
    """

    name: str
    kind: str
    label: str
    editable: bool = True
    widget: str = "TextEdit"
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Layer:
    """One table of the GeoPackage (``geometry`` None: a table without geometry)."""

    name: str
    title: str
    geometry: str | None
    editable: bool
    fields: tuple[Field, ...]


_REMARK = Field("remark", "text", "Remarque de l'agent")
_PHOTO = Field("photo", "text", "Photo", widget="ExternalResource")

# Who a parcel is, shown and never edited (in the parcels to check and their neighbours alike).
_PARCEL_IDENTITY: tuple[Field, ...] = (
    Field("parcel_id", "text", "Identifiant", editable=False),
    Field("version", "int", "Version", editable=False),
    Field("nicad", "text", "NICAD", editable=False),
    Field("section", "text", "Section", editable=False),
    Field("local_number", "text", "Numéro", editable=False),
)
PARCEL_FIELDS: tuple[Field, ...] = (
    *_PARCEL_IDENTITY,
    Field("land_use", "text", "Usage du sol", widget="ValueMap", values=LAND_USES),
    Field("tenure_regime", "text", "Régime foncier", widget="ValueMap", values=TENURE_REGIMES),
    Field("declared_area_m2", "real", "Surface déclarée (m²)"),
    _REMARK,
    _PHOTO,
    Field("survey_done", "bool", "Levé contradictoire fait avec les voisins", widget="CheckBox"),
    Field("pv_photo", "text", "Photo du procès-verbal signé", widget="ExternalResource"),
)
# What a return compares (with the geometry): the public attributes a field officer may change.
EDITABLE_PARCEL_ATTRIBUTES = ("land_use", "tenure_regime", "declared_area_m2")
READ_ONLY_PARCEL_ATTRIBUTES = ("parcel_id", "version", "nicad", "section", "local_number")

NEW_PARCEL_FIELDS: tuple[Field, ...] = (
    Field("section", "text", "Section"),
    Field("local_number", "text", "Numéro"),
    Field("land_use", "text", "Usage du sol", widget="ValueMap", values=LAND_USES),
    Field("tenure_regime", "text", "Régime foncier", widget="ValueMap", values=TENURE_REGIMES),
    Field("declared_area_m2", "real", "Surface déclarée (m²)"),
    _REMARK,
    _PHOTO,
)
BORNE_FIELDS: tuple[Field, ...] = (
    Field("borne_id", "text", "Identifiant", editable=False),
    Field("version", "int", "Version", editable=False),
    Field("label", "text", "Numéro de borne", editable=False),
    Field("precision_m", "real", "Précision (m)", editable=False),
    Field("survey_method", "text", "Méthode de levé", editable=False, widget="ValueMap", values=SURVEY_METHOD_VALUES),
    Field("surveyed_on", "date", "Date du levé", editable=False),
)
NEW_BORNE_FIELDS: tuple[Field, ...] = (
    Field("label", "text", "Numéro de borne"),
    Field("precision_m", "real", "Précision (m)"),
    Field("survey_method", "text", "Méthode de levé", widget="ValueMap", values=SURVEY_METHOD_VALUES),
    Field("surveyed_on", "date", "Date du levé"),
    _REMARK,
)
NEIGHBOUR_FIELDS: tuple[Field, ...] = (
    *_PARCEL_IDENTITY,
    Field("land_use", "text", "Usage du sol", editable=False, widget="ValueMap", values=LAND_USES),
)
UNIT_FIELDS: tuple[Field, ...] = (
    Field("level", "text", "Niveau", editable=False),
    Field("code", "text", "Code", editable=False),
    Field("name", "text", "Nom", editable=False),
)
HOLDER_FIELDS: tuple[Field, ...] = (
    Field("parcel_id", "text", "Parcelle", editable=False),
    Field("right_kind", "text", "Droit", editable=False),
    Field("holder", "text", "Titulaire", editable=False),
    Field("share", "text", "Quote-part", editable=False),
)
PACKAGE_FIELDS: tuple[Field, ...] = (
    Field("key", "text", "Clé", editable=False),
    Field("value", "text", "Valeur", editable=False),
)

PARCELS = Layer("parcels", "Parcelles à vérifier", "MultiPolygon", True, PARCEL_FIELDS)
NEW_PARCELS = Layer("new_parcels", "Nouvelles parcelles", "MultiPolygon", True, NEW_PARCEL_FIELDS)
BORNES = Layer("bornes", "Bornes connues", "Point", False, BORNE_FIELDS)
NEW_BORNES = Layer("new_bornes", "Nouvelles bornes", "Point", True, NEW_BORNE_FIELDS)
NEIGHBOURS = Layer("neighbours", "Parcelles voisines", "MultiPolygon", False, NEIGHBOUR_FIELDS)
COMMUNE = Layer("commune", "Limite de la commune", "MultiPolygon", False, UNIT_FIELDS)
UNITS = Layer("units", "Communes voisines", "MultiPolygon", False, UNIT_FIELDS)
HOLDERS = Layer("holders", "Titulaires (données personnelles)", None, False, HOLDER_FIELDS)
PACKAGE = Layer("sifc_package", "Dossier de terrain", None, False, PACKAGE_FIELDS)

# In drawing order, top first (the project's layer tree). ``holders`` only when the package includes them.
LAYERS: tuple[Layer, ...] = (NEW_BORNES, BORNES, NEW_PARCELS, PARCELS, NEIGHBOURS, COMMUNE, UNITS, HOLDERS, PACKAGE)
# The tables a returned file is read for; the others are only checked to be there, unchanged in shape.
RETURNED = ("parcels", "new_parcels", "new_bornes")


def layers(*, holders: bool) -> tuple[Layer, ...]:
    """The layers of a package, with ``holders`` or without."""
    return tuple(layer for layer in LAYERS if holders or layer is not HOLDERS)


def by_name(name: str) -> Layer:
    """The layer called ``name``."""
    for layer in LAYERS:
        if layer.name == name:
            return layer
    raise KeyError(name)
