"""The rejects of an import as GeoJSON, for the web application's map.

The worker keeps the rejects as a GeoPackage in the file's CRS (for QGIS); a browser map needs GeoJSON in
WGS 84 (RFC 7946 §4), so the same features are converted on request, nothing else is stored.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def to_geojson(gpkg: bytes) -> bytes:
    """The GeoPackage's features (their reasons as properties) as a GeoJSON FeatureCollection in WGS 84.

    A layer without a CRS cannot be placed on the map: its features keep their coordinates as read.
    """
    import pyogrio

    with tempfile.TemporaryDirectory(prefix="sifc-rejects-") as folder:
        path = Path(folder) / "rejets.gpkg"
        path.write_bytes(gpkg)
        frame = pyogrio.read_dataframe(path)
    if frame.crs is not None:
        frame = frame.to_crs(4326)
    collection: str = frame.to_json(drop_id=True, na="null")
    return collection.encode()
