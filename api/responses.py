"""Response helpers shared by the routers: GeoJSON bytes serialized by PostGIS, passed through."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, WithJsonSchema

GEOJSON = "application/geo+json"
# A file's bytes, as OpenAPI 3.1 documents a body that is not JSON.
BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}


def answer(body: object, *, status: int = 200, tag: str | None = None, location: str | None = None) -> Response:
    """A record as JSON bytes (orjson), with its ETag and its Location when it has them."""
    headers = {}
    if tag:
        headers["ETag"] = tag
    if location:
        headers["Location"] = location
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


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


def documented_as(model: type[BaseModel]) -> WithJsonSchema:
    """The documented schema of a route answering a plain ``dict``: a reference to ``model``'s component.

    Annotating the route's return as ``Annotated[dict[str, Any], documented_as(M)]`` keeps the answer
    what it was (the validation and the serialisation of ``dict[str, Any]``: ``WithJsonSchema`` changes
    only the JSON schema) where FastAPI would otherwise document a bare object. The route registers ``M``
    in the document's components with ``responses=described(M)``.
    """
    return WithJsonSchema({"$ref": f"#/components/schemas/{model.__name__}"})


def described(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entry documenting a route's plain ``dict`` answer by ``model`` (see :func:`documented_as`)."""
    return {200: {"model": model}}


def geojson(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """The bytes PostGIS produced, untouched, as ``application/geo+json``."""
    return Response(body, status_code=status, media_type=GEOJSON, headers=headers)
