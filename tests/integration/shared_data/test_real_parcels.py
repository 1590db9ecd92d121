"""Real parcel sets. Expected figures come from shared/data/README.md or are computed here from
the source file with geopandas/shapely, never read back from the importer's own output."""

from collections import Counter

import geopandas as gpd
import pytest
import shapely
from shapely import affinity
from sqlalchemy import text

from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.parcels import nicad as nicad_rules
from sifc.territories.communes_import import ImportOptions, import_communes
from tests.conftest import shared_path

ALIASES = [("FONGOLEMBI", "Fongolimbi"), ("TOMBORONKOTO", "Tomboroncoto"), ("SABODALA", "Sabadola"),
           ("DINDEFELLO", "Dindéfélo")]


def test_procasef_boundou_parcels(db):
    communes = shared_path("cadastre", "procasef_boundou", "procasef_boundou_17_communes.gpkg")
    parcels = shared_path("cadastre", "procasef_boundou", "procasef_boundou_parcels.gpkg")
    import_communes(db, communes, ImportOptions(code_field="COD_ENTITE", aliases=ALIASES))

    source = gpd.read_file(parcels)
    kinds = Counter(shapely.get_type_id(source.geometry))
    assert kinds[3] > 0 and kinds[6] > 0 and all(source.geometry.has_z)  # Polygon Z and MultiPolygon Z mixed
    numbers = source.Num_parcel.astype(str).str.strip()
    nonstandard = int((~numbers.str.len().isin([13, 16])).sum())
    repeated = numbers[numbers.duplicated()]

    report = import_parcels(db, parcels, ParcelImportOptions(author="test"))

    assert report.read == len(source) == 1699
    assert {"z_dropped"} <= {n["code"] for n in report.file_notes}
    assert report.duplicates == len(repeated) == 3
    assert report.accepted == len(source) - len(repeated) == 1696
    assert report.rejected == 0
    assert report.warnings_by_code["nicad_nonstandard"] == nonstandard == 179
    stored = db.execute(text("SELECT count(*) FROM parcel WHERE batch_id = CAST(:b AS uuid)"),
                        {"b": report.batch_id}).scalar()
    assert stored == 1696
    provisional = dict(db.execute(text("""
        SELECT c.name, count(*) FROM parcel p JOIN commune c ON c.code = p.commune_code
        WHERE c.boundary_status = 'provisional' GROUP BY c.name""")).all())
    assert provisional == {"Koulor": 10, "Koussanar": 4, "Bakel": 1}
    assert report.warnings_by_code["provisional_commune"] == 15
    # Every parcel is in its commune: each of the 17 official ones holds the parcels it covers.
    official = db.execute(text("""
        SELECT count(*) FROM parcel p JOIN commune c ON c.code = p.commune_code
        WHERE c.boundary_status = 'official'""")).scalar()
    assert official == 1696 - 15


def test_epinay_sur_orge_declared_areas(db, tmp_path):
    path = shared_path("cadastre", "france_etalab", "cadastre-91216-parcelles.json")
    source = gpd.read_file(path)
    lambert = source.to_crs("EPSG:2154")
    declared = lambert["contenance"]
    ratio = (lambert.area - declared).abs() / declared
    mismatches = int((ratio > 0.10).sum())
    missing = int(declared.isna().sum())
    assert (mismatches, missing) == (183, 1)

    # Put the parcels (shapes and areas kept) in the middle of a large provisional commune and
    # declare them EPSG:32628.
    centre_x, centre_y, radius = db.execute(text("""
        SELECT ST_X(c.center), ST_Y(c.center), c.radius
        FROM (SELECT geom FROM commune WHERE boundary_status = 'provisional'
              ORDER BY ST_Area(geom) DESC LIMIT 5) m,
             LATERAL ST_MaximumInscribedCircle(m.geom) c
        ORDER BY c.radius DESC LIMIT 1""")).one()
    minx, miny, maxx, maxy = lambert.total_bounds
    assert max(maxx - minx, maxy - miny) / 2 < radius
    moved = lambert.copy()
    moved["geometry"] = [affinity.translate(g, centre_x - (minx + maxx) / 2, centre_y - (miny + maxy) / 2)
                         for g in lambert.geometry]
    moved = moved.set_crs("EPSG:32628", allow_override=True)
    target = tmp_path / "epinay.gpkg"
    moved.to_file(target)

    report = import_parcels(db, target, ParcelImportOptions(dry_run=True))
    assert report.read == len(source) == 4241
    assert report.mapping["declared_area"] == "contenance"
    assert report.warnings_by_code.get("area_mismatch", 0) == mismatches
    assert report.warnings_by_code.get("declared_area_missing", 0) == missing
    assert report.rejected == 0


def test_procasef_statistics_and_overlaps(db, client):
    """Statistics and overlaps on real parcels, expected figures computed here from the source file."""
    communes = shared_path("cadastre", "procasef_boundou", "procasef_boundou_17_communes.gpkg")
    parcels = shared_path("cadastre", "procasef_boundou", "procasef_boundou_parcels.gpkg")
    import_communes(db, communes, ImportOptions(code_field="COD_ENTITE", aliases=ALIASES))
    report = import_parcels(db, parcels, ParcelImportOptions(author="test"))
    source = gpd.read_file(parcels).to_crs(32628)
    source["geometry"] = shapely.force_2d(source.geometry)
    kept = source[~source.Num_parcel.astype(str).str.strip().duplicated()]
    assert len(kept) == report.accepted == 1696

    departments = db.execute(text("""
        SELECT DISTINCT c.department_code FROM parcel p JOIN commune c ON c.code = p.commune_code""")).scalars().all()
    stats = [client.get(f"/stats/department/{d}").json() for d in departments]
    assert sum(s["parcels"] for s in stats) == 1696
    total = sum(s["total_area_m2"] for s in stats)
    assert total == pytest.approx(float(shapely.area(kept.geometry.values).sum()), rel=1e-6)
    with_nicad = sum(nicad_rules.clean(v) is not None for v in kept.Num_parcel)
    assert sum(s["with_nicad"] for s in stats) == with_nicad

    # Overlaps the import tolerated (under 1 m² or 1 %), found again among each commune's parcels.
    tree = shapely.STRtree(kept.geometry.values)
    a, b = tree.query(kept.geometry.values, predicate="intersects")
    pairs = [(i, j) for i, j in zip(a, b, strict=True) if i < j]
    shared = shapely.area(shapely.intersection(kept.geometry.values[[i for i, _ in pairs]],
                                               kept.geometry.values[[j for _, j in pairs]]))
    by_nicad = dict(zip(kept.Num_parcel.astype(str).str.strip(), range(len(kept)), strict=True))
    stored = dict(db.execute(text("SELECT nicad, commune_code FROM parcel WHERE batch_id = CAST(:b AS uuid)"),
                             {"b": report.batch_id}).all())
    commune_of = {by_nicad[n]: c for n, c in stored.items()}
    expected = sum(1 for (i, j), area in zip(pairs, shared, strict=True)
                   if area > 0.01 and commune_of[i] == commune_of[j])
    found = sum(client.get(f"/communes/{c}/overlaps").json()["numberReturned"] for c in set(stored.values()))
    assert found == expected == 1  # one pair shares between 0.01 m² and the import's tolerance
