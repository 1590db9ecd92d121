"""Surveyors' formats that are not plain GIS layers: GML helpers, DXF drawings, tables of bornes.

A DXF drawing and a table of boundary markers (bornes) hold no parcel layer that GDAL could
stream: each is converted here into a GeoPackage in the import's scratch folder, in the CRS
given with ``--crs`` (neither format declares one), and the pipeline then reads that
GeoPackage like any other file. Defects of one parcel found while converting (an interrupted
numbering of bornes, too few vertices, an outline crossing itself) do not refuse the file:
the feature carries the reason code in the :data:`REJECT_FIELD` column and the pipeline
rejects it with that reason. Whole-file problems raise :class:`ImportRejected`.

GML is read by GDAL directly; this module only supplies what GDAL leaves out for the
Spanish INSPIRE CadastralParcel files (the CRS given on the geometries, the layer to read).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pyproj import CRS
from shapely.geometry import LinearRing, Polygon

from sifc import bounds
from sifc.errors import ImportRejected
from sifc.text import search_form

# Column of a converted file carrying a feature-level refusal (a code of parcels.REASONS).
REJECT_FIELD = "sifc_reject"
RING_OPEN = "ring_open"
RING_TOO_FEW_VERTICES = "ring_too_few_vertices"
RING_SELF_INTERSECTING = "ring_self_intersecting"

CONVERTED_LAYER = "parcelles"
GML_PARCEL_LAYER = "CadastralParcel"
NICAD_DIGITS = (13, 16)
# Chord-to-arc distance allowed when flattening DXF bulges, and the distance under which two
# vertices are one: survey precision, in metres (converted to the CRS's unit).
FLATTEN_TOLERANCE_M = 0.01
SAME_POINT_M = 0.001
MAX_ARC_SEGMENTS = 720


@dataclass
class Converted:
    """A GeoPackage written from a DXF or a table of bornes, and what the conversion found."""

    path: Path
    layer: str
    features: int
    encoding: str | None = None
    encoding_origin: str | None = None
    notes: list[dict[str, object]] = field(default_factory=list)
    points: list[BornePoint] = field(default_factory=list)  # a table of bornes: its surveyed points


@dataclass(frozen=True)
class BornePoint:
    """One line of a table of bornes as a surveyed point (coordinates in the table's CRS)."""

    parcel: str
    order: int
    label: str
    x: float
    y: float
    precision_m: float | None = None
    survey_method: str | None = None
    surveyed_on: date | None = None


# --- GML ---------------------------------------------------------------------------------

_TRAILING_CODE = re.compile(r"(\d+)\s*$")


def epsg_from_srs_name(srs_name: str) -> str:
    """``EPSG:n`` for the usual spellings of a GML ``srsName``; other names are returned as given.

    OGC 09-048r5 (``http://www.opengis.net/def/crs/EPSG/0/25830``), the URN form
    (``urn:ogc:def:crs:EPSG::25830``, with or without a version), ``EPSG:25830`` and the
    old ``…/epsg.xml#25830`` all name the EPSG code at their end.
    """
    name = srs_name.strip()
    code = _TRAILING_CODE.search(name)
    if "EPSG" in name.upper() and code:
        return f"EPSG:{int(code.group(1))}"
    return name


def gml_srs_name(path: Path) -> str | None:
    """The first ``srsName`` of a GML file, as ``EPSG:n`` when it names an EPSG code.

    GDAL reports no layer CRS for some INSPIRE files (schema 3.0: the CRS is given on each
    geometry only); the first geometry's is the file's. The file is streamed, never loaded whole.
    """
    try:
        for event, element in ElementTree.iterparse(path, events=("start", "end")):
            if event == "start":
                value = element.attrib.get("srsName")
                if value:
                    return epsg_from_srs_name(value)
            else:
                element.clear()
    except (ElementTree.ParseError, OSError):
        return None
    return None


def pick_gml_layer(layers: Sequence[str], path: Path) -> str:
    """The layer of a GML file to read when none is given: the only one, else ``CadastralParcel``."""
    if len(layers) == 1:
        return layers[0]
    if GML_PARCEL_LAYER in layers:
        return GML_PARCEL_LAYER
    raise ImportRejected("import.choose_layer", path=path.name, layers=", ".join(layers))


# --- shared helpers ----------------------------------------------------------------------

def nicad_digits(text: str | None) -> str | None:
    """The NICAD a label holds when it is one (13 or 16 digits, spaces between groups allowed)."""
    if not text:
        return None
    compact = "".join(text.split())
    if compact.isdigit() and len(compact) in NICAD_DIGITS:
        return compact
    return None


def crs_unit_per_metre(srid: int) -> float:
    """How many units of the CRS make a metre (degrees: about 1 / 111 320 at the equator)."""
    crs = CRS.from_epsg(srid)
    if crs.is_geographic:
        return 1 / 111_320
    factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return 1 / factor if factor else 1.0


def _write_gpkg(target: Path, records: list[dict[str, object]], columns: Sequence[str], srid: int) -> None:
    import geopandas as gpd
    import pyogrio

    frame = gpd.GeoDataFrame({name: [r.get(name) for r in records] for name in columns},
                             geometry=[r.get("geometry") for r in records], crs=f"EPSG:{srid}")
    target.parent.mkdir(parents=True, exist_ok=True)
    pyogrio.write_dataframe(frame, target, layer=CONVERTED_LAYER, driver="GPKG", geometry_type="Polygon")


def ring_defect(points: Sequence[tuple[float, float]]) -> str | None:
    """Why a closed outline through ``points`` cannot be a parcel, or None.

    Fewer than three distinct vertices enclose no surface; an outline that crosses or touches
    itself (a bow-tie: vertices taken in the wrong order) is not a simple ring (OGC SFA 6.1.7).
    """
    if len(set(points)) < 3:
        return RING_TOO_FEW_VERTICES
    if not LinearRing(points).is_simple:
        return RING_SELF_INTERSECTING
    return None


# --- DXF ---------------------------------------------------------------------------------

def flatten_bulges(vertices: Sequence[tuple[float, float, float]], closed: bool,
                   tolerance: float) -> list[tuple[float, float]]:
    """The vertices of a polyline with its arcs (bulges) replaced by chords.

    ``vertices`` are ``(x, y, bulge)``; a segment's bulge is the tangent of a quarter of its
    arc's included angle, positive counter-clockwise (DXF reference, LWPOLYLINE group 42).
    Each arc is cut into chords that stay within ``tolerance`` of it.
    """
    points: list[tuple[float, float]] = []
    count = len(vertices)
    segments = count if closed else count - 1
    for i in range(count):
        x, y, _ = vertices[i]
        points.append((x, y))
        if i >= segments:
            break
        bulge = vertices[i][2]
        nx, ny, _ = vertices[(i + 1) % count]
        if bulge and (nx, ny) != (x, y):
            points.extend(_arc_points((x, y), (nx, ny), bulge, tolerance))
    return points


def _arc_points(start: tuple[float, float], end: tuple[float, float], bulge: float,
                tolerance: float) -> list[tuple[float, float]]:
    """Intermediate points of the arc from ``start`` to ``end`` (both excluded)."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    chord = math.hypot(dx, dy)
    sweep = 4 * math.atan(bulge)
    radius = chord * (1 + bulge * bulge) / (4 * abs(bulge))
    # The centre lies on the chord's perpendicular bisector, left of the chord for a positive bulge.
    offset = (1 - bulge * bulge) / (4 * bulge)
    cx = (start[0] + end[0]) / 2 - dy * offset
    cy = (start[1] + end[1]) / 2 + dx * offset
    if tolerance >= radius:
        return []
    step = 2 * math.acos(1 - tolerance / radius)
    pieces = min(MAX_ARC_SEGMENTS, max(1, math.ceil(abs(sweep) / step)))
    first = math.atan2(start[1] - cy, start[0] - cx)
    return [(cx + radius * math.cos(first + sweep * k / pieces), cy + radius * math.sin(first + sweep * k / pieces))
            for k in range(1, pieces)]


@dataclass
class _Outline:
    handle: str
    layer: str
    points: list[tuple[float, float]]
    texts: list[str] = field(default_factory=list)


def dxf_to_gpkg(path: Path, work: Path, *, srid: int, layer: str | None) -> Converted:
    """Convert the closed polylines of a DXF drawing into parcels (see the module's docstring).

    Closed LWPOLYLINE and POLYLINE entities of model space (flag 1, or a last vertex on the
    first) become parcels with their DXF layer (``calque``) and handle; a TEXT or MTEXT whose
    insertion point lies inside gives the parcel's number (several: sorted, joined with
    " / "); a number of 13 or 16 digits is also its NICAD. With ``layer``, only polylines of
    that DXF layer are parcels. Everything else is ignored and counted in a file note.

    An outline with fewer than three distinct vertices is rejected (``ring_too_few_vertices``);
    one that crosses itself is kept as drawn, like a shapefile's, for ``--on-invalid`` to decide.
    """
    doc = _read_dxf(path)
    unit = crs_unit_per_metre(srid)
    tolerance, same = FLATTEN_TOLERANCE_M * unit, SAME_POINT_M * unit
    outlines: list[_Outline] = []
    texts: list[tuple[float, float, str]] = []
    ignored: Counter[str] = Counter()  # by DXF entity type
    open_polylines = other_layers = 0
    wanted = search_form(layer) if layer else None
    for entity in doc.modelspace():
        kind = entity.dxftype()
        if kind in ("TEXT", "MTEXT"):
            placed = _text_of(entity)
            if placed:
                texts.append(placed)
            continue
        outline = _outline_of(entity, tolerance, same) if kind in ("LWPOLYLINE", "POLYLINE") else None
        if outline is not None and (wanted is None or search_form(outline.layer) == wanted):
            outlines.append(outline)
            continue
        ignored[kind] += 1
        if outline is not None:
            other_layers += 1
        elif kind in ("LWPOLYLINE", "POLYLINE"):
            open_polylines += 1
    if not outlines:
        raise ImportRejected("import.dxf_no_parcels", path=path.name)
    outside = _place_texts(outlines, texts)
    records = []
    for outline in outlines:
        numbers = sorted(outline.texts)
        nicads = [n for n in (nicad_digits(t) for t in numbers) if n]
        defect = RING_TOO_FEW_VERTICES if len(set(outline.points)) < 3 else None
        records.append({
            "numero": " / ".join(numbers) or None, "nicad": nicads[0] if len(nicads) == 1 else None,
            "calque": outline.layer, "handle": outline.handle, REJECT_FIELD: defect,
            "geometry": None if defect else Polygon(outline.points),
        })
    notes: list[dict[str, object]] = []
    if ignored:
        notes.append({"code": "dxf_ignored", "count": sum(ignored.values()), "types": dict(sorted(ignored.items())),
                      "open_polylines": open_polylines, "other_layers": other_layers})
    if outside:
        notes.append({"code": "dxf_texts_outside", "count": outside})
    target = work / "dxf" / f"{path.stem}.gpkg"
    _write_gpkg(target, records, ("numero", "nicad", "calque", "handle", REJECT_FIELD), srid)
    return Converted(path=target, layer=CONVERTED_LAYER, features=len(records),
                     encoding=str(doc.encoding), encoding_origin="file", notes=notes)


def _read_dxf(path: Path) -> Any:
    import ezdxf
    from ezdxf import recover

    try:
        doc, _auditor = recover.readfile(path)
    except (OSError, ezdxf.lldxf.const.DXFError, UnicodeDecodeError, ValueError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ImportRejected("import.unreadable", path=path.name, reason=reason) from error
    return doc


def _outline_of(entity: Any, tolerance: float, same: float) -> _Outline | None:
    """The closed outline of a polyline in world coordinates, or None for an open polyline."""
    kind = entity.dxftype()
    ocs = entity.ocs()
    if kind == "LWPOLYLINE":
        vertices = [(float(x), float(y), float(b)) for x, y, b in entity.get_points("xyb")]
        closed = bool(entity.closed)
        elevation = float(entity.dxf.elevation)
        to_world = tuple(entity.dxf.extrusion) != (0, 0, 1)
    else:
        if not (entity.is_2d_polyline or entity.is_3d_polyline):
            return None  # polyface and polygon meshes are not outlines
        # Spline frame control points (vertex flag 16) only shape a curve; they are not on it.
        vertices = [(float(v.dxf.location.x), float(v.dxf.location.y), float(v.dxf.bulge))
                    for v in entity.vertices if not v.dxf.flags & 16]
        closed = bool(entity.is_closed)
        elevation = float(entity.dxf.elevation.z) if entity.is_2d_polyline else 0.0
        to_world = entity.is_2d_polyline and tuple(entity.dxf.extrusion) != (0, 0, 1)
    if len(vertices) < 2:
        return None
    if _close(vertices[0][:2], vertices[-1][:2], same):
        vertices = vertices[:-1]
        closed = True
    if not closed:
        return None
    points = flatten_bulges(vertices, True, tolerance)
    if to_world:
        points = [(p.x, p.y) for p in ocs.points_to_wcs((x, y, elevation) for x, y in points)]
    points.append(points[0])
    return _Outline(handle=str(entity.dxf.handle), layer=str(entity.dxf.layer), points=points)


def _close(a: Sequence[float], b: Sequence[float], distance: float) -> bool:
    return math.hypot(a[0] - b[0], a[1] - b[1]) <= distance


def _text_of(entity: Any) -> tuple[float, float, str] | None:
    """Where a TEXT or MTEXT stands (world coordinates) and what it says, or None when blank."""
    words = " ".join(entity.plain_text().split())
    if not words:
        return None
    if entity.dxftype() == "TEXT":
        # The point that places the text: the insertion point, or the alignment point of a
        # centred or right-aligned text (DXF reference, TEXT groups 10 and 11).
        point = entity.ocs().to_wcs(entity.get_placement()[1])
    else:
        point = entity.dxf.insert
    return float(point[0]), float(point[1]), words


def _place_texts(outlines: list[_Outline], texts: Iterable[tuple[float, float, str]]) -> int:
    """Give each text to the smallest outline it lies in; return how many lie in none."""
    import shapely
    from shapely.strtree import STRtree

    polygons = [shapely.make_valid(Polygon(o.points)) if len(set(o.points)) >= 3 else Polygon() for o in outlines]
    areas = [abs(p.area) for p in polygons]
    placed = list(texts)
    if not placed:
        return 0
    tree = STRtree(polygons)
    points = shapely.points([(x, y) for x, y, _ in placed])
    hits: dict[int, int] = {}
    for text_index, outline_index in zip(*tree.query(points, predicate="within"), strict=True):
        best = hits.get(int(text_index))
        if best is None or areas[outline_index] < areas[best]:
            hits[int(text_index)] = int(outline_index)
    for text_index, outline_index in hits.items():
        outlines[outline_index].texts.append(placed[text_index][2])
    return len(placed) - len(hits)


# --- tables of bornes --------------------------------------------------------------------

BORNES_HEADERS: dict[str, tuple[str, ...]] = {
    "parcel": ("parcelle", "num_parcelle", "numero_parcelle", "n_parcelle", "no_parcelle", "id_parcelle",
               "parcel", "parcel_id", "parcel_number", "nicad", "numero", "num"),
    "order": ("ordre", "order", "sommet", "num_sommet", "vertex", "num_borne", "numero_borne", "n_borne",
              "no_borne", "borne", "point", "num_point", "rang", "sequence", "seq"),
    "x": ("x", "est", "easting", "e", "coord_x", "x_m", "lon", "longitude"),
    "y": ("y", "nord", "northing", "n", "coord_y", "y_m", "lat", "latitude"),
}
# Optional columns of a table of bornes: what the registry keeps of each point (migration 0013).
BORNES_OPTIONAL_HEADERS: dict[str, tuple[str, ...]] = {
    "precision": ("precision", "precision_m", "prec", "precision_metres", "ecart_type", "emq", "rmse"),
    "method": ("methode", "method", "methode_leve", "survey_method", "instrument", "mode_leve"),
    "date": ("date", "date_leve", "surveyed_on", "date_releve", "leve_le"),
}
# How surveyors write a survey method → the registry's code (sifc.models.SURVEY_METHODS), folded.
SURVEY_METHOD_NAMES: dict[str, str] = {
    "gnssrtk": "gnss_rtk", "rtk": "gnss_rtk", "gpsrtk": "gnss_rtk", "gnss": "gnss", "gps": "gnss",
    "stationtotale": "station_totale", "station": "station_totale", "totalstation": "station_totale",
    "theodolite": "station_totale", "ruban": "ruban", "tape": "ruban", "decametre": "ruban",
    "numerisation": "numerisation", "digitised": "numerisation", "digitized": "numerisation",
    "numerise": "numerisation", "inconnu": "inconnu", "unknown": "inconnu",
}
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")
DELIMITERS = (";", "\t", ",")


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", search_form(name))


def match_bornes_headers(headers: Sequence[str]) -> dict[str, int]:
    """Column index of each role (parcel, order, x, y), names folded (case, accents, separators)."""
    keys = [_header_key(h) for h in headers]
    roles: dict[str, int] = {}
    for role, names in BORNES_HEADERS.items():
        for name in names:
            matches = [i for i, key in enumerate(keys) if key == _header_key(name) and i not in roles.values()]
            if matches:
                roles[role] = matches[0]
                break
    if len(roles) < len(BORNES_HEADERS):
        expected = " ; ".join(f"{role} : {', '.join(names[:6])}…" for role, names in BORNES_HEADERS.items()
                              if role not in roles)
        raise ImportRejected("import.bornes_headers", expected=expected,
                             found=", ".join(h.strip() for h in headers) or "—")
    return roles


def match_optional_bornes_headers(headers: Sequence[str], taken: Iterable[int]) -> dict[str, int]:
    """Column index of each optional role (precision, method, date) the table has."""
    keys = [_header_key(h) for h in headers]
    used = set(taken)
    roles: dict[str, int] = {}
    for role, names in BORNES_OPTIONAL_HEADERS.items():
        for name in names:
            matches = [i for i, key in enumerate(keys) if key == _header_key(name) and i not in used]
            if matches:
                roles[role] = matches[0]
                used.add(matches[0])
                break
    return roles


def parse_survey_method(raw: str) -> str | None:
    """A survey method as surveyors write it (``GNSS RTK``, ``Station totale``) as its code, None if unknown."""
    return SURVEY_METHOD_NAMES.get(_header_key(raw))


def parse_date(raw: str) -> date | None:
    """A survey date (``2024-03-18``, ``18/03/2024``), None if it is not one."""
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(raw.strip(), pattern).date()
        except ValueError:
            continue
    return None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter of a table from its header line: the most frequent of ``;``, tab and ``,``."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties: the order of DELIMITERS
    return best if counts[best] else ","


def parse_number(raw: str) -> float | None:
    """A coordinate as surveyors write it (``1 234,56``, ``1234.56``, ``1.234,56``), None if not a number."""
    text = "".join(raw.replace("\u00a0", " ").replace("\u202f", " ").split())
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal == "," else ",", "")
    text = text.replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_order(raw: str) -> int | None:
    """A vertex order number (``3``, ``3.0``), None if it is not a whole number."""
    value = parse_number(raw)
    if value is None or not value.is_integer():
        return None
    return int(value)


def decode_table(data: bytes, encoding: str | None, name: str = "CSV") -> tuple[str, str, str]:
    """Text of a table, its encoding and where that came from (``option``, ``bom``, ``utf-8``, ``fallback``)."""
    if encoding:
        try:
            codec = codecs.lookup(encoding).name
        except LookupError as error:
            raise ImportRejected("import.bad_encoding", encoding=encoding) from error
        try:
            return data.decode(codec), codec, "option"
        except UnicodeDecodeError as error:
            raise ImportRejected("import.unreadable", path=name, reason=str(error)[:200]) from error
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec), codec, "bom"
            except UnicodeDecodeError as error:
                raise ImportRejected("import.unreadable", path=name, reason=str(error)[:200]) from error
    try:
        return data.decode("utf-8"), "utf-8", "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1", "fallback"


@dataclass
class _Borne:
    order: int
    x: float
    y: float


def assemble_parcel(bornes: Sequence[_Borne]) -> tuple[Polygon | None, str | None, int]:
    """The polygon through a parcel's bornes in their order, its defect code and its borne count.

    A repeat of the first borne at the end (same coordinates, under the first order number or
    the next one) closes the ring and is dropped. A gap or a repeat in the numbering means a
    borne is missing or misnumbered: ``ring_open``. The geometry is kept when it can be drawn,
    so the analyst sees it among the rejected features.
    """
    ordered = sorted(bornes, key=lambda b: b.order)
    first = ordered[0]
    closing = [b for b in ordered[1:] if b.order == first.order and (b.x, b.y) == (first.x, first.y)]
    ordered = [b for b in ordered if not any(b is c for c in closing)]
    if len(ordered) > 1 and (ordered[-1].x, ordered[-1].y) == (first.x, first.y):
        ordered = ordered[:-1]
    points = [(b.x, b.y) for b in ordered]
    numbers = [b.order for b in ordered]
    defect: str | None = None
    if any(b - a != 1 for a, b in zip(numbers, numbers[1:], strict=False)):
        defect = RING_OPEN
    else:
        defect = ring_defect(points + points[:1])
    polygon = Polygon(points) if len(set(points)) >= 3 else None
    return polygon, defect, len(ordered)


def _rows(reader: Any, path: Path) -> Iterable[list[str]]:
    try:
        yield from reader
    except csv.Error as error:
        raise ImportRejected("import.unreadable", path=path.name,
                             reason=f"ligne {reader.line_num} : {error}") from error


def bornes_to_gpkg(path: Path, work: Path, *, srid: int, encoding: str | None) -> Converted:
    """Convert a table of bornes (parcel, order, X, Y per line) into parcels.

    The delimiter (``;``, tab, ``,``) is read from the header line, decimal commas are
    accepted, UTF-8 (with or without BOM) is tried before Latin-1. A coordinate or order
    that is not a number refuses the whole file, naming its line.
    """
    text, used_encoding, origin = decode_table(path.read_bytes(), encoding, path.name)
    lines = text.splitlines()
    header_line = next((line for line in lines if line.strip()), "")
    if not header_line:
        raise ImportRejected("import.empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(header_line))
    header: list[str] | None = None
    roles: dict[str, int] = {}
    optional: dict[str, int] = {}
    parcels: dict[str, list[_Borne]] = {}
    points: list[BornePoint] = []
    for row in _rows(reader, path):
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            roles = match_bornes_headers(header)
            optional = match_optional_bornes_headers(header, roles.values())
            continue
        line = reader.line_num
        cells = {role: (row[i].strip() if i < len(row) else "") for role, i in roles.items()}
        parcel = cells["parcel"]
        if not parcel:
            raise ImportRejected("import.bornes_bad_value", line=line, column=header[roles["parcel"]], value="")
        order = parse_order(cells["order"])
        x, y = parse_number(cells["x"]), parse_number(cells["y"])
        for role, value in (("order", order), ("x", x), ("y", y)):
            if value is None:
                raise ImportRejected("import.bornes_bad_value", line=line, column=header[roles[role]],
                                     value=cells[role][:40])
        assert order is not None and x is not None and y is not None
        parcels.setdefault(parcel, []).append(_Borne(order, x, y))
        points.append(BornePoint(parcel, order, cells["order"][:40], x, y,
                                 *_point_attributes(row, header, optional, line)))
    if not parcels:
        raise ImportRejected("import.empty")
    records = []
    for number, bornes in parcels.items():
        polygon, defect, count = assemble_parcel(bornes)
        records.append({"numero": number, "nicad": nicad_digits(number), "bornes": count,
                        REJECT_FIELD: defect, "geometry": polygon})
    notes: list[dict[str, object]] = []
    if origin == "fallback":
        notes.append({"code": "encoding_fallback", "encoding": "ISO-8859-1"})
    target = work / "bornes" / f"{path.stem}.gpkg"
    _write_gpkg(target, records, ("numero", "nicad", "bornes", REJECT_FIELD), srid)
    return Converted(path=target, layer=CONVERTED_LAYER, features=len(records), encoding=used_encoding,
                     encoding_origin=origin, notes=notes, points=points)


def _point_attributes(row: Sequence[str], header: Sequence[str], optional: dict[str, int],
                      line: int) -> tuple[float | None, str | None, date | None]:
    """The optional precision, survey method and date of a line; a value that is none of them refuses the file."""
    cells = {role: (row[i].strip() if i < len(row) else "") for role, i in optional.items()}
    precision = method = surveyed = None
    if cells.get("precision"):
        precision = parse_number(cells["precision"])
        if precision is None or not bounds.bound("borne.precision_m").admits(precision):
            raise ImportRejected("import.bornes_bad_precision", line=line, column=header[optional["precision"]],
                                 value=cells["precision"][:40], bounds=bounds.bound("borne.precision_m").describe())
    if cells.get("method"):
        method = parse_survey_method(cells["method"])
        if method is None:
            raise ImportRejected("import.bornes_bad_method", line=line, column=header[optional["method"]],
                                 value=cells["method"][:40],
                                 methods=", ".join(sorted(set(SURVEY_METHOD_NAMES.values()))))
    if cells.get("date"):
        surveyed = parse_date(cells["date"])
        if surveyed is None or not bounds.bound("borne.surveyed_on").admits(surveyed):
            raise ImportRejected("import.bornes_bad_date", line=line, column=header[optional["date"]],
                                 value=cells["date"][:40], bounds=bounds.bound("borne.surveyed_on").describe())
    return precision, method, surveyed


# --- tables with a WKT geometry column -----------------------------------------------------

WKT_HEADERS = ("wkt", "geometry_wkt", "geom_wkt", "the_geom")


def wkt_column(path: Path, encoding: str | None = None) -> int | None:
    """The index of a table's WKT geometry column (``wkt``…), None when it has none (a table of bornes)."""
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    text, _, _ = decode_table(head, encoding, path.name)
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    header = next(csv.reader([header_line], delimiter=sniff_delimiter(header_line)), [])
    keys = [_header_key(h) for h in header]
    for name in WKT_HEADERS:
        if _header_key(name) in keys:
            return keys.index(_header_key(name))
    return None


def wkt_table_to_gpkg(path: Path, work: Path, *, srid: int, encoding: str | None) -> Converted:
    """Convert a table whose ``wkt`` column holds each parcel's geometry (as SIFC exports it) into parcels.

    Every other column is kept as text, named as in the header; the pipeline maps them like the
    fields of any layer. A cell that is not WKT gives a feature without geometry, which the
    pipeline rejects (``null_geometry``) without refusing the file.
    """
    import pyarrow as pa
    import shapely
    from pyogrio import write_arrow

    text, used_encoding, origin = decode_table(path.read_bytes(), encoding, path.name)
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    if not header_line:
        raise ImportRejected("import.empty")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(header_line))
    header = next(reader)
    keys = [_header_key(h) for h in header]
    geometry_index = next(keys.index(_header_key(n)) for n in WKT_HEADERS if _header_key(n) in keys)
    names = [h.strip() or f"field_{i + 1}" for i, h in enumerate(header) if i != geometry_index]
    rows = [row for row in _rows(reader, path) if any(cell.strip() for cell in row)]
    if not rows:
        raise ImportRejected("import.empty")
    width = len(header)
    cells = [row + [""] * (width - len(row)) for row in rows]
    others = [i for i in range(width) if i != geometry_index]
    geometries = shapely.from_wkt([r[geometry_index].strip() or None for r in cells], on_invalid="ignore")
    arrays = [pa.array([r[i] if r[i] != "" else None for r in cells], pa.string()) for i in others]
    arrays.append(pa.array(shapely.to_wkb(geometries), pa.binary()))
    schema = pa.schema([pa.field(n, pa.string()) for n in names]
                       + [pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "geoarrow.wkb"})])
    target = work / "wkt" / f"{path.stem}.gpkg"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_arrow(pa.table(arrays, schema=schema), target, layer=CONVERTED_LAYER, driver="GPKG",
                geometry_name="geometry", geometry_type="Unknown", crs=f"EPSG:{srid}")
    notes: list[dict[str, object]] = []
    if origin == "fallback":
        notes.append({"code": "encoding_fallback", "encoding": "ISO-8859-1"})
    return Converted(path=target, layer=CONVERTED_LAYER, features=len(rows), encoding=used_encoding,
                     encoding_origin=origin, notes=notes)
