"""A pole's heartbeat (migration 0017): written by the pole only, for itself; a failed beat never raises."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from sifc.federation.heartbeat import HeartbeatTask, beat


def _become(db, role: str, node_id: str, commune: str | None = None) -> None:
    """Make the test's node ``role`` (the owner changes sifc_node; the service role only reads it)."""
    db.execute(text("RESET ROLE"))
    db.execute(text("""
        UPDATE sifc_node SET node_id = :node_id, role = :role,
               pole_code = (SELECT r.pole_code FROM commune c JOIN region r ON r.code = c.region_code
                            WHERE c.code = :commune AND :role = 'pole')"""),
               {"node_id": node_id, "role": role, "commune": commune})
    db.execute(text("SET LOCAL ROLE sifc_app"))


def test_a_single_node_writes_no_heartbeat(db):
    assert beat(db) is None
    assert db.execute(text("SELECT count(*) FROM federation_heartbeat")).scalar_one() == 0


def test_a_pole_writes_its_own_heartbeat_once_per_node(db):
    _become(db, "pole", "dakar", "SN0104-bargny")
    assert beat(db) == "dakar"
    assert beat(db) == "dakar"
    rows = db.execute(text("SELECT node_id, beat_at = now() FROM federation_heartbeat")).all()
    assert rows == [("dakar", True)]


@pytest.mark.parametrize("role", ["pole", "national"])
def test_no_node_writes_another_nodes_heartbeat(db, role):
    _become(db, role, "dakar", "SN0104-bargny")
    with pytest.raises(DBAPIError, match="not this pole"), db.begin_nested():
        db.execute(text("INSERT INTO federation_heartbeat VALUES ('thies', now())"))


def test_a_failed_beat_is_logged_once_and_never_raised(caplog):
    task = HeartbeatTask(make_url("postgresql+psycopg://sifc_app@127.0.0.1:9/nowhere"), interval=0.01)
    with caplog.at_level(logging.WARNING, logger="sifc.federation.heartbeat"):
        assert task.beat_once() is None
        assert task.beat_once() is None
    task.stop()
    assert len(caplog.records) == 1
    assert "heartbeat not written" in caplog.records[0].getMessage()
