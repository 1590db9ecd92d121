"""Points, boxes and shapes far from Senegal: found by schemathesis, each was a 500.

PROJ cannot put a point 95° from UTM 28N's central meridian into that projection ("Point outside
of projection domain"), and a world-wide box transformed corner by corner became a sliver that
matched nothing. Far away, a question now has no parcel in its answer (or a 4xx where the
question itself means nothing there), and a world-wide box holds every parcel.
"""

import pytest

from tests.integration.test_api_spatial import grid  # noqa: F401 (fixture)

FAR = {"lon": 80.0, "lat": 0.0}  # the Indian Ocean, south of Sri Lanka


def _features(response):
    assert response.status_code == 200, response.text
    return response.json()["features"]


@pytest.mark.parametrize("url", [
    "/parcels/at?lon=80&lat=0",
    "/parcels/near?lon=80&lat=0&distance=100",
    "/parcels/near?lon=-98.39&lat=-2.2250738585e-313&distance=103.07",
    "/parcels/in-bbox?bbox=79,0,80,1",
    "/ogc/collections/parcels/items?bbox=79,0,81,1",
    "/ogc/collections/communes/items?bbox=79,0,81,1",
    "/ogc/collections/parcels/items?filter=S_INTERSECTS(geometry,POINT(80 0))",
    "/ogc/collections/parcels/items?filter=S_DWITHIN(geometry,POINT(80 0),100)",
])
def test_far_questions_have_empty_answers(client, grid, url):  # noqa: F811
    assert _features(client.get(url)) == []


def test_far_posted_geometry_meets_no_parcel(client, grid):  # noqa: F811
    response = client.post("/parcels/intersecting", json={"type": "Point", "coordinates": [80, 0]})
    assert _features(response) == []


def test_far_point_has_no_nearest_parcels_and_no_location(client, grid):  # noqa: F811
    response = client.get("/parcels/nearest?lon=80&lat=0", headers={"Accept-Language": "en"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert "outside Senegal" in response.json()["detail"]
    response = client.get("/locate?lon=80&lat=0")
    assert response.status_code == 404 and response.json()["type"] == "urn:sifc:problem:locate.outside_senegal"


def test_far_parcel_is_refused(client, admin_headers):
    square = [[[80, 0], [80.001, 0], [80.001, 0.001], [80, 0.001], [80, 0]]]
    response = client.post("/parcels", headers=admin_headers, json={
        "type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": square}})
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "urn:sifc:problem:parcel.outside_senegal"


def test_a_world_wide_box_or_shape_holds_every_parcel(client, grid):  # noqa: F811
    _, _, squares = grid
    world = "POLYGON((-180 -90,180 -90,180 90,-180 90,-180 -90))"
    for url in ("/ogc/collections/parcels/items?bbox=-180,-90,180,90&limit=1000",
                f"/ogc/collections/parcels/items?filter=S_INTERSECTS(geometry,{world})&limit=1000"):
        nicads = {f["properties"]["nicad"] for f in _features(client.get(url))}
        assert set(squares) <= nicads, url


def test_every_error_is_documented_as_a_problem(client):
    document = client.get("/openapi.json").json()
    assert "Problem" in document["components"]["schemas"]
    for path in ("/parcels/nearest", "/locate", "/ogc/collections/{collection_id}/items"):
        responses = document["paths"][path]["get"]["responses"]
        assert set(responses["4XX"]["content"]) == {"application/problem+json"}
        invalid = "400" if path.startswith("/ogc") else "422"
        assert set(responses[invalid]["content"]) == {"application/problem+json"}
    assert "422" not in document["paths"]["/ogc/collections/{collection_id}/items"]["get"]["responses"]


def test_far_export_selection_is_empty_not_an_error(client, grid):  # noqa: F811
    response = client.get("/exports/parcels?format=geojson&bbox=79,0,81,1")
    assert response.status_code == 200, response.text
    assert response.json()["features"] == []
