"""Which queries of GET /parcels/at the fast path takes (api.fast_path.plain_query): only plain, valid ones."""

from __future__ import annotations

import pytest

from api.fast_path import plain_query


@pytest.mark.parametrize(("query", "expected"), [
    (b"lon=-17.2283&lat=14.6933", (-17.2283, 14.6933, "EPSG:4326")),
    (b"lat=14.6933&lon=-17.2283", (-17.2283, 14.6933, "EPSG:4326")),
    (b"lon=-17.22830000000000000001&lat=14", (-17.2283, 14.0, "EPSG:4326")),
    (b"lon=-17.2&lat=14.6&crs=EPSG:32628", (-17.2, 14.6, "EPSG:32628")),
    (b"crs=EPSG%3A4326&lon=0&lat=-0.5", (0.0, -0.5, "EPSG:4326")),
    (b"lon=180&lat=-90", (180.0, -90.0, "EPSG:4326")),
    (b"lon=-180.0&lat=90.0", (-180.0, 90.0, "EPSG:4326")),
])
def test_plain_queries(query: bytes, expected: tuple[float, float, str]) -> None:
    assert plain_query(query) == expected


@pytest.mark.parametrize("query", [
    b"", b"lon=-17.2", b"lat=14.6", b"lon=-17.2&lat=14.6&", b"&lon=-17.2&lat=14.6",
    b"lon=-17.2&lat=14.6&limit=5",  # another parameter: FastAPI's path (which ignores it)
    b"lon=-17.2&lat=14.6&lat=14.7", b"lon=-17.2&lon=-17.3&lat=14.6",  # repeated
    b"lon=-17.2&lat=14.6&crs=EPSG:4326&crs=EPSG:4326",
    b"lon=180.1&lat=0", b"lon=0&lat=-90.0001", b"lon=1000&lat=0",  # out of range: FastAPI's 422
    b"lon=1e1&lat=0", b"lon=+1&lat=0", b"lon=01&lat=0", b"lon=.5&lat=0", b"lon=5.&lat=0",
    b"lon=nan&lat=0", b"lon=inf&lat=0", b"lon=-&lat=0", b"lon=&lat=0", b"lon&lat=0",
    b"lon=%2D17&lat=14", b"lon=-17%2E2&lat=14", b"lon=-17.2+&lat=14", b"lon= -17.2&lat=14",
    b"lon=-17.2&lat=14&crs=EPSG:3857", b"lon=-17.2&lat=14&crs=epsg:4326", b"lon=-17.2&lat=14&crs=",
    b"LON=-17.2&lat=14", b"lon=-17.2;lat=14",
])
def test_other_queries_are_left_to_fastapi(query: bytes) -> None:
    assert plain_query(query) is None
