"""TileJSON 3.0.0 documents and the URLs of the tile layers, written from the service's public URL.

The domain (:mod:`sifc.tiles`) says what a layer holds: its tiles, zooms, fields and bounds.
Every URL a client follows is written here, from ``SIFC_PUBLIC_URL`` (never the Host a client
sent), as the OGC links are in :mod:`api.ogc`.
"""

from __future__ import annotations

from typing import Any

from sifc.tiles import Layer

ATTRIBUTION = "SIFC — programme E-Territoire"
CENTER_ZOOM = 6  # the whole country in view; a layer shown only from a larger zoom is centred at its minzoom


def tile_url(base: str, spec: Layer, query: str = "") -> str:
    """The URL template of a layer's tiles (``{z}/{x}/{y}``), with ``query`` carried to every tile."""
    return f"{base}/tiles/{spec.id}/{{z}}/{{x}}/{{y}}.mvt" + (f"?{query}" if query else "")


def tilejson_url(base: str, spec: Layer) -> str:
    """The URL of a layer's TileJSON document."""
    return f"{base}/tiles/{spec.id}/tilejson.json"


def document(spec: Layer, *, bounds: tuple[float, float, float, float], names: tuple[str, ...], base: str,
             query: str = "") -> dict[str, Any]:
    """TileJSON 3.0.0 of a layer: URL template, zooms, bounds, the layer and the fields ``names``."""
    west, south, east, north = bounds
    return {
        "tilejson": "3.0.0",
        "name": spec.id,
        "description": spec.description,
        "version": "1.0.0",
        "attribution": ATTRIBUTION,
        "scheme": "xyz",
        "tiles": [tile_url(base, spec, query)],
        "minzoom": spec.minzoom,
        "maxzoom": spec.maxzoom,
        "bounds": [west, south, east, north],
        "center": [round((west + east) / 2, 6), round((south + north) / 2, 6), max(spec.minzoom, CENTER_ZOOM)],
        "vector_layers": [{
            "id": spec.id,
            "description": spec.title,
            "minzoom": spec.minzoom,
            "maxzoom": spec.maxzoom,
            "fields": {n: spec.fields[n].kind for n in names},
        }],
    }
