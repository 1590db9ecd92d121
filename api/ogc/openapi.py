"""The OpenAPI 3.0 definition of ``/ogc`` (the landing page's ``service-desc``).

FastAPI's own document (``/openapi.json``) is OpenAPI 3.1 and describes the whole service;
OGC API - Features asks for OpenAPI 3.0, and its clients read more from it than a generic
document holds: QGIS takes the ``limit`` maximum from ``components/parameters/limit``, and
QGIS and GDAL find the property filters of a collection among the parameters of its own
``/collections/{id}/items`` path. This document is built from :data:`sifc.ogc.COLLECTIONS`,
so it cannot drift from what the items endpoint accepts.
"""

from __future__ import annotations

from typing import Any

from sifc import __version__
from sifc.ogc import COLLECTIONS, DEFAULT_LIMIT, MAX_LIMIT, SUPPORTED_CRS, Collection

GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
PROBLEM = "application/problem+json"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema,
            "style": "form", "explode": False, **extra}


CRS_SCHEMA = {"type": "string", "format": "uri", "enum": list(SUPPORTED_CRS)}

PARAMETERS: dict[str, dict[str, Any]] = {
    "limit": _query("limit", f"Nombre d'entités par page : {DEFAULT_LIMIT} par défaut ; au-delà de {MAX_LIMIT}, "
                             f"ramené à {MAX_LIMIT}.",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
    "offset": _query("offset", "Rang de la première entité de la page (les liens `next` et `prev` le portent).",
                     {"type": "integer", "minimum": 0, "maximum": 1_000_000_000, "default": 0}),
    "bbox": _query("bbox", "Emprise minx,miny,maxx,maxy, ou minx,miny,minz,maxx,maxy,maxz (les hauteurs sont "
                           "ignorées), dans `bbox-crs` (CRS84 par défaut).",
                   {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
    "bbox-crs": _query("bbox-crs", "SCR de `bbox`.", CRS_SCHEMA),
    "crs": _query("crs", "SCR des géométries servies (CRS84 par défaut ; EPSG:4326 en latitude, longitude).",
                  CRS_SCHEMA),
    "filter": _query("filter", "Filtre CQL2 sur les propriétés interrogeables (`queryables`).",
                     {"type": "string", "maxLength": 20_000}),
    "filter-lang": _query("filter-lang", "Langage du filtre.",
                          {"type": "string", "enum": ["cql2-text", "cql2-json", "cql-text"], "default": "cql2-text"}),
    "filter-crs": _query("filter-crs", "SCR des géométries du filtre.", CRS_SCHEMA),
    "properties": _query("properties", "Propriétés à renvoyer (toutes par défaut).",
                         {"type": "array", "items": {"type": "string"}}),
    "sortby": _query("sortby", "Tri : `+nom,-area_m2` (voir `sortables`).",
                     {"type": "array", "items": {"type": "string", "pattern": r"^[+-]?[A-Za-z_][A-Za-z0-9_]*$"}}),
    "featureId": {"name": "featureId", "in": "path", "required": True, "description": "Identifiant de l'entité.",
                  "schema": {"type": "string", "maxLength": 100}},
}
ITEMS_PARAMETERS = ["limit", "offset", "bbox", "bbox-crs", "crs", "filter", "filter-lang", "filter-crs",
                    "properties", "sortby"]

LINK = {"type": "object", "required": ["href", "rel"],
        "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                       "title": {"type": "string"}}}
SCHEMAS: dict[str, dict[str, Any]] = {
    "link": LINK,
    "landingPage": {"type": "object", "required": ["links"],
                    "properties": {"title": {"type": "string"}, "description": {"type": "string"},
                                   "links": {"type": "array", "items": _ref("schemas", "link")}}},
    "confClasses": {"type": "object", "required": ["conformsTo"],
                    "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}}},
    "collection": {"type": "object", "required": ["id", "links"],
                   "properties": {"id": {"type": "string"}, "title": {"type": "string"},
                                  "description": {"type": "string"},
                                  "links": {"type": "array", "items": _ref("schemas", "link")},
                                  "extent": {"type": "object"}, "itemType": {"type": "string"},
                                  "crs": {"type": "array", "items": {"type": "string"}},
                                  "storageCrs": {"type": "string"}}},
    "collections": {"type": "object", "required": ["links", "collections"],
                    "properties": {"links": {"type": "array", "items": _ref("schemas", "link")},
                                   "collections": {"type": "array", "items": _ref("schemas", "collection")}}},
    "featureGeoJSON": {"type": "object", "required": ["type", "geometry", "properties"],
                       "properties": {"type": {"type": "string", "enum": ["Feature"]},
                                      "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                                      "geometry": {"type": "object", "nullable": True},
                                      "properties": {"type": "object", "nullable": True},
                                      "links": {"type": "array", "items": _ref("schemas", "link")}}},
    "featureCollectionGeoJSON": {
        "type": "object", "required": ["type", "features"],
        "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                       "features": {"type": "array", "items": _ref("schemas", "featureGeoJSON")},
                       "links": {"type": "array", "items": _ref("schemas", "link")},
                       "numberMatched": {"type": "integer", "minimum": 0},
                       "numberReturned": {"type": "integer", "minimum": 0}}},
    "jsonSchema": {"type": "object", "required": ["properties"],
                   "properties": {"properties": {"type": "object"}, "type": {"type": "string"}}},
    "problem": {"type": "object", "required": ["type", "title", "status"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                               "status": {"type": "integer"}, "detail": {"type": "string"},
                               "instance": {"type": "string"}}},
}


def _answer(description: str, media_type: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": _ref("schemas", schema)}}}


RESPONSES: dict[str, dict[str, Any]] = {
    "invalidParameter": _answer("Paramètre invalide.", PROBLEM, "problem"),
    "notFound": _answer("Ressource inexistante.", PROBLEM, "problem"),
    "serverError": _answer("Erreur du serveur.", PROBLEM, "problem"),
}
ERRORS = {"400": _ref("responses", "invalidParameter"), "500": _ref("responses", "serverError")}


def _operation(operation_id: str, summary: str, ok: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
               not_found: bool = False, tag: str = "Capacités") -> dict[str, Any]:
    responses = {"200": ok, **ERRORS}
    if not_found:
        responses["404"] = _ref("responses", "notFound")
    return {"get": {"operationId": operation_id, "summary": summary, "tags": [tag], "parameters": parameters or [],
                    "responses": responses}}


def _property_parameter(name: str, json_type: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "style": "form", "explode": False,
            "description": f"Égalité sur la propriété `{name}`.", "schema": {"type": json_type}}


def _collection_paths(spec: Collection, parameters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    prefix = f"/collections/{spec.id}"
    filters = []
    for name, (_, json_type) in spec.sortables.items():
        key = f"{spec.id}.{name}"
        parameters[key] = _property_parameter(name, json_type)
        filters.append(_ref("parameters", key))
    feature_id = {**PARAMETERS["featureId"], "schema": {"type": "string", "format": "uuid"}} \
        if spec.key_type == "uuid" else PARAMETERS["featureId"]
    return {
        prefix: _operation(f"describe_{spec.id}", f"{spec.title} : description",
                           _answer("La collection.", JSON, "collection"), tag=spec.title),
        f"{prefix}/items": _operation(
            f"items_{spec.id}", f"{spec.title} : entités",
            {**_answer("Une page d'entités.", GEOJSON, "featureCollectionGeoJSON"),
             "headers": {"Content-Crs": {"description": "SCR des géométries.", "schema": {"type": "string"}}}},
            [*(_ref("parameters", name) for name in ITEMS_PARAMETERS), *filters], not_found=True, tag=spec.title),
        f"{prefix}/items/{{featureId}}": _operation(
            f"item_{spec.id}", f"{spec.title} : une entité", _answer("L'entité.", GEOJSON, "featureGeoJSON"),
            [feature_id, _ref("parameters", "crs"), _ref("parameters", "properties")], not_found=True,
            tag=spec.title),
        f"{prefix}/queryables": _operation(
            f"queryables_{spec.id}", f"{spec.title} : propriétés interrogeables",
            _answer("Schéma JSON des propriétés.", SCHEMA_JSON, "jsonSchema"), tag=spec.title),
        f"{prefix}/sortables": _operation(
            f"sortables_{spec.id}", f"{spec.title} : propriétés triables",
            _answer("Schéma JSON des propriétés.", SCHEMA_JSON, "jsonSchema"), tag=spec.title),
    }


def document(base: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``/ogc`` served from ``base``."""
    parameters = dict(PARAMETERS)
    paths: dict[str, Any] = {
        "/": _operation("landing", "Page d'accueil", _answer("Liens de l'API.", JSON, "landingPage")),
        "/conformance": _operation("conformance", "Classes de conformité",
                                   _answer("Les classes déclarées.", JSON, "confClasses")),
        "/collections": _operation("collections", "Collections", _answer("Les collections.", JSON, "collections")),
        "/functions": _operation("functions", "Fonctions CQL2", {"description": "Les fonctions.",
                                                                 "content": {JSON: {"schema": {"type": "object"}}}}),
    }
    for spec in COLLECTIONS.values():
        paths.update(_collection_paths(spec, parameters))
    return {
        "openapi": "3.0.3",
        "info": {"title": "SIFC — OGC API Features", "version": __version__,
                 "description": "Référentiel territorial du Sénégal et cadastre communal (programme E-Territoire), "
                                "selon OGC API - Features parties 1, 2 et 3."},
        "servers": [{"url": f"{base}/ogc"}],
        "paths": paths,
        "components": {"parameters": parameters, "schemas": SCHEMAS, "responses": RESPONSES},
    }
