"""Spatial questions about current parcels, on a small synthetic grid inside Bargny; expected answers
are computed here with shapely from the same squares, not read back from the service."""

import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.integration.fixtures import bargny_origin, write

TO_WGS84 = Transformer.from_crs(32628, 4326, always_xy=True)


@pytest.fixture
def grid(db, tmp_path):
    """3 × 3 squares of 20 m along 5 m lanes, NICAD 01040401001rc (row, column)."""
    x, y = bargny_origin(db)
    squares = {f"01040401001{r}{c}": box(x + c * 25, y + r * 25, x + c * 25 + 20, y + r * 25 + 20)
               for r in range(3) for c in range(3)}
    # Two touching parcels at the side (sharing an edge).
    squares["0104040100201"] = box(x + 100, y, x + 120, y + 20)
    squares["0104040100202"] = box(x + 120, y, x + 140, y + 20)
    path = write(tmp_path, [{"NICAD": k, "geometry": g} for k, g in squares.items()])
    report = import_parcels(db, path, ParcelImportOptions(author="test"))
    assert report.accepted == len(squares)
    return x, y, squares


def _lonlat(x, y):
    return TO_WGS84.transform(x, y)


def _nicads(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["numberReturned"] == len(body["features"])
    return [f["properties"]["nicad"] for f in body["features"]]


def test_parcel_at_a_point(client, grid):
    x, y, _ = grid
    lon, lat = _lonlat(x + 30, y + 30)  # inside square (1, 1)
    assert _nicads(client.get(f"/parcels/at?lon={lon}&lat={lat}")) == ["0104040100111"]
    lon, lat = _lonlat(x + 22, y + 10)  # in the lane
    assert _nicads(client.get(f"/parcels/at?lon={lon}&lat={lat}")) == []


def test_parcels_in_a_bbox_both_crs_and_paged(client, grid):
    x, y, squares = grid
    query = box(x + 10, y + 10, x + 40, y + 40)
    expected = sorted(k for k, g in squares.items() if g.intersects(query))
    utm = f"{x + 10},{y + 10},{x + 40},{y + 40}"
    got = _nicads(client.get(f"/parcels/in-bbox?bbox={utm}&bbox-crs=EPSG:32628&crs=EPSG:32628"))
    assert sorted(got) == expected == ["0104040100100", "0104040100101", "0104040100110", "0104040100111"]
    lo = _lonlat(x + 10, y + 10)
    hi = _lonlat(x + 40, y + 40)
    assert sorted(_nicads(client.get(f"/parcels/in-bbox?bbox={lo[0]},{lo[1]},{hi[0]},{hi[1]}"))) == expected
    pages = [_nicads(client.get(f"/parcels/in-bbox?bbox={utm}&bbox-crs=EPSG:32628&limit=3&offset={o}"))
             for o in (0, 3)]
    assert [len(p) for p in pages] == [3, 1] and sorted(pages[0] + pages[1]) == expected


def test_parcels_intersecting_a_posted_geometry(client, grid):
    x, y, squares = grid
    line = shapely.LineString([(x - 5, y + 10), (x + 80, y + 60)])
    expected = sorted(k for k, g in squares.items() if g.intersects(line))
    body = shapely.geometry.mapping(line)
    got = _nicads(client.post("/parcels/intersecting?geometry-crs=EPSG:32628", json=body))
    assert sorted(got) == expected and len(expected) >= 3


def test_parcels_near_a_point_and_k_nearest(client, grid):
    x, y, squares = grid
    point = shapely.Point(x + 10, y + 10)  # centre of square (0, 0)
    lon, lat = _lonlat(point.x, point.y)
    distances = {k: g.distance(point) for k, g in squares.items()}
    near = client.get(f"/parcels/near?lon={lon}&lat={lat}&distance=20").json()
    got = [(f["properties"]["nicad"], f["properties"]["distance_m"]) for f in near["features"]]
    assert [k for k, _ in got] == sorted((k for k, d in distances.items() if d <= 20), key=lambda k: (distances[k], k))
    assert all(abs(d - distances[k]) < 0.05 for k, d in got)  # WGS 84 round trip: centimetres
    nearest = client.get(f"/parcels/nearest?lon={lon}&lat={lat}&k=3").json()["features"]
    assert [f["properties"]["nicad"] for f in nearest][0] == "0104040100100"
    assert sorted(f["properties"]["distance_m"] for f in nearest) == sorted(sorted(distances.values())[:3])


def test_neighbours_touching_or_within_a_distance(client, db, grid):
    from sqlalchemy import text

    pid = db.execute(text("SELECT parcel_id FROM parcel WHERE nicad = '0104040100201'")).scalar()
    assert _nicads(client.get(f"/parcels/{pid}/neighbours")) == ["0104040100202"]
    centre = db.execute(text("SELECT parcel_id FROM parcel WHERE nicad = '0104040100111'")).scalar()
    assert _nicads(client.get(f"/parcels/{centre}/neighbours")) == []  # lanes between squares
    assert len(_nicads(client.get(f"/parcels/{centre}/neighbours?distance=5"))) == 4  # the 4 across the lanes
    assert len(_nicads(client.get(f"/parcels/{centre}/neighbours?distance=7.1"))) == 8  # and the corners


@pytest.mark.parametrize(("url", "key"), [
    ("/parcels/at?lon=200&lat=14", "http.validation"),
    ("/parcels/in-bbox?bbox=1,2,3", "spatial.bad_bbox"),
    ("/parcels/in-bbox?bbox=-17,15,-18,14", "spatial.bad_bbox"),
    ("/parcels/in-bbox?bbox=-17.5,14,-16,15", "spatial.area_too_large"),
    ("/parcels/in-bbox?bbox=a,b,c,d", "spatial.bad_bbox"),
    ("/parcels/near?lon=-17&lat=14&distance=1e9", "http.validation"),
    ("/parcels/nearest?lon=-17&lat=14&k=0", "http.validation"),
    ("/parcels/not-a-uuid/neighbours", "parcel.not_found"),
])
def test_bad_questions_get_a_specific_problem(client, url, key):
    response = client.get(url)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:sifc:problem:{key}"


def test_posted_geometries_are_bounded(client, grid):
    x, y, _ = grid
    ring = [(x + i * 0.001, y) for i in range(12_000)] + [(x, y + 1), (x, y)]
    too_many = shapely.geometry.mapping(shapely.Polygon(ring))
    response = client.post("/parcels/intersecting?geometry-crs=EPSG:32628", json=too_many)
    assert response.status_code == 422 and response.json()["type"] == "urn:sifc:problem:spatial.too_many_vertices"
    huge = shapely.geometry.mapping(box(-17.5, 12.5, -12, 16.5))
    response = client.post("/parcels/intersecting", json=huge)
    assert response.json()["type"] == "urn:sifc:problem:spatial.area_too_large"
    response = client.post("/parcels/intersecting", json={"type": "Point", "coordinates": [500, 14]})
    assert response.status_code == 422


def _import(db, tmp_path, rows, name):
    path = write(tmp_path, rows, name=name)
    return import_parcels(db, path, ParcelImportOptions(author="test", overlap_tolerance_m2=1e9,
                                                        overlap_tolerance_ratio=1.0, commune="SN0104-bargny",
                                                        outside_tolerance_m2=1e9, outside_tolerance_ratio=1.0))


def test_quality_questions_overlaps_boundary_and_gaps(client, db, tmp_path):
    x, y = bargny_origin(db)
    rows = [
        {"NICAD": "0104040100301", "geometry": box(x, y, x + 20, y + 20)},
        {"NICAD": "0104040100302", "geometry": box(x + 15, y, x + 35, y + 20)},      # overlaps 301 by 5 × 20
        {"NICAD": "0104040100303", "geometry": box(x + 35.3, y, x + 55, y + 20)},    # 0.3 m gap after 302
        {"NICAD": "0104040100304", "geometry": box(x + 55, y, x + 75, y + 20)},      # touches 303
    ]
    # Imported with tolerances wide open, as legacy data arrives: the questions find what is wrong.
    assert _import(db, tmp_path, rows, "qualite.gpkg").accepted == 4
    overlaps = client.get("/communes/SN0104-bargny/overlaps?crs=EPSG:32628").json()["features"]
    assert [(f["properties"]["nicad_a"], f["properties"]["nicad_b"]) in
            [("0104040100301", "0104040100302"), ("0104040100302", "0104040100301")] for f in overlaps] == [True]
    assert overlaps[0]["properties"]["area_m2"] == pytest.approx(100)
    assert shapely.geometry.shape(overlaps[0]["geometry"]).area == pytest.approx(100, rel=1e-6)

    gaps = client.get("/communes/SN0104-bargny/gaps?width=0.5&crs=EPSG:32628").json()["features"]
    assert len(gaps) == 1 and gaps[0]["properties"]["area_m2"] == pytest.approx(0.3 * 20, rel=1e-3)
    assert client.get("/communes/SN0104-bargny/gaps?width=0.2").json()["features"] == []
    assert client.get("/communes/SN0104-bargny/gaps?width=50").status_code == 422

    assert client.get("/communes/SN0104-bargny/boundary-issues").json()["features"] == []
    assert client.get("/communes/SN9999-nulle-part/overlaps").status_code == 404


def test_statistics_per_commune_department_and_pole(client, db, tmp_path, grid):
    x, y, squares = grid
    stats = client.get("/stats/commune/SN0104-bargny").json()
    assert stats["parcels"] == len(squares) and stats["with_nicad"] == len(squares)
    assert stats["total_area_m2"] == pytest.approx(sum(g.area for g in squares.values()), rel=1e-6)
    assert stats["mean_area_m2"] == pytest.approx(400) and stats["share_with_nicad"] == 1
    assert stats["by_land_use"] == [{"value": None, "parcels": len(squares), "area_m2": stats["total_area_m2"]}]
    department = client.get("/stats/department/SN0104").json()
    pole = client.get("/stats/pole/DKR").json()
    assert department["parcels"] == pole["parcels"] == len(squares)
    assert client.get("/stats/pole/NOPE").status_code == 404
    assert client.get("/stats/region/SN01").status_code == 422
