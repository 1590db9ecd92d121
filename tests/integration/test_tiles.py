"""Vector tiles: a decoded tile holds exactly the parcels that intersect it.

Parcels are laid around a corner of the z18 WebMercatorQuad grid inside Bargny, so that four tiles
share them; the expected content of each tile is computed here from morecantile's tile bounds, with
shapely on the squares transformed by pyproj, and checked against PostGIS as well.
"""

import mapbox_vector_tile
import morecantile
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, box
from sqlalchemy import text

from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.parcels import service
from sifc.parcels.service import ParcelInput
from sifc.tiles import PARCEL_FIELDS
from tests.integration.fixtures import bargny_origin, write

TMS = morecantile.tms.get("WebMercatorQuad")
UTM_TO_3857 = Transformer.from_crs(32628, 3857, always_xy=True)
MERCATOR_TO_UTM = Transformer.from_crs(3857, 32628, always_xy=True)
UTM_TO_WGS84 = Transformer.from_crs(32628, 4326, always_xy=True)
MVT = "application/vnd.mapbox-vector-tile"
Z = 18


def _mercator(geom):
    def xy(coords):
        x, y = UTM_TO_3857.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, xy)


@pytest.fixture
def corner(db, tmp_path):
    """6 × 6 squares of 20 m (5 m lanes) centred on a z18 tile corner, and an L-shaped parcel round the corner."""
    x0, y0 = bargny_origin(db)
    lon, lat = UTM_TO_WGS84.transform(x0, y0)
    tile = TMS.tile(lon, lat, Z)
    bounds = TMS.xy_bounds(tile)
    # The corner of this tile nearest to the origin.
    cx = bounds.left if abs(UTM_TO_3857.transform(x0, y0)[0] - bounds.left) < abs(
        UTM_TO_3857.transform(x0, y0)[0] - bounds.right) else bounds.right
    cy = bounds.bottom if abs(UTM_TO_3857.transform(x0, y0)[1] - bounds.bottom) < abs(
        UTM_TO_3857.transform(x0, y0)[1] - bounds.top) else bounds.top
    ux, uy = MERCATOR_TO_UTM.transform(cx, cy)
    squares = {}
    for r in range(6):
        for c in range(6):
            left, bottom = ux - 75 + c * 25 + 2.5, uy - 75 + r * 25 + 2.5
            squares[f"01040401009{r}{c}"] = box(left, bottom, left + 20, bottom + 20)
    # An L hugging the corner 1 m outside the north-west tile: its bounding box overlaps that tile, it does not.
    ell = [(cx - 10, cy - 2), (cx + 2, cy - 2), (cx + 2, cy + 10), (cx + 1, cy + 10), (cx + 1, cy - 1), (cx - 10, cy - 1)]
    squares["0104040100800"] = Polygon([MERCATOR_TO_UTM.transform(px, py) for px, py in ell])
    path = write(tmp_path, [{"NICAD": k, "USAGE": "habitation", "geometry": g} for k, g in squares.items()])
    report = import_parcels(db, path, ParcelImportOptions(author="test"))
    assert report.accepted == len(squares)
    tiles = [t for t in TMS.tiles(*TMS.lnglat(cx - 1, cy - 1), *TMS.lnglat(cx + 1, cy + 1), [Z])]
    assert len(tiles) == 4
    return squares, tiles, (cx, cy)


def _decode(response, layer="parcels"):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MVT
    decoded = mapbox_vector_tile.decode(response.content)
    assert list(decoded) == [layer]
    assert decoded[layer]["extent"] == 4096
    return decoded[layer]["features"]


def _url(tile, collection="parcels"):
    return f"/tiles/{collection}/{tile.z}/{tile.x}/{tile.y}.mvt"


def _expected(squares, tile):
    b = TMS.xy_bounds(tile)
    envelope = box(b.left, b.bottom, b.right, b.top)
    return {k for k, g in squares.items() if _mercator(g).intersects(envelope)}


def test_a_tile_holds_exactly_the_parcels_that_intersect_it(client, db, corner):
    squares, tiles, (cx, cy) = corner
    seen = set()
    for tile in tiles:
        features = _decode(client.get(_url(tile)))
        got = [f["properties"]["nicad"] for f in features]
        assert len(got) == len(set(got))
        expected = _expected(squares, tile)
        b = TMS.xy_bounds(tile)
        in_postgis = set(db.execute(text("""
            SELECT nicad FROM parcel WHERE nicad = ANY(:nicads)
            AND ST_Intersects(ST_Transform(geom, 3857), ST_MakeEnvelope(:l, :b, :r, :t, 3857))"""),
            {"nicads": list(squares), "l": b.left, "b": b.bottom, "r": b.right, "t": b.top}).scalars())
        assert set(got) == expected == in_postgis
        assert 0 < len(expected) < len(squares)
        seen |= set(got)
    assert seen == set(squares)
    # Inside the L's bounding box, but not touching the L: the north-west tile does not hold it.
    north_west = next(t for t in tiles if TMS.xy_bounds(t).right == pytest.approx(cx)
                      and TMS.xy_bounds(t).bottom == pytest.approx(cy))
    assert "0104040100800" not in {f["properties"]["nicad"] for f in _decode(client.get(_url(north_west)))}
    assert sum("0104040100800" in _expected(squares, t) for t in tiles) == 3


def test_decoded_geometry_is_the_parcel_in_tile_units(client, corner):
    squares, tiles, _ = corner
    tile = tiles[0]
    b = TMS.xy_bounds(tile)
    unit = (b.right - b.left) / 4096
    envelope = box(b.left, b.bottom, b.right, b.top)
    for feature in _decode(client.get(_url(tile))):
        square = _mercator(squares[feature["properties"]["nicad"]])
        if not envelope.contains(square):
            continue
        shape = shapely.geometry.shape(feature["geometry"])
        assert shape.area * unit**2 == pytest.approx(square.area, rel=0.01)
        # Tile coordinates (y up in the decoder's default) back to Web Mercator.
        minx, miny, _, _ = shape.bounds
        assert b.left + minx * unit == pytest.approx(square.bounds[0], abs=2 * unit)
        assert b.bottom + miny * unit == pytest.approx(square.bounds[1], abs=2 * unit)


def test_attribute_selection(client, corner):
    _, tiles, _ = corner
    features = _decode(client.get(_url(tiles[0]), params={"properties": "nicad,area_m2,land_use"}))
    assert features and all(set(f["properties"]) == {"nicad", "area_m2", "land_use"} for f in features)
    assert all(f["properties"]["area_m2"] == pytest.approx(400, rel=1e-3) for f in features
               if f["properties"]["nicad"] != "0104040100800")  # the L is not a 20 m square
    assert {f["properties"]["land_use"] for f in features} == {"habitation"}
    everything = _decode(client.get(_url(tiles[0])))
    assert {k for f in everything for k in f["properties"]} <= set(PARCEL_FIELDS)
    assert {"id", "nicad", "version", "valid_from"} <= set(everything[0]["properties"])
    bare = _decode(client.get(_url(tiles[0]), params={"properties": ""}))
    assert len(bare) == len(everything) and all(f["properties"] == {} for f in bare)


@pytest.mark.parametrize("names", ["nicad,colour", "geom_3857", "source_id"])
def test_unknown_attributes_are_refused(client, names):
    response = client.get("/tiles/parcels/16/0/0.mvt", params={"properties": names})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:sifc:problem:tiles.bad_properties"
    assert "Attributs inconnus" in body["detail"] and "nicad" in body["detail"]
    english = client.get("/tiles/parcels/16/0/0.mvt", params={"properties": names},
                         headers={"Accept-Language": "en"}).json()
    assert english["detail"].startswith("Unknown attributes")


@pytest.mark.parametrize("names", ["nicad,author", "created_by"])
def test_personal_names_are_refused(client, names):
    response = client.get("/tiles/parcels/16/0/0.mvt", params={"properties": names})
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:sifc:problem:personal.refused"


def test_empty_tile_and_below_minzoom_answer_204(client, corner):
    _, tiles, _ = corner
    ocean = client.get("/tiles/parcels/16/0/0.mvt")  # beyond Senegal: answered without a query
    assert ocean.status_code == 204 and ocean.content == b"" and "etag" in ocean.headers
    bush = TMS.tile(-14.5, 14.5, 16)  # in Senegal, no parcel there
    assert client.get(_url(bush)).status_code == 204
    assert client.get(_url(bush, "communes")).status_code == 200
    lon, lat = TMS.lnglat(*[(a + b) / 2 for a, b in zip(TMS.xy_bounds(tiles[0])[:2], TMS.xy_bounds(tiles[0])[2:],
                                                          strict=True)])
    low = TMS.tile(lon, lat, 13)
    assert client.get(_url(low)).status_code == 204  # parcels start at zoom 14
    assert _decode(client.get(_url(TMS.tile(lon, lat, 14))))


def test_etag_and_304(client, corner):
    _, tiles, _ = corner
    first = client.get(_url(tiles[0]))
    tag = first.headers["etag"]
    assert tag.startswith('"') and first.headers["cache-control"] == "public, max-age=300"
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = client.get(_url(tiles[0]), headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    changed = client.get(_url(tiles[0]), headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == first.content
    # Other attributes, other bytes, other validator.
    assert client.get(_url(tiles[0]), params={"properties": "nicad"}).headers["etag"] != tag


def test_a_new_version_replaces_the_old_one_in_tiles(client, db, corner):
    squares, tiles, _ = corner
    tile = next(t for t in tiles if "0104040100900" in _expected(squares, t))
    before = {f["properties"]["nicad"]: f["properties"] for f in _decode(client.get(_url(tile)))}
    parcel_id = before["0104040100900"]["id"]
    service.update(db, parcel_id=parcel_id, author="test",
                   data=ParcelInput(values={"land_use": "commerce"}, reason="changement d'usage"))
    after = [f["properties"] for f in _decode(client.get(_url(tile))) if f["properties"]["id"] == parcel_id]
    assert [(p["version"], p["land_use"]) for p in after] == [(2, "commerce")]


@pytest.mark.parametrize("path", ["/tiles/parcels/25/0/0.mvt", "/tiles/parcels/16/65536/0.mvt",
                                  "/tiles/parcels/16/0/65536.mvt", "/tiles/parcels/3/-1/0.mvt",
                                  "/tiles/parcels/-1/0/0.mvt"])
def test_tiles_outside_the_grid_are_404_problems(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:sifc:problem:tiles.out_of_matrix"
    assert "WebMercatorQuad" in body["detail"]


def test_malformed_indices_and_unknown_layers(client):
    response = client.get("/tiles/parcels/16/abc/0.mvt")
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    unknown = client.get("/tiles/holders/16/0/0.mvt")
    assert unknown.status_code == 404 and unknown.json()["type"] == "urn:sifc:problem:tiles.no_collection"
    assert client.get("/tiles/holders/tilejson.json").status_code == 404


def test_tilejson(client, corner):
    squares, _, _ = corner
    body = client.get("/tiles/parcels/tilejson.json").json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"] == ["http://testserver/tiles/parcels/{z}/{x}/{y}.mvt"]
    assert (body["minzoom"], body["maxzoom"]) == (14, 18)
    west, south, east, north = body["bounds"]
    for square in squares.values():
        lon, lat = UTM_TO_WGS84.transform(*square.centroid.coords[0])
        assert west <= lon <= east and south <= lat <= north
    (layer,) = body["vector_layers"]
    assert layer["id"] == "parcels" and set(layer["fields"]) == set(PARCEL_FIELDS)
    assert layer["fields"]["area_m2"] == "Number" and layer["fields"]["nicad"] == "String"
    chosen = client.get("/tiles/parcels/tilejson.json", params={"properties": "nicad,land_use"}).json()
    assert chosen["tiles"] == ["http://testserver/tiles/parcels/{z}/{x}/{y}.mvt?properties=nicad%2Cland_use"]
    assert list(chosen["vector_layers"][0]["fields"]) == ["nicad", "land_use"]
    communes = client.get("/tiles/communes/tilejson.json").json()
    assert communes["minzoom"] == 0 and -17.6 < communes["bounds"][0] < -17.4
    listing = client.get("/tiles").json()
    assert [layer["id"] for layer in listing["layers"]] == [
        "poles", "regions", "departments", "arrondissements", "communes", "parcels", "bornes"]


def test_territorial_layers_at_low_and_high_zoom(client, db):
    senegal = TMS.tile(-14.5, 14.5, 5)
    regions = _decode(client.get(_url(senegal, "regions"), params={"properties": "code,name"}), "regions")
    assert {f["properties"]["code"] for f in regions} == set(db.execute(text("SELECT code FROM region")).scalars())
    # Simplified for the zoom: a few thousand vertices instead of the regions' 158,000.
    vertices = sum(len(shapely.get_coordinates(shapely.geometry.shape(f["geometry"]))) for f in regions)
    assert vertices < 5000
    bargny = TMS.tile(-17.2283, 14.6933, 16)
    communes = _decode(client.get(_url(bargny, "communes")), "communes")
    assert [f["properties"]["code"] for f in communes] == ["SN0104-bargny"]
    assert communes[0]["properties"]["department_code"] == "SN0104"
    for zoom in (3, 8, 10, 12):
        tile = TMS.tile(-17.2283, 14.6933, zoom)
        codes = {f["properties"]["code"] for f in _decode(client.get(_url(tile, "communes")), "communes")}
        assert "SN0104-bargny" in codes
