"""Field packages, the check-out side: build one, list them, declare one lost, hand one to another officer.

A package (ADR 0003 §2) is a zip a land officer takes to the field without a network: a GeoPackage
of the parcels of one area of one commune (``data.gpkg``), a QGIS/QField project beside it, an
empty ``DCIM/`` folder for photos and a short ``LISEZMOI.txt``. The server keeps its record
(``field_package``) and one item per parcel issued (``field_package_item``: its fid in the file,
the version issued and the fingerprint of that state). A return is judged against that record,
never against values read back from the file, so the file's ``parcels`` table is written from the
record by one function, :func:`parcel_batches`, both here and when a return regenerates its base
(:func:`write_base`).

Rules live here, so the API and the CLI meet them alike: field work in the package's commune
(``Action.FIELD_WORK``); holders only for a principal who may read personal data there, with a
stated purpose, and each parcel's read written to the access log in the issuing transaction.
Parcels are read from a server-side cursor a batch at a time, their items written a batch at a
time, and the GeoPackage written by GDAL from those batches: memory does not grow with the area.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Row, RowMapping, TextClause, text
from sqlalchemy.orm import Session

from sifc import journal
from sifc.auth import audit, users
from sifc.auth.principal import Action, Principal, require
from sifc.auth.service import principal_for
from sifc.crs import STORAGE_SRID, to_storage_sql
from sifc.db import copy_rows
from sifc.errors import Conflict, Forbidden, InvalidInput, NotFound
from sifc.exports import resolve_commune
from sifc.federation import directory
from sifc.field import fingerprint, gpkg, mac
from sifc.field.layers import (
    BORNES,
    COMMUNE,
    FORMAT,
    GPKG_NAME,
    HOLDERS,
    NEIGHBOURS,
    NEW_BORNES,
    NEW_PARCELS,
    PACKAGE,
    PARCELS,
    PHOTO_DIR,
    PROJECT_NAME,
    README_NAME,
    UNITS,
    Layer,
    layers,
)
from sifc.field.project import project_bytes
from sifc.geojson import finite
from sifc.keyring import Keyring
from sifc.parcels.selection import CURRENT
from sifc.parcels.service import COORDINATE_LIMITS
from sifc.parcels.spatial import MAX_VERTICES, parse_bbox
from sifc.personal import may_reveal

log = logging.getLogger(__name__)

BATCH_SIZE = 500  # as sifc.exports: about one batch of rows, objects and Arrow arrays in memory at a time

# A parcel version as a row of the package's ``parcels`` layer: the columns :func:`parcel_row` reads, over
# ``v`` (a parcel version: the base of a return) or ``t`` (a current parcel: the package).
_PARCEL_COLUMNS = ("{a}.parcel_id, {a}.version, {a}.nicad, {a}.section, {a}.local_number, {a}.land_use, "
                   "{a}.tenure_regime, {a}.declared_area_m2, ST_AsBinary({a}.geom) AS wkb")
PARCEL_COLUMNS = _PARCEL_COLUMNS.format(a="v")
CURRENT_PARCEL_COLUMNS = _PARCEL_COLUMNS.format(a="t")
# The base of a return: each item at its ``base_version``, in fid order (immutable parcel versions).
BASE_SQL = text(f"""
    SELECT i.fid, {PARCEL_COLUMNS}
    FROM field_package_item i
    JOIN parcel_version v ON v.parcel_id = i.parcel_id AND v.version = i.base_version
    WHERE i.package_id = :package_id
    ORDER BY i.fid""")


def parcel_row(fid: int, row: Row[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """A parcel version (the columns of :data:`PARCEL_COLUMNS`) as the package writes it in ``parcels``.

    The package and the base of its return both call this, so the same version gives the same row
    byte for byte; the field officer's columns (remark, photo, survey_done, pv_photo) start empty.
    """
    values = row._mapping if isinstance(row, Row) else row
    return {"fid": int(fid), "parcel_id": str(values["parcel_id"]), "version": int(values["version"]),
            "nicad": values["nicad"], "section": values["section"], "local_number": values["local_number"],
            "land_use": values["land_use"], "tenure_regime": values["tenure_regime"],
            "declared_area_m2": values["declared_area_m2"], "geometry": bytes(values["wkb"])}


def stream(session: Session, statement: TextClause, params: Mapping[str, Any],
           batch_size: int = BATCH_SIZE) -> Iterator[Sequence[Row[Any]]]:
    """The rows of ``statement``, ``batch_size`` at a time, from a server-side cursor.

    As ``sifc.exports`` reads its layers, for any statement of this module: a batch is let go before the next
    is read, and other statements may run on the session between two batches (the items of a
    package are written while its parcels are read).
    """
    result = session.execute(statement, dict(params),
                             execution_options={"stream_results": True, "max_row_buffer": batch_size})
    try:
        while rows := result.fetchmany(batch_size):
            yield rows
            del rows
    finally:
        result.close()


def parcel_batches(session: Session, package_id: uuid.UUID | str) -> Iterator[pa.RecordBatch]:
    """The ``parcels`` layer of a package's base: its items at their base version, as record batches."""
    for rows in stream(session, BASE_SQL, {"package_id": str(package_id)}):
        batch = gpkg.record_batch(PARCELS, [parcel_row(row.fid, row) for row in rows])
        del rows
        yield batch
        del batch


def write_base(session: Session, package_id: uuid.UUID | str, path: Path) -> None:
    """Write the GeoPackage a return of ``package_id`` is compared with: ``parcels`` as the record says.

    ``parcels`` holds each item at its ``base_version`` (the version issued, advanced by returns
    applied since), with the item's fid and the values the package wrote; ``new_parcels`` and
    ``new_bornes`` are empty. The file's reference layers are not part of the base: a return only
    reads the tables of :data:`sifc.field.layers.RETURNED`.
    """
    gpkg.write_layer(path, PARCELS, parcel_batches(session, package_id), append=False, spatial_index=False)
    gpkg.write_layer(path, NEW_PARCELS, [], append=True, spatial_index=False)
    gpkg.write_layer(path, NEW_BORNES, [], append=True, spatial_index=False)


# --- the area ----------------------------------------------------------------------------------

SHAPE_SQL = to_storage_sql("ST_SetSRID(ST_GeomFromWKB(:wkb), CAST(:srid AS integer))", "CAST(:srid AS integer)")
# A multipolygon from whatever an intersection gives (polygons, slivers, lines where edges meet).
MULTI_SQL = "ST_Multi(ST_CollectionExtract(ST_MakeValid({geometry}), 3))"
COMMUNES_MET_SQL = text(f"""
    WITH asked AS (SELECT ST_MakeValid({SHAPE_SQL}) AS g)
    SELECT c.code, ST_Area(ST_Intersection(c.geom, a.g)) AS overlap, ST_Area(a.g) AS asked
    FROM commune c, asked a
    WHERE c.geom IS NOT NULL AND NOT ST_IsEmpty(a.g) AND c.geom && a.g AND ST_Intersects(c.geom, a.g)
    ORDER BY c.code""")
CLIPPED_SQL = text(f"""
    WITH asked AS (SELECT ST_MakeValid({SHAPE_SQL}) AS g)
    SELECT ST_AsBinary({MULTI_SQL.format(geometry="ST_Intersection(c.geom, a.g)")})
    FROM commune c, asked a WHERE c.code = :commune""")
COMMUNE_AREA_SQL = text("SELECT ST_AsBinary(geom) FROM commune WHERE code = :commune AND geom IS NOT NULL")
SECTION_AREA_SQL = text(f"""
    SELECT ST_AsBinary({MULTI_SQL.format(geometry="ST_Intersection(c.geom, h.g)")})
    FROM commune c,
         (SELECT ST_ConvexHull(ST_Collect(geom)) AS g FROM parcel
          WHERE commune_code = :commune AND section = :section) h
    WHERE c.code = :commune AND c.geom IS NOT NULL AND h.g IS NOT NULL""")
# Less than this share of the asked area in a commune is a sliver of its boundary, not a part of the area.
MIN_SHARE = 0.005
MIN_OVERLAP_M2 = 1.0


@dataclass(frozen=True)
class Area:
    """Where a package is: its commune, its multipolygon (WKB, storage CRS) and the selection as asked."""

    commune: str
    wkb: bytes
    selection: dict[str, Any]


def _drawn(polygon: Mapping[str, Any]) -> BaseGeometry:
    """A drawn GeoJSON polygon (EPSG:4326), checked as the spatial questions check theirs."""
    try:
        shaped = shape(finite(dict(polygon)))
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise InvalidInput("field.bad_polygon", reason=str(error)[:200]) from error
    if shaped.geom_type not in ("Polygon", "MultiPolygon") or shaped.is_empty:
        raise InvalidInput("field.bad_polygon", reason=shaped.geom_type)
    if shapely.get_num_coordinates(shaped) > MAX_VERTICES:
        raise InvalidInput("spatial.too_many_vertices", limit=MAX_VERTICES)
    lo_x, lo_y, hi_x, hi_y = COORDINATE_LIMITS[4326]
    minx, miny, maxx, maxy = shaped.bounds
    if not (lo_x <= minx and maxx <= hi_x and lo_y <= miny and maxy <= hi_y):
        raise InvalidInput("field.bad_polygon", reason="coordonnées hors limites")
    return shaped


def _box(bbox: tuple[float, ...] | Sequence[float] | str, srid: int) -> BaseGeometry:
    if isinstance(bbox, str):
        values = parse_bbox(bbox, srid)
    else:
        values = tuple(float(v) for v in bbox)  # type: ignore[assignment]
        if len(values) != 4:
            raise InvalidInput("spatial.bad_bbox", bbox=str(bbox)[:100])
        parse_bbox(",".join(repr(v) for v in values), srid)
    return shapely.box(*values)


def _one_commune(session: Session, shaped: BaseGeometry, srid: int, commune: str | None) -> str:
    """The commune a drawn area lies in; refused when it lies in none or over several."""
    params = {"wkb": shapely.to_wkb(shaped), "srid": srid}
    met = [row for row in session.execute(COMMUNES_MET_SQL, params).all()
           if row.overlap > MIN_OVERLAP_M2 and row.overlap > MIN_SHARE * row.asked]
    codes = [row.code for row in met]
    if commune is not None:
        if commune not in codes:
            raise InvalidInput("field.area_outside_commune", commune=commune)
        return commune
    if not codes:
        raise InvalidInput("field.area_outside_communes")
    if len(codes) > 1:
        raise InvalidInput("field.area_several_communes", communes=", ".join(codes))
    return str(codes[0])


def resolve_area(session: Session, *, commune: str | None, section: str | None = None,
                 bbox: Sequence[float] | str | None = None, bbox_crs: int = 4326,
                 polygon: Mapping[str, Any] | None = None) -> Area:
    """The area a request names: a commune, a section of it, a box or a drawn polygon, within one commune.

    A box or a polygon is clipped to its commune: the one named, or the only one it lies in (an
    area over several communes is refused: a package is checked out, returned and authorised in
    one commune). A section is the hull of its current parcels.
    """
    if sum(x is not None for x in (section, bbox, polygon)) > 1:
        raise InvalidInput("field.one_area")
    code = resolve_commune(session, commune) if commune is not None else None
    if section is not None:
        if code is None:
            raise InvalidInput("field.section_needs_commune")
        wkb = session.execute(SECTION_AREA_SQL, {"commune": code, "section": section}).scalar()
        if wkb is None:
            raise NotFound("field.section_empty", commune=code, section=section[:50])
        return _checked(Area(code, bytes(wkb), {"commune": code, "section": section}))
    if bbox is not None or polygon is not None:
        if polygon is not None:
            shaped, srid = _drawn(polygon), 4326
            asked: dict[str, Any] = {"polygon": dict(polygon)}
        else:
            assert bbox is not None
            shaped, srid = _box(bbox, bbox_crs), bbox_crs
            asked = {"bbox": list(shaped.bounds), "bbox_crs": f"EPSG:{bbox_crs}"}
        code = _one_commune(session, shaped, srid, code)
        wkb = session.execute(CLIPPED_SQL, {"wkb": shapely.to_wkb(shaped), "srid": srid, "commune": code}).scalar()
        return _checked(Area(code, bytes(wkb) if wkb is not None else b"", {"commune": code, **asked}))
    if code is None:
        raise InvalidInput("field.area_required")
    wkb = session.execute(COMMUNE_AREA_SQL, {"commune": code}).scalar()
    if wkb is None:
        raise InvalidInput("field.commune_without_boundary", commune=code)
    return Area(code, bytes(wkb), {"commune": code})


def _checked(area: Area) -> Area:
    shaped = shapely.from_wkb(area.wkb) if area.wkb else None
    if shaped is None or shaped.is_empty or shaped.area < MIN_OVERLAP_M2:
        raise InvalidInput("field.area_empty", commune=area.commune)
    return area


# --- building ------------------------------------------------------------------------------------

INSERT_PACKAGE_SQL = text(f"""
    INSERT INTO field_package (id, commune_code, area, selection, issued_to, issued_by, issued_at, expires_at,
                               purpose, includes_holders, status, format, hmac_kid, mac)
    VALUES (:id, :commune, ST_GeomFromWKB(:area, {STORAGE_SRID}), CAST(:selection AS jsonb), :issued_to, :issued_by,
            :issued_at, :expires_at, :purpose, :includes_holders, 'open', :format, :kid, :mac)""")
# The items of a batch, written by COPY (sifc.db.copy_rows): the version issued is also the first base.
ITEM_TABLE = "field_package_item"
ITEM_COLUMNS = ("package_id", "fid", "parcel_id", "issued_version", "base_version", "fingerprint")
FINISH_SQL = text("""
    UPDATE field_package SET item_count = :items, zip_bytes = :size, zip_sha256 = :sha256 WHERE id = :id""")
# The package's parcels: the current parcels of its commune that meet its area, in id order (fid order).
IN_AREA_SQL = text(f"""
    SELECT {CURRENT_PARCEL_COLUMNS} FROM {CURRENT} t
    WHERE t.commune_code = :package_commune
      AND t.geom && (SELECT area FROM field_package WHERE id = :package_id)
      AND ST_Intersects(t.geom, (SELECT area FROM field_package WHERE id = :package_id))
    ORDER BY t.parcel_id""")
IN_COMMUNE_SQL = text(f"""
    SELECT {CURRENT_PARCEL_COLUMNS} FROM {CURRENT} t WHERE t.commune_code = :package_commune ORDER BY t.parcel_id""")
NEIGHBOUR_GAP_M = 0.5  # a parcel this close to one of the package's is its neighbour (shared edges, survey noise)
NEIGHBOURS_SQL = text("""
    WITH near AS (
        SELECT DISTINCT n.parcel_id
        FROM field_package_item i
        JOIN parcel_version v ON v.parcel_id = i.parcel_id AND v.version = i.issued_version
        JOIN parcel n ON n.geom && ST_Expand(v.geom, :gap) AND ST_DWithin(n.geom, v.geom, :gap)
        WHERE i.package_id = :package_id
          AND NOT EXISTS (SELECT 1 FROM field_package_item j WHERE j.package_id = :package_id
                          AND j.parcel_id = n.parcel_id))
    SELECT row_number() OVER (ORDER BY n.parcel_id) AS fid, n.parcel_id, n.version, n.nicad, n.section,
           n.local_number, n.land_use, ST_AsBinary(n.geom) AS wkb
    FROM near JOIN parcel n ON n.parcel_id = near.parcel_id
    ORDER BY n.parcel_id""")
BORNE_MARGIN_M = 5.0  # bornes just outside the area still mark its parcels' corners
BORNES_SQL = text("""
    SELECT row_number() OVER (ORDER BY b.borne_id) AS fid, b.borne_id, b.version, b.label, b.precision_m,
           b.survey_method, b.surveyed_on, ST_AsBinary(b.geom) AS wkb
    FROM borne b JOIN field_package p ON p.id = :package_id
    WHERE b.geom && ST_Expand(p.area, :margin) AND ST_DWithin(b.geom, p.area, :margin)
    ORDER BY b.borne_id""")
COMMUNE_SQL = text("""
    SELECT 1 AS fid, 'commune' AS level, code, name, ST_AsBinary(ST_Multi(geom)) AS wkb
    FROM commune WHERE code = :commune""")
# The communes within ``gap`` of the package's: those meeting it widened by ``gap``. ST_DWithin between two
# communes measures every pair of their edges (2,000-20,000 vertices each: 12-20 s for Dialacoto's eight
# neighbours); GEOS answers the intersection with the widened one in about 0.3 s.
UNITS_SQL = text("""
    SELECT row_number() OVER (ORDER BY c.code) AS fid, 'commune' AS level, c.code, c.name,
           ST_AsBinary(ST_Multi(c.geom)) AS wkb
    FROM commune c, (SELECT code, ST_Buffer(geom, :gap) AS near FROM commune WHERE code = :commune) me
    WHERE c.code <> me.code AND c.geom IS NOT NULL AND c.geom && me.near AND ST_Intersects(c.geom, me.near)
    ORDER BY c.code""")
UNIT_GAP_M = 1.0
# Holders of the rights in force on the package's parcels, today.
HOLDERS_SQL = text("""
    SELECT i.fid AS item, i.parcel_id, r.type AS right_kind, p.kind, p.name, p.given_names,
           p.commune_code AS party_commune, h.share_numerator, h.share_denominator
    FROM field_package_item i
    JOIN rrr_version r ON r.parcel_id = i.parcel_id AND r.valid_to IS NULL AND r.start_date <= CURRENT_DATE
                      AND (r.end_date IS NULL OR r.end_date > CURRENT_DATE)
    JOIN rrr_holder h ON h.rrr_id = r.rrr_id AND h.version = r.version
    LEFT JOIN party_version p ON p.party_id = h.party_id AND p.valid_to IS NULL
    WHERE i.package_id = :package_id
    ORDER BY i.fid, r.type, r.rrr_id, h.party_id""")
EXTENT_SQL = text("""
    SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), encode(sha256(convert_to(ST_AsText(area), 'UTF8')), 'hex')
    FROM (SELECT area, ST_Extent(area) OVER () AS e FROM field_package WHERE id = :package_id) t""")
ISSUE_SERVICE = "sifc.field.packages.issue"
ZIP_CHUNK = 1 << 20
# Deflate level 3: a package's zip 3 % larger than at the default 6, written in less than half the time.
ZIP_LEVEL = 3
README = """SIFC — dossier de terrain {package_id}
Commune : {commune} · remis à : {issued_to} · valable jusqu'au : {expires_at}

Ouvrir
  - QField : copier tout le dossier décompressé sur la tablette, puis ouvrir « {project} ».
  - QGIS : décompresser le dossier, puis Projet > Ouvrir > « {project} ».
  Les photos prises sur le terrain vont dans le dossier « {photos} » (chemins relatifs).

Ne pas faire
  - Ne pas modifier la structure des couches : ni table, ni champ, ni système de coordonnées
    ajouté, renommé ou supprimé ; le retour serait refusé.
  - Ne pas modifier les identifiants (parcel_id, version, nicad) : ils ne sont pas pris en compte.
  - Ne pas renommer ni déplacer « {gpkg} » ni le projet.

Retour
  Fermer le projet (QField ou QGIS) avant de compresser et de renvoyer le dossier : les
  modifications encore ouvertes (fichier « -wal ») risqueraient d'être perdues.
{holders}"""
HOLDERS_NOTICE = """
Données personnelles
  Ce dossier contient les noms de titulaires de droits (loi 2008-12). Motif : {purpose}.
  Ne pas les copier ni les transmettre ; signaler sans délai toute perte de la tablette.
"""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _expiry(expires_at: datetime | None, issued_at: datetime, *, default_days: int, max_days: int) -> datetime:
    if expires_at is None:
        return issued_at + timedelta(days=default_days)
    chosen = expires_at if expires_at.tzinfo is not None else expires_at.replace(tzinfo=UTC)
    chosen = chosen.astimezone(UTC).replace(microsecond=0)
    if chosen <= issued_at:
        raise InvalidInput("field.expiry_past", expires_at=chosen.isoformat())
    if chosen > issued_at + timedelta(days=max_days):
        raise InvalidInput("field.expiry_too_far", days=max_days)
    return chosen


def zip_file(upload_dir: Path, package_id: uuid.UUID | str) -> Path:
    """Where a package's zip is kept (``<upload_dir>/field_packages/<id>.zip``)."""
    return Path(upload_dir) / "field_packages" / f"{uuid.UUID(str(package_id))}.zip"


def _plain(row: Row[Any]) -> dict[str, Any]:
    """A row as a layer's dict: ids as text, ``wkb`` as ``geometry`` bytes."""
    values: dict[str, Any] = {}
    for key, value in row._mapping.items():
        if key == "wkb":
            values["geometry"] = bytes(value) if value is not None else None
        else:
            values[key] = str(value) if isinstance(value, uuid.UUID) else value
    return values


def _layer_batches(session: Session, layer: Layer, statement: TextClause,
                   params: Mapping[str, Any]) -> Iterator[pa.RecordBatch]:
    for rows in stream(session, statement, params):
        batch = gpkg.record_batch(layer, [_plain(row) for row in rows])
        del rows
        yield batch
        del batch


@dataclass
class _Issue:
    """What the parcels' pass learns as it goes: how many items were written."""

    items: int = 0


def _issued_parcels(session: Session, package_id: uuid.UUID, area: Area, whole_commune: bool, issue: _Issue,
                    audit_for: tuple[Principal, str] | None) -> Iterator[pa.RecordBatch]:
    """The ``parcels`` layer, a batch at a time; each batch's items (and access-log rows) written before it is."""
    statement = IN_COMMUNE_SQL if whole_commune else IN_AREA_SQL
    for rows in stream(session, statement, {"package_commune": area.commune, "package_id": package_id}):
        records = [parcel_row(issue.items + n, row) for n, row in enumerate(rows, start=1)]
        del rows
        prints = fingerprint.of_many([r["geometry"] for r in records], records)
        copy_rows(session, ITEM_TABLE, ITEM_COLUMNS,
                  ((package_id, r["fid"], r["parcel_id"], r["version"], r["version"], sha)
                   for r, sha in zip(records, prints, strict=True)))
        if audit_for is not None:
            audit.record_many(session, audit_for[0], service=ISSUE_SERVICE, subject_kind="parcel",
                              subjects=[(r["parcel_id"], area.commune) for r in records], purpose=audit_for[1])
        issue.items += len(records)
        batch = gpkg.record_batch(PARCELS, records)
        del records
        yield batch
        del batch


def _holder_batches(session: Session, package_id: uuid.UUID, by: Principal) -> Iterator[pa.RecordBatch]:
    """The ``holders`` table: who holds each right in force; a party out of the reader's scope stays unnamed."""
    fid = 0
    for rows in stream(session, HOLDERS_SQL, {"package_id": package_id}):
        records = []
        for row in rows:
            fid += 1
            named = row.name is not None and by.may(Action.READ_PERSONAL, row.party_commune)
            holder = " ".join(part for part in (row.given_names, row.name) if part) if named else None
            records.append({"fid": fid, "parcel_id": str(row.parcel_id), "right_kind": row.right_kind,
                            "holder": holder, "share": f"{row.share_numerator}/{row.share_denominator}"})
        del rows
        yield gpkg.record_batch(HOLDERS, records)


def _package_rows(values: Mapping[str, Any]) -> list[pa.RecordBatch]:
    rows = [{"fid": n, "key": key, "value": None if value is None else str(value)}
            for n, (key, value) in enumerate(values.items(), start=1)]
    return [gpkg.record_batch(PACKAGE, rows)]


def _write_gpkg(session: Session, path: Path, package_id: uuid.UUID, area: Area, *, whole_commune: bool,
                holders: bool, by: Principal, purpose: str | None, package_values: Mapping[str, Any]) -> int:
    """Every layer of the package into ``path``; the parcels first (their items are what the others read)."""
    issue = _Issue()
    audit_for = (by, purpose or "") if holders else None
    gpkg.write_layer(path, PARCELS, _issued_parcels(session, package_id, area, whole_commune, issue, audit_for),
                     append=False)
    params = {"package_id": package_id, "commune": area.commune}
    gpkg.write_layer(path, NEIGHBOURS, _layer_batches(session, NEIGHBOURS, NEIGHBOURS_SQL,
                                                      {**params, "gap": NEIGHBOUR_GAP_M}), append=True)
    gpkg.write_layer(path, COMMUNE, _layer_batches(session, COMMUNE, COMMUNE_SQL, params), append=True)
    gpkg.write_layer(path, UNITS, _layer_batches(session, UNITS, UNITS_SQL, {**params, "gap": UNIT_GAP_M}),
                     append=True)
    gpkg.write_layer(path, BORNES, _layer_batches(session, BORNES, BORNES_SQL,
                                                  {**params, "margin": BORNE_MARGIN_M}), append=True)
    gpkg.write_layer(path, NEW_PARCELS, [], append=True)
    gpkg.write_layer(path, NEW_BORNES, [], append=True)
    if holders:
        gpkg.write_layer(path, HOLDERS, _holder_batches(session, package_id, by), append=True)
    gpkg.write_layer(path, PACKAGE, _package_rows(package_values), append=True)
    return issue.items


def _zip(target: Path, gpkg_path: Path, project: bytes, readme: str) -> tuple[int, str]:
    """The package's zip at ``target`` (through a ``.part`` file); its size and sha256."""
    partial = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as bundle:
            bundle.write(gpkg_path, GPKG_NAME)
            bundle.writestr(PROJECT_NAME, project)
            bundle.writestr(zipfile.ZipInfo(f"{PHOTO_DIR}/"), b"")
            bundle.writestr(README_NAME, readme.encode("utf-8"))
        digest = hashlib.sha256()
        with partial.open("rb") as packed:
            while chunk := packed.read(ZIP_CHUNK):
                digest.update(chunk)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target.stat().st_size, digest.hexdigest()


def build(session: Session, *, by: Principal, keys: Keyring, upload_dir: Path, commune: str | None,
          section: str | None = None, bbox: Sequence[float] | str | None = None, bbox_crs: int = 4326,
          polygon: Mapping[str, Any] | None = None, purpose: str | None = None, include_holders: bool = False,
          expires_at: datetime | None = None, service_url: str = "", default_days: int = 30,
          max_days: int = 90) -> dict[str, Any]:
    """Check a package out to ``by``: its record, its items and its zip; the package's public record.

    Refused unless ``by`` does field work in the area's commune; with holders, unless ``by`` may
    read personal data there and states a purpose (the access log keeps one row per parcel, with
    it). The expiry defaults to ``default_days`` and may not pass ``max_days``. The zip is written
    to :func:`zip_file` in the caller's transaction's lifetime: a build that fails leaves no file.
    """
    require(by, Action.FIELD_WORK)
    if not by.name:
        raise Forbidden("field.anonymous_holder")
    area = resolve_area(session, commune=commune, section=section, bbox=bbox, bbox_crs=bbox_crs, polygon=polygon)
    require(by, Action.FIELD_WORK, communes=[area.commune])
    directory.ensure_owned(session, [area.commune])  # its return will write there: only the owner checks out
    purpose = purpose.strip() if purpose and purpose.strip() else None
    if include_holders:
        if purpose is None:
            raise InvalidInput("field.purpose_required")
        if not may_reveal(by, [area.commune]):
            raise Forbidden("field.holders_forbidden", commune=area.commune)
    issued_at = _now()
    expiry = _expiry(expires_at, issued_at, default_days=default_days, max_days=max_days)
    package_id = uuid.uuid4()
    mac_hex, kid = mac.sign(keys, mac.claims(package_id=package_id, commune_code=area.commune, issued_to=by.name,
                                             issued_at=issued_at, expires_at=expiry, package_format=FORMAT))
    session.execute(INSERT_PACKAGE_SQL, {
        "id": package_id, "commune": area.commune, "area": area.wkb, "selection": orjson.dumps(area.selection).decode(),
        "issued_to": by.name, "issued_by": by.name, "issued_at": issued_at, "expires_at": expiry, "purpose": purpose,
        "includes_holders": include_holders, "format": FORMAT, "kid": kid, "mac": mac_hex})
    xmin, ymin, xmax, ymax, area_digest = session.execute(EXTENT_SQL, {"package_id": package_id}).one()
    package_values = {"id": str(package_id), "issued_to": by.name, "issued_at": issued_at.isoformat(),
                      "expires_at": expiry.isoformat(), "commune": area.commune, "area_wkt_sha256": area_digest,
                      "service_url": service_url, "format": FORMAT, "kid": kid, "mac": mac_hex}
    target = zip_file(upload_dir, package_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sifc-package-", dir=target.parent) as scratch:
        gpkg_path = Path(scratch) / GPKG_NAME
        items = _write_gpkg(session, gpkg_path, package_id, area, whole_commune=set(area.selection) == {"commune"},
                            holders=include_holders, by=by, purpose=purpose, package_values=package_values)
        title = f"SIFC — dossier de terrain {area.commune} ({issued_at.date().isoformat()})"
        project = project_bytes(layers=layers(holders=include_holders), extent=(xmin, ymin, xmax, ymax), title=title)
        readme = README.format(package_id=package_id, commune=area.commune, issued_to=by.name,
                               expires_at=expiry.date().isoformat(), project=PROJECT_NAME, photos=PHOTO_DIR,
                               gpkg=GPKG_NAME,
                               holders=HOLDERS_NOTICE.format(purpose=purpose) if include_holders else "")
        size, digest = _zip(target, gpkg_path, project, readme)
    try:
        session.execute(FINISH_SQL, {"id": package_id, "items": items, "size": size, "sha256": digest})
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    log.info("field package %s issued in %s: %d parcels, holders %s", package_id, area.commune, items,
             "yes" if include_holders else "no")
    return get(session, package_id, by=by)


# --- the record: read, list, lose, reassign ----------------------------------------------------------

RECORD_COLUMNS = """id, commune_code, selection, issued_to, issued_by, issued_at, expires_at, purpose, includes_holders,
    status, format, item_count, zip_bytes, zip_sha256, returned_at, closed_at, closed_by, close_reason,
    ARRAY[ST_XMin(box2d(ST_Transform(area, 4326))), ST_YMin(box2d(ST_Transform(area, 4326))),
          ST_XMax(box2d(ST_Transform(area, 4326))), ST_YMax(box2d(ST_Transform(area, 4326)))] AS bbox"""
EXPIRE_SQL = text("""
    UPDATE field_package SET status = 'expired'
    WHERE status = 'open' AND expires_at <= now() AND (CAST(:id AS uuid) IS NULL OR id = :id)""")
GET_SQL = text(f"SELECT {RECORD_COLUMNS} FROM field_package WHERE id = :id")
LIST_SQL = text(f"""
    SELECT {RECORD_COLUMNS} FROM field_package
    WHERE (CAST(:status AS text) IS NULL OR status = :status)
      AND (CAST(:everywhere AS boolean) OR issued_to = :me OR commune_code = ANY(CAST(:communes AS text[])))
    ORDER BY issued_at DESC, id LIMIT :limit OFFSET :offset""")
LOSE_SQL = text("""
    UPDATE field_package SET status = 'lost', closed_at = now(), closed_by = :by, close_reason = :reason
    WHERE id = :id AND status = 'open'""")
REASSIGN_SQL = text("UPDATE field_package SET issued_to = :to WHERE id = :id AND status = 'open'")
STATUSES = ("open", "returned", "expired", "lost")


def _record(row: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    record = dict(row)
    record["id"] = str(record["id"])
    for key in ("issued_at", "expires_at", "returned_at", "closed_at"):
        if record[key] is not None:
            record[key] = record[key].astimezone(UTC).isoformat()
    record["bbox"] = [round(float(v), 7) for v in record["bbox"]]
    return record


def _package_id(package_id: uuid.UUID | str) -> uuid.UUID:
    try:
        return uuid.UUID(str(package_id))
    except ValueError as error:
        raise NotFound("field.package_not_found", id=str(package_id)[:64]) from error


def _read(session: Session, package_id: uuid.UUID | str) -> dict[str, Any]:
    key = _package_id(package_id)
    session.execute(EXPIRE_SQL, {"id": key})
    row = session.execute(GET_SQL, {"id": key}).mappings().first()
    if row is None:
        raise NotFound("field.package_not_found", id=str(key))
    return _record(row)


def _visible(by: Principal, record: Mapping[str, Any]) -> None:
    """A package is its holder's, and its commune's for whoever does field work there."""
    require(by, Action.FIELD_WORK)
    if record["issued_to"] != by.name:
        require(by, Action.FIELD_WORK, communes=[record["commune_code"]])


def get(session: Session, package_id: uuid.UUID | str, *, by: Principal) -> dict[str, Any]:
    """A package's record (an open package past its expiry reads as expired)."""
    record = _read(session, package_id)
    _visible(by, record)
    return record


def list_packages(session: Session, *, by: Principal, status: str | None = None, limit: int = 100,
                  offset: int = 0) -> list[dict[str, Any]]:
    """The most recent packages first: the caller's own and those of the communes it does field work in."""
    require(by, Action.FIELD_WORK)
    if status is not None and status not in STATUSES:
        raise InvalidInput("field.bad_status", status=status[:20], statuses=", ".join(STATUSES))
    session.execute(EXPIRE_SQL, {"id": None})
    rows = session.execute(LIST_SQL, {"status": status, "everywhere": by.everywhere, "me": by.name,
                                      "communes": sorted(by.communes), "limit": limit, "offset": offset})
    return [_record(row) for row in rows.mappings()]


def _administered(session: Session, package_id: uuid.UUID | str, by: Principal) -> dict[str, Any]:
    """An open package an administrator of its commune may act on."""
    require(by, Action.MANAGE_ACCOUNTS)
    record = _read(session, package_id)
    require(by, Action.FIELD_WORK, communes=[record["commune_code"]])
    if record["status"] != "open":
        raise Conflict("field.package_not_open", id=record["id"], status=record["status"])
    return record


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput("field.reason_required")
    return reason.strip()


def declare_lost(session: Session, package_id: uuid.UUID | str, *, by: Principal, reason: str) -> dict[str, Any]:
    """Close a package whose tablet or file was lost: no return is accepted from it any more.

    An incident (loi 2008-12 when it carried holders): journaled, and logged as a warning that names
    the package and its commune, never its holder or the reason.
    """
    record = _administered(session, package_id, by)
    text_reason = _reason(reason)
    session.execute(LOSE_SQL, {"id": record["id"], "by": by.name, "reason": text_reason})
    after = _read(session, record["id"])
    journal.record(session, by, operation="field_package.lost", object_kind="field_package", object_id=record["id"],
                   commune_code=record["commune_code"], before=record, after=after)
    log.warning("field package %s of %s declared lost (holders included: %s)", record["id"], record["commune_code"],
                "yes" if record["includes_holders"] else "no")
    return after


def reassign(session: Session, package_id: uuid.UUID | str, *, by: Principal, to_user: str,
             reason: str) -> dict[str, Any]:
    """Hand an open package to another officer (its return is then accepted from them only).

    The new holder must be an active account doing field work in the package's commune.
    """
    record = _administered(session, package_id, by)
    text_reason = _reason(reason)
    user = users.get(session, username=to_user)
    holder = principal_for(session, kind="user", id=user.id, name=user.username, role=user.role, scope=user.scope)
    if not user.active or not holder.may(Action.FIELD_WORK, record["commune_code"]):
        raise InvalidInput("field.holder_cannot", username=user.username, commune=record["commune_code"])
    session.execute(REASSIGN_SQL, {"id": record["id"], "to": user.username})
    after = _read(session, record["id"])
    journal.record(session, by, operation="field_package.reassign", object_kind="field_package",
                   object_id=record["id"], commune_code=record["commune_code"],
                   before={"issued_to": record["issued_to"]},
                   after={"issued_to": after["issued_to"], "reason": text_reason})
    return after


ITEM_SUBJECTS_SQL = text("""
    SELECT i.parcel_id::text, f.commune_code FROM field_package_item i JOIN field_package f ON f.id = i.package_id
    WHERE i.package_id = :id ORDER BY i.fid""")


def zip_path(session: Session, package_id: uuid.UUID | str, *, by: Principal, upload_dir: Path) -> Path:
    """The zip of a package, for its holder or whoever does field work in its commune.

    A package carrying holders is personal data: only its current holder may download it, while
    allowed to read personal data there; a holder it was handed to (not the one it was issued to)
    reads the holders for the first time, so each download of theirs is logged, one entry per parcel,
    with the package's purpose (loi 2008-12).
    """
    record = get(session, package_id, by=by)
    if record["includes_holders"]:
        if record["issued_to"] != by.name or not may_reveal(by, [record["commune_code"]]):
            raise Forbidden("field.holders_holder_only", id=record["id"])
        if record["issued_by"] != by.name:
            subjects = [(str(r[0]), r[1]) for r in session.execute(ITEM_SUBJECTS_SQL, {"id": record["id"]})]
            audit.record_many(session, by, service="sifc.field.packages.download", subject_kind="parcel",
                              subjects=subjects, purpose=record["purpose"])
    path = zip_file(upload_dir, record["id"])
    if not path.exists():
        raise NotFound("field.package_file_missing", id=record["id"])
    return path
