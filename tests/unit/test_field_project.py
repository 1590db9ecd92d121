"""The QGIS project of a field package, read as XML: QField's portability rules and the forms of sifc.field.layers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sifc.crs import STORAGE_SRID
from sifc.field import layers as L
from sifc.field.project import project_bytes, write_project

EXTENT = (259_900.0, 1_621_900.0, 260_200.0, 1_622_200.0)


def _project(*, holders: bool = False, title: str = "Bargny") -> ET.Element:
    data = project_bytes(layers=L.layers(holders=holders), extent=EXTENT, title=title)
    return ET.fromstring(data)


def _layer(root: ET.Element, name: str) -> ET.Element:
    [layer] = [e for e in root.iter("maplayer") if e.findtext("datasource") == f"./data.gpkg|layername={name}"]
    return layer


def _options(element: ET.Element | None) -> object:
    """QGIS's <Option> serialisation back to Python values."""
    assert element is not None
    kind = element.get("type")
    if kind == "Map":
        return {child.get("name"): _options(child) for child in element.findall("Option")}
    if kind == "List":
        return [_options(child) for child in element.findall("Option")]
    value = element.get("value")
    return {"int": lambda: int(value or 0), "bool": lambda: value == "true"}.get(kind or "", lambda: value)()


def _widget(layer: ET.Element, field: str) -> tuple[str | None, object]:
    [node] = [e for e in layer.iterfind("fieldConfiguration/field") if e.get("name") == field]
    widget = node.find("editWidget")
    assert widget is not None
    return widget.get("type"), _options(widget.find("config/Option"))


def test_paths_are_relative_and_every_source_is_the_package_geopackage():
    root = _project(holders=True)
    assert root.findtext("properties/Paths/Absolute") == "false"
    assert root.find("properties/Paths/Absolute").get("type") == "bool"
    sources = [e.text for e in root.iter("datasource")]
    assert sources == [f"./data.gpkg|layername={layer.name}" for layer in L.LAYERS]
    for source in sources:
        assert "dbname=" not in source and "http" not in source and "host=" not in source
    assert {e.text for e in root.iter("provider")} == {"ogr"}
    tree = root.findall("layer-tree-group/layer-tree-layer")
    assert [e.get("source") for e in tree] == sources
    assert {e.get("providerKey") for e in tree} == {"ogr"}
    # Tree nodes point at the map layers by id.
    assert [e.get("id") for e in tree] == [e.findtext("id") for e in root.iter("maplayer")]


def test_every_layer_appears_once_in_drawing_order_and_holders_only_when_asked():
    without = _project()
    names = [e.findtext("datasource").split("layername=")[1] for e in without.iter("maplayer")]
    assert names == [layer.name for layer in L.LAYERS if layer.name != "holders"]
    with_holders = _project(holders=True)
    names = [e.findtext("datasource").split("layername=")[1] for e in with_holders.iter("maplayer")]
    assert names == [layer.name for layer in L.LAYERS]
    assert [e.get("name") for e in with_holders.findall("layer-tree-group/layer-tree-layer")] == \
        [layer.title for layer in L.LAYERS]


def test_project_and_layer_crs_are_the_storage_crs_described_fully():
    root = _project(holders=True)
    assert root.findtext("properties/SpatialRefSys/ProjectionsEnabled") == "1"
    systems = list(root.iter("spatialrefsys"))
    assert len(systems) >= 1 + 7  # the project, the spatial layers, the canvas and the view
    for srs in systems:
        assert srs.findtext("proj4") == "+proj=utm +zone=28 +datum=WGS84 +units=m +no_defs"
        assert srs.findtext("authid") == f"EPSG:{STORAGE_SRID}" and srs.findtext("srid") == str(STORAGE_SRID)
        assert srs.findtext("srsid") and srs.findtext("description") == "WGS 84 / UTM zone 28N"
    assert root.find("projectCrs/spatialrefsys") is not None
    view = root.find("ProjectViewSettings/DefaultViewExtent")
    assert [float(view.get(k)) for k in ("xmin", "ymin", "xmax", "ymax")] == list(EXTENT)
    assert [float(root.findtext(f"mapcanvas/extent/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] == list(EXTENT)


def test_tables_without_geometry_are_plain_tables():
    root = _project(holders=True)
    for name in ("holders", "sifc_package"):
        layer = _layer(root, name)
        assert layer.get("geometry") == "No geometry" and layer.get("wkbType") == "NoGeometry"
        assert layer.find("srs") is None and layer.find("renderer-v2") is None
    parcels = _layer(root, "parcels")
    assert parcels.get("geometry") == "Polygon" and parcels.get("wkbType") == "MultiPolygon"
    assert _layer(root, "bornes").get("geometry") == "Point"


def test_read_only_layers_and_fields_are_flagged():
    root = _project(holders=True)
    for layer in L.LAYERS:
        element = _layer(root, layer.name)
        assert element.get("readOnly") == ("0" if layer.editable else "1"), layer.name
        flags = {e.get("name"): e.get("editable") for e in element.iterfind("editable/field")}
        assert flags["fid"] == "0"
        for field in layer.fields:
            assert flags[field.name] == ("1" if field.editable and layer.editable else "0"), (layer.name, field.name)
    parcels = {e.get("name"): e.get("editable") for e in _layer(root, "parcels").iterfind("editable/field")}
    assert {name for name, flag in parcels.items() if flag == "0"} == {"fid", *L.READ_ONLY_PARCEL_ATTRIBUTES}
    assert all(parcels[name] == "1" for name in L.EDITABLE_PARCEL_ATTRIBUTES)


def test_aliases_are_the_french_labels_with_ogr_field_indexes():
    root = _project(holders=True)
    for layer in L.LAYERS:
        aliases = [(e.get("field"), e.get("index"), e.get("name")) for e in _layer(root, layer.name).iterfind("aliases/alias")]
        assert aliases == [("fid", "0", ""), *((f.name, str(i), f.label) for i, f in enumerate(layer.fields, start=1))]
    land_use = [e for e in _layer(root, "parcels").iterfind("aliases/alias") if e.get("field") == "land_use"]
    assert land_use[0].get("name") == "Usage du sol"


def test_value_maps_store_the_registry_values_in_order():
    root = _project()
    for name in ("parcels", "new_parcels"):
        widget, config = _widget(_layer(root, name), "land_use")
        assert widget == "ValueMap"
        assert config == {"map": [{label: value} for value, label in L.LAND_USES]}
        # Stored values are exactly the registry's list, in its order.
        assert [next(iter(entry.values())) for entry in config["map"]] == [v for v, _ in L.LAND_USES]
        _, config = _widget(_layer(root, name), "tenure_regime")
        assert config == {"map": [{label: value} for value, label in L.TENURE_REGIMES]}
    _, config = _widget(_layer(root, "new_bornes"), "survey_method")
    assert [next(iter(entry.values())) for entry in config["map"]] == [v for v, _ in L.SURVEY_METHOD_VALUES]


def test_photos_are_stored_relative_under_dcim():
    root = _project()
    for layer_name, field in (("parcels", "photo"), ("parcels", "pv_photo"), ("new_parcels", "photo")):
        widget, config = _widget(_layer(root, layer_name), field)
        assert widget == "ExternalResource"
        assert isinstance(config, dict)
        assert config["DefaultRoot"] == "DCIM" and config["RelativeStorage"] == 1
        assert config["StorageMode"] == 0 and config["DocumentViewer"] == 1
        root_path = config["PropertyCollection"]["properties"]["propertyRootPath"]
        assert root_path == {"active": True, "expression": "@project_folder || '/DCIM'", "type": 3}


def test_booleans_get_a_check_box():
    widget, _ = _widget(_layer(_project(), "parcels"), "survey_done")
    assert widget == "CheckBox"


def test_every_spatial_layer_has_a_simple_readable_style():
    root = _project(holders=True)
    classes = {}
    for layer in L.LAYERS:
        if layer.geometry:
            [symbol_layer] = _layer(root, layer.name).iterfind("renderer-v2/symbols/symbol/layer")
            classes[layer.name] = (symbol_layer.get("class"), _options(symbol_layer.find("Option")))
    assert classes["bornes"][0] == "SimpleMarker" and classes["bornes"][1]["color"].startswith("227,26,28")
    assert classes["parcels"][0] == "SimpleFill" and classes["parcels"][1]["style"] == "no"
    assert float(classes["commune"][1]["outline_width"]) > float(classes["parcels"][1]["outline_width"])


def test_text_is_escaped_by_construction():
    title = "Bargny <section A> & \"B\" ' ]]>"
    root = _project(title=title)
    assert root.findtext("title") == title and root.get("projectname") == title


def test_the_file_starts_as_qgis_writes_it_and_is_written_into_the_package_folder(tmp_path: Path):
    write_project(tmp_path, layers=L.layers(holders=False), extent=EXTENT, title="Bargny")
    data = (tmp_path / L.PROJECT_NAME).read_bytes()
    assert data.startswith(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE qgis")
    assert data == project_bytes(layers=L.layers(holders=False), extent=EXTENT, title="Bargny")  # reproducible
    write_project(tmp_path / "autre.qgs", layers=L.layers(holders=False), extent=EXTENT, title="Bargny")
    assert (tmp_path / "autre.qgs").read_bytes() == data


@pytest.mark.parametrize("extent", [(1.0, 0.0, 0.0, 1.0), (0.0, 0.0, float("nan"), 1.0)])
def test_a_wrong_extent_is_refused(extent):
    with pytest.raises(ValueError):
        project_bytes(layers=L.layers(holders=False), extent=extent, title="x")


def test_a_layer_twice_is_refused():
    with pytest.raises(ValueError):
        project_bytes(layers=(L.PARCELS, L.PARCELS), extent=EXTENT, title="x")


def test_layer_ids_are_stable_and_long_enough_for_qgis():
    # QGIS 3.22 replaces an id of 10 characters or fewer by a random one, detaching the layer from the tree.
    ids = [e.findtext("id") for e in _project(holders=True).iter("maplayer")]
    assert len(set(ids)) == len(ids) and all(len(i) > 10 for i in ids)
    assert ids == [e.findtext("id") for e in _project(holders=True).iter("maplayer")]
