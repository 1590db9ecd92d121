"""The field round trip with real QGIS: check out over HTTP, edit in QGIS, return over HTTP, see the registry.

What a land officer of Bargny does (README, docs/field.md): build a package of the commune, open its
project in QGIS (QField's rules checked by the project tests stand for QField, which cannot run here),
move a vertex, change a land use, attach a photo, add a parcel and a borne, delete a parcel, save; send
the zip back, read the preview, apply it; then find exactly those changes in the registry with their
author and reason, the deletion only proposed, the photo attached as a source, the write journal and,
for a package carrying holders, one access-log entry per parcel.
"""

from __future__ import annotations

import io
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import shapely
import shapely.geometry
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from tests.conftest import REPO, env_for
from tests.e2e.helpers import SIFC, free_port, run_cli, start_server
from tests.e2e.slow_clients import qgis_field_script as qgis

BARGNY = "SN0104-bargny"
PASSWORD = "un mot de passe assez long"
OFFICER = "agent.terrain.bargny"


@pytest.fixture(scope="module")
def server(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    qgis.require_qgis()
    loaded = run_cli(fresh_db, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    created = subprocess.run([*SIFC, "users", "create", OFFICER, "--role", "agent_foncier", "--scope",
                              f"commune:{BARGNY}", "--password-stdin"], cwd=REPO, env=env_for(fresh_db),
                             input=PASSWORD + "\n", capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    port = free_port()
    process = start_server(fresh_db, port, tmp_path_factory.mktemp("field") / "server.log")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def _call(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Accept-Language": "fr", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def officer(server: str) -> dict[str, str]:
    form = urllib.parse.urlencode({"username": OFFICER, "password": PASSWORD}).encode()
    status, _, body = _call(f"{server}/auth/token", method="POST", body=form,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, body
    return {"Authorization": f"Bearer {json.loads(body)['access_token']}"}


def _json(server: str, path: str, auth: dict[str, str], payload: Any = None, *, method: str | None = None
          ) -> tuple[int, Any]:
    body = json.dumps(payload).encode() if payload is not None else None
    headers = {**auth, "Content-Type": "application/json"} if body is not None else auth
    status, _, answer = _call(f"{server}{path}", method=method or ("POST" if body is not None else "GET"),
                              body=body, headers=headers)
    return status, json.loads(answer) if answer else None


def _scalar(settings: Settings, sql: str, **params: Any) -> Any:
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        value = conn.execute(text(sql), params).scalar()
    engine.dispose()
    return value


def _rows(settings: Settings, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        rows = list(conn.execute(text(sql), params).mappings())
    engine.dispose()
    return rows


def _send_return(server: str, auth: dict[str, str], package_id: str, archive: bytes, *, dry_run: bool
                 ) -> dict[str, Any]:
    query = urllib.parse.urlencode({"dry_run": str(dry_run).lower(), "filename": "retour.zip"})
    status, _, body = _call(f"{server}/field/packages/{package_id}/return?{query}", method="POST", body=archive,
                            headers={**auth, "Content-Type": "application/zip"})
    assert status == 202, body
    job = json.loads(body)
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
        status, job = _json(server, f"/field/returns/{job['id']}", auth)
        assert status == 200, job
    assert job["status"] == "done", job
    status, report = _json(server, f"/field/returns/{job['id']}/report", auth)
    assert status == 200, report
    return dict(report)


def _free_square(folder: Path) -> shapely.Polygon:
    """A 6 m square inside Bargny that touches no parcel: a new parcel surveyed in the field."""
    gpkg = folder / "data.gpkg"
    commune = shapely.union_all(pyogrio.read_dataframe(gpkg, layer="commune").geometry.values)
    taken = shapely.union_all(list(pyogrio.read_dataframe(gpkg, layer="parcels").geometry.values)
                              + list(pyogrio.read_dataframe(gpkg, layer="neighbours").geometry.values))
    minx, miny, maxx, maxy = taken.bounds
    for dx in range(10, 400, 7):
        for x, y in ((minx - dx, (miny + maxy) / 2), (maxx + dx, (miny + maxy) / 2),
                     ((minx + maxx) / 2, miny - dx), ((minx + maxx) / 2, maxy + dx)):
            square = shapely.box(x - 3, y - 3, x + 3, y + 3)
            if commune.contains(square.buffer(2)) and not taken.intersects(square.buffer(2)):
                return square
    raise AssertionError("no free place in Bargny for a new parcel")


def _outward_move(folder: Path) -> dict[str, Any]:
    """A corner a surveyor moves 0.6 m outward, into the street: no neighbour is touched."""
    gpkg = folder / "data.gpkg"
    parcels = pyogrio.read_dataframe(gpkg, layer="parcels", fid_as_index=True)
    others = list(pyogrio.read_dataframe(gpkg, layer="neighbours").geometry.values)
    for fid, shape in zip(parcels.index, parcels.geometry.values, strict=True):
        ring = list(shape.geoms[0].exterior.coords)
        rest = shapely.union_all([g for f, g in zip(parcels.index, parcels.geometry.values, strict=True)
                                  if f != fid and g.distance(shape) < 5] + [g for g in others if g.distance(shape) < 5])
        for vertex in range(1, len(ring) - 1):
            for dx, dy in ((0.6, 0), (-0.6, 0), (0, 0.6), (0, -0.6)):
                moved = list(ring)
                moved[vertex] = (ring[vertex][0] + dx, ring[vertex][1] + dy)
                polygon = shapely.Polygon(moved)
                if polygon.is_valid and polygon.intersection(rest).area < 1e-6:
                    return {"layer": "parcels", "fid": int(fid), "vertex": vertex, "dx": dx, "dy": dy}
    raise AssertionError("no parcel corner can move outward")


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def test_a_bargny_package_goes_to_qgis_and_comes_back_into_the_registry(server, officer, fresh_db, tmp_path):
    parcels_in_bargny = _scalar(fresh_db, "SELECT count(*) FROM parcel WHERE commune_code = :c", c=BARGNY)
    status, package = _json(server, "/field/packages", officer, {"commune": BARGNY})
    assert status == 201, package
    assert package["issued_to"] == OFFICER and package["status"] == "open" and not package["includes_holders"]
    assert package["item_count"] == parcels_in_bargny
    status, _, archive = _call(package["links"]["download"], headers=officer)
    assert status == 200
    folder = tmp_path / "tablette"
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        names = set(bundle.namelist())
        assert {"data.gpkg", "projet.qgs", "LISEZMOI.txt"} <= names
        assert any(name.rstrip("/") == "DCIM" for name in names)
        bundle.extractall(folder)
    assert "holders" not in {name for name, _ in pyogrio.list_layers(folder / "data.gpkg")}

    # QGIS opens the project as shipped: every layer valid, read from the GeoPackage by relative path.
    home = tmp_path / "qgis-home"
    home.mkdir()
    seen = qgis.run("inspect", folder / "projet.qgs", home=home)
    assert seen["read"] and seen["layers"], seen
    assert all(layer["valid"] for layer in seen["layers"].values()), seen["layers"]

    parcels = pyogrio.read_dataframe(folder / "data.gpkg", layer="parcels", fid_as_index=True)
    move = _outward_move(folder)
    moved = move["fid"]
    recoded, deleted = [int(fid) for fid in parcels.index if fid != moved][:2]
    recoded_use = "commerce" if parcels.loc[recoded, "land_use"] != "commerce" else "habitation"
    square = _free_square(folder)
    borne = square.centroid
    (folder / "DCIM").mkdir(exist_ok=True)
    Image.new("RGB", (32, 24), (120, 90, 40)).save(folder / "DCIM" / "parcelle.jpg", format="JPEG")
    plan = {
        "move_vertex": [move],
        "set": [{"layer": "parcels", "fid": recoded, "field": "land_use", "value": recoded_use},
                {"layer": "parcels", "fid": recoded, "field": "remark", "value": "usage vérifié sur place"},
                {"layer": "parcels", "fid": recoded, "field": "photo", "value": "DCIM/parcelle.jpg"}],
        "add": [{"layer": "new_parcels", "wkt": shapely.MultiPolygon([square]).wkt,
                 "attributes": {"section": "Z", "local_number": "T1", "land_use": "habitation"}},
                {"layer": "new_bornes", "wkt": borne.wkt,
                 "attributes": {"label": "BT1", "precision_m": 0.05, "survey_method": "gnss_rtk"}}],
        "delete": [{"layer": "parcels", "fid": deleted}],
        "refuse": ["bornes", "neighbours"],
    }
    edited = qgis.run("edit", folder / "projet.qgs", home=home, plan=plan)
    assert all(edited["committed"].values()), edited
    assert not any(edited["problems"].values()), edited
    assert all(edited["refused"].values()), edited
    assert not (folder / "data.gpkg-wal").exists()
    returned = _zip(folder)

    ids = {fid: str(parcels.loc[fid, "parcel_id"]) for fid in (moved, recoded, deleted)}
    versions_before = _scalar(fresh_db, "SELECT count(*) FROM parcel_version")
    bornes_before = _scalar(fresh_db, "SELECT count(*) FROM borne_version")

    preview = _send_return(server, officer, package["id"], returned, dry_run=True)
    assert preview["dry_run"] is True
    by_fid = {(f["layer"], f["fid"]): f for f in preview["features"]}
    assert by_fid[("parcels", moved)]["status"] == "applied", by_fid[("parcels", moved)]
    assert by_fid[("parcels", recoded)]["status"] == "applied", by_fid[("parcels", recoded)]
    assert by_fid[("parcels", deleted)]["status"] == "proposed_retirement"
    assert preview["counts"]["applied"] == 4  # two parcels, the new parcel, the new borne
    # Every changed feature comes with its shape in WGS 84, for the preview map: the moved one as moved.
    drawn = shapely.geometry.shape(by_fid[("parcels", moved)]["geometry"])
    assert drawn.geom_type == "MultiPolygon" and -17.6 < drawn.centroid.x < -17.0
    assert by_fid[("parcels", deleted)]["geometry"]["type"] == "MultiPolygon"
    assert {f["geometry"]["type"] for f in preview["features"] if f["layer"].startswith("new_")} == \
        {"MultiPolygon", "Point"}
    assert preview["counts"]["conflict"] == 0 and preview["counts"]["refused"] == 0
    assert _scalar(fresh_db, "SELECT count(*) FROM parcel_version") == versions_before  # a preview writes nothing
    assert _scalar(fresh_db, "SELECT count(*) FROM borne_version") == bornes_before

    applied = _send_return(server, officer, package["id"], returned, dry_run=False)
    assert applied["counts"] == preview["counts"]
    current = {fid: _rows(fresh_db, "SELECT version, author, reason, action, land_use, nicad_status FROM parcel "
                                    "WHERE parcel_id = CAST(:id AS uuid)", id=pid)[0] for fid, pid in ids.items()}
    assert current[moved]["version"] == parcels.loc[moved, "version"] + 1
    assert current[moved]["author"] == OFFICER and current[moved]["action"] == "field:return"
    assert current[moved]["nicad_status"] == "a_reattribuer"  # a new shape loses its NICAD
    assert current[recoded]["land_use"] == recoded_use
    assert current[recoded]["reason"] == "usage vérifié sur place"
    assert current[deleted]["version"] == parcels.loc[deleted, "version"]  # only proposed for retirement
    assert _scalar(fresh_db, "SELECT count(*) FROM parcel_version") == versions_before + 3
    new_parcel = _rows(fresh_db, "SELECT nicad, author, section FROM parcel WHERE local_number = 'T1' "
                                 "AND commune_code = :c", c=BARGNY)
    assert len(new_parcel) == 1 and new_parcel[0]["nicad"] is None and new_parcel[0]["author"] == OFFICER
    assert _scalar(fresh_db, "SELECT count(*) FROM borne WHERE label = 'BT1' AND author = :a", a=OFFICER) == 1
    assert _scalar(fresh_db, """
        SELECT count(*) FROM parcel_source ps JOIN source_file f ON f.source_id = ps.source_id
        WHERE ps.parcel_id = CAST(:id AS uuid) AND f.media_type = 'image/jpeg'""", id=ids[recoded]) == 1
    journal = _rows(fresh_db, "SELECT actor, operation FROM write_audit WHERE parcel_id IN "
                              "(CAST(:a AS uuid), CAST(:b AS uuid)) ORDER BY id", a=ids[moved], b=ids[recoded])
    assert [(r["actor"], r["operation"]) for r in journal][-2:] == [(OFFICER, "parcel.update")] * 2

    # The same file again changes nothing.
    again = _send_return(server, officer, package["id"], returned, dry_run=False)
    assert again["already_applied"]
    assert _scalar(fresh_db, "SELECT count(*) FROM parcel_version") == versions_before + 3
    status, listed = _json(server, "/field/packages?status=returned", officer)
    assert status == 200 and package["id"] in {p["id"] for p in listed["packages"]}


def test_a_package_with_holders_logs_one_access_per_parcel(server, officer, fresh_db):
    before = _scalar(fresh_db, "SELECT count(*) FROM access_audit WHERE actor = :a", a=OFFICER)
    status, refused = _json(server, "/field/packages", officer, {"commune": BARGNY, "include_holders": True})
    assert status == 422, refused  # a purpose is required
    status, package = _json(server, "/field/packages", officer,
                            {"commune": BARGNY, "include_holders": True, "purpose": "levé contradictoire, quartier 2"})
    assert status == 201, package
    logged = _scalar(fresh_db, "SELECT count(*) FROM access_audit WHERE actor = :a", a=OFFICER) - before
    assert logged == package["item_count"] > 0
