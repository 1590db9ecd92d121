"""Every data set of the broken-shapefile corpus gets the outcome EXPECTED.md gives.

"Read" figures are those of the reading and geometry stages (a dry run); none of these files
lies in Senegal, so the location checks that follow reject their features, as they should.
"""

from pathlib import Path

import pytest
from sqlalchemy import text

from sifc.errors import ImportRejected
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.conftest import TABLES, table_fingerprint

CORPUS = Path(__file__).resolve().parents[1] / "data" / "shp_corpus"

# data set → (--crs to give or None, expected figures)
READ = {
    "fiona_coutwildrnp": (None, {"read": 67, "invalid": 0, "attributes": 10, "crs": "EPSG:4326"}),
    "fiona_gre": (None, {"read": 1, "attributes": 25, "crs": "EPSG:4326"}),
    "pyogrio_naturalearth_lowres": (None, {"read": 177, "invalid": 0}),
    "shapelib_CoHI_GCS12": (None, {"read": 4, "crs": "EPSG:4269"}),
    "pyshp_blockgroups": ("EPSG:4326", {"read": 663, "attributes": 43}),
    "pyshp_latin1": ("EPSG:4326", {"read": 1, "notes": {"shx_rebuilt"}}),
    "shapelib_anno": ("EPSG:4326", {"read": 201, "invalid": 1}),
    "shapelib_mexico_lakes": ("EPSG:4326", {"read": 3}),
    "shpjs_no-dbf": ("EPSG:4326", {"read": 14, "invalid": 9, "attributes": 0, "notes": {"dbf_missing", "shx_rebuilt"}}),
    "shapefilers_polygon_hole": ("EPSG:4326", {"read": 1}),
    "shapefilers_polygonz": ("EPSG:4326", {"read": 1, "notes": {"z_dropped", "m_dropped"}}),
    "mbostock_polygonm": ("EPSG:4326", {"read": 1, "notes": {"m_dropped", "shx_rebuilt"}}),
}
NEEDS_CRS = {"pyshp_blockgroups", "pyshp_latin1", "shapelib_anno", "shapelib_mexico_lakes", "shpjs_no-dbf",
             "shapefilers_polygon_hole", "shapefilers_polygonz", "mbostock_polygonm"}
REFUSED = {
    "mbostock_empty": ("import.empty", None),
    "fiona_test_tin": ("import.not_polygons", "MultiPatch"),
    "shapelib_multipatch": ("import.not_polygons", "MultiPatch"),
    "shapelib_brklinz": ("import.not_polygons", "LineString"),
    "shpjs_export_polylinez": ("import.not_polygons", "LineString"),
    "shpjs_zero-len-line": ("import.not_polygons", "LineString"),
    "shapelib_multipnt": ("import.not_polygons", "MultiPoint"),
    "mbostock_multipointm": ("import.not_polygons", "MultiPoint"),
    "shapefilers_multipointz": ("import.not_polygons", "MultiPoint"),
    "mbostock_boolean-property": ("import.not_polygons", "Point"),
    "mbostock_date-property": ("import.not_polygons", "Point"),
    "mbostock_mixed-properties": ("import.not_polygons", "Point"),
    "mbostock_utf8-property": ("import.not_polygons", "Point"),
    "mbostock_null": ("import.not_polygons", "Point"),
    "mbostock_ignore-properties": ("import.not_polygons", "Point"),
    "mbostock_singleton": ("import.not_polygons", "Point"),
    "shpjs_codepage": ("import.not_polygons", "Point"),
    "shpjs_htmlcpg": ("import.not_polygons", "Point"),
}


def test_the_corpus_is_complete():
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir() and p.name != "LICENSES"}
    assert folders == set(READ) | set(REFUSED)
    assert len(folders) == 30


@pytest.mark.parametrize("name", sorted(READ))
def test_readable_data_sets(db, name):
    crs, expected = READ[name]
    report = import_parcels(db, CORPUS / name, ParcelImportOptions(crs=crs, dry_run=True))
    assert report.read == expected["read"]
    if "invalid" in expected:
        assert report.invalid == expected["invalid"]
    if "attributes" in expected:
        assert report.attributes == expected["attributes"]
    if "crs" in expected:
        assert report.crs == expected["crs"]
    notes = {str(n["code"]) for n in report.file_notes}
    assert expected.get("notes", set()) <= notes
    # The location checks come after: none of these lies in Senegal.
    assert report.accepted == 0 and report.batch_id is None
    staged = db.execute(text("SELECT count(*) FROM stage_parcel")).scalar()
    assert staged == expected["read"]


@pytest.mark.parametrize("name", sorted(NEEDS_CRS))
def test_files_without_crs_are_refused_without_crs_option(db, name):
    with pytest.raises(ImportRejected) as refused:
        import_parcels(db, CORPUS / name, ParcelImportOptions(dry_run=True))
    assert refused.value.key == "import.no_crs"
    assert "--crs" in refused.value.message("fr")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_data_sets(db, name):
    before = {t: table_fingerprint(db, t) for t in (*TABLES, "parcel_version", "import_batch")}
    key, found = REFUSED[name]
    with pytest.raises(ImportRejected) as refused:
        import_parcels(db, CORPUS / name, ParcelImportOptions(crs="EPSG:4326"))
    assert refused.value.key == key
    if found:
        assert found in refused.value.message("fr")
    assert {t: table_fingerprint(db, t) for t in (*TABLES, "parcel_version", "import_batch")} == before


def test_latin1_without_cpg_is_decoded(db):
    import_parcels(db, CORPUS / "pyshp_latin1", ParcelImportOptions(crs="EPSG:4326", dry_run=True))
    assert db.execute(text("SELECT attrs->>'Name' FROM stage_parcel")).scalar() == "Ñandú"


def test_cyrillic_and_tamil_names_are_intact(db):
    import_parcels(db, CORPUS / "fiona_gre", ParcelImportOptions(dry_run=True))
    names = db.execute(text("SELECT attrs->>'name_ru', attrs->>'name_ta' FROM stage_parcel")).one()
    assert tuple(names) == ("Гренада", "கிரெனடா")


def test_hole_is_kept(db):
    import_parcels(db, CORPUS / "shapefilers_polygon_hole", ParcelImportOptions(crs="EPSG:4326", dry_run=True))
    assert db.execute(text("SELECT ST_NumInteriorRings(ST_GeometryN(coalesce(src, geom), 1)) FROM stage_parcel")).scalar() == 1


def test_z_and_m_are_dropped(db):
    import_parcels(db, CORPUS / "shapefilers_polygonz", ParcelImportOptions(crs="EPSG:4326", dry_run=True))
    assert db.execute(text("SELECT ST_CoordDim(coalesce(src, geom)) FROM stage_parcel")).scalar() == 2


def test_invalid_geometries_are_rejected_on_request(db):
    report = import_parcels(db, CORPUS / "shpjs_no-dbf",
                            ParcelImportOptions(crs="EPSG:4326", dry_run=True, on_invalid="reject"))
    assert report.rejected_by_reason.get("invalid_geometry") == 9
    assert report.invalid == 9


def test_html_cpg_is_ignored_with_a_warning(db):
    from sifc.imports.source import open_source

    with pytest.raises(ImportRejected) as refused, open_source(CORPUS / "shpjs_htmlcpg"):
        pass
    assert refused.value.key == "import.not_polygons"
    # The .cpg check itself (it runs before the geometry verdict):
    from sifc.imports.source import _shapefile_encoding

    notes: list = []
    encoding, origin = _shapefile_encoding(next((CORPUS / "shpjs_htmlcpg").glob("*.shp")), notes)
    # The .cpg names no code page and the DBF's language driver byte is 0 (none): the Latin-1 fallback.
    assert [n["code"] for n in notes] == ["cpg_unknown", "encoding_fallback"]
    assert (encoding, origin) == ("ISO-8859-1", "fallback")
