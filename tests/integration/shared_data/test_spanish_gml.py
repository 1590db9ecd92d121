"""The Spanish Catastro's INSPIRE GML files (``../shared/data``): each opens with its CRS and count, is read
whole and found outside Senegal, and one parcel moved into Bargny is accepted with its area.

Expected figures are read from the source files with ElementTree or shapely, never from the importer's own
output. The synthetic GML, DXF and bornes cases are in tests/integration/test_surveyor_formats.py.
"""

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from shapely.geometry import Polygon
from sqlalchemy import text

from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.imports.source import open_source
from tests.conftest import SHARED_DATA, shared_path

SPAIN = SHARED_DATA / "cadastre" / "spain_catastro_inspire_gml"
SPANISH_FILES = sorted(p.name for p in SPAIN.glob("*.gml")) if SPAIN.exists() else []
GML = "{http://www.opengis.net/gml/3.2}"


def _gml_facts(path: Path) -> tuple[int, int]:
    """Number of CadastralParcel features and the EPSG code of the first srsName, read directly."""
    parcels = sum(1 for _, element in ElementTree.iterparse(path) if element.tag.endswith("}CadastralParcel"))
    srs = re.search(r'srsName="[^"]*?(\d+)"', path.read_text(encoding="utf-8"))
    assert srs
    return parcels, int(srs.group(1))


def test_the_spanish_gml_corpus_is_there():
    folder = shared_path("cadastre", "spain_catastro_inspire_gml")
    assert len(list(folder.glob("*.gml"))) == 23


@pytest.mark.parametrize("name", SPANISH_FILES)
def test_every_spanish_gml_opens_with_its_crs_and_count(name):
    path = shared_path("cadastre", "spain_catastro_inspire_gml", name)
    parcels, srid = _gml_facts(path)
    assert srid == (32628 if name == "canarias_1.gml" else 25830)
    with open_source(path) as info:
        assert (info.fmt, info.layer, info.srid, info.crs_origin) == ("GML", "CadastralParcel", srid, "file")
        assert info.features == parcels
        assert "areaValue" in info.fields
        assert {"inspireId_localId", "localId"} & set(info.fields)
    assert not list(path.parent.glob("*.gfs"))  # GDAL's schema cache goes to the scratch folder


@pytest.mark.parametrize("name", SPANISH_FILES)
def test_every_spanish_gml_is_read_whole_and_found_outside_senegal(db, name):
    path = shared_path("cadastre", "spain_catastro_inspire_gml", name)
    parcels, _ = _gml_facts(path)
    report = import_parcels(db, path, ParcelImportOptions(dry_run=True, author="test"))
    assert report.format == "GML" and report.read == parcels
    assert report.mapping["declared_area"] == "areaValue"
    assert report.mapping["source_id"] in ("inspireId_localId", "localId")
    assert report.rejected_by_reason == {"outside_senegal": parcels}
    assert report.accepted == 0


def _bargny_centre(db) -> tuple[float, float, float]:
    return tuple(db.execute(text("""
        SELECT ST_X(c.center), ST_Y(c.center), c.radius FROM commune, LATERAL ST_MaximumInscribedCircle(geom) c
        WHERE name ILIKE 'Bargny'""")).one())


def _register_namespaces(path: Path) -> None:
    for _, (prefix, uri) in ElementTree.iterparse(path, events=("start-ns",)):
        ElementTree.register_namespace(prefix, uri)


def test_a_canary_parcel_moved_into_bargny_is_accepted_with_its_area(db, tmp_path):
    source = shared_path("cadastre", "spain_catastro_inspire_gml", "canarias_1.gml")
    _register_namespaces(source)
    tree = ElementTree.parse(source)
    lists = [e for e in tree.iter() if e.tag in (f"{GML}posList", f"{GML}pos")]
    coordinates = [[float(v) for v in e.text.split()] for e in lists]
    xs = [c for values in coordinates for c in values[0::2]]
    ys = [c for values in coordinates for c in values[1::2]]
    centre_x, centre_y, radius = _bargny_centre(db)
    assert max(max(xs) - min(xs), max(ys) - min(ys)) < radius  # the parcel fits in Bargny's widest circle
    dx, dy = centre_x - (min(xs) + max(xs)) / 2, centre_y - (min(ys) + max(ys)) / 2
    for element, values in zip(lists, coordinates, strict=True):
        element.text = " ".join(f"{v + (dx if i % 2 == 0 else dy):.3f}" for i, v in enumerate(values))
    target = tmp_path / "canarias_bargny.gml"
    tree.write(target, xml_declaration=True, encoding="utf-8")
    (ring,) = coordinates  # one parcel, one exterior ring
    expected_area = Polygon(list(zip(ring[0::2], ring[1::2], strict=True))).area
    local_id = next(e.text for e in tree.iter() if e.tag.endswith("}localId"))
    declared = float(next(e.text for e in tree.iter() if e.tag.endswith("}areaValue")))

    report = import_parcels(db, target, ParcelImportOptions(author="test"))

    assert (report.format, report.crs, report.crs_origin) == ("GML", "EPSG:32628", "file")
    assert (report.read, report.accepted, report.rejected) == (1, 1, 0)
    assert report.communes == {"SN0104-bargny": 1}
    parcel = db.execute(text("""
        SELECT source_id, declared_area_m2, area_m2, commune_code FROM parcel WHERE batch_id = CAST(:b AS uuid)"""),
        {"b": report.batch_id}).mappings().one()
    assert parcel["source_id"] == local_id == "35017A00600162"
    assert parcel["declared_area_m2"] == declared == 92086
    assert parcel["area_m2"] == pytest.approx(expected_area, abs=0.5)
    assert parcel["area_m2"] == pytest.approx(declared, rel=0.01)  # the Catastro's figure matches its outline
