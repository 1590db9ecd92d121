"""The per-feature decisions of a field return and the writes they lead to.

Three states meet for each parcel of a return (ADR 0003 §3 step 5): the state issued (the item's
``base_version`` and fingerprint), the file's row and the registry's current version. Only a parcel
changed in the field and untouched in the office since is written; a parcel changed on both sides,
retired, split or merged since is a **conflict** left for a person to settle, with both shapes in
the report; a deletion is a proposed retirement, never a retirement. Versions and ids read from the
file decide nothing: the item's record does.

Every write goes through the registry's own rules (overlap, commune, validity, litige freeze,
NICAD « à réattribuer », authorship, write audit): the parcels to apply are written together by
``parcels.update_many``, which leaves whatever a rule would refuse to ``parcels.update``, one feature
at a time inside a savepoint: a rule's refusal is one feature's refusal, with the message it always
had, and the rest of the return stands.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import shapely
from pyproj import Transformer
from shapely.geometry import mapping
from sqlalchemy import text
from sqlalchemy.orm import Session

from sifc.auth.principal import Action, Principal
from sifc.bornes import service as bornes
from sifc.crs import STORAGE_SRID
from sifc.errors import Forbidden, ImportRejected, InvalidInput, NotOwner, PreconditionFailed, SifcError
from sifc.field import fingerprint, gpkg, layers, returns_file
from sifc.i18n import translate
from sifc.parcels import service as parcels
from sifc.settings import Settings

AREA_MARGIN_M = 50  # beyond the package's area by more than this, a new feature is not this package's work
ACTION = "field:return"
# The file's shapes, for the preview map (GeoJSON: longitude, latitude).
_TO_WGS84 = Transformer.from_crs(STORAGE_SRID, 4326, always_xy=True).transform
STATUSES = ("applied", "conflict", "refused", "proposed_retirement", "unchanged")
PARCEL_VALUES = ("parcel_id", "version", "nicad", "section", "local_number", "land_use", "tenure_regime",
                 "declared_area_m2", "remark", "photo", "survey_done", "pv_photo")


@dataclass
class ReturnReport:
    """What a return did or would do; stored as the job's report (``as_dict``)."""

    package_id: str
    dry_run: bool
    lang: str
    already_applied: str | None = None
    features: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    batch_id: None = None  # a return writes versions one by one, not as an import batch

    def counts(self) -> dict[str, int]:
        """Features per status, per layer and in all."""
        found = {status: 0 for status in STATUSES}
        for feature in self.features:
            found[feature["status"]] += 1
        found["photos"] = sum(1 for w in self.warnings if w["key"] == "field.photo_attached")
        return found

    def as_dict(self) -> dict[str, Any]:
        """The JSON stored in ``import_job.report``."""
        return {"kind": "field_return", "package_id": self.package_id, "dry_run": self.dry_run,
                "already_applied": self.already_applied, "counts": self.counts(), "features": self.features,
                "warnings": self.warnings}


def _message(key: str, lang: str, params: dict[str, Any]) -> str:
    return translate(key, "en" if lang == "en" else "fr", **params)


class Applier:
    """One return's decisions and writes, on the job's session."""

    def __init__(self, session: Session, *, package: dict[str, Any], by: Principal, gpkg: Path,
                 photos: dict[str, Path], settings: Settings, lang: str, dry_run: bool) -> None:
        self.session = session
        self.package = package
        self.by = by
        self.author = by.name
        self.gpkg = gpkg
        self.photos = photos
        self.settings = settings
        self.lang = lang
        self.report = ReturnReport(package_id=str(package["id"]), dry_run=dry_run, lang=lang)
        self.default_reason = f"retour de terrain {package['id']}"
        self.advanced: list[tuple[int, int, str]] = []  # (fid, new base version, fingerprint)
        self.attached: list[tuple[uuid.UUID, str]] = []  # (parcel, source)
        self.rejected: dict[str, set[int]] = {name: set() for name in layers.RETURNED}
        self.digests: set[tuple[str, str]] = set()  # (parcel, sha256) attached by this return
        self.written: dict[int, tuple[str, Any]] = {}  # fid -> what the writes did (Applier._write)

    # --- reporting -----------------------------------------------------------------------------

    def _feature(self, layer: str, fid: int, status: str, key: str | None = None, *, parcel_id: Any = None,
                 **params: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"layer": layer, "fid": fid, "status": status}
        if parcel_id is not None:
            entry["parcel_id"] = str(parcel_id)
        if key is not None:
            scalars = {k: v for k, v in params.items() if not isinstance(v, dict | list)}
            entry.update(reason=key, message=_message(key, self.lang, scalars))
            if "children" in params:
                entry["children"] = params["children"]
        if status in ("conflict", "refused"):
            self.rejected[layer].add(fid)
        self.report.features.append(entry)
        return entry

    def _warn(self, layer: str, fid: int, key: str, **params: Any) -> None:
        self.report.warnings.append({"layer": layer, "fid": fid, "key": key,
                                     "message": _message(key, self.lang, params), **params})

    # --- the whole return ----------------------------------------------------------------------

    def run(self, found: dict[str, dict[str, list[int]]]) -> ReturnReport:
        """Decide and write every changed feature of the file."""
        parcels_found = found["parcels"]
        self._parcels(parcels_found["update"])
        self._deletions(parcels_found["delete"])
        self._new_parcels("parcels", parcels_found["insert"])
        self._new_parcels("new_parcels", found["new_parcels"]["insert"])
        self._new_bornes(found["new_bornes"]["insert"])
        for table in ("new_parcels", "new_bornes"):
            for fid in found[table]["update"] + found[table]["delete"]:  # rows the base has not: impossible
                self._feature(table, fid, "refused", "field.schema_changed", table=table)
        self._draw()
        return self.report

    def _draw(self) -> None:
        """Give each changed feature its shape in WGS 84 (``geometry``), for a preview on a map.

        The file's shape for what it holds; for a proposed retirement (gone from the file), the
        shape it was issued with. A conflict already carries both sides (``registry``, ``field``).
        """
        wanted: dict[str, dict[int, dict[str, Any]]] = {}
        for entry in self.report.features:
            if entry["status"] in ("applied", "refused", "proposed_retirement") and "field" not in entry:
                wanted.setdefault(entry["layer"], {})[entry["fid"]] = entry
        retired = wanted.get("parcels", {})
        gone = [fid for fid, entry in retired.items() if entry["status"] == "proposed_retirement"]
        shapes: dict[tuple[str, int], bytes | None] = {}
        for table, entries in wanted.items():
            present = [fid for fid in entries if not (table == "parcels" and fid in gone)]
            for fid, row in returns_file.rows(self.gpkg, table, present, ()).items():
                shapes[(table, fid)] = returns_file.gpkg_wkb(row.get("geom"))
        if gone:
            for issued in self.session.execute(text("""
                SELECT i.fid, ST_AsBinary(b.geom) AS wkb FROM field_package_item i
                JOIN parcel_version b ON b.parcel_id = i.parcel_id AND b.version = i.base_version
                WHERE i.package_id = :p AND i.fid = ANY(:fids)"""), {"p": self.package["id"], "fids": gone}):
                shapes[("parcels", int(issued.fid))] = bytes(issued.wkb)
        drawn = [(key, wkb) for key, wkb in shapes.items() if wkb is not None]
        if not drawn:
            return
        # All shapes at once: one reprojection of every coordinate, GeoJSON written by GEOS.
        wgs84 = shapely.transform(shapely.from_wkb([wkb for _, wkb in drawn]), _TO_WGS84, interleaved=False)
        texts = shapely.to_geojson(shapely.set_precision(wgs84, 1e-7, mode="pointwise"))
        for ((table, fid), _), geojson in zip(drawn, texts, strict=True):
            wanted[table][fid]["geometry"] = orjson.loads(geojson)

    def _items(self, fids: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted(set(fids))
        if not wanted:  # most returns delete nothing: no query for them
            return {}
        rows = self.session.execute(text("""
            SELECT i.fid, i.parcel_id, i.base_version, i.fingerprint, ST_AsBinary(b.geom) AS base_wkb,
                   c.version AS current_version, c.commune_code
            FROM field_package_item i
            JOIN parcel_version b ON b.parcel_id = i.parcel_id AND b.version = i.base_version
            LEFT JOIN parcel_version c ON c.parcel_id = i.parcel_id AND c.valid_to IS NULL
            WHERE i.package_id = :p AND i.fid = ANY(:fids)"""),
            {"p": self.package["id"], "fids": wanted}).mappings().all()
        return {int(r["fid"]): dict(r) for r in rows}

    # --- parcels changed in the file -------------------------------------------------------------

    def _parcels(self, fids: list[int]) -> None:
        """Decide every changed parcel, write the ones to apply in bulk, then report each in fid order.

        The writes come first, all of them (``parcels.update_many``, then ``parcels.update`` one by
        one for what it deferred, in fid order): a parcel's outcome is the same whichever way it was
        written, and the report, warnings and photos follow in fid order as before.
        """
        items = self._items(fids)
        rows = returns_file.rows(self.gpkg, "parcels", fids, PARCEL_VALUES)
        known = [fid for fid in sorted(fids) if fid in items and fid in rows]
        wkbs = {fid: returns_file.gpkg_wkb(rows[fid].get("geom")) for fid in known}
        stamps = fingerprint.of_many([wkbs[fid] for fid in known], [rows[fid] for fid in known])
        changed = {fid: stamp != items[fid]["fingerprint"] for fid, stamp in zip(known, stamps, strict=True)}
        self.written = self._write([fid for fid in known if changed[fid] and wkbs[fid] is not None
                                    and items[fid]["current_version"] is not None
                                    and items[fid]["current_version"] == items[fid]["base_version"]],
                                   items, rows, wkbs)
        for fid in sorted(fids):
            item, row = items.get(fid), rows.get(fid)
            if item is None or row is None:
                self._feature("parcels", fid, "refused", "field.unknown_feature", number=fid)
                continue
            self._parcel(fid, item, row, wkbs[fid], changed[fid])

    def _parcel(self, fid: int, item: dict[str, Any], row: dict[str, Any], wkb: bytes | None, changed: bool) -> None:
        pid = item["parcel_id"]
        for name, recorded in (("parcel_id", str(pid)), ("version", str(item["base_version"]))):
            if str(row.get(name)) != recorded:  # the record decides, whatever the file says
                self._warn("parcels", fid, "field.read_only_ignored", column=name)
        if changed and wkb is None:
            self._feature("parcels", fid, "refused", "field.geometry_missing", parcel_id=pid)
            return
        if not changed:
            self._feature("parcels", fid, "unchanged", parcel_id=pid)
            self._attach(fid, pid, row, item.get("commune_code"))
            return
        if item["current_version"] is None:
            children = [str(c) for c in self.session.execute(text("""
                SELECT DISTINCT child_id FROM parcel_lineage WHERE parent_id = :p ORDER BY child_id"""),
                {"p": pid}).scalars()]
            entry = self._feature("parcels", fid, "conflict",
                                  "field.conflict_split" if children else "field.conflict_retired",
                                  parcel_id=pid, children=children, ids=", ".join(children) or "-")
            self._shapes(entry, pid, wkb, row)
            return
        if item["current_version"] != item["base_version"]:
            entry = self._feature("parcels", fid, "conflict", "field.conflict_changed", parcel_id=pid,
                                  base=item["base_version"], current=item["current_version"])
            self._shapes(entry, pid, wkb, row)
            return
        self._update(fid, item, row, wkb)

    def _write(self, fids: list[int], items: dict[int, dict[str, Any]], rows: dict[int, dict[str, Any]],
               wkbs: dict[int, bytes | None]) -> dict[int, tuple[str, Any]]:
        """Write the parcels to apply: in bulk, then what the bulk deferred through ``update`` in savepoints.

        Each fid's outcome: ``("applied", (version, fingerprint))``, ``("unchanged", None)``,
        ``("conflict", None)`` (another write won: 412) or ``("refused", error)``.
        """
        if not fids:
            return {}
        # The shape changed for the file: its normal form differs from the issued version's.
        normal = fingerprint.normal_geometries([*(wkbs[fid] for fid in fids),
                                                *(bytes(items[fid]["base_wkb"]) for fid in fids)])
        forms = shapely.to_wkb(normal).tolist()
        changes: dict[int, parcels.Change] = {}
        for n, fid in enumerate(fids):
            row = rows[fid]
            shape_changed = forms[n] != forms[len(fids) + n]
            changes[fid] = parcels.Change(
                parcel_id=items[fid]["parcel_id"], expected_version=items[fid]["base_version"],
                geometry=wkbs[fid] if shape_changed else None, values=dict(fingerprint.normal_attributes(row)),
                reason=(row.get("remark") or "").strip()[:500] or self.default_reason)
        outcome = parcels.update_many(self.session, list(changes.values()), author=self.author, by=self.by,
                                      permission=Action.FIELD_WORK, action=ACTION)
        results: dict[int, tuple[str, Any]] = {}
        unchanged = set(outcome.unchanged)
        deferred = {id(change) for change in outcome.deferred}
        versions: dict[int, int] = {}
        for fid, change in changes.items():
            if id(change) in deferred:
                results[fid] = self._update_one(change)
            elif change.parcel_id in unchanged:
                results[fid] = ("unchanged", None)
            else:
                versions[fid] = outcome.applied[change.parcel_id]
        for fid, status in results.items():
            if status[0] == "applied":
                versions[fid] = status[1]
        for fid, stamp in self._stamps(changes, versions).items():
            results[fid] = ("applied", (versions[fid], stamp))
        return results

    def _update_one(self, change: parcels.Change) -> tuple[str, Any]:
        """One deferred change through ``parcels.update`` in its own savepoint, as every change went before."""
        geometry = mapping(shapely.from_wkb(change.geometry)) if change.geometry is not None else None
        data = parcels.ParcelInput(geometry=geometry, input_crs=STORAGE_SRID, values=change.values,
                                   reason=change.reason)
        try:
            with self.session.begin_nested():
                version = parcels.update(self.session, parcel_id=str(change.parcel_id), data=data,
                                         author=self.author, expected_version=change.expected_version, by=self.by,
                                         permission=Action.FIELD_WORK, action=ACTION)
        except PreconditionFailed:
            return "conflict", None
        except InvalidInput as error:
            if error.key == "parcel.no_change":
                return "unchanged", None
            return "refused", error
        except SifcError as error:
            return "refused", error
        return "applied", version

    def _stamps(self, changes: dict[int, parcels.Change], versions: dict[int, int]) -> dict[int, str]:
        """The fingerprints of the versions written (what the items advance to), read back in one statement."""
        if not versions:
            return {}
        fids = sorted(versions)
        stored = self.session.execute(text("""
            SELECT u.fid, ST_AsBinary(v.geom) AS wkb, v.land_use, v.tenure_regime, v.declared_area_m2, v.nicad_status
            FROM unnest(CAST(:fid AS bigint[]), CAST(:pid AS uuid[]), CAST(:version AS int[])) AS u(fid, pid, version)
            JOIN parcel_version v ON v.parcel_id = u.pid AND v.version = u.version"""),
            {"fid": fids, "pid": [changes[fid].parcel_id for fid in fids],
             "version": [versions[fid] for fid in fids]}).mappings().all()
        found = {int(r["fid"]): r for r in stored}
        stamps = fingerprint.of_many([bytes(found[fid]["wkb"]) for fid in fids], [dict(found[fid]) for fid in fids])
        return dict(zip(fids, stamps, strict=True))

    def _update(self, fid: int, item: dict[str, Any], row: dict[str, Any], wkb: bytes | None) -> None:
        """Report what :meth:`_write` did with a parcel to apply."""
        pid = item["parcel_id"]
        status, found = self.written[fid]
        if status == "conflict":
            entry = self._feature("parcels", fid, "conflict", "field.conflict_changed", parcel_id=pid,
                                  base=item["base_version"], current="?")
            self._shapes(entry, pid, wkb, row)
            return
        if status == "unchanged":
            self._feature("parcels", fid, "unchanged", parcel_id=pid)
            self._attach(fid, pid, row, item.get("commune_code"))
            return
        if status == "refused":
            self._refused("parcels", fid, found, parcel_id=pid)
            return
        version, stamp = found
        self.advanced.append((fid, version, stamp))
        self._feature("parcels", fid, "applied", parcel_id=pid)["version"] = version
        self._attach(fid, pid, row, item.get("commune_code"))

    def _refused(self, layer: str, fid: int, error: SifcError, *, parcel_id: Any = None) -> None:
        entry = self._feature(layer, fid, "refused", parcel_id=parcel_id)
        entry.update(reason=error.key, message=error.message("en" if self.lang == "en" else "fr"),
                     params={k: str(v) for k, v in error.params.items()})

    def _shapes(self, entry: dict[str, Any], pid: Any, wkb: bytes | None, row: dict[str, Any]) -> None:
        """Both sides of a conflict: the registry's latest version and the field's row, in WGS 84."""
        registry = self.session.execute(text("""
            SELECT version, nicad, land_use, tenure_regime, declared_area_m2,
                   ST_AsGeoJSON(ST_Transform(geom, 4326), 7) AS geojson
            FROM parcel_version WHERE parcel_id = :p ORDER BY version DESC LIMIT 1"""), {"p": pid}).mappings().one()
        field_shape = None
        if wkb is not None:
            field_shape = self.session.execute(text(
                "SELECT ST_AsGeoJSON(ST_Transform(ST_GeomFromWKB(:w, :s), 4326), 7)"),
                {"w": wkb, "s": STORAGE_SRID}).scalar()
        shown = ("version", "nicad", *layers.EDITABLE_PARCEL_ATTRIBUTES)
        entry["registry"] = {"geometry": orjson.loads(registry["geojson"]),
                             "attributes": {k: registry[k] for k in shown}}
        entry["field"] = {"geometry": orjson.loads(field_shape) if field_shape else None,
                          "attributes": {k: row.get(k) for k in shown}}

    # --- deletions: proposals only -------------------------------------------------------------

    def _deletions(self, fids: list[int]) -> None:
        items = self._items(fids)
        for fid in sorted(fids):
            item = items.get(fid)
            if item is None:
                continue
            if item["current_version"] is None:
                self._feature("parcels", fid, "unchanged", parcel_id=item["parcel_id"])
                continue
            entry = self._feature("parcels", fid, "proposed_retirement", "field.proposed_retirement",
                                  parcel_id=item["parcel_id"])
            entry["changed_since"] = item["current_version"] != item["base_version"]

    # --- new parcels and bornes ----------------------------------------------------------------

    def _in_area(self, wkb: bytes) -> bool:
        return bool(self.session.execute(text("""
            SELECT ST_DWithin(area, ST_GeomFromWKB(:w, :s), :m) FROM field_package WHERE id = :p"""),
            {"w": wkb, "s": STORAGE_SRID, "m": AREA_MARGIN_M, "p": self.package["id"]}).scalar())

    def _in_scope(self, wkb: bytes) -> None:
        """A new feature in a commune outside the holder's field work refuses the whole file."""
        codes = self.session.execute(text("""
            SELECT code FROM commune WHERE geom && ST_GeomFromWKB(:w, :s)
              AND ST_Intersects(geom, ST_GeomFromWKB(:w, :s))"""), {"w": wkb, "s": STORAGE_SRID}).scalars().all()
        if codes and not any(self.by.may(Action.FIELD_WORK, code) for code in codes):
            raise ImportRejected("field.out_of_scope", communes=", ".join(sorted(codes))[:200])

    def _new_parcels(self, table: str, fids: list[int]) -> None:
        columns = [f.name for f in (layers.NEW_PARCELS if table == "new_parcels" else layers.PARCELS).fields]
        rows = returns_file.rows(self.gpkg, table, fids, columns)
        for fid in sorted(fids):
            row = rows.get(fid, {})
            wkb = returns_file.gpkg_wkb(row.get("geom"))
            if wkb is None:
                self._feature(table, fid, "refused", "field.geometry_missing")
                continue
            self._in_scope(wkb)
            if not self._in_area(wkb):
                self._feature(table, fid, "refused", "field.outside_area", metres=AREA_MARGIN_M)
                continue
            values = {k: row.get(k) for k in ("section", "local_number")}
            values.update(fingerprint.normal_attributes(row))
            values = {k: v.strip() if isinstance(v, str) else v for k, v in values.items() if v not in (None, "")}
            reason = (row.get("remark") or "").strip()[:500] or self.default_reason
            data = parcels.ParcelInput(geometry=mapping(shapely.from_wkb(wkb)), input_crs=STORAGE_SRID,
                                       values=values, reason=reason)
            try:
                with self.session.begin_nested():
                    pid = parcels.create(self.session, data=data, author=self.author, by=self.by,
                                         permission=Action.FIELD_WORK, action=ACTION)
            except NotOwner:  # another node's commune: the return fails naming that node
                raise
            except Forbidden as error:
                raise ImportRejected("field.out_of_scope", communes=str(error.params.get("communes", "?"))) from error
            except SifcError as error:
                self._refused(table, fid, error)
                continue
            self._feature(table, fid, "applied", parcel_id=pid)
            self._attach(fid, uuid.UUID(pid), row, None, layer=table)

    def _new_bornes(self, fids: list[int]) -> None:
        columns = [f.name for f in layers.NEW_BORNES.fields]
        rows = returns_file.rows(self.gpkg, "new_bornes", fids, columns)
        for fid in sorted(fids):
            row = rows.get(fid, {})
            wkb = returns_file.gpkg_wkb(row.get("geom"))
            if wkb is None:
                self._feature("new_bornes", fid, "refused", "field.geometry_missing")
                continue
            self._in_scope(wkb)
            if not self._in_area(wkb):
                self._feature("new_bornes", fid, "refused", "field.outside_area", metres=AREA_MARGIN_M)
                continue
            point = shapely.from_wkb(wkb)
            values = {k: row.get(k) for k in ("label", "precision_m", "survey_method", "surveyed_on")}
            values = {k: v for k, v in values.items() if v not in (None, "")}
            surveyed = values.get("surveyed_on")
            if isinstance(surveyed, str):
                try:
                    values["surveyed_on"] = date.fromisoformat(surveyed[:10])
                except ValueError:
                    self._feature("new_bornes", fid, "refused", "field.bad_date", value=surveyed[:20])
                    continue
            reason = (row.get("remark") or "").strip()[:500] or self.default_reason
            data = bornes.BorneInput(geometry={"type": "Point", "coordinates": [point.x, point.y]},
                                     input_crs=STORAGE_SRID, values=values, reason=reason)
            try:
                with self.session.begin_nested():
                    bid = bornes.create(self.session, data=data, author=self.author, by=self.by,
                                        permission=Action.FIELD_WORK, action=ACTION)
            except NotOwner:  # another node's commune: the return fails naming that node
                raise
            except Forbidden as error:
                raise ImportRejected("field.out_of_scope", communes=str(error.params.get("communes", "?"))) from error
            except SifcError as error:
                self._refused("new_bornes", fid, error)
                continue
            self._feature("new_bornes", fid, "applied")["borne_id"] = bid

    # --- photos and the survey step ------------------------------------------------------------

    def _photo(self, layer: str, fid: int, value: Any) -> tuple[str, bytes] | None:
        """The bytes of a photo a row names, once its path and content pass; None (warned) otherwise."""
        if value is None or not str(value).strip():
            return None
        relative = PurePosixPath(str(value).strip().replace("\\", "/").removeprefix("./"))
        if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] != (layers.PHOTO_DIR,):
            self._warn(layer, fid, "field.photo_bad_path", path=str(value)[:120])
            return None
        path = self.photos.get(relative.as_posix())
        if path is None:
            self._warn(layer, fid, "field.photo_missing", path=relative.as_posix()[:120])
            return None
        content = path.read_bytes()
        if not content or len(content) > self.settings.max_document_bytes or not (
                content.startswith(b"\xff\xd8\xff") or content.startswith(b"\x89PNG\r\n\x1a\n")):
            self._warn(layer, fid, "field.photo_refused", path=relative.as_posix()[:120])
            return None
        return relative.name, content

    def _attach(self, fid: int, pid: Any, row: dict[str, Any], commune: str | None, *, layer: str = "parcels") -> None:
        """Attach a row's photos to its parcel (once per content); a signed PV advances an open procedure."""
        if commune is None:
            commune = self.session.execute(text("SELECT commune_code FROM parcel WHERE parcel_id = :p"),
                                           {"p": pid}).scalar()
        if commune is None or not self.by.may(Action.FIELD_WORK, commune):
            return
        pv_source = None
        for column, kind in (("photo", "autre"), ("pv_photo", "proces_verbal")):
            found = self._photo(layer, fid, row.get(column))
            if found is None:
                continue
            source = self._source(pid, commune, kind, *found)
            if source is not None:
                self._warn(layer, fid, "field.photo_attached", path=found[0][:120])
                if kind == "proces_verbal":
                    pv_source = source
        if pv_source is not None and row.get("survey_done") and layer == "parcels":
            self._surveyed(fid, pid, pv_source)

    def _source(self, pid: Any, commune: str, kind: str, name: str, content: bytes) -> str | None:
        from sifc.tenure import sources

        digest = hashlib.sha256(content).hexdigest()
        known = self.session.execute(text("""
            SELECT ps.source_id FROM parcel_source ps JOIN source_file f ON f.source_id = ps.source_id
            WHERE ps.parcel_id = :p AND f.sha256 = :d LIMIT 1"""), {"p": pid, "d": digest}).scalar()
        if known is not None or (str(pid), digest) in self.digests:
            return None
        with self.session.begin_nested():
            sid = sources.create(self.session, data=sources.SourceInput(
                kind=kind, document_date=date.today(), commune_code=commune,
                description=f"photo de terrain ({self.default_reason})"), by=None, author=self.author)
            sources.attach(self.session, source_id=sid, file_name=name, content=content,
                           max_bytes=self.settings.max_document_bytes, by=None, author=self.author)
        self.attached.append((uuid.UUID(str(pid)), sid))
        self.digests.add((str(pid), digest))
        return sid

    def _surveyed(self, fid: int, pid: Any, source: str) -> None:
        """``survey_done`` with a signed PV: the open procedure of the parcel reaches « surveyed »."""
        from sifc.tenure import procedures

        open_ones = procedures._open_procedures(self.session, uuid.UUID(str(pid)))
        if not open_ones:
            return
        # « Levé contradictoire fait avec les voisins »: the form's box is the neighbours' consultation.
        step = procedures.StepInput("surveyed", date.today(), [source], {"neighbours_consulted": True},
                                    self.default_reason)
        try:
            with self.session.begin_nested():
                procedures.advance(self.session, procedure_id=open_ones[0], step=step, expected_version=None,
                                   by=self.by, author=self.author)
        except SifcError as error:
            self._warn("parcels", fid, "field.step_refused", reason=error.message("en" if self.lang == "en" else "fr"))
            return
        self._warn("parcels", fid, "field.step_recorded", step="surveyed")

    # --- outcome -------------------------------------------------------------------------------

    def finish(self, *, job_id: uuid.UUID, digest: str) -> None:
        """Apply: items advanced, the return recorded, photos linked, the package marked returned."""
        session = self.session
        if self.advanced:
            session.execute(text("""
                UPDATE field_package_item i SET base_version = u.version, fingerprint = u.stamp
                FROM unnest(CAST(:fid AS bigint[]), CAST(:version AS int[]), CAST(:stamp AS text[]))
                     AS u(fid, version, stamp)
                WHERE i.package_id = :p AND i.fid = u.fid"""),
                {"fid": [a[0] for a in self.advanced], "version": [a[1] for a in self.advanced],
                 "stamp": [a[2] for a in self.advanced], "p": self.package["id"]})
        return_id = uuid.uuid4()
        session.execute(text("""
            INSERT INTO field_return (id, package_id, job_id, file_sha256, returned_by, applied, counts)
            VALUES (:id, :p, :job, :d, :by, true, CAST(:counts AS jsonb))"""),
            {"id": return_id, "p": self.package["id"], "job": job_id, "d": digest, "by": self.author,
             "counts": orjson.dumps(self.report.counts()).decode()})
        for pid, sid in self.attached:
            session.execute(text("""
                INSERT INTO parcel_source (parcel_id, source_id, field_return_id, attached_by)
                VALUES (:p, :s, :r, :by) ON CONFLICT DO NOTHING"""),
                {"p": pid, "s": uuid.UUID(sid), "r": return_id, "by": self.author})
        session.execute(text("""
            UPDATE field_package SET status = 'returned', returned_at = now() WHERE id = :p"""),
            {"p": self.package["id"]})

    def write_rejects(self, path: Path, claims: dict[str, str]) -> bool:
        """The file to fix and return again: the package's schema, the same fids; False if nothing was rejected.

        ``parcels`` keeps every row of the returned file (the ones applied are unchanged against the
        advanced base when it comes back); ``new_parcels`` and ``new_bornes`` keep the refused rows
        only (the others are in the registry now); reference layers are written empty.
        """
        if not any(self.rejected.values()):
            return False
        for number, layer in enumerate(layers.layers(holders=bool(self.package["includes_holders"]))):
            batches: list[Any] = []
            if layer.name == "parcels":
                with closing(returns_file.read_only(self.gpkg)) as conn:
                    fids = [int(r[0]) for r in conn.execute('SELECT fid FROM "parcels"')]
                batches = self._batches(layer, fids)
            elif layer.name in ("new_parcels", "new_bornes"):
                batches = self._batches(layer, sorted(self.rejected[layer.name]))
            elif layer.name == layers.PACKAGE.name:
                batches = [gpkg.record_batch(layer, [{"fid": i + 1, "key": k, "value": v}
                                                     for i, (k, v) in enumerate(sorted(claims.items()))])]
            gpkg.write_layer(path, layer, batches, append=number > 0)
        return True

    def _batches(self, layer: layers.Layer, fids: list[int]) -> list[Any]:
        names = [f.name for f in layer.fields]
        out = []
        for start in range(0, len(fids), 500):
            found = returns_file.rows(self.gpkg, layer.name, fids[start:start + 500], names)
            out.append(gpkg.record_batch(layer, [{**_typed(layer, r), "fid": fid,
                                                  "geometry": returns_file.gpkg_wkb(r.get("geom"))}
                                                 for fid, r in sorted(found.items())]))
        return out


def _typed(layer: layers.Layer, row: dict[str, Any]) -> dict[str, Any]:
    """A row read with sqlite3 in the Arrow types of its layer (booleans and dates are stored as text/int)."""
    out: dict[str, Any] = {}
    for f in layer.fields:
        value = row.get(f.name)
        if value is not None and f.kind == "bool":
            value = bool(value)
        elif value is not None and f.kind == "date" and isinstance(value, str):
            try:
                value = date.fromisoformat(value[:10])
            except ValueError:
                value = None
        elif value is not None and f.kind == "int":
            value = int(value)
        elif value is not None and f.kind == "real":
            value = float(value)
        elif value is not None and f.kind == "text":
            value = str(value)
        out[f.name] = value
    return out
