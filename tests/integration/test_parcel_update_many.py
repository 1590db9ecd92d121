"""``parcels.update_many``: the batch and its deferred changes leave the registry as ``update`` one by one.

Each case runs twice on the same data, inside savepoints rolled back: once with :func:`update` on
every change in order (each in its own savepoint, as a field return runs it), once with
:func:`update_many` and then :func:`update` on what it deferred, in order. The versions (without
their instants) and the write journal (without ids and instants) must be identical, and so must
what each change ended as (applied with a version, unchanged, or refused with an error key).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import shapely
from shapely.affinity import translate
from shapely.geometry import box, mapping
from sqlalchemy import text

from sifc.auth.principal import Action
from sifc.auth.service import from_api_key
from sifc.db import act_as
from sifc.errors import InvalidInput, SifcError
from sifc.parcels import service as parcels
from sifc.tenure import rights, sources
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin

BARGNY, SANDIARA = "SN0104-bargny", "SN1301-sandiara"


def _create(db, shape, **values) -> uuid.UUID:
    return uuid.UUID(parcels.create(db, data=parcels.ParcelInput(geometry=mapping(shape), input_crs=32628,
                                                                 values={"land_use": "habitation", **values},
                                                                 reason="test"), author="tests"))


@pytest.fixture
def field(db):
    """A row of 20 m parcels in Bargny, one with a NICAD, one under litige; the principal of the writes."""
    x, y = bargny_origin(db)
    x, y = x + 100, y + 100
    shapes = {name: box(x + n * 30, y, x + n * 30 + 20, y + 20) for n, name in enumerate(
        ("attr", "move", "nicad", "tiny", "tiny_attr", "away", "neighbour", "crowd", "a", "b", "litige", "stale",
         "same", "given", "far", "vacate", "follow", "edge"))}
    ids = {name: _create(db, shape, **({"nicad": "0104040100099"} if name == "nicad" else {}))
           for name, shape in shapes.items()}
    by = from_api_key(db, api_key(db, role="agent_foncier", scope=tuple(f"commune:{c}" for c in _border(db)[0]),
                                  name="agent batch"))
    decision = sources.create(db, data=sources.SourceInput(kind="decision_justice", document_date=_day(10),
                                                           commune_code=BARGNY, reference="TGI 1"),
                              by=None, author="tests")
    rights.create(db, parcel_id=str(ids["litige"]), data=rights.RightInput(
        type="litige", start_date=_day(5), source_ids=[decision]), by=None, author="tests")
    act_as(db, "tests")
    parcels.update(db, parcel_id=str(ids["stale"]), data=parcels.ParcelInput(values={"land_use": "commerce"},
                                                                            reason="bureau"), author="tests")
    db.commit()
    act_as(db, None)
    return shapes, ids, by


def _day(offset: int):
    from datetime import date, timedelta
    return date.today() - timedelta(days=offset)


def _moved_corner(shape, dx: float, dy: float):
    coords = list(shape.exterior.coords)
    coords[0] = (coords[0][0] + dx, coords[0][1] + dy)
    coords[-1] = coords[0]
    return shapely.Polygon(coords)


def _border(db) -> tuple[list[str], Any]:
    """A point of Bargny's boundary with its neighbour, and the communes a 20 m square around it meets."""
    point = shapely.from_wkb(bytes(db.execute(text("""
        SELECT ST_AsBinary(ST_PointOnSurface(ST_Intersection(ST_Boundary(b.geom), c.geom)))
        FROM commune b JOIN commune c ON c.code <> b.code AND c.geom && b.geom AND ST_Intersects(c.geom, b.geom)
        WHERE b.code = :c ORDER BY c.code LIMIT 1"""), {"c": BARGNY}).scalar()))
    codes = db.execute(text("""
        SELECT code FROM commune WHERE ST_Intersects(geom, ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 32628), 10))
        ORDER BY code"""), {"x": point.x, "y": point.y}).scalars().all()
    assert len(codes) >= 2
    return list(codes), point


def _changes(db, shapes, ids) -> list[parcels.Change]:
    """One change per case, in the order a return would apply them."""
    sandiara = shapely.from_wkb(bytes(db.execute(text(
        "SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM commune WHERE code = :c"), {"c": SANDIARA}).scalar()))
    border = _border(db)[1]
    a, b = shapes["a"], shapes["b"]
    gap = box(a.bounds[2], a.bounds[1], b.bounds[0], a.bounds[3])  # the 10 m between a and b
    cases: list[tuple[str, Any, dict[str, Any], int | None]] = [
        ("attr", None, {"land_use": "commerce"}, None),
        ("move", _moved_corner(shapes["move"], 0.5, 0.5), {}, None),
        ("nicad", _moved_corner(shapes["nicad"], 0.5, 0.5), {"land_use": "agriculture"}, None),  # loses it
        ("tiny", translate(shapes["tiny"], 0.004, 0.0), {}, None),  # < 1 cm: no change at all
        ("tiny_attr", translate(shapes["tiny_attr"], 0.004, 0.0), {"declared_area_m2": 400.5}, None),
        ("away", box(sandiara.x, sandiara.y, sandiara.x + 20, sandiara.y + 20), {}, None),  # another scope
        ("crowd", shapes["crowd"].union(box(shapes["neighbour"].bounds[0], shapes["crowd"].bounds[1],
                                            shapes["neighbour"].bounds[0] + 5, shapes["crowd"].bounds[3])), {}, None),
        ("a", a.union(gap), {}, None),  # a and b both take the gap: the first wins, the second overlaps it
        ("b", b.union(gap), {}, None),
        ("edge", box(border.x - 10, border.y - 10, border.x + 10, border.y + 10), {}, None),  # two communes: ranked
        ("litige", None, {"land_use": "commerce"}, None),
        ("stale", None, {"land_use": "agriculture"}, 1),
        ("same", None, {"land_use": "habitation"}, None),
        ("given", None, {"nicad": "0104040100123"}, None),
        ("far", None, {"declared_area_m2": -5.0}, None),  # out of bounds
        # follow moves into what vacate leaves, applied before vacate moves: follow overlaps, then vacate moves
        ("follow", shapes["follow"].union(box(shapes["vacate"].bounds[2] - 5, shapes["follow"].bounds[1],
                                              shapes["follow"].bounds[0], shapes["follow"].bounds[3])), {}, None),
        ("vacate", box(shapes["vacate"].bounds[0], shapes["vacate"].bounds[1], shapes["vacate"].bounds[2] - 8,
                       shapes["vacate"].bounds[3]), {}, None),
    ]
    return [parcels.Change(parcel_id=ids[name], expected_version=expected or (2 if name == "stale" else 1),
                           geometry=None if shape is None else shapely.to_wkb(shape), values=values,
                           reason=f"terrain {name}")
            for name, shape, values, expected in cases]


def _one(db, change: parcels.Change, by) -> tuple[str, Any]:
    data = parcels.ParcelInput(geometry=None if change.geometry is None else mapping(shapely.from_wkb(change.geometry)),
                               input_crs=32628, values=change.values, reason=change.reason)
    try:
        with db.begin_nested():
            version = parcels.update(db, parcel_id=str(change.parcel_id), data=data, author=by.name,
                                     expected_version=change.expected_version, by=by,
                                     permission=Action.FIELD_WORK, action="field:return")
    except InvalidInput as error:
        return ("unchanged", None) if error.key == "parcel.no_change" else ("refused", error.key)
    except SifcError as error:
        return "refused", error.key
    return "applied", version


def _registry(db, since: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    versions = db.execute(text("""
        SELECT parcel_id, version, nicad, nicad_status, commune_code, section, local_number, source_id,
               encode(ST_AsEWKB(geom), 'hex'), area_m2, declared_area_m2, land_use, tenure_regime, batch_id, action,
               author, reason, valid_to IS NULL, closed_by, close_reason
        FROM parcel_version ORDER BY parcel_id, version""")).all()
    audit = db.execute(text("""
        SELECT actor_kind, actor_id, actor, role, operation, object_kind, object_id, parcel_id, commune_code,
               before #- '{properties,valid_from}', after #- '{properties,valid_from}'
        FROM write_audit WHERE id > :since ORDER BY object_id, id"""), {"since": since}).all()
    return [tuple(r) for r in versions], [tuple(map(str, r)) for r in audit]


def test_the_batch_leaves_the_registry_as_update_one_by_one(db, field):
    shapes, ids, by = field
    changes = _changes(db, shapes, ids)
    since = db.execute(text("SELECT sifc_uuid7()")).scalar()  # audit ids are time-ordered

    one_by_one = db.begin_nested()
    act_as(db, by.name)
    expected = {change.parcel_id: _one(db, change, by) for change in changes}
    wanted = _registry(db, since)
    one_by_one.rollback()

    batch = db.begin_nested()
    act_as(db, by.name)
    outcome = parcels.update_many(db, changes, author=by.name, by=by, permission=Action.FIELD_WORK,
                                  action="field:return")
    found: dict[uuid.UUID, tuple[str, Any]] = {pid: ("applied", v) for pid, v in outcome.applied.items()}
    found.update((pid, ("unchanged", None)) for pid in outcome.unchanged)
    assert {c.parcel_id for c in outcome.deferred} == {c.parcel_id for c in changes} - set(found)
    assert [c.parcel_id for c in outcome.deferred] == [c.parcel_id for c in changes
                                                      if c.parcel_id not in found]
    found.update((change.parcel_id, _one(db, change, by)) for change in outcome.deferred)
    got = _registry(db, since)
    batch.rollback()
    act_as(db, None)

    name = {pid: n for n, pid in ids.items()}
    assert {name[p]: v for p, v in found.items()} == {name[p]: v for p, v in expected.items()}
    assert got == wanted
    # The cases mean what they say: each outcome of update is met at least once.
    outcomes = {name[p]: v for p, v in expected.items()}
    assert outcomes["attr"] == ("applied", 2) and outcomes["tiny"] == ("unchanged", None)
    assert outcomes["away"] == ("refused", "auth.out_of_scope")
    assert outcomes["crowd"] == ("refused", "parcel.overlap") and outcomes["b"] == ("refused", "parcel.overlap")
    assert outcomes["a"] == ("applied", 2) and outcomes["litige"] == ("refused", "tenure.under_litige")
    assert outcomes["stale"] == ("refused", "http.precondition_failed")
    assert outcomes["same"] == ("unchanged", None) and outcomes["far"] == ("refused", "bounds.out_of_range")
    assert outcomes["follow"] == ("refused", "parcel.overlap") and outcomes["vacate"] == ("applied", 2)
    # And most of them were written by the batch itself.
    assert {name[p] for p in outcome.applied} >= {"attr", "move", "nicad", "tiny_attr", "edge"}  # edge: ranked
    nicad = db.execute(text("SELECT nicad, nicad_status FROM parcel WHERE parcel_id = :p"), {"p": ids["nicad"]}).one()
    assert tuple(nicad) == ("0104040100099", "attribue")  # rolled back: the twin states were both undone


def test_a_batch_with_nothing_to_write(db, field):
    shapes, ids, by = field
    act_as(db, by.name)
    outcome = parcels.update_many(db, [], author=by.name, by=by, permission=Action.FIELD_WORK, action="field:return")
    assert (outcome.applied, outcome.deferred, outcome.unchanged) == ({}, [], [])
    same = parcels.Change(parcel_id=ids["same"], expected_version=1, geometry=None, values={"land_use": "habitation"},
                          reason="terrain")
    outcome = parcels.update_many(db, [same, same], author=by.name, by=by, permission=Action.FIELD_WORK,
                                  action="field:return")
    assert outcome.deferred == [same, same]  # one parcel twice: update decides
    act_as(db, None)
