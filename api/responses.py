"""Response helpers shared by the routers: GeoJSON bytes serialized by PostGIS, passed through."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

GEOJSON = "application/geo+json"
GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {GEOJSON: {}}, "description": "GeoJSON (RFC 7946)"}}
CREATED_RESPONSE: dict[int | str, dict[str, Any]] = {
    201: {"content": {GEOJSON: {}}, "description": "GeoJSON (RFC 7946)"}}


def geojson(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The bytes PostGIS produced, untouched, as ``application/geo+json``."""
    return Response(body, status_code=status, media_type=GEOJSON, headers=headers)
