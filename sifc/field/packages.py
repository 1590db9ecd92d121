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

import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Row, TextClause, text
from sqlalchemy.orm import Session

from sifc.field import gpkg
from sifc.field.layers import NEW_BORNES, NEW_PARCELS, PARCELS

log = logging.getLogger(__name__)

BATCH_SIZE = 500  # as sifc.exports: about one batch of rows, objects and Arrow arrays in memory at a time

# A parcel version as a row of the package's ``parcels`` layer: the columns :func:`parcel_row` reads.
PARCEL_COLUMNS = ("v.parcel_id, v.version, v.nicad, v.section, v.local_number, v.land_use, v.tenure_regime, "
                  "v.declared_area_m2, ST_AsBinary(v.geom) AS wkb")
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

    As ``sifc.exports._batches`` for any statement of this module: a batch is let go before the next
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
    gpkg.write_layer(path, PARCELS, parcel_batches(session, package_id), append=False)
    gpkg.write_layer(path, NEW_PARCELS, [], append=True)
    gpkg.write_layer(path, NEW_BORNES, [], append=True)
