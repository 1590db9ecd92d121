"""The OGC API - Features documents around the collections: landing page, conformance, collections, schemas.

Every link is built from the public base URL (``SIFC_PUBLIC_URL``), never from the Host a client
sent. What the collections hold and accept is the domain's (:mod:`sifc.ogc`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from sifc import ogc
from sifc.ogc import COLLECTIONS, CRS84, STORAGE_CRS, SUPPORTED_CRS, Collection

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
]


def landing(base: str) -> dict[str, Any]:
    """The landing page: what the service is and where everything is."""
    return {
        "title": "SIFC — OGC API Features",
        "description": "Référentiel territorial du Sénégal et cadastre communal (programme E-Territoire).",
        "links": [
            {"href": f"{base}/ogc", "rel": "self", "type": "application/json", "title": "Cette page"},
            {"href": f"{base}/ogc/api", "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0", "title": "Définition de l'API (OpenAPI)"},
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html", "title": "Documentation"},
            {"href": f"{base}/openapi.json", "rel": "describedby",
             "type": "application/vnd.oai.openapi+json;version=3.1", "title": "Tout le service (OpenAPI 3.1)"},
            {"href": f"{base}/ogc/conformance", "rel": "conformance", "type": "application/json",
             "title": "Classes de conformité"},
            {"href": f"{base}/ogc/collections", "rel": "data", "type": "application/json", "title": "Collections"},
            {"href": f"{base}/ogc/functions", "rel": "http://www.opengis.net/def/rel/ogc/1.0/functions",
             "type": "application/json", "title": "Fonctions CQL2"},
        ],
    }


FUNCTIONS: dict[str, object] = {"functions": [{
    "name": "S_DWITHIN",
    "description": "Vrai si les deux géométries sont à au plus `distance` mètres l'une de l'autre (mesurée dans le "
                   "SCR de stockage, EPSG:32628). Un 4ᵉ argument facultatif `meters` nomme l'unité.",
    "arguments": [{"title": "géométrie", "type": ["geometry"]}, {"title": "géométrie", "type": ["geometry"]},
                  {"title": "distance (m)", "type": ["number"]}],
    "returns": ["boolean"],
}]}


def _describe(session: Session, collection: Collection, base: str) -> dict[str, Any]:
    extent = ogc.extent(session, collection.id)
    url = f"{base}/ogc/collections/{collection.id}"
    description: dict[str, Any] = {
        "id": collection.id, "title": collection.title, "description": collection.description,
        "itemType": "feature", "crs": list(SUPPORTED_CRS), "storageCrs": STORAGE_CRS,
        "links": [
            {"href": url, "rel": "self", "type": "application/json", "title": collection.title},
            {"href": f"{url}/items", "rel": "items", "type": "application/geo+json", "title": "Entités"},
            {"href": f"{url}/queryables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
             "type": "application/schema+json", "title": "Propriétés interrogeables"},
            {"href": f"{url}/sortables", "rel": "http://www.opengis.net/def/rel/ogc/1.0/sortables",
             "type": "application/schema+json", "title": "Propriétés triables"},
        ],
    }
    if extent is not None:
        description["extent"] = {"spatial": {"bbox": [[round(v, 7) for v in extent]], "crs": CRS84}}
    return description


def collections(session: Session, base: str) -> dict[str, Any]:
    """Every collection, described."""
    return {
        "links": [{"href": f"{base}/ogc/collections", "rel": "self", "type": "application/json"}],
        "collections": [_describe(session, c, base) for c in COLLECTIONS.values()],
    }


def collection(session: Session, collection_id: str, base: str) -> dict[str, Any]:
    """One collection, described."""
    return _describe(session, ogc.find_collection(collection_id), base)


def _schema(spec: Collection, kind: str, fields: dict[str, tuple[str, str]], base: str) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, (_, json_type) in fields.items():
        properties[name] = ({"format": "geometry-any", "title": "Géométrie"} if json_type == "geometry"
                            else {"type": json_type, "title": name})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{base}/ogc/collections/{spec.id}/{kind}", "type": "object", "title": spec.title,
            "properties": properties, "additionalProperties": False}


def queryables(collection_id: str, base: str) -> dict[str, Any]:
    """The JSON Schema of what a CQL2 filter (or a property filter) may name in a collection."""
    spec = ogc.find_collection(collection_id)
    return _schema(spec, "queryables", spec.queryables, base)


def sortables(collection_id: str, base: str) -> dict[str, Any]:
    """The JSON Schema of what ``sortby`` may name in a collection."""
    spec = ogc.find_collection(collection_id)
    return _schema(spec, "sortables", spec.sortables, base)
