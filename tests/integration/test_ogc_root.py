"""OGC API - Features: every resource with and without its trailing slash, and the 3-D bbox.

The abstract test suite of Part 1 requests ``{root}/`` (/ats/core/root-op) and needs 200 without a
redirect; the ``bbox`` parameter is 4 numbers or 6 (/req/core/fc-bbox-definition).
"""

from __future__ import annotations

import pytest

from tests.integration.test_api_spatial import grid  # noqa: F401  (fixture)

RESOURCES = ["/ogc", "/ogc/api", "/ogc/conformance", "/ogc/functions", "/ogc/collections",
             "/ogc/collections/parcels", "/ogc/collections/communes", "/ogc/collections/parcels/items",
             "/ogc/collections/communes/items", "/ogc/collections/communes/items/SN0104-bargny",
             "/ogc/collections/parcels/queryables", "/ogc/collections/parcels/sortables"]


@pytest.mark.parametrize("path", RESOURCES)
@pytest.mark.parametrize("slash", ["", "/"])
def test_every_resource_answers_with_and_without_a_trailing_slash(client, path, slash):
    response = client.get(path + slash, follow_redirects=False)
    assert response.status_code == 200, (path + slash, response.status_code, response.headers.get("location"))
    again = client.get(path + ("/" if not slash else ""), follow_redirects=False)
    assert again.status_code == 200
    if response.headers["content-type"].startswith("application/json"):
        assert response.json() == again.json()


def test_the_landing_page_at_the_root_with_a_slash(client):
    landing = client.get("/ogc/", follow_redirects=False)
    assert landing.status_code == 200
    assert {link["rel"] for link in landing.json()["links"]} >= {"self", "service-desc", "conformance", "data"}


def test_the_slashed_paths_stay_out_of_the_openapi_documents(client):
    assert not [path for path in client.get("/openapi.json").json()["paths"] if path.endswith("/")
                and path.startswith("/ogc")]


def test_bbox_is_declared_with_4_or_6_numbers(client):
    document = client.get("/ogc/api").json()
    schema = document["components"]["parameters"]["bbox"]["schema"]
    assert schema["type"] == "array" and schema["items"] == {"type": "number"}
    assert (schema["minItems"], schema["maxItems"]) == (4, 6)
    items = document["paths"]["/collections/parcels/items"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/bbox"} in items


def _ids(client, query: str) -> list[str]:
    response = client.get(f"/ogc/collections/parcels/items?limit=100&{query}")
    assert response.status_code == 200, response.text
    return sorted(feature["id"] for feature in response.json()["features"])


@pytest.mark.usefixtures("grid")
def test_a_6_number_bbox_filters_on_x_and_y(client):
    everything = _ids(client, "")
    box = "-17.3,14.6,-17.0,14.8"
    inside = _ids(client, f"bbox={box}")
    assert inside and inside == everything  # the grid lies in Bargny
    assert _ids(client, "bbox=-17.3,14.6,-1000,-17.0,14.8,1000") == inside
    assert _ids(client, "bbox=-17.3,14.6,0,-17.0,14.8,0") == inside  # heights ignored
    assert _ids(client, "bbox=-16.0,13.0,-100,-15.9,13.1,100") == []
    epsg4326 = "http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FEPSG%2F0%2F4326"
    assert _ids(client, f"bbox=14.6,-17.3,0,14.8,-17.0,10&bbox-crs={epsg4326}") == inside  # latitude first


@pytest.mark.parametrize("bbox", ["-17.3,14.6,-17.0,14.8,1", "-17.3,14.6,-17.0", "-17.3,14.6,0,-17.0,14.8,0,1",
                                  "-17.3,14.6,5,-17.0,14.8,1", "-17.3,14.6,nan,-17.0,14.8,1", "a,b,c,d"])
def test_other_bbox_lengths_are_refused_with_400(client, bbox):
    response = client.get(f"/ogc/collections/parcels/items?bbox={bbox}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:sifc:problem:spatial.bad_bbox"
