"""``sifc demo load``: synthetic parcels in the three pilot communes, so a new user sees parcels.

Blocks of 2 × 10 parcels of about 20 × 25 m along 8 m streets, around each commune's
centre, with plausible land uses and tenure regimes and some parcels without NICAD. The
parcels are written to a GeoPackage and loaded through the same import pipeline as a
surveyor's file; their batch is flagged synthetic. Loading twice does nothing the second
time. Nothing here is real: NICADs are made up and no holder is named.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.imports.parcels import ParcelImportOptions, import_parcels

DEMO_FILE = "sifc-demo-parcelles.gpkg"
PILOTS = {  # commune code → centre (lon, lat), as in the data README
    "SN0104-bargny": (-17.2283, 14.6933),
    "SN1301-sandiara": (-16.78, 14.43),
    "SN1303-mont-rolland": (-16.96, 14.93),
}
PARCEL_W, PARCEL_D, STREET = 20.0, 25.0, 8.0
BLOCK_COLS, BLOCK_ROWS = 10, 2
GRID_COLS, GRID_ROWS = 4, 6
LAND_USES = [("habitation", 70), ("commerce", 10), ("agriculture", 10), ("équipement", 5), ("espace vert", 5)]
TENURES = [("domaine national", 75), ("titre foncier", 15), ("bail", 10)]


@dataclass
class DemoOutcome:
    """What the demo loaded."""

    accepted: int
    communes: str


def _choice(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights)[0]


def _parcels_for(session: Session, code: str, centre: tuple[float, float]) -> list[dict[str, object]]:
    row = session.execute(text("""
        SELECT ST_AsBinary(ST_Buffer(geom, -10)) AS inner_geom,
               ST_X(ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 32628)) AS x,
               ST_Y(ST_Transform(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 32628)) AS y
        FROM commune WHERE code = :code AND geom IS NOT NULL
    """), {"code": code, "lon": centre[0], "lat": centre[1]}).first()
    if row is None:
        return []
    inner = shapely.from_wkb(bytes(row.inner_geom))
    shapely.prepare(inner)
    rng = random.Random(code)
    block_w = BLOCK_COLS * PARCEL_W + STREET
    block_h = BLOCK_ROWS * PARCEL_D + STREET
    x0 = row.x - GRID_COLS * block_w / 2
    y0 = row.y - GRID_ROWS * block_h / 2
    region, department = code[2:4], code[5]
    parcels = []
    for gy in range(GRID_ROWS):
        for gx in range(GRID_COLS):
            section = gy * GRID_COLS + gx + 1
            for r in range(BLOCK_ROWS):
                for c in range(BLOCK_COLS):
                    minx = x0 + gx * block_w + c * PARCEL_W
                    miny = y0 + gy * block_h + r * PARCEL_D
                    shape = box(minx, miny, minx + PARCEL_W, miny + PARCEL_D)
                    if not inner.contains(shape):
                        continue
                    number = r * BLOCK_COLS + c + 1
                    nicad = f"{region}{department}00001{section:03d}{number:05d}" if rng.random() < 0.8 else None
                    parcels.append({
                        "NICAD": nicad, "SECTION": f"S{section:02d}", "NUMERO": str(number),
                        "SUPERFICIE": round(shape.area * rng.uniform(0.97, 1.03), 1),
                        "USAGE": _choice(rng, LAND_USES), "REGIME": _choice(rng, TENURES),
                        "COMMUNE": code, "geometry": shape,
                    })
    return parcels


def already_loaded(session: Session) -> bool:
    """Whether the demo batch is already in the registry."""
    return bool(session.execute(text(
        "SELECT 1 FROM import_batch WHERE synthetic AND file_name = :f"), {"f": DEMO_FILE}).scalar())


def load_demo(session: Session) -> DemoOutcome | None:
    """Generate and import the demo parcels; None when they are already there."""
    if already_loaded(session):
        return None
    records = [p for code, centre in PILOTS.items() for p in _parcels_for(session, code, centre)]
    frame = gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:32628")
    with tempfile.TemporaryDirectory(prefix="sifc-demo-") as folder:
        path = Path(folder) / DEMO_FILE
        frame.to_file(path, layer="parcelles", driver="GPKG")
        report = import_parcels(session, path, ParcelImportOptions(author="sifc-demo", synthetic=True))
    summary = ", ".join(f"{code} : {count}" for code, count in report.communes.items())
    return DemoOutcome(accepted=report.accepted, communes=summary)
