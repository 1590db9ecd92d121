"""Edit a package's ``data.gpkg`` in place through GDAL's own Python bindings, as QGIS saves an edit session.

Run with a Python that has ``osgeo`` (Debian's ``python3-gdal``, GDAL 3.6 as QGIS 3.22 and the
anchor's ogr2ogr; the project's virtual environment has pyogrio's GDAL only)::

    /usr/bin/python3 bench/field_bench/edit_return.py DATA.gpkg --edits 2000

``--edits`` parcels spread evenly over the fids are changed in one transaction: each has the
first corner of its outer ring (and the ring's closing point) moved 0.5 m towards the parcel's
centroid -- inwards, so it overlaps no neighbour -- and every other one also has its ``land_use``
changed. Prints the edited fids as JSON (the check afterwards counts the versions they got).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from osgeo import ogr

ogr.UseExceptions()
MOVE_M = 0.5
OTHER_USE = {"habitation": "commerce"}  # any other value becomes "habitation"


def edit(path: str, edits: int) -> list[int]:
    source = ogr.Open(path, 1)
    layer = source.GetLayerByName("parcels")
    fids = sorted(feature.GetFID() for feature in layer)
    if edits > len(fids):
        raise SystemExit(f"{edits} edits asked, {len(fids)} parcels in the package")
    step = len(fids) / edits
    chosen = [fids[int(i * step)] for i in range(edits)]
    layer.StartTransaction()
    for n, fid in enumerate(chosen):
        feature = layer.GetFeature(fid)
        geometry = feature.GetGeometryRef()
        centroid = geometry.Centroid()
        ring = geometry.GetGeometryRef(0).GetGeometryRef(0)
        x, y = ring.GetX(0), ring.GetY(0)
        dx, dy = centroid.GetX() - x, centroid.GetY() - y
        scale = MOVE_M / math.hypot(dx, dy)
        moved = (x + dx * scale, y + dy * scale)
        ring.SetPoint_2D(0, *moved)
        ring.SetPoint_2D(ring.GetPointCount() - 1, *moved)
        feature.SetGeometry(geometry)
        if n % 2 == 0:
            use = feature.GetField("land_use")
            feature.SetField("land_use", OTHER_USE.get(use, "habitation"))
        layer.SetFeature(feature)
    layer.CommitTransaction()
    source = None  # closes the file: no -wal left behind
    return chosen


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gpkg")
    parser.add_argument("--edits", type=int, default=2000)
    args = parser.parse_args(argv)
    print(json.dumps(edit(args.gpkg, args.edits)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
