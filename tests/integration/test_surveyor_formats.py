"""Surveyors' formats on a real PostGIS: INSPIRE GML, DXF drawings, tables of bornes.

Expected figures are read from the source files with ezdxf or shapely, never from the importer's
own output. GML, DXF and CSV fixtures are synthetic, drawn inside Bargny; the Spanish Catastro's GML
files of ``../shared/data`` are read in tests/integration/shared_data/test_spanish_gml.py.
"""

import csv
import zipfile

import ezdxf
import geopandas as gpd
import pytest
from pyproj import Transformer
from sqlalchemy import text

from sifc.errors import ImportRejected
from sifc.imports.parcels import ParcelImportOptions, import_parcels, write_rejects
from sifc.imports.source import open_source
from tests.conftest import TABLES, table_fingerprint
from tests.integration.fixtures import bargny_origin

STATE = (*TABLES, "parcel_version", "import_batch")


def _staged(db):
    return db.execute(text("""
        SELECT ord, status, reasons, warnings, nicad, local_number, source_id, declared_area, attrs,
               ST_Area(geom) AS area
        FROM stage_parcel ORDER BY ord""")).mappings().all()


def _refusal(db, path, options):
    before = {t: table_fingerprint(db, t) for t in STATE}
    with pytest.raises(ImportRejected) as refused:
        import_parcels(db, path, options)
    assert {t: table_fingerprint(db, t) for t in STATE} == before
    return refused.value


# --- GML ---------------------------------------------------------------------------------

def test_a_gml_with_several_layers_reads_cadastral_parcel_or_asks(tmp_path):
    def collection(*members):
        body = "".join(f"""
  <gml:featureMember><cp:{kind} gml:id="{kind}.{n}"><cp:areaValue>400</cp:areaValue>
    <cp:geometry><gml:Polygon gml:id="g{kind}{n}" srsName="http://www.opengis.net/def/crs/EPSG/0/32628">
      <gml:exterior><gml:LinearRing><gml:posList>260000 1626000 260020 1626000 260020 1626020 260000 1626020
        260000 1626000</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></cp:geometry>
  </cp:{kind}></gml:featureMember>""" for n, kind in enumerate(members))
        return ('<?xml version="1.0" encoding="utf-8"?>\n<gml:FeatureCollection xmlns:gml="http://www.opengis.net/gml/3.2" '
                f'xmlns:cp="urn:x-sifc:test" gml:id="c">{body}\n</gml:FeatureCollection>\n')

    both = tmp_path / "both.gml"
    both.write_text(collection("CadastralZoning", "CadastralParcel", "CadastralParcel"), encoding="utf-8")
    with open_source(both) as info:
        assert (info.layer, info.features, info.srid) == ("CadastralParcel", 2, 32628)
    other = tmp_path / "other.gml"
    other.write_text(collection("Lot", "Zone"), encoding="utf-8")
    with pytest.raises(ImportRejected) as refused, open_source(other):
        pass
    assert refused.value.key == "import.choose_layer"
    with open_source(other, layer="Lot") as info:
        assert info.features == 1


# --- DXF ---------------------------------------------------------------------------------

def _square(x, y, size=20.0):
    return [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]


def _drawing(tmp_path, x, y, name="plan.dxf"):
    """A survey drawing: five parcels on two layers, texts, a bulge, and entities to ignore."""
    doc = ezdxf.new("R2010")
    doc.layers.add("PARCELLES")
    doc.layers.add("LOTS")
    msp = doc.modelspace()
    msp.add_lwpolyline(_square(x, y), close=True, dxfattribs={"layer": "PARCELLES"})
    msp.add_text("0104040100001", dxfattribs={"insert": (x + 5, y + 10), "height": 1.5})
    msp.add_lwpolyline(_square(x + 30, y), close=True, dxfattribs={"layer": "PARCELLES"})
    msp.add_text("12", dxfattribs={"insert": (x + 35, y + 5), "height": 1.5})
    msp.add_mtext("7", dxfattribs={"insert": (x + 45, y + 15), "char_height": 1.5})
    closing = [*_square(x + 60, y), (x + 60, y)]  # not flagged closed, last vertex on the first
    msp.add_lwpolyline(closing, dxfattribs={"layer": "LOTS"})
    msp.add_mtext("Lot C", dxfattribs={"insert": (x + 65, y + 10), "char_height": 1.5})
    # A 20 × 10 rectangle topped by a half circle of radius 10 (bulge 1 on the top side).
    msp.add_lwpolyline([(x + 90, y, 0), (x + 110, y, 0), (x + 110, y + 10, 1), (x + 90, y + 10, 0)],
                       format="xyb", close=True, dxfattribs={"layer": "PARCELLES"})
    msp.add_text("D1", dxfattribs={"insert": (x + 100, y + 15), "height": 1.5})
    msp.add_polyline2d(_square(x + 130, y), close=True, dxfattribs={"layer": "LOTS"})
    msp.add_lwpolyline([(x + 160, y), (x + 170, y)], close=True, dxfattribs={"layer": "PARCELLES"})  # degenerate
    msp.add_lwpolyline(_square(x, y + 40), dxfattribs={"layer": "PARCELLES"})  # open: ignored
    msp.add_line((x, y + 70), (x + 50, y + 70))
    msp.add_circle((x + 100, y + 80), radius=5)
    msp.add_text("perdu", dxfattribs={"insert": (x + 250, y + 250), "height": 1.5})
    path = tmp_path / name
    doc.saveas(path)
    return path


def test_dxf_parcels_keep_their_numbers_layers_and_arcs(db, tmp_path):
    x, y = bargny_origin(db)
    path = _drawing(tmp_path, x, y)
    with open_source(path, crs="EPSG:32628") as info:
        assert (info.fmt, info.geometry_type, info.crs_origin, info.srid) == ("DXF", "Polygon", "option", 32628)
        assert info.path.suffix == ".gpkg" and info.features == 6
        assert {"numero", "nicad", "calque", "handle", "sifc_reject"} <= set(info.fields)
        notes = {n["code"]: n for n in info.notes}
        assert notes["dxf_ignored"]["count"] == 3
        assert notes["dxf_ignored"]["types"] == {"CIRCLE": 1, "LINE": 1, "LWPOLYLINE": 1}
        assert (notes["dxf_ignored"]["open_polylines"], notes["dxf_ignored"]["other_layers"]) == (1, 0)
        assert notes["dxf_texts_outside"]["count"] == 1
        converted = gpd.read_file(info.path)
        layers = dict(zip(converted["numero"], converted["calque"], strict=True))

    report = import_parcels(db, path, ParcelImportOptions(crs="EPSG:32628", author="test"))

    assert (report.format, report.read, report.accepted) == ("DXF", 6, 5)
    assert report.rejected_by_reason == {"ring_too_few_vertices": 1}
    assert report.mapping == {"nicad": "nicad", "local_number": "numero", "source_id": "handle"}
    rows = {r["local_number"]: r for r in _staged(db)}
    assert set(rows) == {"0104040100001", "12 / 7", "Lot C", "D1", None}
    assert rows["0104040100001"]["nicad"] == "0104040100001"
    assert rows["12 / 7"]["nicad"] is None
    assert {k: layers[k] for k in rows if k} == {
        "0104040100001": "PARCELLES", "12 / 7": "PARCELLES", "Lot C": "LOTS", "D1": "PARCELLES"}
    assert all(r["status"] == "accepted" and r["area"] == pytest.approx(400) for k, r in rows.items()
               if k in ("0104040100001", "12 / 7", "Lot C"))
    assert rows["D1"]["area"] == pytest.approx(200 + 3.141592653589793 * 50, rel=1e-3)
    stored = db.execute(text("""
        SELECT local_number, nicad, source_id FROM parcel WHERE batch_id = CAST(:b AS uuid) ORDER BY area_m2"""),
        {"b": report.batch_id}).all()
    assert len(stored) == 5 and all(r.source_id for r in stored)  # the DXF handle
    degenerate = [r for r in _staged(db) if r["status"] == "rejected"]
    assert [list(r["reasons"]) for r in degenerate] == [["ring_too_few_vertices"]]


def test_dxf_layer_option_keeps_one_drawing_layer(db, tmp_path):
    x, y = bargny_origin(db)
    report = import_parcels(db, _drawing(tmp_path, x, y),
                            ParcelImportOptions(crs="EPSG:32628", layer="lots", dry_run=True))
    assert (report.read, report.accepted) == (2, 2)
    ignored = next(n for n in report.file_notes if n["code"] == "dxf_ignored")
    assert ignored["count"] == 3 + 4 and ignored["other_layers"] == 4  # the closed polylines of PARCELLES


def test_dxf_mirrored_outline_and_crossing_texts(db, tmp_path):
    """An outline drawn with extrusion (0, 0, -1) (mirrored OCS, common in CAD exports) lands where it
    is seen; a bow-tie is kept for --on-invalid; two NICAD-shaped texts give no NICAD."""
    x, y = bargny_origin(db)
    doc = ezdxf.new()
    msp = doc.modelspace()
    msp.add_lwpolyline([(-px, py) for px, py in _square(x, y)], close=True, dxfattribs={"extrusion": (0, 0, -1)})
    msp.add_text("0104040100003", dxfattribs={"insert": (x + 5, y + 5)})
    msp.add_text("0104040100004", dxfattribs={"insert": (x + 5, y + 15)})
    a, b, c, d = _square(x + 40, y)
    msp.add_lwpolyline([a, c, b, d], close=True)
    path = tmp_path / "miroir.dxf"
    doc.saveas(path)
    report = import_parcels(db, path, ParcelImportOptions(crs="EPSG:32628", on_invalid="reject", dry_run=True))
    rows = _staged(db)
    assert rows[0]["local_number"] == "0104040100003 / 0104040100004" and rows[0]["nicad"] is None
    assert rows[0]["status"] == "accepted" and rows[0]["area"] == pytest.approx(400)
    assert (rows[1]["status"], list(rows[1]["reasons"])) == ("rejected", ["invalid_geometry"])
    assert report.accepted == 1


def test_dxf_inside_a_zip(db, tmp_path):
    x, y = bargny_origin(db)
    drawing = _drawing(tmp_path, x, y)
    bundle = tmp_path / "livraison.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.write(drawing, "plans/plan.dxf")
    report = import_parcels(db, bundle, ParcelImportOptions(crs="EPSG:32628", dry_run=True))
    assert (report.format, report.accepted) == ("DXF", 5)


def test_dxf_refusals(db, tmp_path):
    x, y = bargny_origin(db)
    refused = _refusal(db, _drawing(tmp_path, x, y), ParcelImportOptions())
    assert refused.key == "import.dxf_needs_crs" and "--crs" in refused.message("fr")

    doc = ezdxf.new()
    doc.modelspace().add_lwpolyline(_square(x, y))  # open
    doc.modelspace().add_line((x, y), (x + 10, y))
    lines_only = tmp_path / "traits.dxf"
    doc.saveas(lines_only)
    assert _refusal(db, lines_only, ParcelImportOptions(crs="EPSG:32628")).key == "import.dxf_no_parcels"

    garbage = tmp_path / "casse.dxf"
    garbage.write_bytes(b"\x00\x01 ceci n'est pas un DXF \xff" * 50)
    assert _refusal(db, garbage, ParcelImportOptions(crs="EPSG:32628")).key == "import.unreadable"


# --- tables of bornes --------------------------------------------------------------------

def _table(path, header, rows, delimiter=",", encoding="utf-8", decimal="."):
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        for parcel, order, bx, by in rows:
            writer.writerow([parcel, order, f"{bx:.3f}".replace(".", decimal), f"{by:.3f}".replace(".", decimal)])
    return path


def _bornes(parcel, corners, start=1):
    return [(parcel, start + i, cx, cy) for i, (cx, cy) in enumerate(corners)]


def _two_parcels(x, y):
    first = _bornes("P-001", _square(x, y))
    rows = [first[2], first[0], first[3], first[1]]  # lines in any order: the order column rules
    closed = _square(x + 30, y)
    rows += _bornes("0104040100002", [*closed, closed[0]])  # the first borne repeated at the end
    return rows


@pytest.mark.parametrize(("variant", "srid", "header", "delimiter", "encoding", "decimal"), [
    ("comma", 32628, ["parcelle", "ordre", "x", "y"], ",", "utf-8", "."),
    ("semicolon", 20138, ["Numéro", "N° borne", "Est", "Nord"], ";", "latin-1", ","),
    ("tab", 32628, ["Parcel", "Vertex", "Easting", "Northing"], "\t", "utf-8-sig", "."),
])
def test_tables_of_bornes_become_parcels(db, tmp_path, variant, srid, header, delimiter, encoding, decimal):
    x, y = bargny_origin(db)
    rows = _two_parcels(x, y)
    if srid != 32628:
        to_file = Transformer.from_crs(32628, srid, always_xy=True)
        rows = [(p, o, *to_file.transform(bx, by)) for p, o, bx, by in rows]
    path = _table(tmp_path / f"bornes_{variant}.csv", header, rows, delimiter, encoding, decimal)

    with open_source(path, crs=f"EPSG:{srid}") as info:
        converted = gpd.read_file(info.path)
    assert dict(zip(converted["numero"], converted["bornes"], strict=True)) == {"P-001": 4, "0104040100002": 4}

    report = import_parcels(db, path, ParcelImportOptions(crs=f"EPSG:{srid}", author="test"))

    assert (report.format, report.crs, report.crs_origin) == ("CSV (bornes)", f"EPSG:{srid}", "option")
    assert (report.read, report.accepted, report.rejected) == (2, 2, 0)
    rows_by_number = {r["local_number"]: r for r in _staged(db)}
    assert set(rows_by_number) == {"P-001", "0104040100002"}
    assert rows_by_number["0104040100002"]["nicad"] == "0104040100002"
    assert rows_by_number["P-001"]["nicad"] is None
    for row in rows_by_number.values():  # Adindan and WGS 84 UTM 28N differ by their datum, not their scale
        assert row["area"] == pytest.approx(400, rel=2e-3)
    stored = db.execute(text("SELECT count(*) FROM parcel WHERE batch_id = CAST(:b AS uuid)"),
                        {"b": report.batch_id}).scalar()
    assert stored == 2


def test_defective_outlines_are_rejected_one_by_one(db, tmp_path):
    x, y = bargny_origin(db)
    rows = _bornes("BON", _square(x, y))
    rows += [("TROU", o, bx, by) for o, (bx, by) in zip((1, 2, 4, 5), _square(x + 30, y), strict=True)]
    rows += [("DOUBLE", o, bx, by) for o, (bx, by) in zip((1, 2, 2, 3), _square(x + 60, y), strict=True)]
    rows += _bornes("PEU", _square(x + 90, y)[:2])
    a, b, c, d = _square(x + 120, y)
    rows += _bornes("NOEUD", [a, c, b, d])  # bow-tie: bornes 2 and 3 swapped
    path = _table(tmp_path / "defauts.csv", ["num_parcelle", "sommet", "X", "Y"], rows)

    with open_source(path, crs="EPSG:32628") as info:
        written = gpd.read_file(info.path, layer=info.layer)
    codes = {n: c if isinstance(c, str) else None for n, c in zip(written["numero"], written["sifc_reject"], strict=True)}
    assert codes == {"BON": None, "TROU": "ring_open", "DOUBLE": "ring_open", "PEU": "ring_too_few_vertices",
                     "NOEUD": "ring_self_intersecting"}
    assert written.set_index("numero").geometry["PEU"] is None

    report = import_parcels(db, path, ParcelImportOptions(crs="EPSG:32628", author="test", dry_run=True))
    assert report.accepted == 1
    assert report.rejected_by_reason == {"ring_open": 2, "ring_self_intersecting": 1, "ring_too_few_vertices": 1}
    rejects = tmp_path / "defauts_rejets.gpkg"
    assert write_rejects(db, rejects) == 4
    reasons = gpd.read_file(rejects).set_index("src_numero")["sifc_reasons"].to_dict()
    assert reasons == {"TROU": "ring_open", "DOUBLE": "ring_open", "PEU": "ring_too_few_vertices",
                       "NOEUD": "ring_self_intersecting"}


def test_table_refusals(db, tmp_path):
    x, y = bargny_origin(db)
    good = _table(tmp_path / "bornes.csv", ["parcelle", "ordre", "x", "y"], _two_parcels(x, y))
    refused = _refusal(db, good, ParcelImportOptions())
    assert refused.key == "import.bornes_needs_crs" and "EPSG:20138" in refused.message("fr")
    assert "--crs" in refused.message("en")

    broken = tmp_path / "virgule.csv"
    lines = good.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[2], "12O45.5")  # a letter O for a zero
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = _refusal(db, broken, ParcelImportOptions(crs="EPSG:32628"))
    assert refused.key == "import.bornes_bad_value"
    assert refused.params["line"] == 4 and refused.params["column"] == "x" and "ligne 4" in refused.message("fr")

    unknown = tmp_path / "colonnes.csv"
    unknown.write_text("ident;rang_b;coord_e;coord_n\nA;1;1;2\n", encoding="utf-8")
    refused = _refusal(db, unknown, ParcelImportOptions(crs="EPSG:32628"))
    assert refused.key == "import.bornes_headers"
    assert "ident, rang_b, coord_e, coord_n" in refused.message("fr")
    assert "Expected" in refused.message("en")
