"""The random inputs every side is driven with: bboxes, points and z16 tiles drawn from the loaded parcels.

The same lists go to our service, to TiPg (as URLs) and to pgbench (as variables), so the three
answer the same questions. Drawn once per dataset and seed, with the database's own geometry:

- **bboxes** (CRS84): squares in UTM around random parcels at least 1 km inside the parcels' disc,
  their side calibrated so that about 700 current parcels intersect each (the count of each is
  kept, and checked against the answers);
  with parcels in several communes far apart (``--scales``), around random parcels at least 1 km
  inside their own commune's disc, so the bboxes spread over every commune as points and tiles do;
- **points**: a point on the surface of random parcels (``ST_PointOnSurface``), rounded to 1e-7°,
  each covered by exactly one parcel;
- **tiles**: every WebMercatorQuad z16 tile holding a parcel's centroid (about 1,600 for
  1,000,000 parcels), shuffled.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

TARGET_BBOX_PARCELS = 700
TILE_ZOOM = 16


@dataclass
class Inputs:
    bboxes: list[tuple[float, float, float, float]]
    bbox_counts: list[int]
    bbox_side_m: float
    points: list[tuple[float, float]]
    tiles: list[tuple[int, int, int]]


def _bbox_sql(side_m: float) -> str:
    return f"""
        SELECT round(ST_XMin(e)::numeric, 6)::float8, round(ST_YMin(e)::numeric, 6)::float8,
               round(ST_XMax(e)::numeric, 6)::float8, round(ST_YMax(e)::numeric, 6)::float8
        FROM (SELECT ST_Envelope(ST_Transform(ST_Expand(ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 32628),
                                                         {side_m / 2}), 4326)) AS e) s"""


# Bbox centres around every commune's parcels: each commune's parcels form a disc of their own.
SPREAD_CENTRES_SQL = """
    WITH discs AS (
        SELECT commune_code, ST_Centroid(ST_SetSRID(ST_Extent(geom)::geometry, 32628)) AS c,
               sqrt(count(*) * 561.6 / pi()) AS r
        FROM parcel GROUP BY commune_code)
    SELECT ST_X(ST_Centroid(v.geom)), ST_Y(ST_Centroid(v.geom))
    FROM parcel_version v TABLESAMPLE SYSTEM (%(pct)s) REPEATABLE (%(seed)s)
    JOIN discs d ON d.commune_code = v.commune_code
    WHERE v.valid_to IS NULL AND ST_DWithin(ST_Centroid(v.geom), d.c, greatest(d.r - 1000.0, d.r / 2))
    ORDER BY random() LIMIT %(n)s"""

COUNT_SQL = """
    SELECT count(*) FROM parcel t
    WHERE t.geom && ST_Transform(ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326), 32628)
      AND ST_Intersects(t.geom, ST_Transform(ST_MakeEnvelope(%(x0)s, %(y0)s, %(x1)s, %(y1)s, 4326), 32628))"""


def draw(url: str, *, count: int, seed: int, log=print, commune: str | None = None, sample_pct: float = 1,
         spread: bool = False) -> Inputs:
    """Draw ``count`` bboxes and points and all z16 tiles from the current parcels of ``url``.

    ``commune``: the bboxes are drawn around that commune's parcels only (a database holding parcels
    in several communes, far apart); points and tiles still come from every parcel. ``spread``: around
    the parcels of every commune, each well inside its own commune's disc. ``sample_pct``: the share
    of the table's pages sampled for bbox centres and points.
    """
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.execute("SELECT setseed(%s)", (((seed % 1000) / 1000.0),))
        centres = _centres(conn, count=count, seed=seed, commune=commune, sample_pct=sample_pct, spread=spread)
        if len(centres) < count:
            raise SystemExit(f"only {len(centres)} bbox centres found, {count} asked")
        # Calibrate the side on a sample: the count grows with the area (plus a border of cut parcels).
        side = math.sqrt(TARGET_BBOX_PARCELS * 561.6)
        for _ in range(3):
            sample = [_count(conn, _bbox(conn, x, y, side)) for x, y in centres[:40]]
            mean = sum(sample) / len(sample)
            side *= math.sqrt(TARGET_BBOX_PARCELS / mean)
        bboxes = [_bbox(conn, x, y, side) for x, y in centres]
        counts = [_count(conn, b) for b in bboxes]
        log(f"bboxes: side {side:.0f} m, parcels per bbox min {min(counts)} median "
            f"{sorted(counts)[len(counts) // 2]} max {max(counts)}")
        points = [tuple(r) for r in conn.execute("""
            SELECT round(ST_X(p)::numeric, 7)::float8, round(ST_Y(p)::numeric, 7)::float8
            FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 4326) AS p
                  FROM parcel_version TABLESAMPLE SYSTEM (%(pct)s) REPEATABLE (%(seed)s)
                  WHERE valid_to IS NULL ORDER BY random() LIMIT %(n)s) s
        """, {"seed": seed, "n": count, "pct": sample_pct}).fetchall()]
        tiles = [(TILE_ZOOM, int(x), int(y)) for x, y in conn.execute(f"""
            SELECT DISTINCT floor((ST_X(c) + 180) / 360 * 2 ^ {TILE_ZOOM}),
                   floor((1 - ln(tan(radians(ST_Y(c))) + 1 / cos(radians(ST_Y(c)))) / pi()) / 2 * 2 ^ {TILE_ZOOM})
            FROM (SELECT ST_Transform(ST_Centroid(geom), 4326) AS c FROM parcel) s
        """).fetchall()]
    random.Random(seed).shuffle(tiles)
    log(f"points: {len(points)}; z{TILE_ZOOM} tiles holding parcels: {len(tiles)}")
    return Inputs(bboxes, counts, side, points, tiles)


def _centres(conn: psycopg.Connection, *, count: int, seed: int, commune: str | None, sample_pct: float,
             spread: bool) -> list[tuple[float, float]]:
    """Bbox centres: random parcels well inside the parcels' disc (bboxes full of parcels)."""
    if spread:
        return [tuple(r) for r in conn.execute(SPREAD_CENTRES_SQL,
                                               {"seed": seed, "n": count, "pct": sample_pct}).fetchall()]
    only = {"commune": commune, "pct": sample_pct}
    centre_x, centre_y, radius = conn.execute("""
        SELECT ST_X(c), ST_Y(c), sqrt(n * 561.6 / pi()) FROM (
            SELECT ST_Centroid(ST_SetSRID(ST_Extent(geom)::geometry, 32628)) AS c, count(*) AS n FROM parcel
            WHERE %(commune)s::text IS NULL OR commune_code = %(commune)s) s
    """, only).fetchone()
    return [tuple(r) for r in conn.execute("""
        SELECT ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom))
        FROM parcel_version TABLESAMPLE SYSTEM (%(pct)s) REPEATABLE (%(seed)s)
        WHERE valid_to IS NULL AND (%(commune)s::text IS NULL OR commune_code = %(commune)s)
          AND ST_DWithin(ST_Centroid(geom), ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 32628), %(r)s)
        ORDER BY random() LIMIT %(n)s
    """, {"seed": seed, "x": centre_x, "y": centre_y, "r": max(radius - 1000.0, radius / 2),
          "n": count, **only}).fetchall()]


def _bbox(conn: psycopg.Connection, x: float, y: float, side: float) -> tuple[float, float, float, float]:
    row = conn.execute(_bbox_sql(side), {"x": x, "y": y}).fetchone()
    return (row[0], row[1], row[2], row[3])


def _count(conn: psycopg.Connection, bbox: tuple[float, float, float, float]) -> int:
    return conn.execute(COUNT_SQL, dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True))).fetchone()[0]


def load_or_draw(path: Path, url: str, *, count: int, seed: int, dataset: str, log=print,
                 spread: bool = False, sample_pct: float = 1) -> Inputs:
    """The inputs cached in ``path`` for this dataset and seed, else drawn and cached (the options: :func:`draw`)."""
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("dataset") == dataset and data.get("seed") == seed and len(data["points"]) == count:
            return Inputs(**{k: v for k, v in data.items() if k in Inputs.__dataclass_fields__})
    inputs = draw(url, count=count, seed=seed, log=log, spread=spread, sample_pct=sample_pct)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dataset": dataset, "seed": seed, **asdict(inputs)}))
    return inputs
