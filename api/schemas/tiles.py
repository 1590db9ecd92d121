"""JSON answers of the vector tiles: the tiled layers (``/tiles``) and a layer's TileJSON 3.0.0.

Field names are TileJSON 3.0.0's (https://github.com/mapbox/tilejson-spec/tree/master/3.0.0) for
the document :func:`api.tilejson.document` writes, and those of ``api.routers.tiles.index`` for the
list. The routes answer these dicts as they are built; the models only document them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.responses import documented_as


class TileLayerOut(BaseModel):
    """A tiled collection and where to find its TileJSON and its tiles."""

    id: str
    title: str
    minzoom: int
    maxzoom: int
    tilejson: str = Field(description="URL du TileJSON de la couche.")
    tiles: str = Field(description="Modèle d'URL des tuiles (`{z}/{x}/{y}`).")


class TileLayersOut(BaseModel):
    tileMatrixSet: Literal["WebMercatorQuad"]
    layers: list[TileLayerOut]


class VectorLayer(BaseModel):
    """A layer of the tiles (TileJSON 3.0.0, 3.3): its attributes and their types."""

    id: str
    fields: dict[str, Literal["String", "Number", "Boolean"]] = Field(
        description="Attribut : type (`String`, `Number`, `Boolean`) ; seulement ceux que `properties` demande.")
    description: str
    minzoom: int
    maxzoom: int


class TileJSON(BaseModel):
    """TileJSON 3.0.0 of a tiled collection.

    Every member the service writes is required here, although TileJSON makes most of them optional;
    members a client does not know are to be ignored, as TileJSON says.
    """

    model_config = ConfigDict(extra="allow")

    tilejson: str = Field(description="Version de TileJSON : `3.0.0`.", pattern=r"^3\.\d+\.\d+$")
    tiles: list[str] = Field(min_length=1, description="Modèles d'URL des tuiles (`{z}/{x}/{y}`).")
    vector_layers: list[VectorLayer]
    name: str
    description: str
    version: str
    attribution: str
    scheme: Literal["xyz", "tms"]
    minzoom: int = Field(ge=0, le=30)
    maxzoom: int = Field(ge=0, le=30)
    bounds: tuple[float, float, float, float] = Field(description="Ouest, sud, est, nord (WGS 84).")
    center: tuple[float, float, float] = Field(description="Longitude, latitude, niveau de zoom.")


TileLayers = Annotated[dict[str, Any], documented_as(TileLayersOut)]
TileJSONDocument = Annotated[dict[str, Any], documented_as(TileJSON)]
