"""Bringing query geometries into the storage CRS (UTM 28N) without leaving its domain.

Parcels and territories are stored in EPSG:32628. A point, box or shape given in another CRS
is transformed to it; but a transverse Mercator projection is only defined near its central
meridian (-15°): PROJ refuses a point 95° away ("Point outside of projection domain", a 500
before this module) and distorts long edges, whose curves become straight chords.

So a query geometry is first clipped to :data:`DOMAIN_4326` (Senegal with a margin far wider than
any distance question), densified, then transformed. Nothing is stored outside that domain, so
clipping changes no answer: a shape entirely outside becomes empty and matches nothing.
"""

from __future__ import annotations

import math
from typing import Literal

STORAGE_SRID = 32628
"""WGS 84 / UTM zone 28N, the metric CRS of Senegalese survey data: the one definition in code.

SQL takes it from here (interpolated from this constant, or bound); the migrations, being the
schema, write the number themselves.
"""
QGIS_SRSID = 3112
"""The storage CRS's row in QGIS's own ``srs.db`` (QGIS 3.22), which a ``.qgs`` file names as ``srsid``."""
OutputCrs = Literal[4326, 32628]
"""The SRIDs an answer may be given in: WGS 84 and the storage CRS (a ``Literal`` spells the number)."""
# West, south, east, north (WGS 84): ±10° around the zone's central meridian, 5°N to 25°N.
DOMAIN_4326 = (-25.0, 5.0, -5.0, 25.0)
# Densify before transforming: 0.1° (about 11 km) chords, or 10 km in projected CRSs, keep
# a box's edges within a metre of the true curve.
SEGMENT_DEGREES = 0.1
SEGMENT_METRES = 10_000.0


def in_domain(lon: float, lat: float) -> bool:
    """Whether a WGS 84 point lies in the domain where the storage CRS is meaningful."""
    west, south, east, north = DOMAIN_4326
    return math.isfinite(lon) and math.isfinite(lat) and west <= lon <= east and south <= lat <= north


def to_storage_sql(geometry: str, srid: str) -> str:
    """SQL turning ``geometry`` (an expression in SRID ``srid``, an SQL integer) into the storage CRS.

    The geometry is clipped to the domain (so the transformation cannot fail), densified, then
    transformed; the result may be empty. Both arguments are SQL fragments: bind the values.
    """
    west, south, east, north = DOMAIN_4326
    domain = f"ST_Transform(ST_MakeEnvelope({west}, {south}, {east}, {north}, 4326), {srid})::box2d"
    step = f"CASE WHEN {srid} = 4326 THEN {SEGMENT_DEGREES} ELSE {SEGMENT_METRES} END"
    return (f"ST_Transform(ST_Segmentize(ST_ClipByBox2D({geometry}, {domain}), {step}), {STORAGE_SRID})")


def point_sql(lon: str = ":lon", lat: str = ":lat") -> str:
    """SQL for a WGS 84 point (bound parameters ``lon``, ``lat``) in the storage CRS, empty outside the domain."""
    return to_storage_sql(f"ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)", "4326")
