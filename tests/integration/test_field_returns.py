"""Field returns through the import worker: what is applied, what conflicts, what is refused, and
that a refused or previewed return leaves the registry as it was.

Packages are built by ``sifc.field.packages.build`` for an agent foncier of Bargny; returned files
are its ``data.gpkg`` edited with sqlite3 (GDAL's GeoPackage triggers call ``ST_IsEmpty`` and
``ST_MinX``..: registered here from shapely) and the geometry blobs written per GeoPackage 1.2.
"""

from __future__ import annotations

import sqlite3
import struct
import tempfile
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
import shapely
from shapely.geometry import box, mapping
from sqlalchemy import text

from sifc import keyring
from sifc.auth.service import from_api_key
from sifc.db import act_as
from sifc.errors import SifcError
from sifc.field import packages, returns
from sifc.imports import worker
from sifc.parcels import service as parcels
from tests.conftest import api_key, table_fingerprint
from tests.integration.fixtures import bargny_origin

BARGNY = "SN0104-bargny"
WATCHED = ("parcel_version", "borne_version", "field_package_item", "field_package", "field_return",
           "parcel_source", "source_document", "write_audit")


# --- editing a returned GeoPackage -------------------------------------------------------------------

def _wkb(blob):
    from sifc.field.returns_file import gpkg_wkb

    return gpkg_wkb(blob)


def _bound(index):
    def compute(blob):
        wkb = _wkb(blob)
        return None if wkb is None else shapely.from_wkb(wkb).bounds[index]
    return compute


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.create_function("ST_IsEmpty", 1, lambda blob: 1 if _wkb(blob) is None else 0)
    for name, index in (("ST_MinX", 0), ("ST_MinY", 1), ("ST_MaxX", 2), ("ST_MaxY", 3)):
        conn.create_function(name, 1, _bound(index))
    return conn


def blob(geometry) -> bytes:
    """A GeoPackage 1.2 geometry blob (little endian, XY envelope, EPSG:32628)."""
    minx, miny, maxx, maxy = geometry.bounds
    return b"GP" + bytes([0, 0b011]) + struct.pack("<i", 32628) + struct.pack("<4d", minx, maxx, miny, maxy) + \
        shapely.to_wkb(geometry)


def edit(path: Path, sql: str, *params) -> None:
    with closing(_connect(path)) as conn:
        conn.execute(sql, params)
        conn.commit()


def fid_of(path: Path, parcel_id: str) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT fid FROM parcels WHERE parcel_id = ?", (parcel_id,)).fetchone()[0])


def shape_of(path: Path, fid: int):
    with closing(sqlite3.connect(path)) as conn:
        return shapely.from_wkb(_wkb(conn.execute("SELECT geom FROM parcels WHERE fid = ?", (fid,)).fetchone()[0]))


# --- fixtures --------------------------------------------------------------------------------------

@pytest.fixture
def place(db):
    """Four 20 m parcels in a row in Bargny (ids in order), committed to the test's outer transaction."""
    x, y = bargny_origin(db)
    x, y = x + 120, y - 150
    ids = []
    for n in range(4):
        shape = box(x + n * 30, y, x + n * 30 + 20, y + 20)
        ids.append(parcels.create(db, data=parcels.ParcelInput(geometry=mapping(shape), input_crs=32628,
                                                                values={"land_use": "habitation"}, reason="test"),
                                  author="tests"))
    db.commit()
    return x, y, ids


def _holder(db, name="agent terrain", scope=(f"commune:{BARGNY}",), role="agent_foncier"):
    return from_api_key(db, api_key(db, role=role, scope=scope, name=name))


@pytest.fixture
def holder(db):
    return _holder(db)


def build(db, settings, holder, place, tmp_path, name="data.gpkg"):
    x, y, _ids = place
    package = packages.build(db, by=holder, keys=keyring.for_settings(settings), upload_dir=settings.upload_dir,
                             commune=BARGNY, bbox=(x - 5, y - 5, x + 115, y + 25), bbox_crs=32628)
    db.commit()
    folder = tmp_path / str(package["id"])
    folder.mkdir()
    with zipfile.ZipFile(packages.zip_file(settings.upload_dir, package["id"])) as bundle:
        bundle.extract("data.gpkg", folder)
    target = folder / name
    if name != "data.gpkg":
        (folder / "data.gpkg").rename(target)
    return str(package["id"]), target


def run_return(db, settings, by, path: Path, package_id, *, dry_run=False):
    """Submit and run a return as the worker does; the job row afterwards (or the submit's refusal)."""
    job = returns.submit_return(db, package_id=package_id, upload_path=path, file_name=path.name,
                                size=path.stat().st_size, dry_run=dry_run, by=by, settings=settings)
    db.commit()
    row = dict(db.execute(text("SELECT * FROM import_job WHERE id = :id"), {"id": job["id"]}).mappings().one())
    with tempfile.TemporaryDirectory() as scratch:
        try:
            worker._import(db, row, Path(scratch), lambda *args: None, "fr")
        except SifcError as error:
            db.rollback()
            worker._finish(db, row["id"], {"status": "failed", "error": {"key": error.key}})
    db.commit()
    act_as(db, None)
    return dict(db.execute(text("SELECT * FROM import_job WHERE id = :id"), {"id": job["id"]}).mappings().one())


def by_fid(job):
    return {(f["layer"], f["fid"]): f for f in job["report"]["features"]}


def snapshot(db):
    return {table: table_fingerprint(db, table) for table in WATCHED}


def current(db, parcel_id):
    return db.execute(text("SELECT * FROM parcel WHERE parcel_id = :p"), {"p": parcel_id}).mappings().one()


# --- tests -----------------------------------------------------------------------------------------

def test_an_unchanged_file_changes_nothing(db, settings, holder, place, tmp_path):
    package_id, path = build(db, settings, holder, place, tmp_path)
    before = table_fingerprint(db, "parcel_version")
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "done", job["error"]
    assert job["kind"] == "field_return"
    assert job["report"]["counts"]["applied"] == 0
    assert job["report"]["features"] == []
    assert table_fingerprint(db, "parcel_version") == before
    assert job["rejects_gpkg"] is None


def test_a_moved_vertex_and_a_land_use_are_applied(db, settings, holder, place, tmp_path):
    x, y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    moved, relabelled = fid_of(path, ids[0]), fid_of(path, ids[1])
    shape = shapely.Polygon([(x, y), (x + 22, y - 1), (x + 20, y + 20), (x, y + 20)])
    edit(path, "UPDATE parcels SET geom = ?, remark = 'borne déplacée' WHERE fid = ?", blob(shape), moved)
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", relabelled)
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "done", job["error"]
    features = by_fid(job)
    assert features[("parcels", moved)]["status"] == "applied"
    assert features[("parcels", relabelled)]["status"] == "applied"
    first, second = current(db, ids[0]), current(db, ids[1])
    assert (first["version"], first["author"], first["reason"], first["action"]) == (
        2, holder.name, "borne déplacée", "field:return")
    assert first["nicad_status"] == "a_reattribuer"
    assert (second["version"], second["land_use"], second["reason"]) == (
        2, "commerce", f"retour de terrain {package_id}")
    audits = db.execute(text("SELECT count(*) FROM write_audit WHERE object_id = ANY(CAST(:ids AS text[]))"),
                        {"ids": [ids[0], ids[1]]}).scalar()
    assert audits >= 2
    items = dict(db.execute(text("SELECT parcel_id::text, base_version FROM field_package_item WHERE package_id = :p"),
                            {"p": package_id}).all())
    assert items[ids[0]] == 2 and items[ids[1]] == 2 and items[ids[2]] == 1
    package = db.execute(text("SELECT status, returned_at FROM field_package WHERE id = :p"),
                         {"p": package_id}).one()
    assert package.status == "returned" and package.returned_at is not None
    # The same bytes again: already applied, nothing written.
    before = snapshot(db)
    again = run_return(db, settings, holder, path, package_id)
    assert again["status"] == "done" and again["report"]["already_applied"] is not None
    assert snapshot(db) == before


def test_preview_leaves_the_registry_unchanged(db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", fid_of(path, ids[1]))
    before = snapshot(db)
    job = run_return(db, settings, holder, path, package_id, dry_run=True)
    assert job["status"] == "done", job["error"]
    assert job["report"]["counts"]["applied"] == 1 and job["report"]["dry_run"]
    assert snapshot(db) == before


def test_office_change_since_checkout_is_a_conflict(db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    act_as(db, "bureau")
    parcels.update(db, parcel_id=ids[1], data=parcels.ParcelInput(values={"land_use": "agriculture"},
                                                                   reason="bureau"), author="bureau")
    db.commit()
    fid = fid_of(path, ids[1])
    edit(path, "UPDATE parcels SET land_use = 'commerce', version = 2 WHERE fid = ?", fid)  # hiding it: no
    job = run_return(db, settings, holder, path, package_id)
    entry = by_fid(job)[("parcels", fid)]
    assert entry["status"] == "conflict" and entry["reason"] == "field.conflict_changed"
    assert entry["registry"]["attributes"]["land_use"] == "agriculture"
    assert entry["field"]["attributes"]["land_use"] == "commerce"
    assert entry["registry"]["geometry"]["type"] == "MultiPolygon"
    assert entry["field"]["geometry"]["type"] == "MultiPolygon"
    assert current(db, ids[1])["land_use"] == "agriculture"
    assert job["rejects_gpkg"] is not None


def test_two_packages_over_one_parcel(db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    other = _holder(db, name="agent deux")
    first_id, first = build(db, settings, holder, place, tmp_path)
    second_id, second = build(db, settings, other, place, tmp_path)
    edit(first, "UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", fid_of(first, ids[0]))
    edit(second, "UPDATE parcels SET land_use = 'mixte' WHERE fid = ?", fid_of(second, ids[0]))
    edit(second, "UPDATE parcels SET land_use = 'voirie' WHERE fid = ?", fid_of(second, ids[3]))
    assert run_return(db, settings, holder, first, first_id)["report"]["counts"]["applied"] == 1
    job = run_return(db, settings, other, second, second_id)
    features = by_fid(job)
    assert features[("parcels", fid_of(second, ids[0]))]["status"] == "conflict"
    assert features[("parcels", fid_of(second, ids[3]))]["status"] == "applied"
    assert current(db, ids[0])["land_use"] == "commerce"


def test_retired_after_checkout_is_a_conflict_not_a_resurrection(db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    act_as(db, "bureau")
    parcels.retire(db, parcel_id=ids[2], author="bureau", reason="erreur de saisie")
    db.commit()
    fid = fid_of(path, ids[2])
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", fid)
    job = run_return(db, settings, holder, path, package_id)
    assert by_fid(job)[("parcels", fid)]["status"] == "conflict"
    assert db.execute(text("SELECT count(*) FROM parcel WHERE parcel_id = :p"), {"p": ids[2]}).scalar() == 0


def test_new_parcels_bornes_and_deletions(db, settings, holder, place, tmp_path):
    x, y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    edit(path, "INSERT INTO new_parcels (fid, geom, land_use, section) VALUES (1, ?, 'agriculture', 'A')",
         blob(shapely.MultiPolygon([box(x, y + 40, x + 20, y + 60)])))
    edit(path, "INSERT INTO new_parcels (fid, geom, land_use) VALUES (2, ?, 'agriculture')",
         blob(shapely.MultiPolygon([box(x + 5, y + 5, x + 25, y + 25)])))  # over the first two parcels
    edit(path, "INSERT INTO new_bornes (fid, geom, label, precision_m, survey_method) VALUES "
               "(1, ?, 'B12', 0.05, 'gnss_rtk')", blob(shapely.Point(x + 25, y + 30)))
    deleted = fid_of(path, ids[3])
    edit(path, "DELETE FROM parcels WHERE fid = ?", deleted)
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "done", job["error"]
    features = by_fid(job)
    created = features[("new_parcels", 1)]
    assert created["status"] == "applied"
    row = current(db, created["parcel_id"])
    assert row["nicad"] is None and row["action"] == "field:return" and row["land_use"] == "agriculture"
    assert features[("new_parcels", 2)]["status"] == "refused"
    assert features[("new_parcels", 2)]["reason"] == "parcel.overlap"
    assert features[("new_bornes", 1)]["status"] == "applied"
    assert db.execute(text("SELECT label FROM borne WHERE borne_id = :b"),
                      {"b": features[("new_bornes", 1)]["borne_id"]}).scalar() == "B12"
    assert features[("parcels", deleted)]["status"] == "proposed_retirement"
    assert db.execute(text("SELECT count(*) FROM parcel WHERE parcel_id = :p"), {"p": ids[3]}).scalar() == 1


@pytest.mark.parametrize("tamper, key", [
    ("DROP TABLE new_bornes", "field.table_missing"),
    ("CREATE TABLE notes (id integer primary key, body text)", "field.table_extra"),
    ("UPDATE gpkg_geometry_columns SET srs_id = 4326 WHERE table_name = 'parcels'", "field.schema_changed"),
    ("UPDATE gpkg_geometry_columns SET geometry_type_name = 'POLYGON' WHERE table_name = 'parcels'",
     "field.schema_changed"),
    ("UPDATE sifc_package SET value = '" + "0" * 64 + "' WHERE key = 'mac'", "field.package_forged"),
    ("CREATE TRIGGER spy AFTER UPDATE ON parcels BEGIN SELECT 1; END", "field.trigger_extra"),
    ("CREATE VIEW everything AS SELECT * FROM parcels", "field.table_extra"),
    ("UPDATE sifc_package SET value = '00000000-0000-4000-8000-000000000000' WHERE key = 'id'",
     "field.package_forged"),
])
def test_tampered_files_are_refused_whole(db, settings, holder, place, tmp_path, tamper, key):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", fid_of(path, ids[1]))
    edit(path, tamper)
    before = snapshot(db)
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "failed" and job["error"]["key"] == key
    assert snapshot(db) == before


def test_lost_package_and_other_user_are_refused(db, settings, holder, place, tmp_path):
    from sifc.errors import Forbidden

    package_id, path = build(db, settings, holder, place, tmp_path)
    with pytest.raises(Forbidden) as refused:
        run_return(db, settings, _holder(db, name="intrus"), path, package_id)
    assert refused.value.key == "field.not_holder"
    db.execute(text("UPDATE field_package SET status = 'expired' WHERE id = :p"), {"p": package_id})
    db.commit()
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "failed" and job["error"]["key"] == "field.package_expired"
    db.execute(text("UPDATE field_package SET status = 'lost', closed_at = now(), closed_by = 'admin' "
                    "WHERE id = :p"), {"p": package_id})
    db.commit()
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "failed" and job["error"]["key"] == "field.package_lost"


def test_zip_slip_and_oversized_are_refused_at_the_door(db, settings, holder, place, tmp_path):
    from sifc.errors import ImportRejected, TooLarge

    package_id, path = build(db, settings, holder, place, tmp_path)
    hostile = tmp_path / "retour.zip"
    with zipfile.ZipFile(hostile, "w") as bundle:
        bundle.write(path, "data.gpkg")
        bundle.writestr("../../evil.jpg", b"\xff\xd8\xff")
    with pytest.raises(ImportRejected) as refused:
        returns.submit_return(db, package_id=package_id, upload_path=hostile, file_name=hostile.name,
                              size=hostile.stat().st_size, dry_run=False, by=holder, settings=settings)
    assert refused.value.key == "import.zip_unsafe"
    small = settings.model_copy(update={"max_field_return_bytes": 1024})
    with pytest.raises(TooLarge) as refused_size:
        returns.submit_return(db, package_id=package_id, upload_path=path, file_name=path.name,
                              size=path.stat().st_size, dry_run=False, by=holder, settings=small)
    assert refused_size.value.key == "field.return_too_large"


def test_photo_is_attached_as_a_source(db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    fid = fid_of(path, ids[0])
    edit(path, "UPDATE parcels SET photo = 'DCIM/clôture.jpg' WHERE fid = ?", fid)
    bundle_path = tmp_path / "retour.zip"
    with zipfile.ZipFile(bundle_path, "w") as bundle:
        bundle.write(path, "data.gpkg")
        bundle.writestr("DCIM/clôture.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 200)
    job = run_return(db, settings, holder, bundle_path, package_id)
    assert job["status"] == "done", job["error"]
    assert by_fid(job)[("parcels", fid)]["status"] == "unchanged"
    attached = db.execute(text("""
        SELECT d.kind, f.media_type FROM parcel_source ps JOIN source_document d ON d.id = ps.source_id
        JOIN source_file f ON f.source_id = d.id WHERE ps.parcel_id = :p"""), {"p": ids[0]}).all()
    assert [tuple(r) for r in attached] == [("autre", "image/jpeg")]


def test_litige_freeze_refuses_the_feature(client, db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    officer = {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="greffe")}
    decision = client.post("/sources", headers=officer, json={
        "kind": "decision_justice", "document_date": "2026-01-05", "commune_code": BARGNY, "reference": "TGI 1"})
    assert decision.status_code == 201, decision.text
    litige = client.post(f"/parcels/{ids[2]}/rights", headers=officer, json={
        "type": "litige", "start_date": "2026-01-06", "source_ids": [decision.json()["id"]]})
    assert litige.status_code == 201, litige.text
    db.commit()
    act_as(db, None)
    frozen, free = fid_of(path, ids[2]), fid_of(path, ids[3])
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid IN (?, ?)", frozen, free)
    job = run_return(db, settings, holder, path, package_id)
    features = by_fid(job)
    assert (features[("parcels", frozen)]["status"], features[("parcels", frozen)]["reason"]) == (
        "refused", "tenure.under_litige")
    assert features[("parcels", free)]["status"] == "applied"


def test_split_after_checkout_names_the_children(db, settings, holder, place, tmp_path):
    from datetime import date

    from sifc import mutations
    from sifc.tenure import sources

    x, y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    act_as(db, "bureau")
    source = sources.create(db, data=sources.SourceInput(kind="plan", document_date=date(2026, 1, 5),
                                                         commune_code=BARGNY), by=None, author="bureau")
    left, right = box(x + 60, y, x + 70, y + 20), box(x + 70, y, x + 80, y + 20)
    done = mutations.split(db, parcel_id=ids[2], children=[mutations.Child(mapping(left)), mutations.Child(mapping(right))],
                           rights={}, data=mutations.MutationInput(occurred_on=date(2026, 1, 6), source_ids=[source],
                                                                   reason="morcellement", input_crs=32628),
                           expected_version=None, by=None, author="bureau")
    db.commit()
    fid = fid_of(path, ids[2])
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", fid)
    job = run_return(db, settings, holder, path, package_id)
    entry = by_fid(job)[("parcels", fid)]
    assert (entry["status"], entry["reason"]) == ("conflict", "field.conflict_split")
    assert sorted(entry["children"]) == sorted(str(c) for c in done["children"])
    assert db.execute(text("SELECT count(*) FROM parcel WHERE parcel_id = :p"), {"p": ids[2]}).scalar() == 0


def test_edits_left_in_the_wal_are_read(db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    fid = fid_of(path, ids[1])
    bundle_path = tmp_path / "retour-wal.zip"
    conn = _connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", (fid,))
        conn.commit()
        assert Path(str(path) + "-wal").stat().st_size > 0
        with zipfile.ZipFile(bundle_path, "w") as bundle:  # as QGIS leaves it, the project still open
            bundle.write(path, "data.gpkg")
            bundle.write(str(path) + "-wal", "data.gpkg-wal")
    finally:
        conn.close()
    job = run_return(db, settings, holder, bundle_path, package_id)
    assert by_fid(job)[("parcels", fid)]["status"] == "applied"


def test_a_valid_mac_for_an_unknown_package(db, settings, holder, place, tmp_path):
    from datetime import UTC, datetime, timedelta

    from sifc.field import mac

    package_id, path = build(db, settings, holder, place, tmp_path)
    ghost = "00000000-0000-4000-8000-000000000001"
    issued = datetime.now(UTC)
    claims = mac.claims(package_id=ghost, commune_code=BARGNY, issued_to=holder.name, issued_at=issued,
                        expires_at=issued + timedelta(days=3), package_format=1)
    code, kid = mac.sign(keyring.for_settings(settings), claims)
    for key, value in (("id", ghost), ("issued_at", issued.isoformat()),
                       ("expires_at", (issued + timedelta(days=3)).isoformat()), ("mac", code), ("kid", kid)):
        edit(path, "UPDATE sifc_package SET value = ? WHERE key = ?", value, key)
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "failed" and job["error"]["key"] == "field.package_unknown"


def test_over_http_the_holder_queues_a_return(client, db, settings, place, tmp_path):
    key = api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent http")
    holder = from_api_key(db, key)
    package_id, path = build(db, settings, holder, place, tmp_path)
    headers = {"X-API-Key": key}
    with path.open("rb") as handle:
        queued = client.post(f"/field/packages/{package_id}/return", params={"dry_run": "true"}, headers=headers,
                             files={"file": ("data.gpkg", handle, "application/geopackage+sqlite3")})
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["kind"] == "field_return" and job["dry_run"] and job["status"] == "queued"
    followed = client.get(f"/field/returns/{job['id']}", headers=headers)
    assert followed.status_code == 200 and followed.json()["links"]["self"].endswith(job["id"])
    other = {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="autre agent")}
    with path.open("rb") as handle:
        refused = client.post(f"/field/packages/{package_id}/return", headers=other,
                              files={"file": ("data.gpkg", handle, "application/geopackage+sqlite3")})
    assert refused.status_code == 403 and refused.json()["type"].endswith("field.not_holder")
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur")}
    assert client.get(f"/field/returns/{job['id']}", headers=reader).status_code == 403
    unknown = client.post("/field/packages/00000000-0000-4000-8000-000000000009/return", headers=headers,
                          files={"file": ("data.gpkg", b"SQLite format 3\x00", "application/octet-stream")})
    assert unknown.status_code == 404


def test_rejects_come_back_and_resaved_edits_change_nothing(db, settings, holder, place, tmp_path):
    _x, _y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    act_as(db, "bureau")
    parcels.update(db, parcel_id=ids[0], data=parcels.ParcelInput(values={"land_use": "voirie"}, reason="bureau"),
                   author="bureau")
    db.commit()
    conflicting, applied = fid_of(path, ids[0]), fid_of(path, ids[1])
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid IN (?, ?)", conflicting, applied)
    first = run_return(db, settings, holder, path, package_id)
    assert first["report"]["counts"]["applied"] == 1 and first["report"]["counts"]["conflict"] == 1
    rejects = tmp_path / "rejets" / "data.gpkg"
    rejects.parent.mkdir()
    rejects.write_bytes(first["rejects_gpkg"])
    with closing(sqlite3.connect(rejects)) as conn:
        assert conn.execute("SELECT land_use FROM parcels WHERE fid = ?", (conflicting,)).fetchone() == ("commerce",)
    before = snapshot(db)
    again = run_return(db, settings, holder, rejects, package_id)
    assert again["status"] == "done", again["error"]
    features = by_fid(again)
    assert features[("parcels", conflicting)]["status"] == "conflict"
    assert ("parcels", applied) not in features or features[("parcels", applied)]["status"] == "unchanged"
    assert table_fingerprint(db, "parcel_version") == before["parcel_version"]
    # The officer's own file, saved again with the same edits (other bytes): judged against the advanced base.
    edit(path, "UPDATE parcels SET remark = NULL WHERE fid = ?", applied)
    resaved = run_return(db, settings, holder, path, package_id)
    assert resaved["report"]["counts"]["applied"] == 0
    assert table_fingerprint(db, "parcel_version") == before["parcel_version"]


def test_a_signed_pv_records_the_survey_step(client, db, settings, place, tmp_path):
    _x, _y, ids = place
    key = api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent pv")
    holder = from_api_key(db, key)
    officer = {"X-API-Key": key}
    party = client.post("/parties", headers=officer, json={
        "kind": "natural_person", "name": "Synthétique", "commune_code": BARGNY})
    assert party.status_code == 201, party.text
    procedure = client.post("/procedures", headers=officer, json={
        "parcel_id": ids[0], "applicants": [{"party_id": party.json()["id"], "share": "1"}],
        "registered_on": "2026-01-05"})
    assert procedure.status_code == 201, procedure.text
    db.commit()
    act_as(db, None)
    package_id, path = build(db, settings, holder, place, tmp_path)
    fid = fid_of(path, ids[0])
    edit(path, "UPDATE parcels SET survey_done = 1, pv_photo = 'DCIM/pv.png' WHERE fid = ?", fid)
    bundle_path = tmp_path / "retour-pv.zip"
    with zipfile.ZipFile(bundle_path, "w") as bundle:
        bundle.write(path, "dossier/data.gpkg")
        bundle.writestr("dossier/DCIM/pv.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
        bundle.writestr("dossier/projet.qgs", b"<qgis/>")
    job = run_return(db, settings, holder, bundle_path, package_id)
    assert job["status"] == "done", job["error"]
    keys = [w["key"] for w in job["report"]["warnings"]]
    assert "field.photo_attached" in keys and "field.step_recorded" in keys, job["report"]["warnings"]
    steps = db.execute(text("""
        SELECT s.step FROM procedure_step s JOIN tenure_procedure p ON p.id = s.procedure_id
        WHERE p.parcel_id = :p ORDER BY s.seq"""), {"p": ids[0]}).scalars().all()
    assert steps == ["registered", "surveyed"]


def test_new_features_out_of_scope_or_too_many_refuse_the_file(db, settings, holder, place, tmp_path):
    package_id, path = build(db, settings, holder, place, tmp_path)
    x, y = db.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM commune
        WHERE code <> :c AND NOT ST_Intersects(geom, (SELECT geom FROM commune WHERE code = :c))
        ORDER BY code LIMIT 1) t"""), {"c": BARGNY}).one()
    edit(path, "INSERT INTO new_bornes (fid, geom, label, precision_m, survey_method) VALUES "
               "(1, ?, 'B99', 0.05, 'gnss')", blob(shapely.Point(x, y)))
    before = snapshot(db)
    job = run_return(db, settings, holder, path, package_id)
    assert job["status"] == "failed" and job["error"]["key"] == "field.out_of_scope"
    assert snapshot(db) == before
    few = settings.model_copy(update={"field_return_max_new_features": 0})
    row = returns.submit_return(db, package_id=package_id, upload_path=path, file_name=path.name,
                                size=path.stat().st_size, dry_run=True, by=holder, settings=few)
    job_row = dict(db.execute(text("SELECT * FROM import_job WHERE id = :id"), {"id": row["id"]}).mappings().one())
    with tempfile.TemporaryDirectory() as scratch, pytest.raises(SifcError) as refused:
        returns.run(db, job_row, Path(scratch), few)
    assert refused.value.key == "field.too_many_features"


def test_a_new_parcel_in_another_commune_refuses_the_whole_file(db, settings, holder, place, tmp_path):
    """A Bargny agent's file with a new parcel in Sandiara: nothing of it is written, not even the
    land use and the new Bargny parcel that come before it in the file."""
    x, y, ids = place
    package_id, path = build(db, settings, holder, place, tmp_path)
    sx, sy = db.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM commune WHERE code = :c) t"""),
        {"c": "SN1301-sandiara"}).one()
    edit(path, "UPDATE parcels SET land_use = 'commerce' WHERE fid = ?", fid_of(path, ids[0]))
    edit(path, "INSERT INTO new_parcels (fid, geom, land_use) VALUES (1, ?, 'agriculture')",
         blob(shapely.MultiPolygon([box(x, y + 40, x + 20, y + 60)])))
    edit(path, "INSERT INTO new_parcels (fid, geom, land_use) VALUES (2, ?, 'agriculture')",
         blob(shapely.MultiPolygon([box(sx, sy, sx + 20, sy + 20)])))
    before = snapshot(db)
    for dry_run in (True, False):
        job = run_return(db, settings, holder, path, package_id, dry_run=dry_run)
        assert job["status"] == "failed" and job["error"]["key"] == "field.out_of_scope", job["error"]
        assert snapshot(db) == before
    assert current(db, ids[0])["land_use"] == "habitation"
    assert db.execute(text("SELECT status FROM field_package WHERE id = :p"), {"p": package_id}).scalar() == "open"
