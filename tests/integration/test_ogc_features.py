"""OGC API - Features, Part 1 core: landing page, conformance, collections, paged items, one item."""

import pytest
from sqlalchemy import text

from tests.integration.test_api_spatial import grid  # noqa: F401  (fixture)


def test_landing_page_and_conformance(client):
    landing = client.get("/ogc").json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert client.get(rels["service-desc"]["href"]).status_code == 200
    conformance = client.get(rels["conformance"]["href"]).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance


def test_collections_are_described_with_their_extent(client):
    collections = client.get("/ogc/collections").json()["collections"]
    ids = [c["id"] for c in collections]
    assert ids == ["poles", "regions", "departments", "arrondissements", "communes", "parcels", "bornes",
                   "localites"]
    communes = client.get("/ogc/collections/communes").json()
    minx, miny, maxx, maxy = communes["extent"]["spatial"]["bbox"][0]
    assert -17.6 < minx < -17.4 and 12.2 < miny < 12.4 and -11.5 < maxx < -11.2 and 16.6 < maxy < 16.8  # Senegal
    assert any(link["rel"] == "items" for link in communes["links"])
    assert client.get("/ogc/collections/nothing").status_code == 404


def _pages(client, url):
    seen, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "application/geo+json"
        body = response.json()
        assert body["numberReturned"] == len(body["features"])
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        pages += 1
    return seen, pages


def test_every_commune_once_through_the_next_links(client, db):
    total = db.execute(text("SELECT count(*) FROM commune")).scalar()
    seen, pages = _pages(client, "/ogc/collections/communes/items?limit=100")
    assert len(seen) == len(set(seen)) == total == 549 and pages == 6
    first = client.get("/ogc/collections/communes/items?limit=100").json()
    assert first["numberMatched"] == total
    second = client.get("/ogc/collections/communes/items?limit=100&offset=100").json()
    assert any(link["rel"] == "prev" for link in second["links"])


def test_limit_above_the_maximum_is_clamped(client):
    body = client.get("/ogc/collections/communes/items?limit=5000").json()
    assert body["numberReturned"] == 549  # all of them: the 5000 asked became the maximum, 1000
    next_link = [link["href"] for link in body["links"] if link["rel"] == "next"]
    assert next_link == []
    assert client.get("/ogc/collections/communes/items?limit=0").status_code == 400


def test_parcels_by_bbox_and_one_by_id(client, db, grid):  # noqa: F811
    from tests.integration.test_api_spatial import _lonlat

    x, y, squares = grid
    lo, hi = _lonlat(x + 10, y + 10), _lonlat(x + 40, y + 40)
    body = client.get(f"/ogc/collections/parcels/items?bbox={lo[0]},{lo[1]},{hi[0]},{hi[1]}&limit=3").json()
    assert "numberMatched" not in body  # not counted for parcels: the count would not be cheap
    seen, _ = _pages(client, f"/ogc/collections/parcels/items?bbox={lo[0]},{lo[1]},{hi[0]},{hi[1]}&limit=3")
    nicads = {f["properties"]["nicad"] for f in [
        client.get(f"/ogc/collections/parcels/items/{i}").json() for i in seen]}
    assert nicads == {"0104040100100", "0104040100101", "0104040100110", "0104040100111"}
    one = client.get(f"/ogc/collections/parcels/items/{seen[0]}")
    assert one.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    lon, lat = one.json()["geometry"]["coordinates"][0][0][0]
    assert -17.3 < lon < -17.1 and 14.6 < lat < 14.8  # CRS84: longitude first
    assert client.get("/ogc/collections/parcels/items/not-an-id").status_code == 404
    assert client.get("/ogc/collections/communes/items/SN0104-bargny").json()["properties"]["name"] == "Bargny"


@pytest.mark.parametrize("bbox", ["1,2,3", "10,10,5,5", "a,b,c,d", "-200,0,0,10"])
def test_bad_bbox_is_a_problem(client, bbox):
    response = client.get(f"/ogc/collections/communes/items?bbox={bbox}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


def test_part2_crs_output_and_bbox(client):
    bargny = "/ogc/collections/communes/items/SN0104-bargny"
    default = client.get(bargny)
    lon, lat = default.json()["geometry"]["coordinates"][0][0][0]
    latlon = client.get(f"{bargny}?crs={EPSG}4326")
    assert latlon.headers["content-crs"] == f"<{EPSG}4326>"
    assert latlon.json()["geometry"]["coordinates"][0][0][0] == [lat, lon]  # EPSG:4326: latitude first
    utm = client.get(f"{bargny}?crs={EPSG}32628").json()["geometry"]["coordinates"][0][0][0]
    assert 200_000 < utm[0] < 300_000 and 1_600_000 < utm[1] < 1_700_000
    mercator = client.get(f"{bargny}?crs={EPSG}3857").json()["geometry"]["coordinates"][0][0][0]
    assert -1_930_000 < mercator[0] < -1_910_000
    # The same box given as CRS84 (lon, lat) and as EPSG:4326 (lat, lon) selects the same communes.
    crs84 = client.get("/ogc/collections/communes/items?bbox=-17.3,14.6,-17.1,14.8&limit=100").json()
    epsg4326 = client.get(f"/ogc/collections/communes/items?bbox=14.6,-17.3,14.8,-17.1&bbox-crs={EPSG}4326"
                          f"&limit=100").json()
    assert [f["id"] for f in crs84["features"]] == [f["id"] for f in epsg4326["features"]]
    assert "SN0104-bargny" in [f["id"] for f in crs84["features"]]
    described = client.get("/ogc/collections/parcels").json()
    assert described["storageCrs"] == f"{EPSG}32628" and f"{EPSG}3857" in described["crs"]
    bad = client.get(f"{bargny}?crs={EPSG}2154")
    assert bad.status_code == 400 and bad.json()["type"] == "urn:sifc:problem:ogc.bad_crs"


def _ids(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.text
    return sorted(f["properties"]["nicad"] for f in response.json()["features"])


def test_part3_cql2_text_and_json_filters(client, grid):  # noqa: F811
    from urllib.parse import quote

    from tests.integration.test_api_spatial import _lonlat

    x, y, squares = grid
    base = "/ogc/collections/parcels/items?limit=100&filter="
    assert _ids(client, base + quote("nicad LIKE '01040401001%'")) == sorted(k for k in squares if k.startswith("01040401001"))
    assert _ids(client, base + quote("nicad IN ('0104040100201', '0104040100202')")) == ["0104040100201", "0104040100202"]
    assert _ids(client, base + quote("area_m2 BETWEEN 399 AND 401 AND nicad = '0104040100111'")) == ["0104040100111"]
    assert _ids(client, base + quote("land_use IS NULL AND NOT nicad LIKE '0104040100%'")) == []
    lon, lat = _lonlat(x + 30, y + 30)
    assert _ids(client, base + quote(f"S_INTERSECTS(geometry, POINT({lon} {lat}))")) == ["0104040100111"]
    # The same point in EPSG:4326 (latitude first) with filter-crs.
    crs = quote("http://www.opengis.net/def/crs/EPSG/0/4326")
    assert _ids(client, base + quote(f"S_INTERSECTS(geometry, POINT({lat} {lon}))") + f"&filter-crs={crs}") == [
        "0104040100111"]
    as_json = quote('{"op": "and", "args": [{"op": "=", "args": [{"property": "nicad"}, "0104040100201"]}, '
                    '{"op": ">", "args": [{"property": "area_m2"}, 100]}]}')
    assert _ids(client, base + as_json + "&filter-lang=cql2-json") == ["0104040100201"]
    schema = client.get("/ogc/collections/parcels/queryables").json()
    assert schema["properties"]["area_m2"]["type"] == "number" and "geometry" in schema["properties"]


@pytest.mark.parametrize("bad", [
    "nicad ==== 'x'",                 # does not parse
    "owner_name = 'x'",               # not a queryable (and personal data is never one)
    "area_m2 > 'beaucoup'",           # wrong type: refused, not a 500
    "S_INTERSECTS(nicad, POINT(0 0))",  # not a geometry
])
def test_bad_filters_are_problems_not_errors(client, bad):
    from urllib.parse import quote

    response = client.get(f"/ogc/collections/parcels/items?filter={quote(bad)}")
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_openapi_30_document_describes_limit_and_property_filters(client):
    from openapi_spec_validator import validate

    from sifc.ogc import COLLECTIONS, MAX_LIMIT

    landing = client.get("/ogc").json()
    desc = next(link for link in landing["links"] if link["rel"] == "service-desc")
    response = client.get(desc["href"])
    assert response.headers["content-type"] == desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.0.") and document["servers"][0]["url"].endswith("/ogc")
    limit = document["components"]["parameters"]["limit"]["schema"]  # where QGIS reads the maximum
    assert limit["maximum"] == MAX_LIMIT and limit["default"] == 10
    for spec in COLLECTIONS.values():
        parameters = document["paths"][f"/collections/{spec.id}/items"]["get"]["parameters"]
        names = {document["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]["name"] for p in parameters}
        assert {"limit", "bbox", "crs", "filter", "sortby", "properties"} <= names
        assert set(spec.sortables) <= names  # the property filters GDAL and QGIS send
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in client.get("/ogc/conformance").json()[
        "conformsTo"]


def test_properties_selects_what_is_returned(client, grid):  # noqa: F811
    body = client.get("/ogc/collections/parcels/items?limit=3&properties=nicad,area_m2").json()
    assert body["numberReturned"] == 3
    assert all(set(f["properties"]) == {"nicad", "area_m2"} for f in body["features"])
    assert all("properties=nicad%2Carea_m2" in link["href"] for link in body["links"])  # kept in the links
    one = body["features"][0]["id"]
    assert set(client.get(f"/ogc/collections/parcels/items/{one}?properties=land_use").json()["properties"]) == {
        "land_use"}
    assert client.get("/ogc/collections/parcels/items?limit=1&properties=").json()["features"][0]["properties"] == {}
    bad = client.get("/ogc/collections/parcels/items?properties=nicad,owner_name")
    assert bad.status_code == 400 and bad.json()["type"] == "urn:sifc:problem:ogc.bad_properties"
    assert "owner_name" in bad.json()["detail"]


def test_sortby_orders_and_pages_stably(client, db, grid):  # noqa: F811
    communes, _ = _pages(client, "/ogc/collections/communes/items?limit=100&sortby=-name")
    expected = [r[0] for r in db.execute(text("SELECT code FROM commune ORDER BY name DESC, code"))]
    assert communes == expected
    body = client.get("/ogc/collections/parcels/items?limit=1000&sortby=-area_m2,%2Bnicad").json()
    areas = [(f["properties"]["area_m2"], f["properties"]["nicad"]) for f in body["features"]]
    assert areas == sorted(areas, key=lambda a: (-a[0], a[1]))
    sortables = client.get("/ogc/collections/parcels/sortables").json()["properties"]
    assert "area_m2" in sortables and "geometry" not in sortables
    bad = client.get("/ogc/collections/parcels/items?sortby=geometry")
    assert bad.status_code == 400 and bad.json()["type"] == "urn:sifc:problem:ogc.bad_sortby"


def test_part1_property_filters_and_unknown_parameters(client, db, grid):  # noqa: F811
    _, _, squares = grid
    body = client.get("/ogc/collections/parcels/items?nicad=0104040100111").json()
    assert [f["properties"]["nicad"] for f in body["features"]] == ["0104040100111"]
    dakar = client.get("/ogc/collections/departments/items?region_code=SN01&limit=100").json()
    assert dakar["numberMatched"] == db.execute(text("SELECT count(*) FROM department WHERE region_code = 'SN01'")
                                                ).scalar() > 0
    assert all(f["properties"]["region_code"] == "SN01" for f in dakar["features"])
    unknown = client.get("/ogc/collections/parcels/items?colour=x")
    assert unknown.status_code == 400 and unknown.json()["type"] == "urn:sifc:problem:ogc.unknown_parameter"
    personal = client.get("/ogc/collections/parcels/items?proprietaire=x")  # a personal field (sifc/personal.py)
    assert personal.status_code == 400 and personal.json()["type"] == "urn:sifc:problem:personal.refused"
    not_a_number = client.get("/ogc/collections/parcels/items?area_m2=beaucoup")
    assert not_a_number.status_code == 400 and not_a_number.headers["content-type"] == "application/problem+json"


def test_cql2_distance_and_bbox_functions(client, grid):  # noqa: F811
    from urllib.parse import quote

    from tests.integration.test_api_spatial import _lonlat

    x, y, squares = grid
    base = "/ogc/collections/parcels/items?limit=100&filter="
    lon, lat = _lonlat(x + 30, y + 30)  # inside square (1, 1), 5 m from its lower left corner
    # Squares (0, 1) and (1, 0) are 10 m from the point, (0, 0) is √200 ≈ 14.1 m, the others 20 m.
    assert _ids(client, base + quote(f"S_DWITHIN(geometry, POINT({lon} {lat}), 3)")) == ["0104040100111"]
    near = _ids(client, base + quote(f"DWITHIN(geometry, POINT({lon} {lat}), 12, meters)"))
    assert near == ["0104040100101", "0104040100110", "0104040100111"]
    assert len(_ids(client, base + quote(f"S_DWITHIN(geometry, POINT({lon} {lat}), 14.5)"))) == 4
    as_json = quote('{"op": "s_dwithin", "args": [{"property": "geometry"}, '
                    f'{{"type": "Point", "coordinates": [{lon}, {lat}]}}, 3]}}')
    assert _ids(client, base + as_json + "&filter-lang=cql2-json") == ["0104040100111"]
    (lon0, lat0), (lon1, lat1) = _lonlat(x - 1, y - 1), _lonlat(x + 46, y + 21)
    within = _ids(client, base + quote(f"S_WITHIN(geometry, BBOX({lon0}, {lat0}, {lon1}, {lat1}))"))
    assert within == ["0104040100100", "0104040100101"]
    for bad in (f"S_DWITHIN(geometry, POINT({lon} {lat}), 50000)", f"S_DWITHIN(geometry, POINT({lon} {lat}), 3, feet)",
                "S_DWITHIN(nicad, POINT(0 0), 3)", "FOO(geometry) = true"):
        response = client.get(base + quote(bad))
        assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json", bad
    assert client.get("/ogc/functions").json()["functions"][0]["name"] == "S_DWITHIN"
