"""GET /parcels/at: the fast path (api.fast_path) answers exactly as FastAPI's route, and only plain queries.

Each plain query is asked twice: as it is (the fast path) and with one more, unknown parameter
(``&_=1``: FastAPI's route, which ignores it); status, headers and bytes must be the same. The point
inside the domain is transformed directly instead of clipped first (sifc.parcels.spatial): the same
parcels either way, checked here on the same points.
"""

from __future__ import annotations

import json

import pytest
from pyproj import Transformer
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError

import api.routers.spatial as spatial_routes
from api.deps import get_reader
from sifc.crs import DOMAIN_4326
from sifc.db import Statement
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.parcels import spatial
from tests.integration.fixtures import bargny_origin, write

TO_WGS84 = Transformer.from_crs(32628, 4326, always_xy=True)
# Where, in a 2 × 2 grid of 20 m squares 5 m apart (offsets in metres from its corner), a point falls.
PLACES = {"inside": (30.0, 30.0), "lane": (22.0, 10.0), "edge": (25.0, 10.0), "corner": (45.0, 45.0),
          "outside the grid": (300.0, 300.0)}
CRS = ["", "&crs=EPSG:4326", "&crs=EPSG:32628", "&crs=EPSG%3A32628"]


@pytest.fixture
def grid(db, tmp_path):
    x, y = bargny_origin(db)
    squares = {f"01040401003{r}{c}": box(x + c * 25, y + r * 25, x + c * 25 + 20, y + r * 25 + 20)
               for r in range(2) for c in range(2)}
    report = import_parcels(db, write(tmp_path, [{"NICAD": k, "geometry": g} for k, g in squares.items()]),
                            ParcelImportOptions(author="test"))
    assert report.accepted == len(squares)
    return x, y


@pytest.fixture
def fast_calls(monkeypatch):
    """The fast path's calls of the route's function (FastAPI calls the function it registered, not this one)."""
    calls: list[tuple] = []
    route = spatial_routes.parcels_at

    async def counted(*args):
        calls.append(args)
        return await route(*args)

    monkeypatch.setattr(spatial_routes, "parcels_at", counted)
    return calls


def _same(first, second) -> None:
    assert (first.status_code, first.content) == (second.status_code, second.content)
    assert first.headers.items() == second.headers.items()


@pytest.mark.parametrize("crs", CRS)
@pytest.mark.parametrize("place", PLACES)
def test_plain_queries_answer_as_the_route(client, grid, fast_calls, place, crs):
    x, y = grid
    lon, lat = TO_WGS84.transform(x + PLACES[place][0], y + PLACES[place][1])
    query = f"/parcels/at?lon={lon!r}&lat={lat!r}{crs}"
    fast = client.get(query)
    assert len(fast_calls) == 1
    routed = client.get(query + "&_=1")
    assert len(fast_calls) == 1  # FastAPI's route answered the second
    _same(fast, routed)
    assert fast.status_code == 200
    assert fast.headers["content-type"] == "application/geo+json"
    assert fast.headers["x-content-type-options"] == "nosniff"  # the middleware still applies
    found = [f["properties"]["nicad"] for f in fast.json()["features"]]
    if place in ("inside", "lane", "outside the grid"):  # on an edge or a corner, after rounding: either
        assert len(found) == (place == "inside")


@pytest.mark.parametrize("query", ["lon=200&lat=14", "lon=-17.2", "lon=abc&lat=14", "lon=1e1&lat=14",
                                   "lon=-17.2&lat=14&lat=15", "lon=-17.2&lat=14&crs=EPSG:3857"])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_other_queries_go_through_fastapi(client, fast_calls, query, lang):
    response = client.get(f"/parcels/at?{query}", headers={"Accept-Language": lang})
    assert not fast_calls
    if query == "lon=1e1&lat=14" or query == "lon=-17.2&lat=14&lat=15":  # valid for FastAPI: its answer
        assert response.status_code == 200
        return
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["content-language"] == lang
    assert response.json()["detail"].startswith("The request" if lang == "en" else "La requête")


class FailingReader:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def row(self, statement: Statement) -> tuple:
        raise self.error


@pytest.mark.parametrize(("error", "status"), [
    (OperationalError("SELECT", {}, Exception("server closed the connection")), 503),
    (DataError("SELECT", {}, Exception("bad value")), 400),
])
@pytest.mark.parametrize("lang", ["fr", "en"])
def test_database_failures_answer_as_the_route(client, fast_calls, error, status, lang):
    client.app.dependency_overrides[get_reader] = lambda: FailingReader(error)
    query = "/parcels/at?lon=-17.2283&lat=14.6933"
    fast = client.get(query, headers={"Accept-Language": lang})
    routed = client.get(query + "&_=1", headers={"Accept-Language": lang})
    assert len(fast_calls) == 1
    _same(fast, routed)
    assert fast.status_code == status
    assert fast.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("place", PLACES)
def test_direct_point_finds_what_the_clipped_point_finds(db, grid, place):
    """Inside the domain, transforming the point directly gives the answer of the clipped form, byte for byte."""
    x, y = grid
    lon, lat = TO_WGS84.transform(x + PLACES[place][0], y + PLACES[place][1])
    params = {"lon": lon, "lat": lat}
    for crs in (4326, 32628):
        clipped = spatial._collection_statement(spatial.covers(spatial.POINT_SQL), params, crs=crs)
        direct = spatial._collection_statement(spatial.covers(spatial.DIRECT_POINT_SQL), params, crs=crs)
        assert clipped.row(db) == direct.row(db)
        assert spatial.at_point_statement(lon=lon, lat=lat, crs=crs).sql == direct.sql


def test_domain_edges_take_the_clipped_form_outside_only(db):
    west, south, east, north = DOMAIN_4326
    for lon, lat in [(west, south), (east, north), (west, north), (east, south)]:  # on the edge: inside
        assert spatial.DIRECT_POINT_SQL in spatial.at_point_statement(lon=lon, lat=lat).sql
        params = {"lon": lon, "lat": lat}
        clipped = spatial._collection_statement(spatial.covers(spatial.POINT_SQL), params, crs=4326)
        assert spatial.at_point_statement(lon=lon, lat=lat).row(db) == clipped.row(db)
    for lon, lat in [(west - 1e-9, 14.0), (east + 1e-9, 14.0), (-15.0, south - 1e-9), (-15.0, north + 1e-9),
                     (100.0, 0.0)]:
        assert spatial.POINT_SQL in spatial.at_point_statement(lon=lon, lat=lat).sql


def test_the_point_is_planned_from_the_shapes_statistics(db, grid):
    """The point's condition holds ``&&`` beside ST_Covers (``~`` for the index): the planner then estimates its rows
    from the column's statistics (about one) rather than PostGIS's flat 0.1 % for ``~``, which at 10,000,000
    parcels planned a point for 10,000 rows (a parallel scan, JIT: 100 ms instead of 0.1 ms)."""
    x, y = grid
    lon, lat = TO_WGS84.transform(x + PLACES["inside"][0], y + PLACES["inside"][1])
    statement = spatial.at_point_statement(lon=lon, lat=lat)
    db.execute(text("ANALYZE parcel_version"))
    plan = db.execute(text("EXPLAIN (FORMAT JSON) " + statement.sql), statement.params).scalar_one()
    conditions = []

    def walk(node):
        conditions.extend(node.get(k, "") for k in ("Index Cond", "Recheck Cond", "Filter"))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    assert any("&&" in c for c in conditions), json.dumps(plan)[:3000]
