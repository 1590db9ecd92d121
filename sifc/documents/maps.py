"""The location map of a parcel sheet: the parcel and its neighbours in UTM 28N, with a scale bar and north.

Drawn with matplotlib's object API (``Figure``, no pyplot state), so that concurrent requests in
the API's threads never share a figure.
"""

from __future__ import annotations

import io
import math
from typing import Any

NEIGHBOUR_DISTANCE_M = 20.0


def _rings(geometry: Any) -> list[Any]:
    polygons = getattr(geometry, "geoms", [geometry])
    return [p.exterior for p in polygons] + [r for p in polygons for r in p.interiors]


def _draw(ax: Any, geometry: Any, *, face: str, edge: str, width: float) -> None:
    for polygon in getattr(geometry, "geoms", [geometry]):
        xs, ys = polygon.exterior.xy
        ax.fill(xs, ys, facecolor=face, edgecolor=edge, linewidth=width)
        for ring in polygon.interiors:
            hx, hy = ring.xy
            ax.fill(hx, hy, facecolor="white", edgecolor=edge, linewidth=width)


def _nice_length(span: float) -> float:
    """A round length for the scale bar, about a fifth of the map's width."""
    target = max(span / 5, 1.0)
    power = 10 ** math.floor(math.log10(target))
    return float(max(step * power for step in (1, 2, 5) if step * power <= target))


def _scale_bar(ax: Any, bounds: tuple[float, float, float, float]) -> None:
    minx, miny, maxx, maxy = bounds
    length = _nice_length(maxx - minx)
    x0, y0 = minx + (maxx - minx) * 0.05, miny + (maxy - miny) * 0.05
    ax.plot([x0, x0 + length], [y0, y0], color="black", linewidth=3)
    ax.text(x0 + length / 2, y0 + (maxy - miny) * 0.02, f"{length:g} m", ha="center", va="bottom", fontsize=7)


def _north(ax: Any) -> None:
    ax.annotate("N", xy=(0.94, 0.95), xytext=(0.94, 0.82), xycoords="axes fraction", ha="center", va="center",
                fontsize=10, fontweight="bold", arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})


def parcel_map(parcel: Any, neighbours: list[tuple[str, Any]], *, title: str) -> bytes:
    """A PNG of ``parcel`` (shapely, metres) and ``neighbours`` (label, geometry), axes in metres."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.2, 4.6), dpi=150)
    ax = figure.subplots()
    for name, geometry in neighbours:
        _draw(ax, geometry, face="#eeeeee", edge="#777777", width=0.6)
        point = geometry.representative_point()
        ax.text(point.x, point.y, name, ha="center", va="center", fontsize=6, color="#333333")
    _draw(ax, parcel, face="#f6c85f", edge="#b22222", width=1.4)
    centre = parcel.representative_point()
    minx, miny, maxx, maxy = parcel.buffer(NEIGHBOUR_DISTANCE_M * 1.5).bounds
    ax.text(centre.x, centre.y, title, ha="center", va="center", fontsize=7, fontweight="bold")
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect("equal")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=6)
    ax.set_xlabel("X (m, EPSG:32628)", fontsize=7)
    ax.set_ylabel("Y (m, EPSG:32628)", fontsize=7)
    _scale_bar(ax, (minx, miny, maxx, maxy))
    _north(ax)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def vertices(geometry: Any) -> list[list[Any]]:
    """The vertices of every ring (the closing point once), numbered from 1: ``[n, x, y]`` to the centimetre."""
    found: list[list[Any]] = []
    for ring in _rings(geometry):
        for x, y in list(ring.coords)[:-1]:
            found.append([len(found) + 1, round(x, 2), round(y, 2)])
    return found
