"""The registry's national invariants, through every writer, on a real PostGIS.

The parcel registry (``parcel_version``, its view ``parcel``) is one for the country; whatever writes
into it, and however it is written (a surveyor's file, the API, a mutation, a statement), these hold:

- one current NICAD nationally: a NICAD current in one commune is refused in any other, of another pole
  too, by ``sifc import parcels`` (``nicad_taken``; two features of one file sharing one: both
  ``nicad_conflict``), by the API's create and update, by a split or a merge, and by the database itself
  (the unique index on the current versions' NICADs); a NICAD that only a closed version holds is reused
  exactly as each writer's rule says (the table below);
- an as-of read across a change of commune finds the parcel in exactly one commune at every instant of
  its life, the old one before the change and the new one from it, through ``GET /parcels/{id}?at=`` and
  ``GET /communes/{code}/parcels?at=``;
- a second file into a commune that already holds a thousand parcels gives each feature the outcome the
  import's docstring states, leaves the registry's counts exact, one current version per parcel, and the
  first load's parcels untouched where the file does not change them.

The first and third run in the test's transaction (rolled back); the as-of reads need versions written by
transactions of their own (``now()`` is the transaction's instant), so they commit, in a database of the
module's own (``fresh_db``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from pyogrio.raw import write as write_raw
from shapely.geometry import box, mapping
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from api.app import create_app
from api.deps import get_reader, get_session
from sifc import mutations
from sifc.db import SessionReader, make_engine, transaction
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, day, square, write

BARGNY = "SN0104-bargny"  # pole Dakar
SANDIARA = "SN1301-sandiara"  # pole Thiès
DIAMNIADIO = "SN0104-diamniadio"  # Bargny's neighbour along about 5 km
CRS = {"crs": "EPSG:32628"}
TAKEN = "0104040109001"  # current in Bargny in every test of one current NICAD


def _options(**extra: Any) -> ParcelImportOptions:
    return ParcelImportOptions(author="tests-national", **extra)


def _inside(session, commune: str, inset: float = 1500) -> tuple[float, float]:
    """A point (UTM 28N) of ``commune`` at least ``inset`` metres from its boundary."""
    x, y = session.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Buffer(geom, :inset)) p FROM commune
                                      WHERE code = :c) t"""), {"c": commune, "inset": -inset}).one()
    return float(x), float(y)


def _feature(geom, **properties) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": properties}


def _problem(response, status: int, key: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == f"urn:sifc:problem:{key}", response.json()


def _holders(db, nicad: str) -> list[tuple[str, str, bool]]:
    """Every version holding ``nicad``: (parcel, commune, current), in the order written."""
    return [(str(r[0]), r[1], r[2]) for r in db.execute(text("""
        SELECT parcel_id, commune_code, valid_to IS NULL FROM parcel_version WHERE nicad = :n
        ORDER BY valid_from, parcel_id, version"""), {"n": nicad}).all()]


def _registry(db) -> tuple[int, int, str]:
    """Versions, current parcels and an md5 of every version's content: what a refused write must leave."""
    row = db.execute(text("""
        SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL),
               md5(coalesce(string_agg(concat_ws('|', parcel_id, version, nicad, commune_code, valid_to IS NULL,
                                                 encode(ST_AsEWKB(geom), 'hex')), ';' ORDER BY parcel_id, version), ''))
        FROM parcel_version""")).one()
    return int(row[0]), int(row[1]), str(row[2])


# --- one current NICAD nationally ---------------------------------------------------------------------------

@pytest.fixture
def client(settings, db) -> TestClient:
    """The app over the test's transaction, each request in a savepoint rolled back if it fails.

    As the app's own session does per request (api.deps.get_session): a refused write leaves nothing,
    whatever it had written before it was refused.
    """
    app = create_app(settings)

    def _session() -> Iterator[Any]:
        savepoint = db.begin_nested()
        try:
            yield db
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_reader] = lambda: SessionReader(db)
    return TestClient(app)


@pytest.fixture
def taken(db, tmp_path) -> dict[str, Any]:
    """A parcel of Bargny holding ``TAKEN``, written by a file, and a free spot of Sandiara (another pole)."""
    x, y = bargny_origin(db)
    path = write(tmp_path, [{"NICAD": TAKEN, "USAGE": "habitation", "geometry": square(x, y)}], name="bargny.gpkg")
    report = import_parcels(db, path, _options(commune=BARGNY))
    assert report.changes == {"new": 1}, report
    parcel = db.execute(text("SELECT parcel_id FROM parcel WHERE nicad = :n"), {"n": TAKEN}).scalar_one()
    return {"parcel": str(parcel), "sandiara": _inside(db, SANDIARA), "bargny": (x, y)}


def test_a_file_of_another_commune_and_pole_cannot_take_a_current_nicad(db, taken, tmp_path):
    x, y = taken["sandiara"]
    before = _registry(db)
    alone = write(tmp_path, [{"NICAD": TAKEN, "USAGE": "habitation", "geometry": square(x, y)}], name="seul.gpkg")
    report = import_parcels(db, alone, _options(commune=SANDIARA))
    assert (report.accepted, report.rejected, report.rejected_by_reason) == (0, 1, {"nicad_taken": 1})
    assert report.issues[0]["reasons"] == ["nicad_taken"]
    assert _registry(db) == before  # nothing written, not even a batch's parcel

    # Beside other parcels of the file: only that feature is refused, the others are written.
    mixed = write(tmp_path, [{"NICAD": TAKEN, "USAGE": "habitation", "geometry": square(x, y)},
                             {"NICAD": "1301010109002", "USAGE": "habitation", "geometry": square(x + 30, y)}],
                  name="mixte.gpkg")
    report = import_parcels(db, mixed, _options())  # no --commune: located feature by feature
    assert (report.accepted, report.rejected_by_reason, report.communes) == (1, {"nicad_taken": 1}, {SANDIARA: 1})
    assert _holders(db, TAKEN) == [(taken["parcel"], BARGNY, True)]
    assert _holders(db, "1301010109002")[0][1:] == (SANDIARA, True)


def test_two_features_of_one_file_sharing_a_nicad_are_both_refused_even_in_two_poles(db, tmp_path):
    bx, by = bargny_origin(db)
    sx, sy = _inside(db, SANDIARA)
    before = _registry(db)
    path = write(tmp_path, [{"NICAD": "0104040109003", "USAGE": "habitation", "geometry": square(bx, by)},
                            {"NICAD": "0104040109003", "USAGE": "habitation", "geometry": square(sx, sy)},
                            {"NICAD": "0104040109004", "USAGE": "habitation", "geometry": square(bx + 30, by)}],
                 name="deux_poles.gpkg")
    report = import_parcels(db, path, _options())
    assert (report.accepted, report.rejected_by_reason) == (1, {"nicad_conflict": 2})
    assert sorted(i["feature"] for i in report.issues if i["reasons"] == ["nicad_conflict"]) == [0, 1]
    assert _holders(db, "0104040109003") == []
    assert _registry(db)[0] == before[0] + 1


def test_the_api_neither_creates_nor_updates_a_parcel_onto_a_current_nicad(db, client, admin_headers, taken):
    x, y = taken["sandiara"]
    before = _registry(db)
    refused = client.post("/parcels", params=CRS, headers=admin_headers,
                          json=_feature(square(x, y), nicad=TAKEN, reason="levé", land_use="habitation"))
    _problem(refused, 409, "parcel.nicad_taken")
    # Spaces between the groups, as survey tables write them, are the same NICAD.
    spaced = client.post("/parcels", params=CRS, headers=admin_headers,
                         json=_feature(square(x, y), nicad=" ".join([TAKEN[:8], TAKEN[8:]]), reason="levé"))
    _problem(spaced, 409, "parcel.nicad_taken")
    assert _registry(db) == before

    own = client.post("/parcels", params=CRS, headers=admin_headers,
                      json=_feature(square(x, y), nicad="1301010109005", reason="levé", land_use="habitation"))
    assert own.status_code == 201, own.text
    written = _registry(db)
    for change in ({"nicad": TAKEN}, {"nicad": TAKEN, "land_use": "commerce"}):
        patch = client.patch(f"/parcels/{own.json()['id']}", params=CRS,
                             headers={**admin_headers, "If-Match": own.headers["ETag"]},
                             json={"type": "Feature", "geometry": None, "properties": {**change, "reason": "erreur"}})
        _problem(patch, 409, "parcel.nicad_taken")
    # A new shape with the NICAD: refused the same (the shape alone would have left it "à réattribuer").
    moved = client.patch(f"/parcels/{own.json()['id']}", params=CRS,
                         headers={**admin_headers, "If-Match": own.headers["ETag"]},
                         json=_feature(box(x, y, x + 20, y + 22), nicad=TAKEN, reason="levé"))
    _problem(moved, 409, "parcel.nicad_taken")
    assert _registry(db) == written
    assert _holders(db, TAKEN) == [(taken["parcel"], BARGNY, True)]


def _source(client, headers, commune: str) -> str:
    response = client.post("/sources", headers=headers, json={
        "kind": "plan", "document_date": day(5), "commune_code": commune, "reference": "plan national"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_neither_a_split_nor_a_merge_gives_a_child_a_nicad_current_elsewhere(db, client, admin_headers, taken):
    x, y = taken["sandiara"]
    parent = client.post("/parcels", params=CRS, headers=admin_headers,
                         json=_feature(box(x, y, x + 40, y + 20), reason="levé", land_use="habitation"))
    neighbour = client.post("/parcels", params=CRS, headers=admin_headers,
                            json=_feature(box(x + 40, y, x + 60, y + 20), reason="levé", land_use="habitation"))
    assert parent.status_code == neighbour.status_code == 201
    body = {"occurred_on": day(1), "source_ids": [_source(client, admin_headers, SANDIARA)], "reason": "morcellement"}
    before = _registry(db)
    split = client.post(f"/parcels/{parent.json()['id']}/split", params=CRS,
                        headers={**admin_headers, "If-Match": parent.headers["ETag"]},
                        json={**body, "children": [_feature(box(x, y, x + 20, y + 20), nicad=TAKEN),
                                                   _feature(box(x + 20, y, x + 40, y + 20))]})
    _problem(split, 409, "mutation.nicad_used")
    merge = client.post("/parcels/merge",
                        headers={**admin_headers, "If-Match": f"{parent.headers['ETag']}, {neighbour.headers['ETag']}"},
                        json={**body, "parcel_ids": [parent.json()["id"], neighbour.json()["id"]],
                              "properties": {"nicad": TAKEN}})
    _problem(merge, 409, "mutation.nicad_used")
    assert _registry(db) == before
    assert _holders(db, TAKEN) == [(taken["parcel"], BARGNY, True)]


def test_the_database_refuses_a_second_current_version_of_a_nicad_to_the_service_role(db, settings, taken):
    x, y = taken["sandiara"]
    assert db.execute(text("SELECT current_user")).scalar() == settings.db_url.username
    insert = text("""
        INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, geom, action, author)
        VALUES (gen_random_uuid(), 1, :nicad, 'attribue', :commune,
                ST_Multi(ST_MakeEnvelope(:x, :y, :x + 20, :y + 20, 32628)), 'api:create', 'tests')""")
    with pytest.raises(IntegrityError, match="uq_parcel_version_current_nicad"), db.begin_nested():
        db.execute(insert, {"nicad": TAKEN, "commune": SANDIARA, "x": x, "y": y})
    # Two rows of one statement, in two poles' communes, neither current before: refused all the same.
    with pytest.raises(IntegrityError, match="uq_parcel_version_current_nicad"), db.begin_nested():
        db.execute(text("""
            INSERT INTO parcel_version (parcel_id, version, nicad, nicad_status, commune_code, geom, action, author)
            SELECT gen_random_uuid(), 1, '0104040109006', 'attribue', c, ST_Multi(ST_MakeEnvelope(x, y, x + 20, y + 20,
                   32628)), 'api:create', 'tests'
            FROM (VALUES (:c1, :x1, :y1), (:c2, :x2, :y2)) v(c, x, y)"""),
            {"c1": SANDIARA, "x1": x + 100, "y1": y, "c2": BARGNY, "x2": taken["bargny"][0] + 100,
             "y2": taken["bargny"][1]})
    assert _holders(db, TAKEN) == [(taken["parcel"], BARGNY, True)]


def test_whether_a_nicad_was_ever_held_is_read_from_the_indexes_not_the_whole_history(db, taken):
    """A split's or a merge's child NICAD is looked up among current and closed versions alike: on the two
    partial indexes (current NICADs, closed ones), never by reading every version of the registry, which at
    ten million parcels took about a second per child. One condition over all versions (``nicad = :n`` alone) matches
    no index's predicate and can only be a sequential scan, whatever it costs; on a table of a test's size the
    planner may prefer another partial index, so the test asks only that sequential scans, priced out, are
    not needed."""
    db.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.execute(text("EXPLAIN " + mutations.EVER_HELD), {"n": TAKEN}).scalars())
    assert "Seq Scan" not in plan, plan
    whole = "\n".join(db.execute(text("EXPLAIN SELECT 1 FROM parcel_version WHERE nicad = :n"), {"n": TAKEN}).scalars())
    assert "Seq Scan" in whole, whole  # what the test tells apart
    assert db.execute(text(mutations.EVER_HELD), {"n": TAKEN}).scalar() is True
    assert db.execute(text(mutations.EVER_HELD), {"n": "0104040109999"}).scalar() is False


# What becomes of a NICAD that only closed versions hold (the parcel reshaped or retired), writer by writer.
# The domain notes: "the old one stays on the old version", "a split retires the parent's NICAD, a merge
# retires all of them", "one parcel, one active NICAD". The mutations refuse any NICAD a version ever held
# (sifc.mutations._child_nicad); the API's create and update and the import look at current versions only
# (sifc.parcels.service._check_nicad, the import's nicad_taken), so they give it again. Stated here as the
# code does it today, so that a writer that changes its rule changes this table with it.
REUSE_OF_A_CLOSED_NICAD = {"split": "refused", "api_create": "accepted", "import": "accepted",
                           "api_update_same_parcel": "accepted"}


def test_a_nicad_held_only_by_closed_versions_is_reused_as_each_writer_says(db, client, admin_headers, taken, tmp_path):
    x, y = taken["bargny"]
    sx, sy = taken["sandiara"]
    headers = {**admin_headers, "If-Match": client.get(f"/parcels/{taken['parcel']}").headers["ETag"]}
    # A new shape: the old NICAD stays on the old version, the new one waits for the cadastre's number.
    reshaped = client.patch(f"/parcels/{taken['parcel']}", params=CRS, headers=headers,
                            json=_feature(box(x, y, x + 20, y + 23), reason="nouveau levé"))
    assert reshaped.status_code == 200, reshaped.text
    assert (reshaped.json()["properties"]["nicad"], reshaped.json()["properties"]["nicad_status"]) == (
        None, "a_reattribuer")
    assert _holders(db, TAKEN) == [(taken["parcel"], BARGNY, False)]
    assert client.get(f"/parcels/by-nicad/{TAKEN}").status_code == 404

    outcomes = {}
    # A split of another parcel whose child asks for it.
    parent = client.post("/parcels", params=CRS, headers=admin_headers,
                         json=_feature(box(sx, sy, sx + 40, sy + 20), reason="levé"))
    split = client.post(f"/parcels/{parent.json()['id']}/split", params=CRS,
                        headers={**admin_headers, "If-Match": parent.headers["ETag"]},
                        json={"occurred_on": day(1), "source_ids": [_source(client, admin_headers, SANDIARA)],
                              "reason": "morcellement", "children": [_feature(box(sx, sy, sx + 20, sy + 20), nicad=TAKEN),
                                                                     _feature(box(sx + 20, sy, sx + 40, sy + 20))]})
    outcomes["split"] = ("refused" if split.json().get("type") == "urn:sifc:problem:mutation.nicad_used"
                         else f"{split.status_code} {split.text[:200]}")
    # A file: in a savepoint, so that the API's turn below meets the same registry.
    with db.begin_nested() as attempt:
        path = write(tmp_path, [{"NICAD": TAKEN, "USAGE": "habitation", "geometry": square(sx, sy + 100)}],
                     name="reprise.gpkg")
        report = import_parcels(db, path, _options(commune=SANDIARA))
        outcomes["import"] = "accepted" if report.accepted == 1 else f"refused {report.rejected_by_reason}"
        attempt.rollback()
    with db.begin_nested() as attempt:
        created = client.post("/parcels", params=CRS, headers=admin_headers,
                              json=_feature(square(sx, sy + 200), nicad=TAKEN, reason="levé"))
        outcomes["api_create"] = "accepted" if created.status_code == 201 else f"refused {created.json()['type']}"
        attempt.rollback()
    given_back = client.patch(f"/parcels/{taken['parcel']}", params=CRS,
                              headers={**admin_headers, "If-Match": reshaped.headers["ETag"]},
                              json={"type": "Feature", "geometry": None,
                                    "properties": {"nicad": TAKEN, "reason": "numéro du cadastre"}})
    outcomes["api_update_same_parcel"] = "accepted" if given_back.status_code == 200 else "refused"
    assert outcomes == REUSE_OF_A_CLOSED_NICAD
    # Whoever reused it, it is current once, and its history keeps the closed holder.
    assert [h[2] for h in _holders(db, TAKEN)] == [False, True]


# --- an as-of read across a change of commune ---------------------------------------------------------------

@pytest.fixture(scope="module")
def committed(fresh_db) -> Iterator[dict[str, Any]]:
    """The module's own database: its service engine, an administrator's key, and an app over it."""
    engine = make_engine(fresh_db.db_url)
    owner = make_engine(fresh_db.admin_url)
    try:
        with transaction(owner) as session:
            key = api_key(session)
        with TestClient(create_app(fresh_db)) as client:
            yield {"engine": engine, "client": client, "headers": {"X-API-Key": key}}
    finally:
        engine.dispose()
        owner.dispose()


def _across(session, here: str, there: str, offset: float) -> tuple[Any, Any]:
    """Two 20 m squares on either side of the boundary of ``here`` and ``there``, centres ``offset`` m from it.

    At the middle of the longest piece of their common boundary, along its normal: each lies mostly in
    its own commune, and they overlap (a re-survey that moved the parcel across the line).
    """
    px, py, ax, ay, bx, by_ = session.execute(text("""
        WITH line AS (
            SELECT (ST_Dump(ST_LineMerge(ST_CollectionExtract(ST_Intersection(ST_Boundary(a.geom),
                                                                              ST_Boundary(b.geom)), 2)))).geom AS g
            FROM commune a, commune b WHERE a.code = :a AND b.code = :b),
        longest AS (SELECT g FROM line WHERE GeometryType(g) = 'LINESTRING' ORDER BY ST_Length(g) DESC LIMIT 1)
        SELECT ST_X(p), ST_Y(p), ST_X(q), ST_Y(q), ST_X(r), ST_Y(r)
        FROM longest, LATERAL (SELECT ST_LineInterpolatePoint(g, 0.5) p,
                                      ST_LineInterpolatePoint(g, 0.5 - 10 / ST_Length(g)) q,
                                      ST_LineInterpolatePoint(g, 0.5 + 10 / ST_Length(g)) r) t"""),
        {"a": here, "b": there}).one()
    length = math.hypot(bx - ax, by_ - ay)
    nx, ny = -(by_ - ay) / length, (bx - ax) / length
    probe = session.execute(text("""
        SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(:x, :y), 32628)) FROM commune WHERE code = :c"""),
        {"x": px + 30 * nx, "y": py + 30 * ny, "c": here}).scalar()
    if not probe:
        nx, ny = -nx, -ny

    def centred(d: float):
        return square(px + d * nx - 10, py + d * ny - 10)

    return centred(offset), centred(-offset)


def _listed(client, commune: str, at: datetime) -> set[str]:
    page = client.get(f"/communes/{commune}/parcels", params={"at": at.isoformat(), "limit": 1000})
    assert page.status_code == 200, page.text
    return {f["id"] for f in page.json()["features"]}


def _lifetime(session, parcel: str) -> list[tuple[int, str, datetime, datetime | None]]:
    return [tuple(r) for r in session.execute(text("""
        SELECT version, commune_code, valid_from, valid_to FROM parcel_version WHERE parcel_id = :p
        ORDER BY version"""), {"p": parcel}).all()]


def _check_as_of(client, parcel: str, lifetime: list[tuple[int, str, datetime, datetime | None]]) -> None:
    """At every instant that matters (each change, a microsecond either side, between): one commune, the right one."""
    micro = timedelta(microseconds=1)
    born = lifetime[0][2]
    communes = {v[1] for v in lifetime}
    before = born - micro
    assert all(parcel not in _listed(client, c, before) for c in communes)
    _problem(client.get(f"/parcels/{parcel}", params={"at": before.isoformat()}), 404, "parcel.not_at_date")
    instants = [born, born + micro]
    for _, _, start, end in lifetime:
        instants += [start, start + micro] + ([start + (end - start) / 2, end - micro, end] if end else [])
    instants.append(datetime.now(born.tzinfo) + timedelta(seconds=5))
    for at in sorted(set(instants)):
        held = [v for v in lifetime if v[2] <= at and (v[3] is None or v[3] > at)]
        assert len(held) == 1, (at, lifetime)
        version, commune = held[0][0], held[0][1]
        found = {c for c in communes if parcel in _listed(client, c, at)}
        assert found == {commune}, (at, found, lifetime)  # never both, never neither
        read = client.get(f"/parcels/{parcel}", params={"at": at.isoformat()})
        assert read.status_code == 200, read.text
        assert (read.json()["properties"]["version"], read.json()["properties"]["commune_code"]) == (version, commune)


def test_a_parcel_moved_into_another_commune_is_read_in_one_commune_at_every_instant(committed, tmp_path):
    engine, client, headers = committed["engine"], committed["client"], committed["headers"]
    with transaction(engine) as session:
        bargny_side, diamniadio_side = _across(session, BARGNY, DIAMNIADIO, 7)
        far_bargny, far_diamniadio = _across(session, BARGNY, DIAMNIADIO, 60)
    # A file of Bargny, committed; then a re-survey moves the parcel across the line (matched by its NICAD).
    first = write(tmp_path, [{"NICAD": "0104040109101", "USAGE": "habitation", "geometry": bargny_side},
                             {"NICAD": "0104040109102", "USAGE": "habitation", "geometry": far_bargny}],
                  name="levé_bargny.gpkg")
    with transaction(engine) as session:
        assert import_parcels(session, first, _options()).communes == {BARGNY: 2}
    with transaction(engine) as session:
        by_file, by_api = (str(session.execute(text("SELECT parcel_id FROM parcel WHERE nicad = :n"), {"n": n})
                               .scalar_one()) for n in ("0104040109101", "0104040109102"))
    second = write(tmp_path, [{"NICAD": "0104040109101", "USAGE": "habitation", "geometry": diamniadio_side}],
                   name="levé_corrigé.gpkg")
    with transaction(engine) as session:
        report = import_parcels(session, second, _options())
    assert (report.changes, report.matched_by, report.communes) == ({"changed": 1}, {"nicad": 1}, {DIAMNIADIO: 1})
    assert sorted(report.issues[0]["changed_fields"]) == ["commune_code", "geometry"]
    # The API: a new shape on the other side of the line, then back again.
    for shape in (far_diamniadio, far_bargny):
        etag = client.get(f"/parcels/{by_api}").headers["ETag"]
        moved = client.patch(f"/parcels/{by_api}", params=CRS, headers={**headers, "If-Match": etag},
                             json=_feature(shape, reason="levé rectifié"))
        assert moved.status_code == 200, moved.text
    with transaction(engine) as session:
        file_life, api_life = _lifetime(session, by_file), _lifetime(session, by_api)
    assert [(v[0], v[1]) for v in file_life] == [(1, BARGNY), (2, DIAMNIADIO)]
    assert [(v[0], v[1]) for v in api_life] == [(1, BARGNY), (2, DIAMNIADIO), (3, BARGNY)]
    for life in (file_life, api_life):  # a change closes one version at the instant the next begins
        assert all(old[3] == new[2] for old, new in zip(life[:-1], life[1:], strict=True))
    _check_as_of(client, by_file, file_life)
    _check_as_of(client, by_api, api_life)
    # The OGC items have no as-of read: asked for one, they refuse it rather than answer today's state.
    _problem(client.get("/ogc/collections/parcels/items", params={"datetime": file_life[0][2].isoformat()}),
             400, "ogc.unknown_parameter")


@pytest.mark.parametrize(("commune", "key"), [(SANDIARA, "parcel.outside_commune"),
                                              ("SN0104-nowhere", "parcel.unknown_commune")])
def test_a_new_commune_without_a_new_shape_is_checked_against_the_parcels_shape(db, client, admin_headers, commune,
                                                                                key):
    x, y = bargny_origin(db)
    made = client.post("/parcels", params=CRS, headers=admin_headers, json=_feature(square(x, y), reason="levé"))
    assert made.status_code == 201, made.text
    before = _registry(db)
    moved = client.patch(f"/parcels/{made.json()['id']}", headers={**admin_headers, "If-Match": made.headers["ETag"]},
                         json={"type": "Feature", "geometry": None,
                               "properties": {"commune_code": commune, "reason": "rattachement"}})
    _problem(moved, 422, key)  # as when the same code comes with the same shape
    assert _registry(db) == before


# --- a second file into a commune that already holds a thousand parcels ------------------------------------

COLUMNS, ROWS = 40, 26  # 1,040 parcels of 20 m, 5 m apart
PITCH = 25.0


def _grid_file(path: Path, x: float, y: float) -> tuple[Path, list[str]]:
    """A first load: ``COLUMNS`` × ``ROWS`` squares, row by row from the south-west, with their NICADs."""
    cols, rows = np.meshgrid(np.arange(COLUMNS), np.arange(ROWS))
    x0, y0 = x + cols.ravel() * PITCH, y + rows.ravel() * PITCH
    nicads = [f"13010101{i:05d}" for i in range(COLUMNS * ROWS)]
    _shapefile(path, shapely.box(x0, y0, x0 + 20, y0 + 20), nicads, ["habitation"] * len(nicads))
    return path, nicads


def _shapefile(path: Path, geoms, nicads: list[str], uses: list[str]) -> None:
    write_raw(path, shapely.to_wkb(np.asarray(geoms)), [np.array(nicads, dtype=object), np.array(uses, dtype=object)],
              ["NICAD", "USAGE"], driver="ESRI Shapefile", geometry_type="Polygon", crs="EPSG:32628",
              encoding="UTF-8")


def _fingerprints(db, where: str = "true", **params: Any) -> dict[str, str]:
    """Each parcel's versions, as an md5 of every column (a write that leaves a parcel alone leaves this)."""
    return dict(db.execute(text(f"""
        SELECT v.parcel_id::text, md5(string_agg(to_jsonb(v)::text, '|' ORDER BY v.version))
        FROM parcel_version v WHERE {where} GROUP BY v.parcel_id"""), params).all())


def test_a_second_file_into_a_loaded_commune_gives_each_feature_its_documented_outcome(db, tmp_path):
    x, y = _inside(db, SANDIARA)
    x, y = x - COLUMNS * PITCH / 2, y - ROWS * PITCH / 2
    path, nicads = _grid_file(tmp_path / "premier.shp", x, y)
    first = import_parcels(db, path, _options(commune=SANDIARA))
    total = COLUMNS * ROWS
    assert (first.read, first.accepted, first.rejected, first.changes) == (total, total, 0, {"new": total})
    ids = dict(db.execute(text("SELECT nicad, parcel_id::text FROM parcel WHERE commune_code = :c"),
                          {"c": SANDIARA}).all())
    assert len(ids) == total
    before = _fingerprints(db)

    def at(i: int, dx: float = 0.0, dy: float = 0.0):
        column, row = i % COLUMNS, i // COLUMNS
        return box(x + column * PITCH + dx, y + row * PITCH + dy, x + column * PITCH + 20 + dx, y + row * PITCH + 20 + dy)

    moved = list(range(0, 200, 20))  # 10 parcels moved 5 cm east
    nudged = [201, 203]  # moved 5 mm: below the 1 cm that makes a change
    renamed = list(range(300, 320))  # 20 new uses
    same = list(range(400, 500))  # 100 as they were
    edge = COLUMNS * 15 - 1  # the east end of row 14: nothing east of it
    features = ([(nicads[i], at(i, 0.05), "habitation") for i in moved]
                + [(nicads[i], at(i, 0.005), "habitation") for i in nudged]
                + [(nicads[i], at(i), "commerce") for i in renamed]
                + [(nicads[i], at(i), "habitation") for i in same]
                # 40 new parcels in a row beside the others, north of the grid
                + [(f"13010102{k:05d}", at(ROWS * COLUMNS + k), "habitation") for k in range(COLUMNS)]
                # half over a current parcel that the file does not give again
                + [("1301010300001", at(edge, 10), "habitation")]
                # a free place, and the NICAD of a current parcel far from it
                + [(nicads[999], at((ROWS + 2) * COLUMNS + 5), "habitation")])
    _shapefile(tmp_path / "second.shp", [f[1] for f in features], [f[0] for f in features], [f[2] for f in features])
    second = import_parcels(db, tmp_path / "second.shp", _options(commune=SANDIARA))

    changed = len(moved) + len(renamed)
    assert second.read == len(features)
    assert second.rejected_by_reason == {"overlap_existing": 1, "nicad_taken": 1}
    assert second.changes == {"new": COLUMNS, "changed": changed, "unchanged": len(same) + len(nudged)}
    assert second.matched_by == {"nicad": changed + len(same) + len(nudged)}
    issues = {i["nicad"]: i for i in second.issues}
    assert {tuple(issues[nicads[i]]["changed_fields"]) for i in moved} == {("geometry",)}
    assert {tuple(issues[nicads[i]]["changed_fields"]) for i in renamed} == {("land_use",)}
    assert issues["1301010300001"]["reasons"] == ["overlap_existing"]
    assert [i["reasons"] for i in second.issues if i["nicad"] == nicads[999] and i["status"] == "rejected"] == [
        ["nicad_taken"]]

    # The registry: exact counts, one current version per parcel, each NICAD current once.
    counts = db.execute(text("""
        SELECT (SELECT count(*) FROM parcel WHERE commune_code = :c), (SELECT count(*) FROM parcel_version),
               (SELECT count(DISTINCT parcel_id) FROM parcel_version),
               (SELECT count(*) FROM (SELECT parcel_id FROM parcel_version WHERE valid_to IS NULL
                                      GROUP BY parcel_id HAVING count(*) <> 1) t),
               (SELECT count(*) FROM (SELECT parcel_id FROM parcel_version GROUP BY parcel_id
                                      HAVING count(*) FILTER (WHERE valid_to IS NULL) = 0) t)"""),
        {"c": SANDIARA}).one()
    assert tuple(counts) == (total + COLUMNS, total + COLUMNS + changed, total + COLUMNS, 0, 0)
    current = {r[0]: r[1:] for r in db.execute(text("""
        SELECT parcel_id::text, version, nicad, nicad_status, land_use, batch_id::text FROM parcel""")).all()}
    for i in moved:  # a new shape: the old NICAD stays on version 1, version 2 waits for the cadastre's
        assert current[ids[nicads[i]]] == (2, None, "a_reattribuer", "habitation", second.batch_id)
    for i in renamed:
        assert current[ids[nicads[i]]] == (2, nicads[i], "attribue", "commerce", second.batch_id)
    new = [v for v in current.values() if v[4] == second.batch_id and v[0] == 1]
    assert len(new) == COLUMNS and {(v[2], v[3]) for v in new} == {("attribue", "habitation")}
    # The first load's parcels the file did not change: not a byte of their versions changed.
    kept = {ids[n] for k, n in enumerate(nicads) if k not in set(moved) | set(renamed)}
    after = _fingerprints(db)
    assert len(kept) == total - changed and {p: after[p] for p in kept} == {p: before[p] for p in kept}
