"""The package's GeoPackage writer: GeoPackage 1.2, fids kept, every layer's schema as described."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyogrio
import pytest
import shapely

from sifc.crs import STORAGE_SRID
from sifc.field import gpkg, layers


def _write_all(path: Path) -> None:
    parcel = shapely.MultiPolygon([shapely.box(260000, 1622000, 260020, 1622025)])
    rows = [{"fid": 7, "parcel_id": "a", "version": 2, "land_use": "habitation", "geometry": parcel.wkb},
            {"fid": 3, "parcel_id": "b", "version": 1, "declared_area_m2": 500.0, "geometry": parcel.wkb}]
    for index, layer in enumerate(layers.layers(holders=True)):
        batches = [gpkg.record_batch(layer, rows)] if layer is layers.PARCELS else []
        gpkg.write_layer(path, layer, batches, append=index > 0)


def test_every_layer_is_written_with_its_fields_geometry_and_crs(tmp_path):
    path = tmp_path / layers.GPKG_NAME
    _write_all(path)
    written = {name: kind for name, kind in pyogrio.list_layers(path)}
    assert written == {layer.name: layer.geometry for layer in layers.LAYERS}
    for layer in layers.LAYERS:
        info = pyogrio.read_info(path, layer=layer.name)
        assert list(info["fields"]) == [f.name for f in layer.fields]
        assert info["fid_column"] == "fid"
        if layer.geometry is not None:
            assert info["crs"] == f"EPSG:{STORAGE_SRID}"


def test_fids_are_kept_and_the_file_is_geopackage_1_2(tmp_path):
    path = tmp_path / layers.GPKG_NAME
    _write_all(path)
    frame = pyogrio.read_dataframe(path, layer="parcels", fid_as_index=True)
    assert sorted(frame.index) == [3, 7]
    assert frame.loc[7, "land_use"] == "habitation"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (10200,)


def test_a_batch_of_another_shape_is_refused(tmp_path):
    other = gpkg.record_batch(layers.NEW_BORNES, [])
    with pytest.raises((ValueError, RuntimeError)):  # GDAL reports the stream's error as its own
        gpkg.write_layer(tmp_path / "x.gpkg", layers.PARCELS, [other], append=False)
