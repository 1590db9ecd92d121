"""The service's OpenAPI document: valid, its links resolve, its examples are accepted by the schemas.

Link-following clients (Schemathesis' stateful runs, generators) read the document as it is served:
a link to an operation that does not exist, a parameter the target does not take, or an example its own
schema refuses breaks them silently. The stateful runs themselves are in ``tests/e2e``.
"""

from __future__ import annotations

import jsonschema
from openapi_spec_validator import validate

from api.openapi_links import BODY_EXAMPLES, LINKS


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
