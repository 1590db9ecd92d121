"""Response helpers shared by the routers: GeoJSON bytes serialized by PostGIS, passed through."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

GEOJSON = "application/geo+json"
# A file's bytes, as OpenAPI 3.1 documents a body that is not JSON.
BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}


class GeoJSONResponse(JSONResponse):
    """Documents a route's ``response_model`` under ``application/geo+json``.

    FastAPI writes a response model's schema only for a JSON response class. The routes still return
    :func:`geojson` (PostGIS's bytes): a returned ``Response`` is sent as it is, never re-serialised.
    """

    media_type = GEOJSON


def binary(media_types: dict[str, str], *, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry of a route answering a file: each media type with what it holds."""
    return {status: {"description": " ; ".join(media_types.values()),
                     "content": {media: {"schema": {**BINARY_SCHEMA, "description": text}}
                                 for media, text in media_types.items()}}}


def geojson(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The bytes PostGIS produced, untouched, as ``application/geo+json``."""
    return Response(body, status_code=status, media_type=GEOJSON, headers=headers)
