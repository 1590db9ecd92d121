"""QGIS 3.22 (Debian's, headless, system Python) opens a field package's project and edits through it.

A GeoPackage like a package's (GPKG 1.2, EPSG:32628, every layer of :mod:`sifc.field.layers` with its
fields, a few features near Bargny) is written with pyogrio, the project beside it with
:mod:`sifc.field.project`; then :mod:`tests.e2e.slow_clients.qgis_field_script` reads it and edits it
as a tablet user would. The QField/Mergin checklist: relative paths, one GeoPackage read through OGR,
a valid CRS, the forms (value lists, photos under DCIM relative to the project, read-only fields, aliases).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyogrio
import pytest
import shapely

from sifc.crs import STORAGE_SRID
from sifc.field import layers as L
from sifc.field.project import write_project
from tests.e2e.slow_clients.qgis_field_script import require_qgis, run

EXTENT = (259_900.0, 1_621_900.0, 260_200.0, 1_622_200.0)
ARROW_TYPES = {"text": pa.string(), "int": pa.int64(), "real": pa.float64(), "bool": pa.bool_(), "date": pa.date32()}


def _square(x: float, y: float, side: float = 20.0) -> shapely.MultiPolygon:
    return shapely.MultiPolygon([shapely.box(x, y, x + side, y + side)])


def _value(field: L.Field, row: int) -> Any:
    if field.values:
        return field.values[row % len(field.values)][0]
    return {"text": f"{field.name}-{row}", "int": row + 1, "real": 100.5 + row, "bool": False,
            "date": datetime.date(2026, 11, 2 + row)}[field.kind]


# Features per layer (fid → geometry, or None for tables); the editable new_* layers start empty.
FEATURES: dict[str, dict[int, Any]] = {
    "parcels": {1: _square(260_000, 1_622_000), 2: _square(260_020, 1_622_000), 3: _square(260_040, 1_622_000)},
    "neighbours": {10: _square(260_000, 1_622_020)},
    "commune": {1: shapely.MultiPolygon([shapely.box(*EXTENT)])},
    "units": {1: shapely.MultiPolygon([shapely.box(EXTENT[2], EXTENT[1], EXTENT[2] + 300, EXTENT[3])])},
    "bornes": {1: shapely.Point(260_000, 1_622_000), 2: shapely.Point(260_020, 1_622_000)},
    "new_parcels": {}, "new_bornes": {},
    "holders": {1: None}, "sifc_package": {1: None, 2: None},
}


def build_gpkg(path: Path, layers: tuple[L.Layer, ...]) -> None:
    """A package-like GeoPackage: every layer with its fields and explicit fids (GPKG 1.2, UTM 28N)."""
    for number, layer in enumerate(layers):
        features = FEATURES[layer.name]
        columns: dict[str, pa.Array] = {"fid": pa.array(list(features), pa.int64())}
        for field in layer.fields:
            columns[field.name] = pa.array([_value(field, row) for row in range(len(features))], ARROW_TYPES[field.kind])
        spatial: dict[str, Any] = {}
        if layer.geometry:
            columns["geom"] = pa.array(shapely.to_wkb(list(features.values())), pa.binary())
            spatial = {"geometry_name": "geom", "geometry_type": layer.geometry, "crs": f"EPSG:{STORAGE_SRID}"}
        options = {"dataset_options": {"VERSION": "1.2"}} if number == 0 else {}
        pyogrio.write_arrow(pa.table(columns), path, layer=layer.name, driver="GPKG", layer_options={"FID": "fid"},
                            **spatial, **options)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    require_qgis()
    folder = tmp_path_factory.mktemp("package")
    layers = L.layers(holders=True)
    build_gpkg(folder / L.GPKG_NAME, layers)
    (folder / L.PHOTO_DIR).mkdir()
    write_project(folder, layers=layers, extent=EXTENT, title="Bargny — dossier de terrain <essai> & co")
    return folder


@pytest.fixture(scope="module")
def inspected(package, tmp_path_factory) -> dict[str, Any]:
    return run("inspect", package / L.PROJECT_NAME, home=tmp_path_factory.mktemp("qgis_home"))


def test_qgis_reads_the_project_in_the_storage_crs_with_relative_paths(inspected):
    assert inspected["qgis"].startswith("3.22"), inspected["qgis"]
    assert inspected["read"] is True
    assert inspected["title"] == "Bargny — dossier de terrain <essai> & co"
    assert inspected["crs"] == f"EPSG:{STORAGE_SRID}" and inspected["crs_valid"] is True
    assert inspected["file_path_storage"] == "relative"
    assert inspected["default_view_extent"] == pytest.approx(list(EXTENT))
    assert inspected["default_view_crs"] == f"EPSG:{STORAGE_SRID}"
    assert inspected["snapping"] is True
    # Re-saved by QGIS: still relative, every source the package's GeoPackage.
    resaved = inspected["resaved"]
    assert resaved["written"] is True and resaved["absolute"] == "false"
    expected = sorted(f"./data.gpkg|layername={layer.name}" for layer in L.LAYERS)
    assert resaved["datasources"] == expected
    assert sorted(resaved["tree_sources"]) == expected


def test_every_layer_is_valid_read_by_ogr_in_drawing_order(inspected):
    assert inspected["tree"] == [layer.name for layer in L.LAYERS]
    assert set(inspected["layers"]) == {layer.name for layer in L.LAYERS}
    for layer in L.LAYERS:
        got = inspected["layers"][layer.name]
        assert got["valid"] is True, layer.name
        assert got["provider"] == "ogr", layer.name
        assert got["title"] == layer.title
        assert got["features"] == len(FEATURES[layer.name]), layer.name
        assert got["read_only"] is (not layer.editable), layer.name
        if layer.geometry:
            assert got["crs"] == f"EPSG:{STORAGE_SRID}" and got["crs_valid"] is True, layer.name
            assert got["geometry"] == layer.geometry, layer.name
        else:
            assert got["geometry"] == "NoGeometry", layer.name
        assert "dbname=" not in got["source"] and "http" not in got["source"]
        assert got["source"].endswith(f"/data.gpkg|layername={layer.name}")


def test_forms_carry_aliases_value_lists_photos_and_read_only_fields(inspected):
    for layer in L.LAYERS:
        fields = inspected["layers"][layer.name]["fields"]
        assert list(fields) == ["fid", *(field.name for field in layer.fields)]
        assert fields["fid"]["read_only"] is True
        for field in layer.fields:
            got = fields[field.name]
            assert got["alias"] == field.label, (layer.name, field.name)
            assert got["read_only"] is (not (field.editable and layer.editable)), (layer.name, field.name)
            if field.widget == "ValueMap":
                assert got["widget"] == "ValueMap"
                assert got["config"]["map"] == [{label: value} for value, label in field.values]
            if field.widget in ("CheckBox", "ExternalResource"):
                assert got["widget"] == field.widget, (layer.name, field.name)
    parcels = inspected["layers"]["parcels"]["fields"]
    assert parcels["land_use"]["config"]["map"] == [{label: value} for value, label in L.LAND_USES]
    assert parcels["survey_done"]["type"].lower() in ("boolean", "bool")
    for name in ("photo", "pv_photo"):
        config = parcels[name]["config"]
        assert config["DefaultRoot"] == "DCIM" and config["RelativeStorage"] == 1 and config["StorageMode"] == 0
        assert config["DocumentViewer"] == 1
        root = config["PropertyCollection"]["properties"]["propertyRootPath"]
        assert root["active"] is True and root["expression"] == "@project_folder || '/DCIM'"
    for name in L.READ_ONLY_PARCEL_ATTRIBUTES:
        assert parcels[name]["read_only"] is True
    for name in L.EDITABLE_PARCEL_ATTRIBUTES:
        assert parcels[name]["read_only"] is False


def test_qgis_edits_the_editable_layers_and_refuses_the_others(package, inspected, tmp_path):
    new_parcel = _square(260_060, 1_622_000)
    plan = {
        "move_vertex": [{"layer": "parcels", "fid": 1, "vertex": 0, "dx": 1.5, "dy": -0.5}],
        "set": [{"layer": "parcels", "fid": 2, "field": "land_use", "value": "commerce"},
                {"layer": "parcels", "fid": 2, "field": "photo", "value": "DCIM/parcelle_2.jpg"}],
        "add": [{"layer": "new_parcels", "wkt": new_parcel.wkt,
                 "attributes": {"section": "B", "land_use": "habitation", "declared_area_m2": 400.0}},
                {"layer": "new_bornes", "wkt": "POINT (260060 1622000)",
                 "attributes": {"label": "B99", "precision_m": 0.05, "survey_method": "gnss_rtk"}}],
        "delete": [{"layer": "parcels", "fid": 3}],
        "refuse": [layer.name for layer in L.LAYERS if not layer.editable],
    }
    done = run("edit", package / L.PROJECT_NAME, home=tmp_path, plan=plan)
    assert done["read"] is True
    assert done["refused"] == {layer.name: True for layer in L.LAYERS if not layer.editable}
    assert done["committed"] == {"parcels": True, "new_parcels": True, "new_bornes": True}, done["problems"]
    assert done["problems"] == {"parcels": [], "new_parcels": [], "new_bornes": []}

    gpkg = package / L.GPKG_NAME
    assert not Path(f"{gpkg}-wal").exists() or Path(f"{gpkg}-wal").stat().st_size == 0
    parcels = pyogrio.read_dataframe(gpkg, layer="parcels", fid_as_index=True)
    assert sorted(parcels.index) == [1, 2]
    x, y = shapely.get_coordinates(FEATURES["parcels"][1])[0]
    moved = shapely.get_coordinates(parcels.geometry[1]).tolist()
    assert moved[0] == moved[-1] == [x + 1.5, y - 0.5]  # the first vertex, closing the ring too
    assert parcels.geometry[1].is_valid
    assert parcels.loc[2, "land_use"] == "commerce" and parcels.loc[2, "photo"] == "DCIM/parcelle_2.jpg"
    added = pyogrio.read_dataframe(gpkg, layer="new_parcels")
    assert len(added) == 1 and added.loc[0, "section"] == "B" and added.geometry[0].equals(new_parcel)
    bornes = pyogrio.read_dataframe(gpkg, layer="new_bornes")
    assert len(bornes) == 1 and bornes.loc[0, "label"] == "B99" and bornes.loc[0, "survey_method"] == "gnss_rtk"
    assert len(pyogrio.read_dataframe(gpkg, layer="bornes")) == len(FEATURES["bornes"])
