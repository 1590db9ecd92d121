"""A first load streamed into the registry (sifc.imports.stream) judges every feature as the staged path does.

The file is read in chunks of 50 features; its defects straddle chunks (an overlap, a NICAD on two shapes,
an exact copy), so only the whole-file checks can find them: the held NICADs judged at the end, the overlaps
searched in memory or tile by tile in the registry, a refused parcel withdrawn from the uncommitted batch.
"""

from __future__ import annotations

from typing import Any

import pytest
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sifc.db import make_engine, transaction
from sifc.imports import stream
from sifc.imports.parcels import ParcelImportOptions, import_parcels
from tests.integration.fixtures import bargny_origin, bowtie, write

SIDE = 12  # a grid of 12 x 12 parcels of 10 m
TAKEN = "1301000000000001"  # current in Sandiara, far from the grid


def _grid(db, tmp_path) -> Any:
    x, y = bargny_origin(db)
    rows = [{"NICAD": f"010400000{i:07d}", "USAGE": "habitation",
             "geometry": box(x + (i % SIDE) * 10, y + (i // SIDE) * 10, x + (i % SIDE) * 10 + 10,
                             y + (i // SIDE) * 10 + 10)} for i in range(SIDE * SIDE)]
    rows[40]["geometry"] = bowtie(x + (40 % SIDE) * 10, y + (40 // SIDE) * 10, 10)
    rows[130]["NICAD"] = rows[10]["NICAD"]  # one NICAD on two shapes, two chunks apart
    rows[100]["NICAD"] = TAKEN
    rows.append({"NICAD": "0104000009999999", "USAGE": "commerce", "geometry": rows[5]["geometry"]})  # overlap
    rows.append(dict(rows[20]))  # an exact copy, in the last chunk
    return write(tmp_path, rows)


@pytest.fixture
def grid(db, tmp_path):
    point = db.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM commune WHERE code = 'SN1301-sandiara') c
    """)).one()
    taken = write(tmp_path, [{"NICAD": TAKEN, "geometry": box(point[0], point[1], point[0] + 15, point[1] + 15)}],
                  name="sandiara.gpkg")
    assert import_parcels(db, taken, _options()).accepted == 1
    return _grid(db, tmp_path)


def _options(**extra: Any) -> ParcelImportOptions:
    return ParcelImportOptions(author="test", chunk_size=50, **extra)


def _outcome(db, report) -> dict[str, Any]:
    verdicts = [(r.ord, r.status, sorted(r.reasons), sorted(r.warnings)) for r in db.execute(text(
        "SELECT ord, status, reasons, warnings FROM stage_parcel ORDER BY ord"))]
    registry = db.execute(text("""
        SELECT nicad, nicad_status, commune_code, land_use, md5(ST_AsEWKB(geom)) AS shape FROM parcel_version
        WHERE batch_id = :b ORDER BY nicad, shape"""), {"b": report.batch_id}).all()
    summary = {k: v for k, v in report.as_dict().items() if k not in ("timings", "batch_id")}
    return {"verdicts": verdicts, "registry": [tuple(r) for r in registry], "report": summary}


def _import(db, path, monkeypatch, *, streamed: bool, **extra: Any) -> dict[str, Any]:
    calls = []
    monkeypatch.setattr(stream, "load", _spy(stream.load, calls))
    if not streamed:
        monkeypatch.setattr(stream, "eligible", lambda *a, **k: False)
    savepoint = db.begin_nested()
    report = import_parcels(db, path, _options(**extra))
    outcome = _outcome(db, report)
    savepoint.rollback()
    monkeypatch.undo()
    assert bool(calls) == streamed
    return outcome


def _spy(function, calls):
    def spy(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)
    return spy


def test_a_first_load_judges_every_feature_as_the_staged_path(db, grid, monkeypatch):
    streamed = _import(db, grid, monkeypatch, streamed=True)
    staged = _import(db, grid, monkeypatch, streamed=False)
    assert streamed == staged
    status = {v[0]: v[1:] for v in streamed["verdicts"]}
    n = SIDE * SIDE
    assert status[5][:2] == status[n][:2] == ("rejected", ["overlap_in_file"])
    assert status[10][:2] == status[130][:2] == ("rejected", ["nicad_conflict"])
    assert status[n + 1][:2] == ("duplicate", ["duplicate"]) and status[20][0] == "accepted"
    assert status[100][:2] == ("rejected", ["nicad_taken"])
    assert status[40][:2] == ("accepted", []) and "invalid_repaired" in status[40][2]
    assert len(streamed["registry"]) == streamed["report"]["accepted"] == n - 4


def test_beyond_the_memory_limit_overlaps_are_searched_tile_by_tile_in_the_registry(db, grid, monkeypatch):
    in_memory = _import(db, grid, monkeypatch, streamed=True)
    monkeypatch.setattr(stream, "IN_MEMORY_OVERLAPS", 10)
    monkeypatch.setattr(stream, "TILE_PARCELS", 20)  # tiles of ~20 parcels: the pair straddles tiles too
    tiles = []
    original = stream._overlaps_in_registry
    monkeypatch.setattr(stream, "_overlaps_in_registry", _spy(original, tiles))
    savepoint = db.begin_nested()
    report = import_parcels(db, grid, _options())
    tiled = _outcome(db, report)
    savepoint.rollback()
    assert tiles and tiled == in_memory


def test_a_committed_batch_is_never_withdrawn_nor_rewritten(fresh_db, tmp_path):
    engine = make_engine(fresh_db.db_url)
    try:
        with transaction(engine) as session:
            first = import_parcels(session, _grid(session, tmp_path), _options())
        with transaction(engine) as session:
            point = session.execute(text("""
                SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM commune
                                              WHERE code = 'SN1301-sandiara') c""")).one()
            second = import_parcels(session, write(tmp_path, [{"NICAD": "1301000000000002", "geometry": box(
                point[0], point[1], point[0] + 15, point[1] + 15)}], name="sandiara.gpkg"), _options())
            # The running import may withdraw its own rows (the guard of migration 0027), nobody else's.
            for batch, allowed in ((second.batch_id, True), (first.batch_id, False)):
                session.execute(text("SELECT set_config('sifc.withdraw_batch', :b, true)"), {"b": batch})
                savepoint = session.begin_nested()
                try:
                    deleted = session.execute(text("DELETE FROM parcel_version WHERE batch_id = :b"),
                                              {"b": batch}).rowcount
                    rewritten = session.execute(text("UPDATE import_batch SET counts = '{}' WHERE id = :b"),
                                                {"b": batch}).rowcount
                    assert allowed and deleted == 1 and rewritten == 1
                except DBAPIError as error:
                    assert not allowed and "history is never deleted" in str(error.orig)
                finally:
                    savepoint.rollback()
            session.execute(text("SELECT set_config('sifc.withdraw_batch', '', true)"))
            with pytest.raises(DBAPIError, match="never rewritten"), session.begin_nested():
                session.execute(text("UPDATE import_batch SET counts = '{}' WHERE id = :b"), {"b": first.batch_id})
        with transaction(engine) as session:
            assert session.execute(text("SELECT count(*) FROM parcel_version WHERE batch_id IN (:a, :b)"),
                                   {"a": first.batch_id, "b": second.batch_id}).scalar() == first.accepted + 1
    finally:
        engine.dispose()
