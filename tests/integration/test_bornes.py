"""Bornes in the registry: versioned points, their constraints, their import from a table of bornes, their reads.

Migration 0013 (``borne_version``, the view ``borne``), :mod:`sifc.bornes.service`, the points a
table of bornes brings (one borne per corner shared by neighbouring parcels; a re-import that says
nothing new writes nothing), the OGC collection ``bornes`` and ``GET /communes/{code}/bornes``.
"""

from __future__ import annotations

import csv
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from sifc import bounds
from sifc.bornes import service
from sifc.bornes.service import BorneInput
from sifc.db import act_as
from sifc.errors import Conflict, Forbidden, InvalidInput
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from sifc.models import SURVEY_METHODS
from tests.conftest import api_key, table_fingerprint
from tests.integration.fixtures import bargny_origin, day

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
UTM = {"crs": "EPSG:32628"}


def _point(x: float, y: float) -> dict:
    return {"type": "Point", "coordinates": [x, y]}


def _insert(db, x: float, y: float, **values) -> None:
    row = {"id": uuid.uuid4(), "commune": BARGNY, "geom": f"SRID=32628;POINT({x} {y})", "precision": 0.05,
           "method": "gnss_rtk", "surveyed": None, **values}
    db.execute(text("""
        INSERT INTO borne_version (borne_id, version, commune_code, geom, precision_m, survey_method, surveyed_on,
                                   action, author)
        VALUES (:id, 1, :commune, CAST(:geom AS geometry), :precision, :method, :surveyed, 'api:create', 'tests')"""),
        row)


# --- the table and its constraints ----------------------------------------------------------------

@pytest.mark.parametrize(("values", "constraint"), [
    ({"geom": "SRID=4326;POINT(-17.2 14.7)"}, "geom"),  # another SRID
    ({"geom": "SRID=32628;LINESTRING(270000 1625000, 270010 1625000)"}, "geom"),  # not a point
    ({"geom": "SRID=32628;POINT EMPTY"}, "ck_borne_version_geom_valid"),
    ({"precision": 0.0}, "ck_borne_version_precision_bounds"),
    ({"precision": -1.0}, "ck_borne_version_precision_bounds"),
    ({"precision": 50.01}, "ck_borne_version_precision_bounds"),
    ({"method": "boussole"}, "ck_borne_version_survey_method"),
    ({"surveyed": "1849-12-31"}, "ck_borne_version_surveyed_on_bounds"),
    ({"surveyed": "2999-01-01"}, "ck_borne_version_surveyed_on_bounds"),
])
def test_the_database_refuses_what_no_borne_can_be(db, values, constraint):
    x, y = bargny_origin(db)
    with pytest.raises(DBAPIError, match=constraint), db.begin_nested():
        _insert(db, x, y, **values)


def test_the_bounds_of_the_database_and_of_the_service_agree():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "m0013", Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0013_bornes.py")
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.SURVEY_METHODS == SURVEY_METHODS
    assert float(migration.MAX_PRECISION_M) == bounds.bound("borne.precision_m").high == bounds.MAX_BORNE_PRECISION_M
    assert migration.EARLIEST == f"DATE '{bounds.ENVELOPE['earliest_document']}'"


def test_one_current_version_per_borne_and_history_is_immutable(db):
    x, y = bargny_origin(db)
    bid = uuid.uuid4()
    _insert(db, x, y, id=bid)
    with pytest.raises(IntegrityError, match="uq_borne_version_current"), db.begin_nested():
        db.execute(text("""
            INSERT INTO borne_version (borne_id, version, commune_code, geom, action, author)
            VALUES (:id, 2, :c, ST_SetSRID(ST_MakePoint(:x, :y), 32628), 'api:update', 'tests')"""),
            {"id": bid, "c": BARGNY, "x": x, "y": y})
    for statement in ("UPDATE borne_version SET precision_m = 1 WHERE borne_id = :id",
                      "DELETE FROM borne_version WHERE borne_id = :id"):
        with pytest.raises(DBAPIError), db.begin_nested():
            db.execute(text(statement), {"id": bid})
    # Closing: only in the name of the transaction's actor (migration 0012's guard).
    with pytest.raises(DBAPIError, match="actor"), db.begin_nested():
        db.execute(text("UPDATE borne_version SET valid_to = now(), closed_by = 'x' WHERE borne_id = :id"),
                   {"id": bid})
    act_as(db, "tests")
    db.execute(text("UPDATE borne_version SET valid_to = now(), closed_by = 'tests' WHERE borne_id = :id"),
               {"id": bid})
    assert db.execute(text("SELECT count(*) FROM borne WHERE borne_id = :id"), {"id": bid}).scalar() == 0


@pytest.fixture
def at_0012(settings):
    """A database of its own, migrated to 0012 (before the bornes)."""
    from sifc import provision
    from sifc.db import make_engine

    name = f"{settings.db_url.database}_m0013"
    provision.drop_database(settings.admin_url, name)
    target = settings.model_copy(update={
        "database_url": settings.db_url.set(database=name).render_as_string(hide_password=False),
        "admin_database_url": settings.admin_url.set(database=name).render_as_string(hide_password=False)})
    provision.create_database(settings.admin_url, name)
    provision.ensure_postgis(target.admin_url)
    provision.migrate(target, "0012")
    admin = make_engine(target.admin_url)
    yield target, admin
    admin.dispose()
    provision.drop_database(settings.admin_url, name)


def test_the_migration_goes_up_and_down(at_0012):
    from alembic import command

    from sifc import provision

    target, admin = at_0012

    def objects() -> tuple:
        with admin.connect() as conn:
            return conn.execute(text("""
                SELECT to_regclass('borne_version') IS NOT NULL, to_regclass('borne') IS NOT NULL,
                       to_regprocedure('borne_version_guard()') IS NOT NULL""")).one()

    assert objects() == (False, False, False)
    provision.migrate(target, "0013")
    assert objects() == (True, True, True)
    with admin.connect() as conn:
        granted = conn.execute(text("""
            SELECT has_table_privilege(:r, 'borne_version', 'INSERT'), has_table_privilege(:r, 'borne_version', 'DELETE'),
                   has_column_privilege(:r, 'borne_version', 'valid_to', 'UPDATE'),
                   has_column_privilege(:r, 'borne_version', 'geom', 'UPDATE'),
                   has_table_privilege(:r, 'borne', 'SELECT')"""), {"r": target.db_url.username}).one()
    assert tuple(granted) == (True, False, True, False, True)
    command.downgrade(provision.alembic_config(target), "0012")
    assert objects() == (False, False, False)
    provision.migrate(target, "head")
    assert objects() == (True, True, True)


# --- the service ------------------------------------------------------------------------------------

def test_create_update_retire_write_versions_and_the_journal(db):
    x, y = bargny_origin(db)
    act_as(db, "agent")
    bid = service.create(db, data=BorneInput(geometry=_point(x, y), input_crs=32628, values={
        "label": "B12", "precision_m": 0.02, "survey_method": "gnss_rtk", "surveyed_on": day(3)},
        reason="levé de contrôle"), author="agent")
    version = service.update(db, borne_id=bid, data=BorneInput(values={"precision_m": 0.5}, reason="recalcul"),
                             author="agent", expected_version=1)
    assert version == 2
    # Moved by reprojection noise only: no change, refused as such.
    with pytest.raises(InvalidInput) as nothing, db.begin_nested():
        service.update(db, borne_id=bid, data=BorneInput(geometry=_point(x + 0.001, y), input_crs=32628,
                                                         reason="bruit"), author="agent")
    assert nothing.value.key == "borne.no_change"
    with pytest.raises(InvalidInput) as elsewhere, db.begin_nested():  # the point is not in Sandiara
        service.update(db, borne_id=bid, data=BorneInput(values={"commune_code": SANDIARA}, reason="x"), author="agent")
    assert elsewhere.value.key == "borne.outside_commune"
    service.retire(db, borne_id=bid, author="agent", reason="détruite", expected_version=2)
    rows = db.execute(text("""
        SELECT version, precision_m, survey_method, label, author, reason, closed_by, close_reason, valid_to IS NULL
        FROM borne_version WHERE borne_id = :id ORDER BY version"""), {"id": bid}).all()
    assert [tuple(r) for r in rows] == [
        (1, 0.02, "gnss_rtk", "B12", "agent", "levé de contrôle", "agent", "remplacée par la version 2", False),
        (2, 0.5, "gnss_rtk", "B12", "agent", "recalcul", "agent", "retirée : détruite", False)]
    operations = db.execute(text("""
        SELECT operation, commune_code FROM write_audit WHERE object_kind = 'borne' AND object_id = :id ORDER BY id"""),
        {"id": bid}).all()
    assert [tuple(o) for o in operations] == [("borne.create", BARGNY), ("borne.update", BARGNY),
                                              ("borne.retire", BARGNY)]


@pytest.mark.parametrize(("geometry", "values", "key"), [
    (None, {"precision_m": 0.1}, "borne.geometry_required"),
    ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, {"precision_m": 0.1}, "borne.not_point"),
    ("POINT", {}, "borne.precision_required"),
    ("POINT", {"precision_m": 0}, "bounds.out_of_range"),
    ("POINT", {"precision_m": 51}, "bounds.out_of_range"),
    ("POINT", {"precision_m": 0.1, "survey_method": "boussole"}, "borne.bad_survey_method"),
    ("POINT", {"precision_m": 0.1, "surveyed_on": "1800-01-01"}, "bounds.out_of_range"),
    ("POINT", {"precision_m": 0.1, "commune_code": SANDIARA}, "borne.outside_commune"),
    ("FAR", {"precision_m": 0.1}, "borne.outside_senegal"),
])
def test_refusals_change_nothing(db, geometry, values, key):
    x, y = bargny_origin(db)
    named = {"POINT": _point(x, y), "FAR": _point(2.35, 48.85)}
    point = named[geometry] if isinstance(geometry, str) else geometry
    crs = 4326 if geometry == "FAR" else 32628
    before = table_fingerprint(db, "borne_version"), table_fingerprint(db, "write_audit")
    with pytest.raises(InvalidInput) as refused, db.begin_nested():
        service.create(db, data=BorneInput(geometry=point, input_crs=crs, values=values), author="agent")
    assert refused.value.key == key
    assert refused.value.message("fr") and refused.value.message("en") != refused.value.message("fr")
    assert (table_fingerprint(db, "borne_version"), table_fingerprint(db, "write_audit")) == before


def test_a_second_borne_within_a_centimetre_is_a_conflict_and_scope_is_checked(db):
    x, y = bargny_origin(db)
    from sifc.auth.principal import Principal, ScopeEntry

    act_as(db, "agent")
    first = service.create(db, data=BorneInput(geometry=_point(x, y), input_crs=32628, values={"precision_m": 0.1}),
                           author="agent")
    with pytest.raises(Conflict) as twice, db.begin_nested():
        service.create(db, data=BorneInput(geometry=_point(x + 0.005, y), input_crs=32628,
                                           values={"precision_m": 0.1}), author="agent")
    assert twice.value.key == "borne.duplicate" and first in twice.value.message("fr")
    sandiara = Principal(kind="user", role="agent_foncier", name="agent.sandiara",
                         scope=(ScopeEntry("commune", SANDIARA),))
    with pytest.raises(Forbidden), db.begin_nested():
        service.create(db, data=BorneInput(geometry=_point(x + 5, y), input_crs=32628, values={"precision_m": 0.1}),
                       author="agent.sandiara", by=sandiara)


# --- a table of bornes: its points stored ------------------------------------------------------------

def _table(path, rows, header=("parcelle", "ordre", "x", "y", "precision", "methode", "date")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _two_neighbours(x: float, y: float, precision: str = "0,03", method: str = "GNSS RTK") -> list[tuple]:
    """Two 20 m squares side by side: they share two corners (6 distinct bornes, 8 lines)."""
    left = [(x, y), (x + 20, y), (x + 20, y + 20), (x, y + 20)]
    right = [(x + 20.004, y), (x + 40, y), (x + 40, y + 20), (x + 20, y + 20.003)]  # shared corners, 4 and 3 mm off
    return ([("A", i + 1, f"{bx:.3f}", f"{by:.3f}", precision, method, day(5)) for i, (bx, by) in enumerate(left)]
            + [("B", i + 1, f"{bx:.3f}", f"{by:.3f}", precision, method, day(5)) for i, (bx, by) in enumerate(right)])


def _bornes(db) -> list:
    return db.execute(text("""
        SELECT borne_id, version, label, source_id, precision_m, survey_method, surveyed_on, commune_code, author,
               batch_id, ST_X(geom) AS x, ST_Y(geom) AS y
        FROM borne_version ORDER BY valid_from, source_id""")).all()


def test_a_table_of_bornes_stores_one_borne_per_corner(db, tmp_path):
    x, y = bargny_origin(db)
    path = _table(tmp_path / "leve.csv", _two_neighbours(x, y))
    report = import_parcels(db, path, ParcelImportOptions(crs="EPSG:32628", author="geometre"))
    assert (report.accepted, report.rejected) == (2, 0)
    assert report.bornes == {"read": 8, "distinct": 6, "new": 6, "changed": 0, "unchanged": 0, "outside": 0}
    stored = _bornes(db)
    assert len(stored) == 6
    assert {(b.version, b.precision_m, b.survey_method, b.commune_code, b.author) for b in stored} == {
        (1, 0.03, "gnss_rtk", BARGNY, "geometre")}
    assert {str(b.batch_id) for b in stored} == {report.batch_id}
    kept = db.execute(text("SELECT counts, report FROM import_batch WHERE id = CAST(:b AS uuid)"),
                      {"b": report.batch_id}).one()
    assert kept.counts["bornes"] == kept.report["bornes"] == report.bornes
    assert {b.source_id for b in stored} == {"A/1", "A/2", "A/3", "A/4", "B/2", "B/3"}  # B/1, B/4: A's corners
    shared = next(b for b in stored if b.source_id == "A/2")
    assert (shared.x, shared.y) == pytest.approx((x + 20, y), abs=1e-3)  # the first line names it


def test_a_reimport_saying_the_same_writes_no_version_and_a_new_precision_does(db, tmp_path):
    x, y = bargny_origin(db)
    first = import_parcels(db, _table(tmp_path / "leve.csv", _two_neighbours(x, y)),
                           ParcelImportOptions(crs="EPSG:32628", author="geometre"))
    assert first.bornes is not None and first.bornes["new"] == 6
    before = table_fingerprint(db, "borne_version")
    # The same points, lines in another order and without the optional columns: nothing new to say.
    rows = [r[:4] for r in reversed(_two_neighbours(x, y))]
    again = import_parcels(db, _table(tmp_path / "encore.csv", rows, header=("parcelle", "ordre", "x", "y")),
                           ParcelImportOptions(crs="EPSG:32628", author="geometre"))
    assert again.bornes == {"read": 8, "distinct": 6, "new": 0, "changed": 0, "unchanged": 6, "outside": 0}
    assert table_fingerprint(db, "borne_version") == before
    # A new survey of the same corners with a better precision: a new version of each, nothing else.
    better = import_parcels(db, _table(tmp_path / "releve.csv", _two_neighbours(x, y, "0.01", "station totale")),
                            ParcelImportOptions(crs="EPSG:32628", author="geometre"))
    assert better.bornes is not None and (better.bornes["changed"], better.bornes["new"]) == (6, 0)
    current = db.execute(text("SELECT version, precision_m, survey_method, label FROM borne")).all()
    assert {tuple(c[:3]) for c in current} == {(2, 0.01, "station_totale")} and len(current) == 6
    assert db.execute(text("SELECT count(*) FROM borne_version")).scalar() == 12


def test_a_dry_run_stores_no_borne_and_bad_optional_values_refuse_the_file(db, tmp_path):
    x, y = bargny_origin(db)
    report = import_parcels(db, _table(tmp_path / "essai.csv", _two_neighbours(x, y)),
                            ParcelImportOptions(crs="EPSG:32628", author="geometre", dry_run=True))
    assert report.bornes is not None and report.bornes["new"] == 6
    assert db.execute(text("SELECT count(*) FROM borne_version")).scalar() == 0
    for column, value, key in ((4, "75", "import.bornes_bad_precision"), (5, "boussole", "import.bornes_bad_method"),
                               (6, "31/02/2024", "import.bornes_bad_date")):
        rows = [list(r) for r in _two_neighbours(x, y)]
        rows[2][column] = value
        from sifc.errors import ImportRejected

        with pytest.raises(ImportRejected) as refused, db.begin_nested():
            import_parcels(db, _table(tmp_path / f"faux{column}.csv", rows),
                           ParcelImportOptions(crs="EPSG:32628", author="geometre"))
        assert refused.value.key == key and refused.value.params["line"] == 4
    assert db.execute(text("SELECT count(*) FROM borne_version")).scalar() == 0


# --- reads: REST and OGC, public, without authors ------------------------------------------------------

def test_bornes_are_served_without_their_authors(client, db, tmp_path):
    x, y = bargny_origin(db)
    officer = {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent bargny")}
    created = client.post("/bornes", params=UTM, headers=officer, json={
        "type": "Feature", "geometry": _point(x - 50, y - 50),
        "properties": {"label": "B7", "precision_m": 0.04, "survey_method": "gnss", "surveyed_on": day(2),
                       "source": "plan de M. Zqxdiop", "reason": "levé de Awa Zqxdiop"}})
    assert created.status_code == 201, created.text
    bid = created.json()["id"]
    assert created.headers["Location"] == f"/bornes/{bid}" and created.headers["ETag"]
    page = client.get(f"/communes/{BARGNY}/bornes")
    assert page.status_code == 200 and page.json()["numberMatched"] == 1
    items = client.get("/ogc/collections/bornes/items", params={"limit": 5})
    assert items.status_code == 200, items.text
    assert [f["id"] for f in items.json()["features"]] == [bid]
    one = client.get(f"/ogc/collections/bornes/items/{bid}")
    assert one.status_code == 200 and one.json()["properties"]["label"] == "B7"
    assert client.get("/ogc/collections/bornes/items", params={"survey_method": "gnss"}).json()["features"]
    assert client.get("/ogc/collections/bornes/items", params={"filter": "precision_m > 1"}).json()["features"] == []
    assert client.get("/ogc/collections/bornes/items", params={"properties": "author"}).status_code == 400
    for response in (created, page, items, one, client.get(f"/bornes/{bid}")):
        assert "Zqxdiop" not in response.text and "agent bargny" not in response.text
        assert "author" not in response.text
    assert "bornes" in {c["id"] for c in client.get("/ogc/collections").json()["collections"]}
    # A change needs the ETag and a reason; an anonymous write is refused; a refusal writes nothing.
    stale = client.patch(f"/bornes/{bid}", headers={**officer, "If-Match": '"9-abc"'},
                         json={"type": "Feature", "geometry": None, "properties": {"label": "B8", "reason": "x"}})
    assert stale.status_code == 412
    bad = client.patch(f"/bornes/{bid}", headers={**officer, "If-Match": created.headers["ETag"]},
                       json={"type": "Feature", "geometry": None, "properties": {"precision_m": 80, "reason": "x"}})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert client.post("/bornes", json=created.json()).status_code == 401
    moved = client.patch(f"/bornes/{bid}", params=UTM, headers={**officer, "If-Match": created.headers["ETag"]},
                         json={"type": "Feature", "geometry": _point(x - 49, y - 50), "properties": {"reason": "x"}})
    assert moved.status_code == 200, moved.text
    assert moved.json()["properties"]["version"] == 2
    assert moved.json()["geometry"]["coordinates"] == pytest.approx([x - 49, y - 50], abs=0.01)
    retired = client.post(f"/bornes/{bid}/retire", headers={**officer, "If-Match": moved.headers["ETag"]},
                          json={"reason": "détruite"})
    assert retired.status_code == 204
    gone = client.get(f"/bornes/{bid}", headers={"Accept-Language": "en"})
    assert gone.status_code == 410 and "retired" in gone.json()["detail"]


def test_a_tile_holds_the_bornes_in_it_with_their_public_fields(client, db):
    import mapbox_vector_tile
    import morecantile

    x, y = bargny_origin(db)
    officer = {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent bargny")}
    made = client.post("/bornes", params=UTM, headers=officer, json={
        "type": "Feature", "geometry": _point(x, y), "properties": {"label": "B3", "precision_m": 0.02}})
    assert made.status_code == 201, made.text
    lon, lat = client.get(
        f"/bornes/{made.json()['id']}").json()["geometry"]["coordinates"]
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 17)
    response = client.get(f"/tiles/bornes/{tile.z}/{tile.x}/{tile.y}.mvt")
    assert response.status_code == 200, response.text
    features = mapbox_vector_tile.decode(response.content)["bornes"]["features"]
    assert [f["properties"]["label"] for f in features] == ["B3"]
    assert set(features[0]["properties"]) <= {"id", "version", "code", "label", "commune_code", "precision_m",
                                              "survey_method", "surveyed_on", "valid_from"}
    neighbour = client.get(f"/tiles/bornes/{tile.z}/{tile.x + 1}/{tile.y}.mvt")
    assert neighbour.status_code == 204 or not neighbour.content
    assert client.get(f"/tiles/bornes/14/{tile.x // 8}/{tile.y // 8}.mvt").status_code == 204  # below its minzoom
    assert client.get("/tiles/bornes/tilejson.json").json()["minzoom"] == 15


def test_the_demo_has_a_borne_at_each_corner_of_its_parcels(db):
    from sifc.demo import load_demo

    assert load_demo(db) is not None
    parcels, bornes, near = db.execute(text("""
        SELECT (SELECT count(*) FROM parcel), (SELECT count(*) FROM borne),
               (SELECT count(*) FROM borne a JOIN borne b ON a.borne_id < b.borne_id AND ST_DWithin(a.geom, b.geom, 0.01))
    """)).one()
    assert parcels < bornes < 4 * parcels  # neighbours share their corners: each is one borne
    assert near == 0
    assert db.execute(text("SELECT count(DISTINCT batch_id) FROM borne")).scalar() == 1
