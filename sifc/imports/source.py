"""Opening a surveyor's file: format, layer, CRS, encoding, geometry type, sidecar repairs.

Shapefiles come as a folder, a ``.shp`` or a ``.zip``; GeoPackages, GeoJSON and GML as
files (or alone in a folder or a zip). DXF drawings and tables of bornes (``.csv``) are
first converted into a GeoPackage (see :mod:`sifc.imports.formats`).
What is found and repaired on the way (a rebuilt ``.shx``, a missing ``.dbf``, an unusable
``.cpg``, dropped Z/M) becomes a file-level note of the report. Refusals raise
:class:`ImportRejected` before anything is written.
"""

from __future__ import annotations

import codecs
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyogrio
from pyproj import CRS
from pyproj.exceptions import CRSError

from sifc.errors import ImportRejected
from sifc.imports import formats

VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".gml", ".fgb", ".dxf", ".csv")
SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".shp.xml")
MAX_UNZIPPED_BYTES = 2 * 1024**3
MAX_ZIP_RATIO = 200

# ESRI shape types (header byte 32) → geometry names, Z and M flags.
SHAPE_TYPES = {
    0: ("Null", False, False), 1: ("Point", False, False), 3: ("LineString", False, False),
    5: ("Polygon", False, False), 8: ("MultiPoint", False, False),
    11: ("Point", True, True), 13: ("LineString", True, True), 15: ("Polygon", True, True),
    18: ("MultiPoint", True, True), 21: ("Point", False, True), 23: ("LineString", False, True),
    25: ("Polygon", False, True), 28: ("MultiPoint", False, True), 31: ("MultiPatch", True, True),
}

# dBASE language driver ids (header byte 29) → Python codecs (the common ones).
DBF_CODE_PAGES = {
    0x01: "cp437", 0x02: "cp850", 0x03: "cp1252", 0x57: "cp1252", 0x58: "cp1252",
    0x59: "cp1252", 0x64: "cp852", 0x65: "cp866", 0x66: "cp865", 0x67: "cp861",
    0x6A: "cp737", 0x6B: "cp857", 0x78: "cp950", 0x79: "cp949", 0x7A: "cp936",
    0x7B: "cp932", 0x7C: "cp874", 0xC8: "cp1250", 0xC9: "cp1251", 0xCA: "cp1254",
    0xCB: "cp1253", 0xCC: "cp1257",
}
FALLBACK_ENCODING = "ISO-8859-1"


@dataclass
class SourceInfo:
    """What the pipeline needs to know about the file before reading its features."""

    path: Path
    layer: str | None
    fmt: str
    srid: int
    crs_origin: str
    encoding: str | None
    encoding_origin: str | None
    geometry_type: str
    features: int
    fields: list[str]
    geometry_column: str
    has_z: bool = False
    has_m: bool = False
    notes: list[dict[str, object]] = field(default_factory=list)
    points: list[formats.BornePoint] = field(default_factory=list)  # a table of bornes: its points


def _note(info_notes: list[dict[str, object]], code: str, **details: object) -> None:
    info_notes.append({"code": code, **details})


def check_archive(archive: Path) -> None:
    """Refuse a zip that is unreadable, a zip bomb, or has members outside its own folder."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            _check_members(archive, bundle)
    except zipfile.BadZipFile as error:
        raise ImportRejected("import.unreadable", path=archive.name, reason=str(error)) from error


def _check_members(archive: Path, bundle: zipfile.ZipFile) -> None:
    members = bundle.infolist()
    total = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if total > MAX_UNZIPPED_BYTES or total / packed > MAX_ZIP_RATIO:
        raise ImportRejected("import.zip_bomb", path=archive.name)
    for member in members:
        name = Path(member.filename)
        if name.is_absolute() or ".." in name.parts:
            raise ImportRejected("import.zip_unsafe", path=archive.name, member=member.filename)


def _safe_extract(archive: Path, target: Path) -> None:
    """Extract a zip, refusing path traversal and zip bombs."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            _check_members(archive, bundle)
            bundle.extractall(target)
    except zipfile.BadZipFile as error:
        raise ImportRejected("import.unreadable", path=archive.name, reason=str(error)) from error


def _find_dataset(folder: Path, original: Path) -> Path:
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VECTOR_SUFFIXES
                   and not p.name.startswith("."))
    shapefiles = [p for p in found if p.suffix.lower() == ".shp"]
    candidates = shapefiles or found
    if not candidates:
        raise ImportRejected("import.no_dataset", path=str(original))
    if len(candidates) > 1:
        raise ImportRejected("import.several_datasets", path=str(original),
                             names=", ".join(p.name for p in candidates[:10]))
    return candidates[0]


def _shape_header(shp: Path) -> tuple[str, bool, bool]:
    with shp.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or struct.unpack(">i", header[:4])[0] != 9994:
        raise ImportRejected("import.unreadable", path=shp.name, reason="en-tête .shp invalide")
    shape_type = struct.unpack("<i", header[32:36])[0]
    return SHAPE_TYPES.get(shape_type, (f"type {shape_type}", False, False))


def _codec(name: str) -> str | None:
    """Python codec for an encoding name as found in a .cpg (``UTF-8``, ``1252``, ``ANSI 1250``)."""
    cleaned = name.strip().strip("\x00").upper().replace("ANSI ", "CP").replace("ANSI_", "CP")
    if cleaned.isdigit():
        cleaned = f"CP{cleaned}"
    if not cleaned or len(cleaned) > 40:
        return None
    try:
        return _gdal_name(codecs.lookup(cleaned).name)
    except LookupError:
        return None


def _gdal_name(codec: str) -> str:
    """Python's codec name as iconv (inside GDAL) spells it: ``iso8859-1`` → ``ISO-8859-1``."""
    upper = codec.upper()
    if upper.startswith("ISO8859-"):
        return "ISO-8859-" + upper.split("-", 1)[1]
    return upper


def _shapefile_encoding(shp: Path, notes: list[dict[str, object]]) -> tuple[str | None, str | None]:
    dbf = _sidecar(shp, ".dbf")
    if dbf is None:
        return None, None
    cpg = _sidecar(shp, ".cpg")
    if cpg is not None:
        raw = cpg.read_bytes()[:200]
        codec = _codec(raw.decode("ascii", errors="replace"))
        if codec:
            return codec, "cpg"
        _note(notes, "cpg_unknown", content=raw[:40].decode("ascii", errors="replace"))
    with dbf.open("rb") as handle:
        header = handle.read(32)
    ldid = header[29] if len(header) > 29 else 0
    if ldid in DBF_CODE_PAGES:
        return _gdal_name(DBF_CODE_PAGES[ldid]), "dbf"
    _note(notes, "encoding_fallback", encoding=FALLBACK_ENCODING)
    return FALLBACK_ENCODING, "fallback"


def _sidecar(shp: Path, suffix: str) -> Path | None:
    for candidate in (shp.with_suffix(suffix), shp.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def resolve_srid(declared: str | None, override: str | None, path: Path,
                 notes: list[dict[str, object]]) -> tuple[int, str]:
    """The EPSG code to read a file with: ``override`` (``--crs``) else the file's own CRS, else refused."""
    if override:
        try:
            srid = CRS.from_user_input(override).to_epsg()
        except CRSError as error:
            raise ImportRejected("import.bad_crs", crs=override) from error
        if srid is None:
            raise ImportRejected("import.bad_crs", crs=override)
        if declared:
            file_srid = _epsg(declared)
            if file_srid != srid:
                _note(notes, "crs_overridden", file_crs=declared, used=f"EPSG:{srid}")
        return srid, "option"
    if not declared:
        raise ImportRejected("import.no_crs", path=path.name)
    srid = _epsg(declared)
    if srid is None:
        raise ImportRejected("import.bad_crs", crs=declared[:80])
    return srid, "file"


def _epsg(declared: str) -> int | None:
    try:
        crs = CRS.from_user_input(declared)
    except CRSError:
        return None
    return crs.to_epsg() or crs.to_epsg(min_confidence=70)


@contextmanager
def open_source(path: Path, *, layer: str | None = None, crs: str | None = None,
                encoding: str | None = None) -> Iterator[SourceInfo]:
    """Open ``path`` for reading, repairing what can be repaired on a private copy."""
    if not path.exists():
        raise ImportRejected("import.file_missing", path=str(path))
    # GDAL rebuilds a missing .shx only when asked; a file missing it is first copied to a
    # private scratch folder (see _private_copy), so the user's folder is never written to.
    pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": True})
    with tempfile.TemporaryDirectory(prefix="sifc-import-") as scratch:
        work = Path(scratch)
        target = path
        if path.is_dir():
            target = _find_dataset(path, path)
        elif path.suffix.lower() == ".zip":
            _safe_extract(path, work / "zip")
            target = _find_dataset(work / "zip", path)
        yield _inspect(target, work, layer=layer, crs=crs, encoding=encoding)


def _inspect(target: Path, work: Path, *, layer: str | None, crs: str | None,
             encoding: str | None) -> SourceInfo:
    notes: list[dict[str, object]] = []
    suffix = target.suffix.lower()
    has_z = has_m = False
    encoding_origin: str | None = None
    if suffix == ".shp":
        fmt = "ESRI Shapefile"
        geometry_type, has_z, has_m = _shape_header(target)
        if _sidecar(target, ".shx") is None:
            target = _private_copy(target, work)
            _note(notes, "shx_rebuilt")
        if _sidecar(target, ".dbf") is None:
            _note(notes, "dbf_missing")
        if encoding:
            known = _codec(encoding)
            if known is None:
                raise ImportRejected("import.bad_encoding", encoding=encoding)
            encoding, encoding_origin = known, "option"
        else:
            encoding, encoding_origin = _shapefile_encoding(target, notes)
    elif suffix in (".gpkg", ".geojson", ".json", ".gml", ".fgb"):
        fmt = {".gpkg": "GPKG", ".gml": "GML", ".fgb": "FlatGeobuf"}.get(suffix, "GeoJSON")
        geometry_type = ""
        if encoding:
            encoding_origin = "option"
        if fmt == "GML":
            # GDAL writes a .gfs schema next to a GML it reads: read a private copy instead.
            target = _private_gml(target, work)
    elif suffix in (".dxf", ".csv"):
        return _converted(target, work, layer=layer, crs=crs, encoding=encoding)
    else:
        raise ImportRejected("import.unsupported_format", path=target.name, suffix=suffix or "?")
    try:
        if fmt in ("GPKG", "GML") and layer is None:
            names = [str(row[0]) for row in pyogrio.list_layers(target)]
            if fmt == "GML":
                layer = formats.pick_gml_layer(names, target)
            elif len(names) > 1:
                raise ImportRejected("import.choose_layer", path=target.name, layers=", ".join(names))
        info = pyogrio.read_info(target, layer=layer, encoding=encoding if fmt == "ESRI Shapefile" else None)
        if int(info.get("features") or 0) < 0:  # unknown without a full read (GML, some GeoJSON)
            info = pyogrio.read_info(target, layer=layer, force_feature_count=True)
    except ImportRejected:
        raise
    except Exception as error:  # GDAL raises several types for unreadable files
        raise ImportRejected("import.unreadable", path=target.name,
                             reason=str(error).splitlines()[0][:200]) from error
    features = int(info.get("features") or 0)
    if features == 0:
        raise ImportRejected("import.empty")
    declared_type = str(info.get("geometry_type") or "Unknown")
    if fmt == "ESRI Shapefile" and geometry_type not in ("Polygon", "Null"):
        raise ImportRejected("import.not_polygons", found=geometry_type)
    if fmt != "ESRI Shapefile":
        geometry_type = declared_type
        upper = declared_type.upper()
        has_z = has_z or " Z" in upper or upper.startswith("3D") or upper.endswith("Z")
        has_m = has_m or upper.endswith(" M") or upper.endswith("ZM")
        base = declared_type.replace("3D ", "").split(" ")[0]
        if base not in ("Polygon", "MultiPolygon", "Unknown"):
            raise ImportRejected("import.not_polygons", found=declared_type)
    declared_crs = info.get("crs")
    if fmt == "GML" and not declared_crs:
        declared_crs = formats.gml_srs_name(target)  # INSPIRE 3.0: the CRS is on the geometries only
    srid, crs_origin = resolve_srid(declared_crs, crs, target, notes)
    if has_z:
        _note(notes, "z_dropped")
    if has_m:
        _note(notes, "m_dropped")
    return SourceInfo(
        path=target, layer=layer, fmt=fmt, srid=srid, crs_origin=crs_origin, encoding=encoding,
        encoding_origin=encoding_origin, geometry_type=geometry_type, features=features,
        fields=[str(f) for f in info.get("fields", [])],
        geometry_column=str(info.get("geometry_name") or "wkb_geometry") or "wkb_geometry",
        has_z=has_z, has_m=has_m, notes=notes)


def _converted(target: Path, work: Path, *, layer: str | None, crs: str | None,
               encoding: str | None) -> SourceInfo:
    """A DXF drawing or a table (bornes, or a WKT column), converted to a GeoPackage in the CRS of ``--crs``."""
    dxf = target.suffix.lower() == ".dxf"
    wkt = not dxf and formats.wkt_column(target, encoding) is not None
    if not crs:
        raise ImportRejected("import.dxf_needs_crs" if dxf else "import.wkt_needs_crs" if wkt
                             else "import.bornes_needs_crs", path=target.name)
    notes: list[dict[str, object]] = []
    srid, crs_origin = resolve_srid(None, crs, target, notes)
    if dxf:
        converted = formats.dxf_to_gpkg(target, work, srid=srid, layer=layer)
    elif wkt:
        converted = formats.wkt_table_to_gpkg(target, work, srid=srid, encoding=encoding)
    else:
        converted = formats.bornes_to_gpkg(target, work, srid=srid, encoding=encoding)
    info = pyogrio.read_info(converted.path, layer=converted.layer)
    kind = "DXF" if dxf else "CSV (WKT)" if wkt else "CSV (bornes)"
    return SourceInfo(
        path=converted.path, layer=converted.layer, fmt=kind, srid=srid,
        crs_origin=crs_origin, encoding=converted.encoding, encoding_origin=converted.encoding_origin,
        geometry_type="Polygon", features=converted.features, fields=[str(f) for f in info.get("fields", [])],
        geometry_column=str(info.get("geometry_name") or "geom"), notes=notes + converted.notes,
        points=converted.points)


def _private_gml(gml: Path, work: Path) -> Path:
    """Copy a GML file (and an application schema beside it) to the scratch folder."""
    folder = work / "gml"
    folder.mkdir(exist_ok=True)
    for part in (gml, gml.with_suffix(".xsd")):
        if part.is_file():
            shutil.copy2(part, folder / part.name)
    return folder / gml.name


def _private_copy(shp: Path, work: Path) -> Path:
    """Copy a shapefile's parts to a scratch folder, where GDAL may rebuild its index."""
    folder = work / "shapefile"
    folder.mkdir(exist_ok=True)
    for part in shp.parent.iterdir():
        if part.stem == shp.stem:
            shutil.copy2(part, folder / part.name)
    return folder / shp.name
