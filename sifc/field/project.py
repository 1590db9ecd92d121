"""The QGIS project of a field package: the ``projet.qgs`` a tablet opens beside ``data.gpkg``.

Written without QGIS, as XML built with :mod:`xml.etree.ElementTree`, so a commune name or a title
can never break the document (escaping by construction). The elements are the ones QGIS 3.22 was
seen to need (ADR 0003 §1), and the project follows QField's rules for work without a network:

- every path relative to the project (``Paths/Absolute`` false, datasources ``./data.gpkg|layername=…``)
  and every layer in the package's one GeoPackage, read through OGR: no database, no web service;
- the storage CRS (UTM 28N) described fully (``proj4``, ids, description): an ``authid`` alone gives an
  invalid CRS in QGIS 3.22;
- forms from :mod:`sifc.field.layers`: French aliases, value lists, check boxes, photos stored under
  ``DCIM/`` relative to the project, read-only fields and layers.

Read-only flags only shape the forms; what a return may change is decided by the server
(:mod:`sifc.field.returns`), never by the file.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyproj import CRS

from sifc.crs import QGIS_SRSID, STORAGE_SRID
from sifc.field.layers import GPKG_NAME, PHOTO_DIR, PROJECT_NAME, Field, Layer

# The QGIS release the project is written for (the oldest our tablets and tests run): the same
# version number keeps QGIS from running its upgrades of older project files on it.
QGIS_VERSION = "3.22.16-Białowieża"
PROVIDER = "ogr"

# The storage CRS as QGIS 3.22 describes it in its own files, from PROJ's own description of it
# (an ``authid`` alone gives an invalid CRS in QGIS 3.22; ``srsid`` is QGIS's srs.db row).
_STORAGE_CRS = CRS.from_epsg(STORAGE_SRID)
_ZONE = str(_STORAGE_CRS.utm_zone)  # "28N"
assert _ZONE.endswith("N") and _STORAGE_CRS.ellipsoid is not None and _STORAGE_CRS.ellipsoid.name == "WGS 84"
SPATIAL_REF_SYS: tuple[tuple[str, str], ...] = (
    ("proj4", f"+proj=utm +zone={_ZONE[:-1]} +datum=WGS84 +units=m +no_defs"),
    ("srsid", str(QGIS_SRSID)),
    ("srid", str(STORAGE_SRID)),
    ("authid", f"EPSG:{STORAGE_SRID}"),
    ("description", _STORAGE_CRS.name),
    ("projectionacronym", "utm"),
    ("ellipsoidacronym", "EPSG:7030"),  # WGS 84's ellipsoid
    ("geographicflag", "false"),
)

# Where photos go, for QGIS and QField: the project folder's DCIM, whatever the device calls it.
PHOTO_ROOT_EXPRESSION = f"@project_folder || '/{PHOTO_DIR}'"

# QGIS's names for a layer's geometry: the ``geometry`` attribute (its kind) and ``wkbType``.
_GEOMETRY_KIND = {"Point": "Point", "MultiPoint": "Point", "LineString": "Line", "MultiLineString": "Line",
                  "Polygon": "Polygon", "MultiPolygon": "Polygon"}
_SYMBOL_TYPE = {"Point": "marker", "Line": "line", "Polygon": "fill"}


@dataclass(frozen=True)
class _Style:
    """A single symbol: its QGIS symbol-layer class and properties (colours as ``r,g,b,a``)."""

    symbol_layer: str
    properties: tuple[tuple[str, str], ...]


def _fill(fill: str | None, outline: str, width: float, outline_style: str = "solid") -> _Style:
    return _Style("SimpleFill", (
        ("color", fill or "0,0,0,0"), ("style", "solid" if fill else "no"),
        ("outline_color", outline), ("outline_style", outline_style), ("outline_width", f"{width:g}"),
        ("outline_width_unit", "MM"), ("joinstyle", "bevel"), ("offset", "0,0"), ("offset_unit", "MM"),
    ))


def _marker(shape: str, color: str, size: float) -> _Style:
    return _Style("SimpleMarker", (
        ("name", shape), ("color", color), ("outline_color", "255,255,255,255"), ("outline_style", "solid"),
        ("outline_width", "0.3"), ("outline_width_unit", "MM"), ("size", f"{size:g}"), ("size_unit", "MM"),
        ("angle", "0"), ("scale_method", "diameter"), ("horizontal_anchor_point", "1"),
        ("vertical_anchor_point", "1"), ("joinstyle", "bevel"), ("offset", "0,0"), ("offset_unit", "MM"),
    ))


# Readable on a tablet in the sun, without a background map: the parcels to check outlined in strong
# orange, new ones green, neighbours grey, the commune boundary a thick black line, bornes red points.
_STYLES: Mapping[str, _Style] = {
    "parcels": _fill(None, "230,85,13,255", 0.7),
    "new_parcels": _fill("49,163,84,70", "0,109,44,255", 0.7),
    "neighbours": _fill("189,189,189,110", "115,115,115,255", 0.3),
    "commune": _fill(None, "0,0,0,255", 1.4),
    "units": _fill(None, "99,99,99,255", 0.5, "dash"),
    "bornes": _marker("circle", "227,26,28,255", 2.6),
    "new_bornes": _marker("triangle", "33,113,181,255", 3.2),
}
_DEFAULT_STYLES: Mapping[str, _Style] = {
    "Polygon": _fill("200,200,200,80", "80,80,80,255", 0.4),
    "Point": _marker("circle", "80,80,80,255", 2.0),
    "Line": _Style("SimpleLine", (("line_color", "80,80,80,255"), ("line_width", "0.5"), ("line_width_unit", "MM"))),
}


def write_project(target: Path, *, layers: Sequence[Layer], extent: tuple[float, float, float, float],
                  title: str) -> None:
    """Write the QGIS project of a package, for the GeoPackage ``data.gpkg`` beside it.

    ``target`` is the package's folder (the project is written there as ``projet.qgs``) or the
    project file itself. ``layers`` are drawn in their order, the first on top; ``extent`` is
    (xmin, ymin, xmax, ymax) in the storage CRS, what the map shows when the project opens.
    """
    path = target / PROJECT_NAME if target.is_dir() else target
    path.write_bytes(project_bytes(layers=layers, extent=extent, title=title))


def project_bytes(*, layers: Sequence[Layer], extent: tuple[float, float, float, float], title: str) -> bytes:
    """The project file's bytes (UTF-8), for a package built straight into a zip."""
    names = [layer.name for layer in layers]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"a project needs distinct layers, got {names}")
    xmin, ymin, xmax, ymax = extent
    if not all(math.isfinite(v) for v in extent) or xmin > xmax or ymin > ymax:
        raise ValueError(f"not an extent: {extent}")

    root = ET.Element("qgis", {"version": QGIS_VERSION, "projectname": title})
    _sub(root, "homePath", path="")
    _sub(root, "title", title)
    _sub(root, "autotransaction", active="0")
    _sub(root, "evaluateDefaultValues", active="0")
    _sub(root, "trust", active="0")
    _spatial_ref_sys(_sub(root, "projectCrs"))
    _layer_tree(root, layers)
    _snapping(root)
    _sub(root, "relations")
    _map_canvas(root, extent)
    projectlayers = _sub(root, "projectlayers")
    for layer in layers:
        _map_layer(projectlayers, layer)
    order = _sub(root, "layerorder")
    for layer in layers:
        _sub(order, "layer", id=_layer_id(layer))
    _properties(root)
    view = _sub(root, "ProjectViewSettings", UseProjectScales="0", rotation="0")
    _sub(view, "Scales")
    _spatial_ref_sys(_sub(view, "DefaultViewExtent", xmin=_num(xmin), ymin=_num(ymin), xmax=_num(xmax),
                          ymax=_num(ymax)))
    metadata = _sub(root, "projectMetadata")
    _sub(metadata, "title", title)
    _sub(metadata, "language", "fr")

    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n").encode()


def datasource(layer: Layer) -> str:
    """The layer's source as QField wants it: the package's GeoPackage, relative to the project."""
    return f"./{GPKG_NAME}|layername={layer.name}"


def _layer_id(layer: Layer) -> str:
    # Stable ids (one layer per table), so two builds of a package give the same project. QGIS 3.22
    # keeps an id only if it is longer than 10 characters (else it draws a random one and the layer
    # tree loses the layer): "sifc_units" was one short.
    return f"sifc_field_{layer.name}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _num(value: float) -> str:
    return repr(float(value))


def _spatial_ref_sys(parent: ET.Element) -> None:
    srs = _sub(parent, "spatialrefsys")
    for tag, text in SPATIAL_REF_SYS:
        _sub(srs, tag, text)


def _option(parent: ET.Element, value: object, name: str | None = None) -> None:
    """A value in QGIS's ``<Option>`` serialisation of variants (maps, lists, strings, ints, bools)."""
    attributes = {} if name is None else {"name": name}
    if isinstance(value, Mapping):
        element = _sub(parent, "Option", type="Map", **attributes)
        for key, item in value.items():
            _option(element, item, str(key))
    elif isinstance(value, list | tuple):
        element = _sub(parent, "Option", type="List", **attributes)
        for item in value:
            _option(element, item)
    elif isinstance(value, bool):
        _sub(parent, "Option", type="bool", value="true" if value else "false", **attributes)
    elif isinstance(value, int):
        _sub(parent, "Option", type="int", value=str(value), **attributes)
    else:
        _sub(parent, "Option", type="QString", value=str(value), **attributes)


def _layer_tree(root: ET.Element, layers: Sequence[Layer]) -> None:
    group = _sub(root, "layer-tree-group")
    _sub(group, "customproperties")
    for layer in layers:
        node = _sub(group, "layer-tree-layer", id=_layer_id(layer), name=layer.title, source=datasource(layer),
                    providerKey=PROVIDER, checked="Qt::Checked", expanded="0")
        _sub(node, "customproperties")
    # Drawing order is the tree's order (first on top).
    _sub(group, "custom-order", enabled="0")


def _snapping(root: ET.Element) -> None:
    # Snapping to every layer's vertices, so a new parcel drawn in the field shares its neighbours'
    # corners instead of overlapping them by a few centimetres (tolerance in screen pixels).
    snapping = _sub(root, "snapping-settings", enabled="1", mode="2", type="1", tolerance="12", unit="1",
                    **{"intersection-snapping": "0", "self-snapping": "0"},
                    scaleDependencyMode="0", minScale="0", maxScale="0")
    _sub(snapping, "individual-layer-settings")


def _map_canvas(root: ET.Element, extent: tuple[float, float, float, float]) -> None:
    canvas = _sub(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    _sub(canvas, "units", "meters")
    box = _sub(canvas, "extent")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True):
        _sub(box, tag, _num(value))
    _sub(canvas, "rotation", "0")
    _spatial_ref_sys(_sub(canvas, "destinationsrs"))


def _properties(root: ET.Element) -> None:
    properties = _sub(root, "properties")
    _sub(_sub(properties, "Paths"), "Absolute", "false", type="bool")
    # Without this flag QGIS 3.22 ignores <projectCrs>.
    _sub(_sub(properties, "SpatialRefSys"), "ProjectionsEnabled", "1", type="int")


def _map_layer(parent: ET.Element, layer: Layer) -> None:
    kind = _GEOMETRY_KIND[layer.geometry] if layer.geometry else None
    element = _sub(parent, "maplayer", type="vector",
                   geometry=kind or "No geometry", wkbType=layer.geometry or "NoGeometry",
                   readOnly="0" if layer.editable else "1", labelsEnabled="0",
                   hasScaleBasedVisibilityFlag="0", minScale="100000000", maxScale="0",
                   styleCategories="AllStyleCategories")
    _sub(element, "id", _layer_id(layer))
    _sub(element, "datasource", datasource(layer))
    _sub(element, "layername", layer.title)
    if kind:
        _spatial_ref_sys(_sub(element, "srs"))
    _sub(element, "provider", PROVIDER, encoding="UTF-8")
    flags = _sub(element, "flags")
    for flag, value in (("Identifiable", "1"), ("Removable", "1"), ("Searchable", "1"), ("Private", "0")):
        _sub(flags, flag, value)
    if kind:
        _renderer(element, _STYLES.get(layer.name, _DEFAULT_STYLES[kind]), _SYMBOL_TYPE[kind])
    _forms(element, layer)


def _renderer(parent: ET.Element, style: _Style, symbol_type: str) -> None:
    renderer = _sub(parent, "renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0",
                    forceraster="0", referencescale="-1")
    symbols = _sub(renderer, "symbols")
    symbol = _sub(symbols, "symbol", name="0", type=symbol_type, alpha="1", clip_to_extent="1", force_rhr="0")
    symbol_layer = ET.SubElement(symbol, "layer",
                                 {"class": style.symbol_layer, "enabled": "1", "locked": "0", "pass": "0"})
    # QGIS 3.22 writes both forms, <Option> (read first) and the older <prop>; so do we.
    _option(symbol_layer, dict(style.properties))
    for key, value in style.properties:
        _sub(symbol_layer, "prop", k=key, v=value)
    _sub(renderer, "rotation")
    _sub(renderer, "sizescale")


def _forms(parent: ET.Element, layer: Layer) -> None:
    """Widgets, aliases and editable flags of every field (``fid`` first, as OGR presents it)."""
    configuration = _sub(parent, "fieldConfiguration")
    aliases = _sub(parent, "aliases")
    editable = _sub(parent, "editable")
    _sub(aliases, "alias", field="fid", index="0", name="")
    _sub(editable, "field", name="fid", editable="0")
    for index, field in enumerate(layer.fields, start=1):
        widget, config = _widget(field)
        node = _sub(configuration, "field", name=field.name, configurationFlags="None")
        _option(_sub(_sub(node, "editWidget", type=widget), "config"), config)
        _sub(aliases, "alias", field=field.name, index=str(index), name=field.label)
        _sub(editable, "field", name=field.name, editable="1" if field.editable and layer.editable else "0")
    _sub(parent, "editorlayout", "generatedlayout")


def _widget(field: Field) -> tuple[str, dict[str, object]]:
    """QGIS's editor widget for a field and its configuration (empty type: QGIS picks by field type)."""
    if field.widget == "ValueMap":
        if not field.values:
            raise ValueError(f"ValueMap without values: {field.name}")
        # One single-entry map per value keeps the order of the list; QGIS maps label → stored value.
        return "ValueMap", {"map": [{label: value} for value, label in field.values]}
    if field.widget == "CheckBox":
        return "CheckBox", {"CheckedState": "", "UncheckedState": ""}
    if field.widget == "ExternalResource":
        return "ExternalResource", {
            "DefaultRoot": PHOTO_DIR,
            "RelativeStorage": 1,  # relative to the project
            "StorageMode": 0,  # a file
            "DocumentViewer": 1,  # shown as an image
            "PropertyCollection": {
                "name": "0", "type": "collection",
                "properties": {"propertyRootPath": {"active": True, "expression": PHOTO_ROOT_EXPRESSION, "type": 3}},
            },
        }
    if field.widget != "TextEdit":
        raise ValueError(f"unknown widget {field.widget!r} for {field.name}")
    if field.kind == "text":
        return "TextEdit", {"IsMultiline": False, "UseHtml": False}
    return "", {}
