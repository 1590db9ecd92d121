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
