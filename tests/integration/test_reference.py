"""The loaded territorial reference: counts, areas, parents, repairs, idempotence."""

import pyogrio
import pytest
from sqlalchemy import text

from sifc.territories.loader import load_reference
from tests.conftest import TABLES, table_fingerprint

OCHA = "senegal/ocha_cod_ab_2024"


@pytest.mark.parametrize(("table", "count"), [
    ("pole", 8), ("region", 14), ("department", 46), ("arrondissement", 125), ("commune", 549),
])
def test_counts(db, table, count):
    assert db.execute(text(f"SELECT count(*) FROM {table}")).scalar() == count


def test_every_unit_has_geometry_in_utm28_and_a_source(db):
    for table in ("pole", "region", "department", "arrondissement", "commune"):
        row = db.execute(text(
            f"SELECT count(*) FILTER (WHERE geom IS NULL), array_agg(DISTINCT ST_SRID(geom)), "
            f"array_agg(DISTINCT GeometryType(geom)), count(*) FILTER (WHERE NOT ST_IsValid(geom)),"
            f" count(*) FILTER (WHERE source = '' OR valid_from IS NULL) FROM {table}")).one()
        assert row[0] == 0, table
        assert row[1] == [32628], table
        assert row[2] == ["MULTIPOLYGON"], table
        assert row[3] == 0 and row[4] == 0, table


def test_pole_area_is_the_sum_of_its_regions_official_areas(db, settings):
    """A pole's polygon is the union of its regions: its area on the ellipsoid matches the
    sum of the official AREA_SQKM of its regions within 0.1 %."""
    regions = pyogrio.read_dataframe(settings.data_dir / OCHA / "sen_admbnda_adm1_anat_20240520.shp",
                                     read_geometry=False)
    official = dict(zip(regions.ADM1_PCODE, regions.AREA_SQKM, strict=True))
    composition = dict(db.execute(text(
        "SELECT pole_code, array_agg(code) FROM region GROUP BY pole_code")).all())
    areas = dict(db.execute(text(
        "SELECT code, ST_Area(ST_Transform(geom, 4326)::geography) / 1e6 FROM pole")).all())
    assert set(areas) == {"DKR", "THS", "CTR", "DBL", "NRD", "NRE", "SUD", "SDE"}
    for pole, codes in composition.items():
        expected = sum(official[c] for c in codes)
        assert areas[pole] == pytest.approx(expected, rel=1e-3), pole


def test_pole_composition(db):
    rows = dict(db.execute(text(
        "SELECT p.name, string_agg(r.name, ',' ORDER BY r.name) FROM pole p "
        "JOIN region r ON r.pole_code = p.code GROUP BY p.name")).all())
    assert rows["Centre"] == "Fatick,Kaffrine,Kaolack"
    assert rows["Sud-Est"] == "Kédougou,Tambacounda"
    assert rows["Sud"] == "Kolda,Sédhiou,Ziguinchor"
    assert rows["Diourbel-Louga"] == "Diourbel,Louga"


def test_commune_codes_derive_from_department_pcode_and_name(db):
    rows = dict(db.execute(text(
        "SELECT name, code FROM commune WHERE name IN ('Bargny', 'Sandiara', 'Mont-Rolland')")).all())
    assert rows == {"Bargny": "SN0104-bargny", "Sandiara": "SN1301-sandiara",
                    "Mont-Rolland": "SN1303-mont-rolland"}


def test_commune_arrondissement_holds_most_of_its_area(db):
    wrong = db.execute(text("""
        SELECT c.code FROM commune c
        WHERE c.arrondissement_code IS DISTINCT FROM (
            SELECT a.code FROM arrondissement a
            WHERE a.department_code = c.department_code AND ST_Intersects(a.geom, c.geom)
            ORDER BY ST_Area(ST_Intersection(a.geom, c.geom)) DESC, a.code LIMIT 1)
    """)).scalars().all()
    assert wrong == []
    assert db.execute(text("SELECT arrondissement_code FROM commune WHERE code = 'SN1303-mont-rolland'")).scalar() == "SN130302"


def test_all_communes_are_provisional_until_official_boundaries_arrive(db):
    assert db.execute(text("SELECT DISTINCT boundary_status FROM commune")).scalars().all() == ["provisional"]
    assert db.execute(text("SELECT DISTINCT boundary_status FROM region")).scalars().all() == ["official"]


def test_a_second_load_changes_nothing(db, settings):
    before = {t: table_fingerprint(db, t) for t in TABLES}
    report = load_reference(db, settings.data_dir)
    assert not report.changed
    assert all(c.unchanged == c.read for c in report.levels.values())
    assert {t: table_fingerprint(db, t) for t in TABLES} == before


def test_load_reports_the_repaired_thies_polygons(db, settings):
    report = load_reference(db, settings.data_dir)
    repaired = {(r["level"], r["code"]) for r in report.repairs}
    assert {("region", "SN13"), ("department", "SN1302")} <= repaired
    assert all(r["action"] == "ST_MakeValid" and r["invalid_reason"] for r in report.repairs)
    assert {"level": "arrondissement", "code": "SN010404",
            "defect": "nom absent de la source (N/A) ; conservé sans nom"} in report.defects


def test_aliases_are_loaded(db):
    aliases = db.execute(text(
        "SELECT alias FROM commune_alias WHERE commune_code = 'SN1303-mont-rolland' ORDER BY alias"
    )).scalars().all()
    # "Mont Rolland", the gazetteer's spelling, folds to the name itself: no alias needed.
    assert aliases == ["Mont Roland"]
