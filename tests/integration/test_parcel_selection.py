"""One selection of current parcels: OGC items, an export and a tile give the same parcels for one place and filter.

A grid of 20 m squares is laid over a z18 WebMercatorQuad tile of Bargny, wider than the tile, so
that squares lie inside it, across its edges and outside it (none within a metre of an edge, where
a box given in longitude-latitude and the tile's own envelope could disagree by rounding). The
tile's bounds are asked of the OGC items (CRS84 bbox), of an export (EPSG:4326 bbox) and read
as the tile itself; then the same land-use filter is given to each.
"""

from __future__ import annotations

import json

import mapbox_vector_tile
import morecantile
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from sifc import exports, ogc, tiles
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.parcels import selection
from tests.integration.fixtures import bargny_origin, square, write

TMS = morecantile.tms.get("WebMercatorQuad")
UTM_TO_WGS84 = Transformer.from_crs(32628, 4326, always_xy=True)
UTM_TO_3857 = Transformer.from_crs(32628, 3857, always_xy=True)
Z = 18


@pytest.fixture
def grid(db, tmp_path):
    """The squares by NICAD (with their land use) and the z18 tile they are laid over."""
    x0, y0 = bargny_origin(db)
    tile = TMS.tile(*UTM_TO_WGS84.transform(x0, y0), Z)
    b = TMS.xy_bounds(tile)
    envelope = box(b.left, b.bottom, b.right, b.top)
    rows = []
    for i in range(100):
        shape = square(x0 - 200 + (i % 10) * 40, y0 - 200 + (i // 10) * 40)
        mercator = shapely.transform(shape, lambda xy: np.column_stack(UTM_TO_3857.transform(xy[:, 0], xy[:, 1])))
        if not (mercator.distance(envelope) > 1 or mercator.intersects(envelope.buffer(-1))):
            continue  # too near an edge to say which side it is on after rounding
        rows.append({"NICAD": f"0141000020{i:06d}", "USAGE": "habitation" if i % 3 else "commerce",
                     "inside": mercator.intersects(envelope), "geometry": shape})
    report = import_parcels(db, write(tmp_path, [{k: v for k, v in r.items() if k != "inside"} for r in rows]),
                            ParcelImportOptions(commune="Bargny", author="test"))
    assert report.accepted == len(rows), report.as_dict()
    expected = {r["NICAD"]: r["USAGE"] for r in rows if r["inside"]}
    assert 4 < len(expected) < len(rows)
    return expected, tile


def _items(client, bbox: str, **params) -> set[str]:
    response = client.get("/ogc/collections/parcels/items", params={"bbox": bbox, "limit": 1000, **params})
    assert response.status_code == 200, response.text
    return {f["properties"]["nicad"] for f in response.json()["features"]}


def _exported(db, bbox: str, **filters) -> set[str]:
    chosen = exports.select(db, bbox=bbox, bbox_crs="EPSG:4326", **filters)
    body = json.loads(b"".join(exports.iter_geojson(db, chosen)))
    return {f["properties"]["nicad"] for f in body["features"]}


def _tiled(client, tile, land_use: str | None = None) -> set[str]:
    response = client.get(f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt", params={"properties": "nicad,land_use"})
    assert response.status_code == 200
    features = mapbox_vector_tile.decode(response.content)["parcels"]["features"]
    return {f["properties"]["nicad"] for f in features if land_use in (None, f["properties"]["land_use"])}


def test_items_an_export_and_a_tile_hold_the_same_parcels(client, db, grid):
    expected, tile = grid
    west, south, east, north = TMS.bounds(tile)
    bbox = f"{west!r},{south!r},{east!r},{north!r}"
    assert _items(client, bbox) == _exported(db, bbox) == _tiled(client, tile) == set(expected)
    assert _exported(db, bbox, commune="Bargny") == set(expected)
    # One filter, as a CQL2 filter (items, export) and as the attribute the tile carries.
    shops = {nicad for nicad, use in expected.items() if use == "commerce"}
    assert shops
    cql = "land_use = 'commerce'"
    assert _items(client, bbox, filter=cql) == _exported(db, bbox, cql=cql) == _tiled(client, tile, "commerce") == shops
    assert _items(client, bbox, land_use="commerce") == shops


def test_every_face_reads_the_selection():
    # The rows, the public attributes and the filters are the selection's: the faces add their own output.
    assert ogc.COLLECTIONS["parcels"].table == tiles.LAYERS["parcels"].table == selection.CURRENT
    assert ogc.COLLECTIONS["parcels"].fields is selection.FIELDS
    assert ogc.COLLECTIONS["parcels"].queryables is selection.QUERYABLES
    assert list(tiles.PARCEL_FIELDS) == list(selection.FIELDS)
    statement = tiles.tile_statement("parcels", z=16, x=29631, y=30063, names=())
    assert statement is not None and selection.select(envelope="e.env").where in statement.sql
    assert exports.Selection is selection.Selection


def test_the_selection_binds_every_value():
    everything = selection.select()
    assert (everything.where, everything.params, everything.commune) == ("TRUE", {}, None)
    chosen = selection.select(bbox=(1.0, 2.0, 3.0, 4.0, 4326), equals={"land_use": "x'); DROP TABLE parcel; --"},
                              commune="SN0104-bargny")
    assert "DROP" not in chosen.where and "SN0104" not in chosen.where
    assert chosen.params["selection_commune"] == "SN0104-bargny" and chosen.commune == "SN0104-bargny"
    assert {"x0", "y0", "x1", "y1", "bbox_srid", "eq0"} <= set(chosen.params)
