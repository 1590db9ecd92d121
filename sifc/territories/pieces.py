"""Small pieces of the region and commune polygons, for fast spatial tests.

A commune polygon has hundreds of vertices, a region tens of thousands: testing thousands
of parcels against them whole is slow (each test reads and prepares the whole polygon).
``territory_piece`` holds them cut by ``ST_Subdivide``; it is derived data, rebuilt here
whenever boundaries change.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

MAX_VERTICES = 128


def refresh(session: Session, level: str) -> None:
    """Rebuild the pieces of ``level`` ('region' or 'commune') from the current boundaries."""
    table = {"region": "region", "commune": "commune"}[level]
    session.execute(text("DELETE FROM territory_piece WHERE level = :level"), {"level": level})
    session.execute(text(f"""
        INSERT INTO territory_piece (level, code, geom)
        SELECT :level, code, ST_Subdivide(geom, {MAX_VERTICES}) FROM {table} WHERE geom IS NOT NULL
    """), {"level": level})


def missing(session: Session, level: str) -> bool:
    """Whether ``level`` has boundaries but no pieces yet."""
    return bool(session.execute(text(
        "SELECT NOT EXISTS (SELECT 1 FROM territory_piece WHERE level = :level)"), {"level": level}).scalar())
