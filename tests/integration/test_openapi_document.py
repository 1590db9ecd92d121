"""The service's OpenAPI document: valid, its links resolve, its examples are accepted by the schemas.

Link-following clients (Schemathesis' stateful runs, generators) read the document as it is served:
a link to an operation that does not exist, a parameter the target does not take, or an example its own
schema refuses breaks them silently. The stateful runs themselves are in ``tests/e2e``.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
from openapi_spec_validator import validate
from pydantic import TypeAdapter
from sqlalchemy import text

from api.openapi_links import BODY_EXAMPLES, LINKS
from sifc.demo import load_demo
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.parcels import quality
from sifc.territories import service as territories
from sifc.territories.service import GeometryOptions
from tests.integration.fixtures import bargny_origin, square, write


def _document(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(document: dict) -> dict[str, tuple[str, dict]]:
    return {operation["operationId"]: (path, operation) for path, item in document["paths"].items()
            for operation in item.values()}


def test_the_document_is_valid_openapi(client):
    validate(_document(client))


def test_every_discriminator_maps_to_references(client):
    """OpenAPI 3.1 §4.8.25: a mapping's values are schema names or references (a client cannot generate from more)."""
    wrong = []

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            mapping = node.get("discriminator", {}).get("mapping", {}) if isinstance(node.get("discriminator"),
                                                                                     dict) else {}
            wrong.extend(f"{where}: {key}" for key, value in mapping.items() if not isinstance(value, str))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(_document(client), "#")
    assert not wrong, wrong


def test_every_link_resolves_to_an_operation_and_its_parameters(client):
    document = _document(client)
    operations = _operations(document)
    count = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for name, link in response.get("links", {}).items():
                    count += 1
                    assert link["operationId"] in operations, (method, path, status, name)
                    _, target = operations[link["operationId"]]
                    names = {p["name"] for p in target.get("parameters", [])}
                    for parameter in link.get("parameters", {}):
                        assert parameter.split(".", 1)[1] in names, (method, path, name, parameter)
                    if "requestBody" in link:
                        assert "requestBody" in target, (method, path, name)
    assert count >= sum(len(links) for links in LINKS.values())


def test_the_parcel_and_tenure_creations_lead_to_their_reads_and_writes(client):
    document = _document(client)
    operations = _operations(document)

    def targets(method: str, path: str, status: str) -> set[str]:
        links = document["paths"][path][method]["responses"][status].get("links", {})
        return {f"{m.upper()} {operations[link['operationId']][0]}" for link in links.values()
                for m in document["paths"][operations[link["operationId"]][0]]
                if document["paths"][operations[link["operationId"]][0]][m] is operations[link["operationId"]][1]}

    assert {"GET /parcels/{parcel_id}", "PATCH /parcels/{parcel_id}", "GET /parcels/{parcel_id}/versions",
            "GET /parcels/{parcel_id}/history", "GET /parcels/{parcel_id}/rights", "GET /parcels/{parcel_id}/fiche.pdf",
            "POST /parcels/{parcel_id}/retire", "POST /parcels/{parcel_id}/split"} <= targets("post", "/parcels", "201")
    assert {"GET /parties/{party_id}", "PATCH /parties/{party_id}", "POST /procedures"} <= targets(
        "post", "/parties", "201")
    assert {"GET /procedures/{procedure_id}", "POST /procedures/{procedure_id}/steps"} <= targets(
        "post", "/procedures", "201")


def test_every_request_example_is_valid_against_its_schema(client):
    document = _document(client)
    components = {"components": document["components"]}
    for (method, path), example in BODY_EXAMPLES.items():
        content = document["paths"][path][method.lower()]["requestBody"]["content"]
        for media in content.values():
            assert media["example"] == example
            jsonschema.validate(example, {**media["schema"], **components})


# --- the real answers match the documented schemas --------------------------------------------------

def _conforms(client, document: dict, method: str, path: str, url: str, *, status: int = 200, **options) -> dict:
    """Ask ``url`` (the operation ``method path``) and check its body against the schema documented for it."""
    response = client.request(method, url, **options)
    assert response.status_code == status, (url, response.text[:500])
    media = response.headers["content-type"].split(";")[0]
    schema = document["paths"][path][method.lower()]["responses"][str(status)]["content"][media]["schema"]
    # The components travel with the schema, so its "#/components/schemas/…" references resolve.
    validator = jsonschema.Draft202012Validator({**schema, "components": document["components"]},
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    body = response.json()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(body)]
    assert not errors, (method, url, errors[:5])
    return body


def _one(db, sql: str, **params: str) -> str:
    found = db.execute(text(sql), params).scalar()
    assert found is not None, sql
    return str(found)


def test_real_answers_validate_against_their_documented_schemas(client, db, admin_headers, tmp_path):
    """A parcel, commune lists, spatial questions, a right, a procedure, an import job, OGC items: the
    bodies PostGIS and the services build are what the document says, to the public and to a reader in scope."""
    load_demo(db)
    document = _document(client)
    parcel = _one(db, "SELECT parcel_id FROM rrr_version ORDER BY parcel_id LIMIT 1")
    right = _one(db, "SELECT rrr_id FROM rrr_version WHERE parcel_id = CAST(:p AS uuid) LIMIT 1", p=parcel)
    procedure = _one(db, "SELECT id FROM tenure_procedure ORDER BY id LIMIT 1")
    party = _one(db, "SELECT party_id FROM party_version WHERE kind = 'natural_person' ORDER BY party_id LIMIT 1")
    group = _one(db, "SELECT party_id FROM party_version WHERE members IS NOT NULL ORDER BY party_id LIMIT 1")
    source = _one(db, "SELECT id FROM source_document ORDER BY id LIMIT 1")
    nicad = _one(db, "SELECT nicad FROM parcel WHERE parcel_id = CAST(:p AS uuid)", p=parcel)
    public = [
        ("/communes", "/communes?limit=3"),
        ("/communes/{code}", "/communes/SN0104-bargny"),
        ("/departments/{code}/children", "/departments/SN0104/children?geometry=false&crs=EPSG:32628"),
        ("/poles", "/poles"),
        ("/parcels/{parcel_id}", f"/parcels/{parcel}"),
        ("/parcels/{parcel_id}", f"/parcels/{parcel}?crs=EPSG:32628"),
        ("/parcels/by-nicad/{nicad}", f"/parcels/by-nicad/{nicad}"),
        ("/parcels/{parcel_id}/versions", f"/parcels/{parcel}/versions"),
        ("/communes/{code}/parcels", "/communes/SN0104-bargny/parcels?limit=5"),
        ("/parcels/{parcel_id}/neighbours", f"/parcels/{parcel}/neighbours?distance=50"),
        ("/parcels/nearest", "/parcels/nearest?lon=-17.22&lat=14.69&k=3"),
        ("/communes/{code}/overlaps", "/communes/SN0104-bargny/overlaps?limit=5"),
        ("/communes/{code}/boundary-issues", "/communes/SN0104-bargny/boundary-issues?limit=5"),
        ("/communes/{code}/gaps", "/communes/SN0104-bargny/gaps?limit=5"),
        ("/parcels/{parcel_id}/rights", f"/parcels/{parcel}/rights"),
        ("/parcels/{parcel_id}/lineage", f"/parcels/{parcel}/lineage"),
        ("/ogc/collections/{collection_id}/items", "/ogc/collections/parcels/items?limit=3"),
        ("/ogc/collections/{collection_id}/items", "/ogc/collections/communes/items?limit=1"),
        ("/ogc/collections/{collection_id}/items/{feature_id}", f"/ogc/collections/parcels/items/{parcel}"),
        ("/ogc/collections/{collection_id}/queryables", "/ogc/collections/parcels/queryables"),
        ("/documents/verify/{code}", "/documents/verify/ABCD-EFGH"),
        # Plain dicts, answered as the services build them and documented by the models of api/schemas.
        ("/stats/{level}/{code}", "/stats/commune/SN0104-bargny"),
        ("/stats/{level}/{code}", "/stats/pole/DKR"),
        ("/dashboards/{level}/{code}", "/dashboards/commune/SN0104-bargny"),
        ("/dashboards/{level}/{code}", "/dashboards/pole/DKR"),
        ("/tiles", "/tiles"),
        ("/tiles/{collection}/tilejson.json", "/tiles/parcels/tilejson.json"),
        ("/tiles/{collection}/tilejson.json", "/tiles/communes/tilejson.json?properties=code,name"),
        ("/ogc", "/ogc"),
        ("/ogc/conformance", "/ogc/conformance"),
        ("/ogc/functions", "/ogc/functions"),
        ("/ogc/collections", "/ogc/collections"),
        ("/ogc/collections/{collection_id}", "/ogc/collections/parcels"),
    ]
    for path, url in public:
        _conforms(client, document, "GET", path, url)
    in_scope = [
        ("/parcels/{parcel_id}", f"/parcels/{parcel}"),
        ("/parcels/{parcel_id}/versions", f"/parcels/{parcel}/versions"),
        ("/parcels/{parcel_id}/rights", f"/parcels/{parcel}/rights"),
        ("/rights/{rrr_id}", f"/rights/{right}"),
        ("/rights/{rrr_id}/versions", f"/rights/{right}/versions"),
        ("/procedures/{procedure_id}", f"/procedures/{procedure}"),
        ("/parcels/{parcel_id}/procedures", f"/parcels/{parcel}/procedures"),
        ("/parcels/{parcel_id}/history", f"/parcels/{parcel}/history"),
        ("/parcels/{parcel_id}/audit", f"/parcels/{parcel}/audit"),
        ("/parties/{party_id}", f"/parties/{party}"),
        ("/parties/{party_id}/versions", f"/parties/{party}/versions"),
        ("/parties/{party_id}", f"/parties/{group}"),  # a groupement and the ids of its members
        ("/sources/{source_id}", f"/sources/{source}"),
        ("/admin/writes", "/admin/writes?limit=5"),
    ]
    for path, url in in_scope:
        _conforms(client, document, "GET", path, url, headers=admin_headers)

    x, y = bargny_origin(db)
    upload = write(tmp_path, [{"NICAD": "0104040100001", "geometry": square(x, y)}]).read_bytes()
    job = _conforms(client, document, "POST", "/imports", "/imports", status=202, headers=admin_headers,
                    files={"file": ("levé.gpkg", upload)}, data={"dry_run": "true", "crs": "EPSG:32628"})
    _conforms(client, document, "GET", "/imports/{job_id}", f"/imports/{job['id']}", headers=admin_headers)
    _conforms(client, document, "GET", "/imports", "/imports", headers=admin_headers)
    # The job's report, as the worker stores it when the import is done (no worker runs in these tests).
    report = import_parcels(db, write(tmp_path, [{"NICAD": "0104040100002", "geometry": square(x, y)}]),
                            ParcelImportOptions(dry_run=True, crs="EPSG:32628", author="t"))
    db.execute(text("UPDATE import_job SET status = 'done', finished_at = now(), report = CAST(:report AS jsonb) "
                    "WHERE id = CAST(:id AS uuid)"), {"report": orjson.dumps(report.as_dict()).decode(), "id": job["id"]})
    _conforms(client, document, "GET", "/imports/{job_id}/report", f"/imports/{job['id']}/report",
              headers=admin_headers)

    package = _conforms(client, document, "POST", "/field/packages", "/field/packages", status=201,
                        headers=admin_headers, json={"commune": "SN0104-bargny"})
    _conforms(client, document, "GET", "/field/packages/{package_id}", f"/field/packages/{package['id']}",
              headers=admin_headers)
    _conforms(client, document, "GET", "/field/packages", "/field/packages", headers=admin_headers)
    _conforms(client, document, "POST", "/field/packages/{package_id}/lost", f"/field/packages/{package['id']}/lost",
              headers=admin_headers, json={"reason": "tablette perdue"})


def test_a_plain_dict_answer_documented_by_a_model_is_still_the_dict_serialised_as_it_was(client, db):
    """``documented_as`` changes the document only: the body is the service's dict, serialised as a ``dict``."""
    load_demo(db)
    built = quality.statistics(db, level="commune", code="SN0104-bargny")
    response = client.get("/stats/commune/SN0104-bargny")
    assert response.status_code == 200
    assert response.content == TypeAdapter(dict[str, Any]).dump_json(built)


def test_a_documented_geojson_answer_is_still_the_bytes_postgis_built(client, db):
    """The response model documents the answer only: the route sends the service's bytes as they are."""
    built = territories.get_unit(db, level="commune", code="SN0104-bargny", geometry=GeometryOptions())
    response = client.get("/communes/SN0104-bargny")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    assert response.content == built
