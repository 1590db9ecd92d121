"""A field package's project opened and edited by real QGIS (PyQGIS, headless), as a tablet would.

Two faces in one file:

- run by the system Python QGIS is built for (Debian: ``python3-qgis``), it is the script::

      QT_QPA_PLATFORM=offscreen /usr/bin/python3 qgis_field_script.py inspect PROJECT
      QT_QPA_PLATFORM=offscreen /usr/bin/python3 qgis_field_script.py edit PROJECT PLAN.json

  ``inspect`` reads the project and describes what QGIS made of it (CRS, layers, validity, forms,
  the sources QGIS writes back when it re-saves the project); ``edit`` applies a plan through QGIS's
  editing API (move a vertex, change values, add and delete features, try to edit read-only
  layers), commits, then closes the layers so the GeoPackage is whole again. Either prints one line
  ``RESULT <json>``.
- imported by pytest (which has no QGIS), :func:`run` starts it in a subprocess and returns that JSON.
  Nothing here imports QGIS at module level.

An edit plan (JSON)::

    {"move_vertex": [{"layer": "parcels", "fid": 1, "vertex": 0, "dx": 1.5, "dy": -0.5}],
     "set": [{"layer": "parcels", "fid": 2, "field": "land_use", "value": "commerce"}],
     "add": [{"layer": "new_parcels", "wkt": "MULTIPOLYGON(...)", "attributes": {"section": "B"}}],
     "delete": [{"layer": "parcels", "fid": 3}],
     "refuse": ["bornes"]}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).resolve()
RESULT = "RESULT "


# --- pytest side ---------------------------------------------------------------------------------

def require_qgis() -> None:
    """Fail (not skip) without QGIS's Python bindings: scripts/test.sh installs them, as for the OGC clients."""
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True, check=False,
                           stdin=subprocess.DEVNULL)
    assert probe.returncode == 0, f"QGIS's Python bindings are missing (scripts/test.sh installs them): {probe.stderr}"


def run(action: str, project: Path, *, home: Path, plan: dict[str, Any] | None = None,
        timeout: float = 120) -> dict[str, Any]:
    """Run the script with the system Python, headless; its JSON result (asserts it ran to the end)."""
    args = [SYSTEM_PYTHON, str(SCRIPT), action, str(project)]
    if plan is not None:
        plan_path = home / f"plan_{action}.json"
        plan_path.write_text(json.dumps(plan))
        args.append(str(plan_path))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
           "XDG_RUNTIME_DIR": str(home), "LANG": "C.UTF-8"}
    done = subprocess.run(args, cwd=home, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT))
    return result


# --- QGIS side -----------------------------------------------------------------------------------

def _table(layer: Any) -> str:
    """The GeoPackage table behind a layer (its ``layername=``)."""
    from qgis.core import QgsProviderRegistry

    return str(QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source()).get("layerName"))


def _layers() -> dict[str, Any]:
    from qgis.core import QgsProject

    return {_table(layer): layer for layer in QgsProject.instance().mapLayers().values()}


def _describe(layer: Any) -> dict[str, Any]:
    from qgis.core import QgsWkbTypes

    form = layer.editFormConfig()
    fields = {}
    for index, field in enumerate(layer.fields()):
        setup = layer.editorWidgetSetup(index)
        fields[field.name()] = {"alias": layer.attributeAlias(index), "read_only": form.readOnly(index),
                                "type": field.typeName(), "widget": setup.type(), "config": setup.config()}
    return {"valid": layer.isValid(), "title": layer.name(), "provider": layer.providerType(),
            "source": layer.source(), "crs": layer.crs().authid(), "crs_valid": layer.crs().isValid(),
            "geometry": QgsWkbTypes.displayString(layer.wkbType()), "read_only": layer.readOnly(),
            "features": layer.featureCount(), "fields": fields}


def _resaved(project_path: Path) -> dict[str, Any]:
    """What QGIS writes when it saves the project again (beside the original, then removed)."""
    import xml.etree.ElementTree as ET

    from qgis.core import QgsProject

    copy = project_path.with_name(f".resaved_{project_path.name}")
    try:
        written = QgsProject.instance().write(str(copy))
        root = ET.parse(copy).getroot()
    finally:
        copy.unlink(missing_ok=True)
    return {"written": written, "absolute": root.findtext("properties/Paths/Absolute"),
            "datasources": sorted(e.text or "" for e in root.iter("datasource") if e.text),
            "tree_sources": [e.get("source") for e in root.iter("layer-tree-layer")]}


def inspect(project_path: Path) -> dict[str, Any]:
    """What QGIS reads from the project."""
    from qgis.core import Qgis, QgsProject

    project = QgsProject.instance()
    read = project.read(str(project_path))
    extent = project.viewSettings().defaultViewExtent()
    tree = [node.layer() for node in project.layerTreeRoot().findLayers()]
    return {
        "qgis": Qgis.version(), "read": read, "title": project.title(),
        "crs": project.crs().authid(), "crs_valid": project.crs().isValid(),
        "file_path_storage": "relative" if project.filePathStorage() == Qgis.FilePathType.Relative else "absolute",
        "default_view_extent": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
        "default_view_crs": extent.crs().authid(),
        "snapping": project.snappingConfig().enabled(),
        "tree": [_table(layer) for layer in tree if layer is not None],
        "layers": {name: _describe(layer) for name, layer in _layers().items()},
        "resaved": _resaved(project_path),
    }


def edit(project_path: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """Apply ``plan`` through QGIS's editing API, one commit per layer, as a tablet user would."""
    from qgis.core import QgsFeature, QgsGeometry, QgsProject

    project = QgsProject.instance()
    read = project.read(str(project_path))
    layers = _layers()
    refused = {}
    for name in plan.get("refuse", []):
        refused[name] = not layers[name].startEditing()
    touched: dict[str, list[str]] = {}
    steps: list[tuple[str, dict[str, Any]]] = [(kind, step) for kind in ("move_vertex", "set", "add", "delete")
                                               for step in plan.get(kind, [])]
    for name in dict.fromkeys(step["layer"] for _, step in steps):
        touched[name] = [] if layers[name].startEditing() else ["startEditing refused"]
    added: dict[str, int] = {}
    for kind, step in steps:
        layer, problems = layers[step["layer"]], touched[step["layer"]]
        if kind == "move_vertex":
            point = layer.getFeature(step["fid"]).geometry().vertexAt(step["vertex"])
            ok = layer.moveVertex(point.x() + step["dx"], point.y() + step["dy"], step["fid"], step["vertex"])
        elif kind == "set":
            ok = layer.changeAttributeValue(step["fid"], layer.fields().indexOf(step["field"]), step["value"])
        elif kind == "add":
            feature = QgsFeature(layer.fields())
            feature.setGeometry(QgsGeometry.fromWkt(step["wkt"]))
            for field, value in step.get("attributes", {}).items():
                feature.setAttribute(field, value)
            ok = layer.addFeature(feature)
            added[step["layer"]] = added.get(step["layer"], 0) + 1
        else:
            ok = layer.deleteFeature(step["fid"])
        if not ok:
            problems.append(f"{kind} {json.dumps(step)} refused")
    committed = {}
    for name, problems in touched.items():
        committed[name] = layers[name].commitChanges()
        problems.extend(layers[name].commitErrors() if not committed[name] else [])
    counts = {name: layer.featureCount() for name, layer in layers.items()}
    # Close every layer: GDAL then folds its write-ahead log into data.gpkg, which stands alone again.
    project.removeAllMapLayers()
    return {"read": read, "refused": refused, "committed": committed, "problems": touched, "added": added,
            "counts": counts}


def main() -> None:
    """Run one action; print its JSON on a ``RESULT`` line and leave without QGIS's own exit."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import QgsApplication

    action, project_path = sys.argv[1], Path(sys.argv[2]).resolve()
    app = QgsApplication([], False)
    app.initQgis()
    if action == "inspect":
        result = inspect(project_path)
    elif action == "edit":
        result = edit(project_path, json.loads(Path(sys.argv[3]).read_text()))
    else:
        raise SystemExit(f"unknown action {action!r}")
    print(RESULT + json.dumps(result, default=str), flush=True)
    # QGIS 3.22 may crash in exitQgis() when layers are still alive (scripts/check_qgis.py): leave without it.
    os._exit(0)


if __name__ == "__main__":
    main()
