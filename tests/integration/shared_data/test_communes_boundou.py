"""Official commune boundaries of the PROCASEF Boundou communes (``../shared/data``) replacing the
provisional ones (``import-communes``); the synthetic cases are in tests/integration/test_communes_import.py."""

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from sifc.errors import ImportRejected
from sifc.territories.communes_import import ImportOptions, import_communes, read_alias_file
from tests.conftest import TABLES, shared_path, table_fingerprint

BOUNDOU = ("cadastre", "procasef_boundou", "procasef_boundou_17_communes.gpkg")
NEED_ALIASES = {"FONGOLEMBI": "SN0601-fongolimbi", "TOMBORONKOTO": "SN0601-tomboroncoto",
                "SABODALA": "SN0603-sabadola", "DINDEFELLO": "SN0601-dindefelo"}
ALIAS_CSV = "FONGOLEMBI,Fongolimbi\nTOMBORONKOTO,Tomboroncoto\nSABODALA,Sabadola\nDINDEFELLO,Dindéfélo\n"


def _geoms(db, codes):
    rows = db.execute(text("SELECT code, ST_AsBinary(geom) FROM commune WHERE code = ANY(:c)"),
                      {"c": list(codes)}).all()
    return {code: shapely.from_wkb(bytes(wkb)) for code, wkb in rows}


def test_boundou_without_aliases_leaves_exactly_four_unmatched(db):
    path = shared_path(*BOUNDOU)
    source = gpd.read_file(path)
    before = _geoms(db, NEED_ALIASES.values())

    report = import_communes(db, path, ImportOptions(code_field="COD_ENTITE"))

    assert {u["name"] for u in report.unmatched} == set(NEED_ALIASES)
    assert all(u["reason"] == "no_commune_with_this_name" for u in report.unmatched)
    assert len(report.matched) == 13
    matched = {m["feature_name"]: m for m in report.matched}
    assert matched["MISSIRAH"]["commune"] == "SN1204-missirah"  # not Missirah of Mbacké
    assert matched["MISSIRAH"]["matched_by"] == "name+department"

    # The 13 are official, with the file's geometry and national code.
    official = source[~source.CCRCA.isin(list(NEED_ALIASES))]
    stored = dict(db.execute(text(
        "SELECT national_code, ST_Area(geom) FROM commune WHERE boundary_status = 'official'")).all())
    assert set(stored) == set(official.COD_ENTITE)
    for row in official.itertuples():
        assert stored[row.COD_ENTITE] == pytest.approx(row.geometry.area, rel=1e-6)

    # The 4 unmatched stay provisional, with no national code; their polygons change only
    # where an official polygon overlaps them (official boundaries take precedence).
    union = shapely.union_all(official.geometry.values)
    after = _geoms(db, NEED_ALIASES.values())
    rows = db.execute(text("SELECT boundary_status, national_code FROM commune WHERE code = ANY(:c)"),
                      {"c": list(NEED_ALIASES.values())}).all()
    assert {tuple(r) for r in rows} == {("provisional", None)}
    for code, old in before.items():
        expected = old.difference(union)
        assert after[code].symmetric_difference(expected).area < 1.0, code
    clipped = {c["commune"] for c in report.clipped}
    assert set(NEED_ALIASES.values()) <= clipped


def test_replaced_boundaries_are_kept_with_their_validity(db):
    path = shared_path(*BOUNDOU)
    import_communes(db, path, ImportOptions(code_field="COD_ENTITE"))
    rows = db.execute(text("""
        SELECT v.boundary_status, v.valid_from <= v.valid_to, v.replaced_by LIKE '%procasef%',
               ST_Equals(v.geom, c.geom)
        FROM boundary_version v JOIN commune c ON c.code = v.unit_code
        WHERE v.unit_code = 'SN1204-missirah' AND v.level = 'commune'
    """)).all()
    assert rows and all(r[0] == "provisional" and r[1] and r[2] and not r[3] for r in rows)


def test_boundou_with_aliases_matches_the_last_four(db, tmp_path):
    path = shared_path(*BOUNDOU)
    import_communes(db, path, ImportOptions(code_field="COD_ENTITE"))
    aliases = tmp_path / "aliases.csv"
    aliases.write_text(ALIAS_CSV, encoding="utf-8")
    assert len(ALIAS_CSV.splitlines()) == 4

    report = import_communes(db, path, ImportOptions(code_field="COD_ENTITE",
                                                     aliases=read_alias_file(aliases)))
    assert report.unmatched == []
    assert report.aliases_added == 4
    assert {m["commune"] for m in report.matched} == set(NEED_ALIASES.values())
    assert all(m["matched_by"] == "alias" for m in report.matched)
    assert len(report.unchanged) == 13  # a re-import of the same 13 changes nothing
    assert db.execute(text("SELECT count(*) FROM commune WHERE boundary_status = 'official'")).scalar() == 17
    codes = dict(db.execute(text(
        "SELECT code, national_code FROM commune WHERE code = 'SN0603-sabadola'")).all())
    assert codes == {"SN0603-sabadola": "13320203"}


def test_land_left_without_a_commune_is_reported_and_located(db, client):
    path = shared_path(*BOUNDOU)
    report = import_communes(db, path, ImportOptions(code_field="COD_ENTITE"))
    orphaned = {o["commune"]: o["area_km2"] for o in report.orphaned}
    assert orphaned["SN1204-missirah"] > 1
    lon, lat = db.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (
            SELECT ST_Transform(ST_PointOnSurface(ST_Difference(v.geom,
                (SELECT ST_Union(c.geom) FROM commune c WHERE ST_Intersects(c.geom, v.geom)))), 4326) p
            FROM boundary_version v WHERE v.unit_code = 'SN1204-missirah' AND v.level = 'commune'
        ) q""")).one()
    body = client.get("/locate", params={"lon": lon, "lat": lat}).json()
    assert body["commune"] is None
    assert body["department"]["code"] == "SN1204"
    assert body["pole"]["code"] == "SDE"
    assert body["reasons"] and "aucune commune" in body["reasons"][0]


def test_strict_refuses_the_whole_file_and_changes_nothing(db):
    path = shared_path(*BOUNDOU)
    before = {t: table_fingerprint(db, t) for t in TABLES}
    with pytest.raises(ImportRejected) as refused, db.begin_nested():
        import_communes(db, path, ImportOptions(code_field="COD_ENTITE", strict=True))
    assert refused.value.key == "import.strict_unmatched"
    assert "DINDEFELLO" in refused.value.message("fr")
    assert {t: table_fingerprint(db, t) for t in TABLES} == before
