"""The field benchmark's data: one generated layout, a drawn area, and the template database.

``bench.import_bench.generate`` lays clean parcels (no injected defect) in blocks of 40, the blocks
nearest the centre of commune Dialacoto. One layout of ``registered + new`` blocks is generated and
split by the distance of each block to the layout's centre:

- the nearest blocks are registered (the package's parcels and 20 % more around them);
- the farthest blocks (2,000 parcels by default) are not: they are the shapefile the return's
  anchor, ``sifc import``, loads as new parcels into the same database state.

The package's **area** is what an officer draws: a polygon of 64 vertices around the centre, its
radius chosen so that exactly 20,000 registered parcels meet it (``ST_Intersects``, as
``sifc.field.packages`` selects them), in the middle of the range of radii that give that count
(no parcel within centimetres of its edge). It cuts through blocks, so the parcels touching the
package's from outside are its **neighbours**. It is kept in EPSG:32628 (``area.wkt``, for the
anchor's SQL) and as the GeoJSON polygon in EPSG:4326 the package's build is given
(``area.geojson``); the count is checked against the 4326 polygon brought back to 32628.

The registered parcels are imported once with ``sifc import parcels`` into
``sifc_bench_field_template`` (a copy of the import bench's migrated template), and every distinct
corner of them becomes a borne (``sifc.bornes.service.store_imported``, as a table of bornes would).
A comment on the database names its dataset; it is rebuilt only when that changes.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from psycopg import sql

from bench.import_bench.databases import REPO, TEMPLATE, Server, _run
from bench.import_bench.generate import PARCELS_PER_BLOCK, _write_shapefile, generate

FIELD_TEMPLATE = "sifc_bench_field_template"
RING_SHARE = 0.2  # registered parcels beyond the package's, as a share of them
AREA_SEGMENTS = 16  # per quarter circle: a 64-gon
AUTHOR = "bench:field"
# The field officer who checks the package out and returns it: an agent foncier of the commune.
OFFICER = "agent.terrain.bench"
OFFICER_ROLE = "agent_foncier"
COMMUNE = "SN1204-dialacoto"


@dataclass(frozen=True)
class FieldDataset:
    """The split layout: registered parcels, the package's area and the anchor's new parcels."""

    directory: Path
    registry_shapefile: Path  # package + ring parcels, imported into the template
    new_shapefile: Path  # the anchor's new parcels, never registered before a run
    area_wkt: Path  # EPSG:32628
    area_geojson: Path  # EPSG:4326, what the build is given
    package_parcels: int
    registered_parcels: int
    new_parcels: int
    seed: int

    def area_polygon(self) -> dict[str, Any]:
        return dict(json.loads(self.area_geojson.read_text()))

    def marker(self) -> dict[str, object]:
        """What the template database must hold for this dataset (its comment)."""
        return {"generator": "bench.field_bench", "package": self.package_parcels,
                "registered": self.registered_parcels, "new": self.new_parcels, "seed": self.seed, "bornes": True,
                "officer": f"{OFFICER} ({OFFICER_ROLE}, commune:{COMMUNE})",
                "area": self.area_wkt.read_text()}


def _blocks(parcels: int) -> int:
    return math.ceil(parcels / PARCELS_PER_BLOCK)


def _transformers():
    from pyproj import Transformer

    return (Transformer.from_crs(32628, 4326, always_xy=True), Transformer.from_crs(4326, 32628, always_xy=True))


def _drawn_area(geometries: np.ndarray, centre: np.ndarray, count: int) -> tuple[shapely.Geometry, dict[str, Any],
                                                                                   float]:
    """The circle (64-gon) meeting exactly ``count`` parcels, as drawn in 4326 and as the server will hold it."""
    to_4326, to_utm = _transformers()
    shapely.prepare(geometries)

    def drawn(radius: float) -> tuple[shapely.Geometry, dict[str, Any]]:
        utm = shapely.Point(*centre).buffer(radius, quad_segs=AREA_SEGMENTS)
        ring = [[round(c, 9) for c in to_4326.transform(x, y)] for x, y in shapely.get_coordinates(utm)]
        back = shapely.Polygon([to_utm.transform(lon, lat) for lon, lat in ring])
        return back, {"type": "Polygon", "coordinates": [ring]}

    def met(radius: float) -> int:
        return int(shapely.intersects(drawn(radius)[0], geometries).sum())

    def first(predicate, lo: float, hi: float) -> float:
        """Smallest radius (to 1 mm) where ``predicate`` holds, between ``lo`` (false) and ``hi`` (true)."""
        while hi - lo > 0.001:
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if predicate(mid) else (mid, hi)
        return hi

    hi = 10.0
    while met(hi) < count + 1:
        hi *= 1.5
    low = first(lambda r: met(r) >= count, 0.0, hi)
    high = first(lambda r: met(r) > count, low, hi)
    if met(low) != count:
        raise SystemExit(f"no radius meets exactly {count} parcels")
    radius = (low + high) / 2
    back, geojson = drawn(radius)
    return back, geojson, (high - low) / 2


def dataset(data_dir: Path, *, package_parcels: int, new_parcels: int, seed: int, admin_url: str | None,
            force: bool = False, log=print) -> FieldDataset:
    """Generate (or reuse) the layout, split it and draw the area."""
    package_blocks, new_blocks = _blocks(package_parcels), _blocks(new_parcels)
    registered_blocks = package_blocks + max(1, round(package_blocks * RING_SHARE))
    total_blocks = registered_blocks + new_blocks
    directory = data_dir / f"field_{package_parcels}p_{registered_blocks}b_{new_blocks}n_s{seed}"
    found = FieldDataset(directory, directory / "registry.shp", directory / "new.shp", directory / "area.wkt",
                         directory / "area.geojson", package_parcels, registered_blocks * PARCELS_PER_BLOCK,
                         new_blocks * PARCELS_PER_BLOCK, seed)
    meta = directory / "meta.json"
    if meta.exists() and not force and all(p.exists() for p in (found.registry_shapefile, found.new_shapefile,
                                                                   found.area_wkt, found.area_geojson)):
        return found
    started = time.perf_counter()
    layout = generate(data_dir, parcels=total_blocks * PARCELS_PER_BLOCK, defect_rate=0.0, seed=seed,
                      admin_url=admin_url, force=force, log=log)
    truth = json.loads(layout.truth_json.read_text())
    from pyogrio import read_dataframe

    frame = read_dataframe(layout.shapefile)
    if len(frame) != total_blocks * PARCELS_PER_BLOCK:  # no defect: file order is the grid's, 40 per block
        raise SystemExit(f"{layout.shapefile} holds {len(frame)} features, {total_blocks * PARCELS_PER_BLOCK} expected")
    geometries = frame.geometry.to_numpy()
    block = np.arange(len(frame)) // PARCELS_PER_BLOCK
    centroids = shapely.get_coordinates(shapely.centroid(geometries))
    block_xy = np.stack([np.bincount(block, weights=centroids[:, i]) / PARCELS_PER_BLOCK for i in (0, 1)], axis=1)
    centre = np.array(truth["layout_centre"])
    rank = np.empty(total_blocks, dtype=np.int64)
    rank[np.argsort(np.hypot(*(block_xy - centre).T), kind="stable")] = np.arange(total_blocks)
    registered = rank[block] < registered_blocks

    area, geojson, margin = _drawn_area(geometries[registered], centre, package_parcels)
    if shapely.intersects(area, geometries[~registered]).any():
        raise SystemExit("the area reaches parcels that are not registered: more ring needed")

    directory.mkdir(parents=True, exist_ok=True)
    columns = [c for c in frame.columns if c != "geometry"]
    for path, mask in ((found.registry_shapefile, registered), (found.new_shapefile, ~registered)):
        _write_shapefile(path, geometries[mask], {c: frame[c].to_numpy()[mask] for c in columns})
    found.area_wkt.write_text(shapely.to_wkt(area, rounding_precision=4))
    found.area_geojson.write_text(json.dumps(geojson))
    meta.write_text(json.dumps({**{k: str(v) if isinstance(v, Path) else v for k, v in asdict(found).items()},
                                "layout": layout.shapefile.name, "area_m2": area.area,
                                "radius_margin_m": margin}, indent=1))
    log(f"split {layout.shapefile.name}: {found.registered_parcels:,} registered, {package_parcels:,} of them in "
        f"the drawn area (radius margin {margin:.3f} m), {found.new_parcels:,} new "
        f"({time.perf_counter() - started:.1f} s)")
    return found


def _marker(server: Server, database: str) -> dict | None:
    with server.admin() as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (database,)).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def set_marker(server: Server, database: str, marker: dict[str, object]) -> None:
    with server.admin() as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(database),
                                                                     sql.Literal(json.dumps(marker))))


def ensure_template(server: Server, data: FieldDataset, *, rebuild: bool = False, log=print) -> str:
    """``sifc_bench_field_template``: the import bench's template + the registered parcels and their bornes."""
    if not rebuild and server.exists(FIELD_TEMPLATE) and _marker(server, FIELD_TEMPLATE) == data.marker():
        return FIELD_TEMPLATE
    server.ensure_template(log=log)
    log(f"building {FIELD_TEMPLATE}: {data.registered_parcels:,} parcels and their corners")
    server.clone(TEMPLATE, FIELD_TEMPLATE)
    env = server.sifc_environment(FIELD_TEMPLATE)
    sifc = str(REPO / ".venv" / "bin" / "sifc")
    report = data.directory / "registry.import.json"
    _run([sifc, "import", "parcels", str(data.registry_shapefile), "--user", AUTHOR, "--report", str(report),
          "--rejects", str(data.directory / "registry_rejets.gpkg")], env, log)
    store_bornes(server.sqlalchemy_url(FIELD_TEMPLATE))
    create_officer(server.sqlalchemy_url(FIELD_TEMPLATE))
    with server.admin(FIELD_TEMPLATE) as conn:
        conn.execute("VACUUM (ANALYZE)")
        counts = {t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                  for t in ("parcel", "borne")}
        inside = conn.execute("SELECT count(*) FROM parcel WHERE ST_Intersects(geom, "
                              "ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), 32628))",
                              (data.area_geojson.read_text(),)).fetchone()[0]
    if counts["parcel"] != data.registered_parcels or inside != data.package_parcels:
        raise SystemExit(f"{FIELD_TEMPLATE}: {counts} parcels registered, {inside} in the area")
    set_marker(server, FIELD_TEMPLATE, data.marker())
    log(f"{FIELD_TEMPLATE}: {counts['parcel']:,} parcels, {counts['borne']:,} bornes")
    return FIELD_TEMPLATE


def store_bornes(url: str) -> None:
    """Every distinct corner of the registered parcels as a borne, as a surveyor's table of bornes stores them."""
    from sqlalchemy import text

    from sifc.bornes.service import store_imported
    from sifc.crs import STORAGE_SRID
    from sifc.db import act_as, make_engine, make_sessionmaker
    from sifc.imports.formats import BornePoint

    engine = make_engine(url, application_name="bench-field-bornes")
    try:
        with make_sessionmaker(engine)() as session:
            act_as(session, AUTHOR)
            batch = session.execute(text("SELECT id FROM import_batch ORDER BY created_at LIMIT 1")).scalar_one()
            rows = session.execute(text("SELECT nicad, ST_AsBinary(geom) FROM parcel ORDER BY nicad")).all()
            points = []
            for nicad, wkb in rows:
                ring = shapely.get_coordinates(shapely.get_exterior_ring(shapely.get_geometry(
                    shapely.from_wkb(bytes(wkb)), 0)))[:-1]
                points += [BornePoint(parcel=nicad, order=i + 1, label=f"B{i + 1}", x=float(x), y=float(y),
                                      precision_m=0.03, survey_method="gnss_rtk") for i, (x, y) in enumerate(ring)]
            store_imported(session, points, srid=STORAGE_SRID, batch_id=batch, author=AUTHOR,
                           file_name="bench-bornes.csv")
            session.commit()
    finally:
        engine.dispose()


def create_officer(url: str) -> None:
    """The account the package is checked out to (a random password: nobody signs in with it)."""
    import secrets

    from sifc.auth import users
    from sifc.auth.principal import ScopeEntry
    from sifc.db import make_engine, make_sessionmaker

    engine = make_engine(url, application_name="bench-field-officer")
    try:
        with make_sessionmaker(engine)() as session:
            users.create(session, username=OFFICER, password=secrets.token_urlsafe(24), role=OFFICER_ROLE,
                         scope=[ScopeEntry("commune", COMMUNE)], created_by=AUTHOR)
            session.commit()
    finally:
        engine.dispose()
