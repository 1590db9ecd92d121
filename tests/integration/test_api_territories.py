"""The HTTP API over the territorial reference."""

import pytest

from sifc.text import search_form

PILOTS = [
    # (lon, lat, pole, region, department, commune)
    (-17.2283, 14.6933, "Dakar", "Dakar", "Rufisque", "Bargny"),
    (-16.78, 14.43, "Thiès", "Thiès", "Mbour", "Sandiara"),
    (-16.96, 14.93, "Thiès", "Thiès", "Tivaouane", "Mont-Rolland"),
    (-15.88, 14.85, "Diourbel-Louga", "Diourbel", "Mbacké", "Touba"),
    (-12.18, 12.55, "Sud-Est", "Kédougou", "Kédougou", None),
]


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and search_form(a) == search_form(b)


@pytest.mark.parametrize(("lon", "lat", "pole", "region", "department", "commune"), PILOTS)
def test_locate_answers_the_whole_hierarchy(client, lon, lat, pole, region, department, commune):
    response = client.get("/locate", params={"lon": lon, "lat": lat})
    assert response.status_code == 200, response.text
    body = response.json()
    assert same(body["pole"]["name"], pole)
    assert same(body["region"]["name"], region)
    assert same(body["department"]["name"], department)
    assert body["commune"] is not None
    if commune == "Touba":
        assert search_form(body["commune"]["name"]).startswith("touba")
    elif commune:
        assert same(body["commune"]["name"], commune)
    assert body["commune"]["boundary_status"] == "provisional"
    assert body["provisional"] is True
    assert body["region"]["boundary_status"] == "official"
    assert body["department"]["collectivite_territoriale"] is True
    assert body["region"]["collectivite_territoriale"] is False
    assert body["arrondissement"] is not None
    assert body["reasons"] == []


def test_locate_bargny_codes(client):
    body = client.get("/locate?lon=-17.2283&lat=14.6933").json()
    assert body["commune"]["code"] == "SN0104-bargny"
    assert body["department"]["code"] == "SN0104"
    assert body["region"]["code"] == "SN01"
    assert body["pole"]["code"] == "DKR"
    assert body["arrondissement"] == {"code": "SN010404", "name": None,
                                      "boundary_status": "official",
                                      "collectivite_territoriale": False}


@pytest.mark.parametrize(("lon", "lat"), [(-30.0, 14.0), (2.35, 48.85), (-17.6, 14.6)])
def test_locate_outside_senegal_is_404_problem(client, lon, lat):
    response = client.get("/locate", params={"lon": lon, "lat": lat})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 404 and body["type"] == "urn:sifc:problem:locate.outside_senegal"
    assert "hors du Sénégal" in body["detail"]


@pytest.mark.parametrize("params", [
    {"lon": -17, "lat": 100}, {"lon": -200, "lat": 14}, {"lon": "abc", "lat": 14}, {"lon": -17},
])
def test_locate_rejects_bad_coordinates_with_422(client, params):
    response = client.get("/locate", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["errors"] and all(e["message"] for e in body["errors"])


def test_problems_speak_english_on_request(client):
    response = client.get("/locate?lon=-30&lat=14", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "outside Senegal" in response.json()["detail"]
    assert response.headers["content-language"] == "en"
    french = client.get("/locate?lon=-17&lat=100").json()
    assert "inférieur ou égal à 90" in french["detail"]


def test_health_reports_versions(client):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["database"].startswith("PostgreSQL 15")
    assert body["postgis"].startswith("PostGIS 3")
    assert body["reference_loaded"] is True


@pytest.mark.parametrize(("path", "count"), [
    ("/poles", 8), ("/regions", 14), ("/departments", 46), ("/arrondissements", 125),
])
def test_lists_are_geojson_feature_collections(client, path, count):
    response = client.get(path, params={"limit": 1000})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == count == body["numberReturned"] == len(body["features"])
    feature = body["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    lon, lat = feature["geometry"]["coordinates"][0][0][0]
    assert -18 < lon < -11 and 12 < lat < 17


def test_communes_page_and_skip_geometry(client):
    body = client.get("/communes", params={"geometry": "false", "limit": 50, "offset": 500}).json()
    assert body["numberMatched"] == 549 and body["numberReturned"] == 49
    assert all(f["geometry"] is None for f in body["features"])


def test_simplified_geometry_has_fewer_vertices(client):
    full = client.get("/regions/SN13").json()
    light = client.get("/regions/SN13", params={"simplify": 500}).json()

    def vertices(feature):
        return sum(len(ring) for polygon in feature["geometry"]["coordinates"] for ring in polygon)

    assert vertices(light) < vertices(full) / 5


def test_utm_output_on_request(client):
    feature = client.get("/communes/SN0104-bargny", params={"crs": "EPSG:32628"}).json()
    x, y = feature["geometry"]["coordinates"][0][0][0]
    assert 250_000 < x < 300_000 and 1_600_000 < y < 1_650_000


@pytest.mark.parametrize("q", ["mont rolland", "MONT-ROLLAND", "Mont Roland", "mont-rolland"])
def test_commune_search_ignores_accents_case_hyphens_and_knows_aliases(client, q):
    body = client.get("/communes", params={"q": q, "geometry": "false"}).json()
    assert [f["id"] for f in body["features"]] == ["SN1303-mont-rolland"]


def test_search_by_name_fragment_with_accents(client):
    body = client.get("/regions", params={"q": "THIES", "geometry": "false"}).json()
    assert [f["properties"]["name"] for f in body["features"]] == ["Thiès"]


def test_children_of_each_level(client):
    assert {f["id"] for f in client.get("/poles/THS/children").json()["features"]} == {"SN13"}
    departments = client.get("/regions/SN01/children", params={"geometry": "false"}).json()
    assert {f["id"] for f in departments["features"]} == {"SN0101", "SN0102", "SN0103", "SN0104", "SN0105"}
    arrondissements = client.get("/departments/SN0104/children", params={"geometry": "false"}).json()
    assert {f["id"] for f in arrondissements["features"]} == {"SN010401", "SN010402", "SN010403", "SN010404"}
    communes = client.get("/communes", params={"department": "SN0104", "geometry": "false"}).json()
    assert "SN0104-bargny" in {f["id"] for f in communes["features"]}
    assert all(f["properties"]["department_code"] == "SN0104" for f in communes["features"])
    arr = client.get("/arrondissements/SN010404/children", params={"geometry": "false"}).json()
    assert "SN0104-bargny" in {f["id"] for f in arr["features"]}


def test_communes_have_no_children(client):
    response = client.get("/communes/SN0104-bargny/children")
    assert response.status_code == 404  # no such route: communes are the last level
    assert response.json()["type"] == "urn:sifc:problem:http.not_found"
    assert response.headers["content-type"] == "application/problem+json"


def test_unknown_code_is_a_404_problem(client):
    response = client.get("/communes/SN0104-nowhere")
    assert response.status_code == 404
    body = response.json()
    assert body["detail"] == "Aucun(e) commune avec le code « SN0104-nowhere »."
    assert client.get("/regions/SN99/children").status_code == 404


def test_filter_not_applicable_to_level_is_refused(client):
    response = client.get("/poles", params={"department": "SN0104"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_unknown_route_is_a_problem(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_commune_properties(client):
    properties = client.get("/communes/SN1303-mont-rolland").json()["properties"]
    assert properties["name"] == "Mont-Rolland"
    assert properties["boundary_status"] == "provisional"
    assert properties["collectivite_territoriale"] is True
    assert properties["department_code"] == "SN1303"
    assert properties["region_code"] == "SN13"
    assert "Mont Roland" in properties["aliases"]
    assert 150 < properties["area_km2"] < 220


def test_openapi_documents_the_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/locate", "/health", "/communes", "/communes/{code}", "/poles/{code}/children"):
        assert path in paths
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("path", [
    "/communes?offset=99999999999999999999", "/communes/%00", "/parcels/by-nicad/%00", "/communes?q=a%00b",
])
def test_hostile_inputs_are_problems_not_500(client, path):
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
