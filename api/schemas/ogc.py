"""JSON answers of OGC API - Features around the items: landing page, conformance, CQL2 functions, collections.

Member names are the standard's (OGC 17-069r4, 7.2 to 7.14; Part 3 for the functions), as
:mod:`api.ogc.documents` writes them. The routes answer those dicts as they are built; the models
only document them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.responses import documented_as
from api.schemas.features import Link


class OgcLandingOut(BaseModel):
    """The landing page: the service and links to its definition, conformance and collections."""

    title: str
    description: str
    links: list[Link]


class OgcConformanceOut(BaseModel):
    conformsTo: list[str] = Field(description="URI des classes de conformité.")


class OgcFunctionArgument(BaseModel):
    title: str
    type: list[str]


class OgcFunction(BaseModel):
    name: str
    description: str
    arguments: list[OgcFunctionArgument]
    returns: list[str]


class OgcFunctionsOut(BaseModel):
    """The functions a CQL2 filter may call."""

    functions: list[OgcFunction]


class OgcSpatialExtent(BaseModel):
    bbox: list[Annotated[list[float], Field(min_length=4, max_length=4)]] = Field(
        description="Ouest, sud, est, nord.")
    crs: str


class OgcExtent(BaseModel):
    spatial: OgcSpatialExtent


class OgcCollectionOut(BaseModel):
    """A collection: what it holds, its CRS, its extent (absent when it is empty) and its links."""

    id: str
    title: str
    description: str
    itemType: Literal["feature"]
    crs: list[str]
    storageCrs: str
    links: list[Link]
    extent: OgcExtent | None = Field(default=None, description="Absente d'une collection vide.")


class OgcCollectionsOut(BaseModel):
    links: list[Link]
    collections: list[OgcCollectionOut]


OgcLanding = Annotated[dict[str, object], documented_as(OgcLandingOut)]
OgcConformance = Annotated[dict[str, object], documented_as(OgcConformanceOut)]
OgcFunctions = Annotated[dict[str, object], documented_as(OgcFunctionsOut)]
OgcCollections = Annotated[dict[str, object], documented_as(OgcCollectionsOut)]
OgcCollection = Annotated[dict[str, object], documented_as(OgcCollectionOut)]
