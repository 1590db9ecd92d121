"""The returned file itself: what is accepted at the door, and what a GeoPackage must be to be read.

A returned package is untrusted input from a tablet that spent weeks outside: it may be truncated,
hand-edited in a SQLite browser, zipped with a folder of holiday photos or built to attack the
server. Everything here only **reads** it, on a private copy, and refuses the whole file at the
first sign that it is not the package the server issued in the shape the server wrote (ADR 0003,
§3 steps 1 to 3): what it says is judged later against the server's own record
(:mod:`sifc.field.returns`), never trusted for itself.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from sifc.errors import ImportRejected, TooLarge, UnsupportedFormat
from sifc.field import layers
from sifc.imports.source import _check_members

SQLITE_MAGIC = b"SQLite format 3\x00"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
# Files a QGIS or QField project folder holds besides its data and photos; read by nobody.
PROJECT_SUFFIXES = (".qgs", ".qgz", ".qgd", ".qgs~", ".qgz~", ".txt")
GPKG_SIDECARS = ("-wal", "-shm", "-journal")
# GeoPackage, SQLite and GDAL bookkeeping that any writer may add or keep.
SYSTEM_TABLE = re.compile(r"^(gpkg_|gpkgext_|sqlite_|rtree_)")


@dataclass
class Intake:
    """What the door saw of an upload: where its GeoPackage and photos are inside it."""

    gpkg_member: str | None  # inside a zip; None for a bare GeoPackage
    sidecars: list[str] = field(default_factory=list)
    photos: dict[str, str] = field(default_factory=dict)  # path relative to the project ("DCIM/a.jpg") → member


def intake(path: Path, *, size: int, max_bytes: int, max_photos: int, max_photo_bytes: int) -> Intake:
    """Refuse, before any job exists, an upload that cannot be a returned package.

    A zip goes through the import's member checks (zip slip, bomb ratio); it must hold exactly
    one GeoPackage (with its ``-wal``/``-shm`` if QGIS left them) and, as photos, only JPEG or
    PNG files under ``DCIM/`` beside it. A bare GeoPackage is accepted (its photos are then
    reported missing).
    """
    if size > max_bytes:
        raise TooLarge("field.return_too_large", limit_mb=max_bytes // 1024**2)
    name = path.name.lower()
    if name.endswith(".gpkg"):
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise ImportRejected("field.not_geopackage", name=path.name)
        return Intake(gpkg_member=None)
    if not name.endswith(".zip"):
        raise UnsupportedFormat("field.return_format", name=path.name[:120])
    try:
        with zipfile.ZipFile(path) as bundle:
            _check_members(path, bundle)
            return _members(bundle, max_photos=max_photos, max_photo_bytes=max_photo_bytes)
    except zipfile.BadZipFile as error:
        raise ImportRejected("import.unreadable", path=path.name, reason=str(error)[:200]) from error


def _members(bundle: zipfile.ZipFile, *, max_photos: int, max_photo_bytes: int) -> Intake:
    files = [m for m in bundle.infolist() if not m.is_dir()]
    packages = [m for m in files if m.filename.lower().endswith(".gpkg")]
    if len(packages) != 1:
        raise ImportRejected("field.one_geopackage", found=len(packages))
    gpkg = packages[0].filename
    root = PurePosixPath(gpkg).parent
    found = Intake(gpkg_member=gpkg)
    for member in files:
        name = member.filename
        lower = name.lower()
        if name == gpkg:
            continue
        if any(name == gpkg + suffix for suffix in GPKG_SIDECARS):
            found.sidecars.append(name)
            continue
        relative = PurePosixPath(name).relative_to(root) if PurePosixPath(name).is_relative_to(root) else None
        if relative is not None and relative.parts[:1] == (layers.PHOTO_DIR,) and lower.endswith(PHOTO_SUFFIXES):
            if member.file_size > max_photo_bytes:
                raise TooLarge("field.photo_too_large", name=relative.as_posix()[:120],
                               limit_mib=round(max_photo_bytes / 1024**2, 1))
            found.photos[relative.as_posix()] = name
            continue
        if lower.endswith(PROJECT_SUFFIXES) and relative is not None and len(relative.parts) == 1:
            continue
        raise ImportRejected("field.unexpected_member", member=name[:120])
    if len(found.photos) > max_photos:
        raise ImportRejected("field.too_many_photos", count=len(found.photos), limit=max_photos)
    return found


@contextmanager
def unpacked(upload: Path, work: Path) -> Iterator[tuple[Path, dict[str, Path]]]:
    """The upload's GeoPackage, checkpointed on a private copy, and its photos (relative path → file).

    Edits QGIS left in ``data.gpkg-wal`` are part of the return: the copy is opened with its WAL
    beside it and checkpointed, so that what is read is what the officer saw.
    """
    work.mkdir(parents=True, exist_ok=True)
    target = work / layers.GPKG_NAME
    photos: dict[str, Path] = {}
    if upload.suffix.lower() == ".gpkg":
        shutil.copyfile(upload, target)
        for suffix in GPKG_SIDECARS[:1]:
            if Path(str(upload) + suffix).exists():
                shutil.copyfile(str(upload) + suffix, str(target) + suffix)
    else:
        with zipfile.ZipFile(upload) as bundle:
            _check_members(upload, bundle)
            seen = _members(bundle, max_photos=1 << 30, max_photo_bytes=1 << 62)
            assert seen.gpkg_member is not None
            _copy_member(bundle, seen.gpkg_member, target)
            for sidecar in seen.sidecars:
                if sidecar.endswith("-wal"):
                    _copy_member(bundle, sidecar, Path(str(target) + "-wal"))
            folder = work / "photos"
            for number, (relative, member) in enumerate(sorted(seen.photos.items())):
                photo = folder / f"{number}{PurePosixPath(relative).suffix.lower()}"
                folder.mkdir(exist_ok=True)
                _copy_member(bundle, member, photo)
                photos[relative] = photo
    _checkpoint(target)
    yield target, photos


def _copy_member(bundle: zipfile.ZipFile, member: str, target: Path) -> None:
    with bundle.open(member) as source, target.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _checkpoint(gpkg: Path) -> None:
    """Fold a WAL into the copy and check the file is a sound SQLite database."""
    with gpkg.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise ImportRejected("field.not_geopackage", name=layers.GPKG_NAME)
    try:
        with closing(sqlite3.connect(gpkg)) as conn:
            conn.execute("PRAGMA trusted_schema = OFF")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode = DELETE")
            verdict = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as error:
        raise ImportRejected("field.corrupt", reason=str(error)[:200]) from error
    if verdict is None or verdict[0] != "ok":
        raise ImportRejected("field.corrupt", reason=str(verdict[0] if verdict else "?")[:200])


def read_only(gpkg: Path) -> sqlite3.Connection:
    """A read-only connection to a checked GeoPackage (no trigger or view of the file can run)."""
    conn = sqlite3.connect(f"{gpkg.as_uri()}?mode=ro", uri=True)
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.row_factory = sqlite3.Row
    return conn


def package_claims(gpkg: Path) -> dict[str, str]:
    """The key/value rows of the file's ``sifc_package`` table (refused if it is gone or unreadable)."""
    with closing(read_only(gpkg)) as conn:
        try:
            rows = conn.execute(f"SELECT key, value FROM {layers.PACKAGE.name}").fetchall()
        except sqlite3.DatabaseError as error:
            raise ImportRejected("field.table_missing", table=layers.PACKAGE.name) from error
    return {str(r["key"]): str(r["value"]) for r in rows if r["key"] is not None and r["value"] is not None}


def objects(gpkg: Path) -> list[tuple[str, str, str]]:
    """The file's schema objects: (type, name, table)."""
    with closing(read_only(gpkg)) as conn:
        return [(str(r[0]), str(r[1]), str(r[2]))
                for r in conn.execute("SELECT type, name, tbl_name FROM sqlite_master ORDER BY type, name")]


def check_shape(gpkg: Path, base: Path, expected: Iterable[str], schema_of: Any) -> None:
    """Refuse a file whose tables, columns, geometry types or SRS differ from the base's.

    ``expected`` are the package's tables; ``schema_of(path) -> dict`` dumps a GeoPackage's
    schema (geodiff's JSON). A dropped table is ``field.table_missing``; a table, view or trigger
    the server did not write is refused too: a return is only ever read, but what it carries
    beyond the package is not the officer's work.
    """
    expected = list(expected)
    mine = objects(gpkg)
    tables = {name for kind, name, _ in mine if kind == "table" and not SYSTEM_TABLE.match(name)}
    for name in expected:
        if name not in tables:
            raise ImportRejected("field.table_missing", table=name)
    extra = sorted(tables - set(expected))
    views = sorted(name for kind, name, _ in mine if kind == "view")
    if extra or views:
        raise ImportRejected("field.table_extra", names=", ".join((extra + views)[:10])[:200])
    allowed = {name for kind, name, _ in objects(base) if kind == "trigger"}
    triggers = sorted(name for kind, name, _ in mine if kind == "trigger" and name not in allowed
                      and not _gdal_trigger(name, expected))
    if triggers:
        raise ImportRejected("field.trigger_extra", names=", ".join(triggers[:10])[:200])
    theirs, ours = _tables(schema_of(gpkg)), _tables(schema_of(base))
    for name in expected:
        if theirs.get(name) != ours.get(name):
            raise ImportRejected("field.schema_changed", table=name)


def _gdal_trigger(name: str, tables: list[str]) -> bool:
    """Triggers GDAL (3.6 to 3.12: QGIS 3.22, QField) adds to a GeoPackage it edits."""
    if name.startswith("gpkg_"):
        return True
    return any(re.fullmatch(rf"(rtree_{re.escape(t)}_geom_(insert|delete|update\d*)"
                            rf"|trigger_(insert|delete)_feature_count_{re.escape(t)})", name) for t in tables)


def _tables(schema: dict[str, Any]) -> dict[str, Any]:
    """Per table: its columns (name, type, key, geometry type and SRS) and CRS, as compared."""
    found: dict[str, Any] = {}
    for table in schema.get("geodiff_schema", []):
        columns = [(c.get("name"), c.get("type"), bool(c.get("primary_key")),
                    orjson.dumps(c.get("geometry"), option=orjson.OPT_SORT_KEYS).decode())
                   for c in table.get("columns", [])]
        crs = table.get("crs") or {}
        found[str(table.get("table"))] = (sorted(columns, key=str), crs.get("auth_name"), crs.get("auth_code"),
                                          crs.get("srs_id"))
    return found


def rows(gpkg: Path, table: str, fids: Iterable[int], columns: Iterable[str]) -> dict[int, dict[str, Any]]:
    """Some rows of a table of the file, by fid (geometry as the GeoPackage blob, in ``geom``)."""
    columns = list(columns)
    known = layers.by_name(table)  # a layer of the package and its own fields: never text from the file
    assert set(columns) <= {f.name for f in known.fields}, columns
    wanted = sorted(set(fids))
    names = ", ".join(f'"{c}"' for c in ("fid", *columns, "geom"))
    found: dict[int, dict[str, Any]] = {}
    with closing(read_only(gpkg)) as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            for row in conn.execute(f'SELECT {names} FROM "{table}" WHERE fid IN ({marks})', chunk):
                found[int(row["fid"])] = dict(row)
    return found


def gpkg_wkb(blob: bytes | None) -> bytes | None:
    """Plain WKB from a GeoPackage geometry blob (GeoPackage 1.2, §2.1.3); None for none or empty."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0b10000:  # the empty-geometry flag
        return None
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get((flags >> 1) & 0b111)
    if envelope is None:
        return None
    return bytes(blob[8 + envelope:])
