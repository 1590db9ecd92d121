"""Named synthetic parcels (WKT-like builders) around a point inside Bargny, in EPSG:32628."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
from shapely.geometry import Polygon, box
from sqlalchemy import text


def day(offset: int) -> str:
    """The ISO date ``offset`` days before today (a legal date in the past)."""
    return (date.today() - timedelta(days=offset)).isoformat()


def bargny_origin(db) -> tuple[float, float]:
    """A point of Bargny (UTM 28N) with at least 300 m of commune around it."""
    row = db.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(-17.2283, 14.6933), 4326), 32628) p) t
    """)).one()
    inside = db.execute(text("""
        SELECT ST_Covers(ST_Buffer(geom, -300), ST_SetSRID(ST_MakePoint(:x, :y), 32628)) FROM commune
        WHERE code = 'SN0104-bargny'"""), {"x": row[0], "y": row[1]}).scalar()
    assert inside
    return float(row[0]), float(row[1])


def square(x: float, y: float, size: float = 20.0) -> Polygon:
    return box(x, y, x + size, y + size)


def bowtie(x: float, y: float, size: float = 20.0) -> Polygon:
    return Polygon([(x, y), (x + size, y + size), (x + size, y), (x, y + size), (x, y)])


def write(tmp_path: Path, rows: list[dict], crs: str | None = "EPSG:32628", name: str = "parcelles.gpkg") -> Path:
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    path = tmp_path / name
    frame.to_file(path)
    return path
