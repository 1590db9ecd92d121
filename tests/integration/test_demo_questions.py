"""The spatial and quality questions on the demo cadastre, against answers computed here with shapely."""

import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from sifc.demo import PILOTS, load_demo

TO_WGS84 = Transformer.from_crs(32628, 4326, always_xy=True)


@pytest.fixture
def demo(db):
    assert load_demo(db) is not None
    rows = db.execute(text("SELECT parcel_id::text, nicad, commune_code, land_use, tenure_regime, ST_AsBinary(geom) "
                           "FROM parcel")).all()
    return {r[0]: {"nicad": r[1], "commune": r[2], "land_use": r[3], "tenure": r[4],
                   "geom": shapely.from_wkb(bytes(r[5]))} for r in rows}


def _ids(response):
    assert response.status_code == 200, response.text
    return sorted(f["id"] for f in response.json()["features"])


def test_statistics_of_the_pilot_communes(client, demo):
    for code in PILOTS:
        mine = [p for p in demo.values() if p["commune"] == code]
        stats = client.get(f"/stats/commune/{code}").json()
        assert stats["parcels"] == len(mine) > 0
        assert stats["total_area_m2"] == pytest.approx(sum(p["geom"].area for p in mine), rel=1e-6)
        assert stats["with_nicad"] == sum(p["nicad"] is not None for p in mine)
        by_use = {row["value"]: row["parcels"] for row in stats["by_land_use"]}
        assert by_use == {use: sum(p["land_use"] == use for p in mine) for use in {p["land_use"] for p in mine}}
        by_tenure = {row["value"]: row["parcels"] for row in stats["by_tenure_regime"]}
        assert sum(by_tenure.values()) == len(mine)
    # Bargny is in the Dakar pole; Sandiara and Mont-Rolland in Thiès's (department SN13xx codes).
    assert client.get("/stats/pole/DKR").json()["parcels"] == sum(p["commune"] == "SN0104-bargny"
                                                                   for p in demo.values())


def test_the_demo_cadastre_is_clean(client):
    for code in PILOTS:
        assert client.get(f"/communes/{code}/overlaps").json()["features"] == []
        assert client.get(f"/communes/{code}/boundary-issues").json()["features"] == []
        # Parcels share their edges inside a block; blocks are 8 m apart: no sliver under 1 m.
        assert client.get(f"/communes/{code}/gaps?width=1").json()["features"] == []


def test_point_bbox_distance_and_neighbour_questions(client, demo):
    some = sorted(demo)[len(demo) // 2]
    parcel = demo[some]["geom"]
    inside = parcel.point_on_surface()
    lon, lat = TO_WGS84.transform(inside.x, inside.y)
    assert _ids(client.get(f"/parcels/at?lon={lon}&lat={lat}")) == [some]

    point = shapely.Point(inside.x, inside.y)
    within = sorted(pid for pid, p in demo.items() if p["geom"].distance(point) <= 31.3)
    assert _ids(client.get(f"/parcels/near?lon={lon}&lat={lat}&distance=31.3&limit=1000")) == within
    by_distance = sorted(demo, key=lambda pid: (demo[pid]["geom"].distance(point), pid))
    nearest = client.get(f"/parcels/nearest?lon={lon}&lat={lat}&k=5").json()["features"]
    distances = [f["properties"]["distance_m"] for f in nearest]
    assert distances == sorted(distances)
    assert distances == pytest.approx([demo[pid]["geom"].distance(point) for pid in by_distance[:5]], abs=0.01)

    touching = sorted(pid for pid, p in demo.items() if pid != some and p["geom"].intersects(parcel))
    assert _ids(client.get(f"/parcels/{some}/neighbours?limit=1000")) == touching
    near = sorted(pid for pid, p in demo.items() if pid != some and p["geom"].distance(parcel) <= 10)
    assert _ids(client.get(f"/parcels/{some}/neighbours?distance=10&limit=1000")) == near

    x0, y0, x1, y1 = parcel.buffer(40).bounds
    in_box = sorted(pid for pid, p in demo.items() if p["geom"].intersects(shapely.box(x0, y0, x1, y1)))
    got = _ids(client.get(f"/parcels/in-bbox?bbox={x0},{y0},{x1},{y1}&bbox-crs=EPSG:32628&limit=1000"))
    assert got == in_box and len(got) > 5

    ring = shapely.Point(inside.x, inside.y).buffer(25, quad_segs=4)
    crossing = sorted(pid for pid, p in demo.items() if p["geom"].intersects(ring))
    body = shapely.geometry.mapping(ring)
    assert _ids(client.post("/parcels/intersecting?geometry-crs=EPSG:32628&limit=1000", json=body)) == crossing
