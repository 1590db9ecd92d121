"""Every answer of the API is documented: each success of each operation says what its body holds.

Clients generate code from ``/openapi.json`` and the documentation shows what comes back: an answer
documented without a schema leaves them with an untyped blob. The real answers are checked against
these schemas in ``tests/integration/test_openapi_document.py``.
"""

from __future__ import annotations

import pytest

from api.app import create_app
from sifc.settings import Settings

BINARY = {"application/pdf", "image/png", "text/csv", "application/zip", "application/geopackage+sqlite3",
          "application/flatgeobuf", "application/vnd.mapbox-vector-tile", "image/jpeg", "image/tiff"}


@pytest.fixture(scope="module")
def document() -> dict:
    return create_app(Settings(environment="test")).openapi()


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_every_success_answer_has_a_schema(document):
    undocumented = []
    for label, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status == "204":
                continue
            content = response.get("content", {})
            if not content:
                undocumented.append(f"{label} {status}: no content")
            undocumented.extend(f"{label} {status} {media}: no schema"
                                for media, body in content.items() if not body.get("schema"))
    assert not undocumented, "\n".join(undocumented)


def test_files_are_documented_as_binary_and_geojson_as_features(document):
    wrong = []
    for label, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for media, body in response.get("content", {}).items():
                schema = body.get("schema", {})
                if media.split(";")[0] in BINARY and schema.get("format") != "binary":
                    wrong.append(f"{label} {media}: {schema}")
                if media == "application/geo+json" and "$ref" not in schema:
                    wrong.append(f"{label} {media}: not a named Feature or FeatureCollection")
    assert not wrong, "\n".join(wrong)


def test_a_parcel_feature_types_its_properties_and_its_personal_fields_are_optional(document):
    schemas = document["components"]["schemas"]
    parcel = document["paths"]["/parcels/{parcel_id}"]["get"]["responses"]["200"]["content"]["application/geo+json"]
    assert parcel["schema"] == {"$ref": "#/components/schemas/ParcelFeature"}
    properties = schemas["ParcelVersionProperties"]
    assert {"id", "version", "nicad", "commune_code", "area_m2", "provenance"} <= set(properties["properties"])
    personal = {"author", "reason", "closed_by", "close_reason"}
    assert personal <= set(properties["properties"]) and not personal & set(properties["required"])
    holder = schemas["HolderOut"]
    assert holder["required"] == ["party_id"]


def _bare(schema: dict) -> bool:
    """An object said to be an object and nothing more: no member named, no member typed."""
    if "$ref" in schema or any(key in schema for key in ("anyOf", "oneOf", "allOf", "items", "prefixItems")):
        return False
    if schema.get("type") not in ("object", None):
        return False
    return not schema.get("properties") and not isinstance(schema.get("additionalProperties"), dict)


def test_no_success_answer_is_a_bare_object(document):
    """A route returning a plain dict is documented by the model of that dict, never as ``{"type": "object"}``."""
    components = document["components"]["schemas"]
    bare = []
    for label, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for media, body in response.get("content", {}).items():
                schema = body.get("schema", {})
                if media.split(";")[0] in BINARY or media.startswith("text/"):
                    continue
                named = schema.get("$ref", "").rsplit("/", 1)[-1]
                if _bare(schema) or (named and _bare(components[named])):
                    bare.append(f"{label} {status} {media}: {schema}")
    assert not bare, "\n".join(bare)


@pytest.mark.parametrize(("path", "component"), [
    ("/stats/{level}/{code}", "UnitStatisticsOut"),
    ("/dashboards/{level}/{code}", "DashboardOut"),
    ("/tiles", "TileLayersOut"),
    ("/tiles/{collection}/tilejson.json", "TileJSON"),
    ("/ogc/collections", "OgcCollectionsOut"),
])
def test_a_plain_dict_answer_is_documented_by_reference_to_its_model(document, path, component):
    """Only the reference: FastAPI's ``dict[str, Any]`` schema (a bare object titled after the route) is gone."""
    content = document["paths"][path]["get"]["responses"]["200"]["content"]
    assert content == {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}}


def test_the_tilejson_document_uses_tilejson_3_names(document):
    tilejson = document["components"]["schemas"]["TileJSON"]
    assert {"tilejson", "tiles", "vector_layers", "name", "description", "version", "attribution", "scheme",
            "minzoom", "maxzoom", "bounds", "center"} == set(tilejson["properties"])
    assert {"tilejson", "tiles", "vector_layers"} <= set(tilejson["required"])
    layer = document["components"]["schemas"]["VectorLayer"]
    assert {"id", "fields"} <= set(layer["required"])
