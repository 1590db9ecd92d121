"""Ownership enforced by the database (migration 0016, ADR 0004), on the test cluster itself.

The node is made a pole of Thiès (Sandiara, Mont-Rolland), then national, inside a transaction that is
rolled back: a write to Bargny (pole of Dakar) is refused with SQLSTATE SF403, a Sandiara write passes,
the national node writes no registry row, and replication's apply mode
(``session_replication_role = replica``, superuser only) writes anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

BARGNY = "SN0104-bargny"  # pole DKR
SANDIARA = "SN1301-sandiara"  # pole THS
THIES = "THS"


@pytest.fixture
def node(settings, admin_engine) -> Iterator[Connection]:
    """A superuser connection in a transaction rolled back after the test (the node's role comes back)."""
    role = (settings.db_url.username or "sifc_app").replace('"', '""')
    with admin_engine.connect() as conn:
        outer = conn.begin()
        conn.info["service_role"] = role
        try:
            yield conn
        finally:
            outer.rollback()
    with admin_engine.connect() as conn:
        assert conn.execute(text("SELECT role, node_id FROM sifc_node")).one() == ("single", "local")


def _become(conn: Connection, role: str, pole: str | None = None) -> None:
    conn.execute(text("RESET ROLE"))
    conn.execute(text("UPDATE sifc_node SET role = :r, pole_code = :p"), {"r": role, "p": pole})
    conn.execute(text(f'SET LOCAL ROLE "{conn.info["service_role"]}"'))


def _parcel(conn: Connection, commune: str) -> uuid.UUID:
    """A parcel version written as the service role, in ``commune``."""
    parcel_id = uuid.uuid4()
    conn.execute(text("""
        INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, action, author)
        SELECT :id, 1, 'absent', code, ST_Multi(ST_Buffer(ST_PointOnSurface(geom), 10)), 'create', 'test'
        FROM commune WHERE code = :c"""), {"id": parcel_id, "c": commune})
    return parcel_id


def _refused(conn: Connection, commune: str, write) -> None:  # noqa: ANN001
    with pytest.raises(DBAPIError) as refused, conn.begin_nested():
        write()
    error = refused.value.orig
    assert error.sqlstate == "SF403"
    assert str(error.diag.message_primary) == f"commune {commune} is not owned by this node"
    assert error.diag.message_detail == commune


def test_a_single_node_owns_every_commune(node):
    _become(node, "single")
    assert node.execute(text("SELECT sifc_owns(:b) AND sifc_owns(:s)"), {"b": BARGNY, "s": SANDIARA}).scalar()
    _parcel(node, BARGNY)
    _parcel(node, SANDIARA)


def test_a_pole_writes_its_own_communes_only(node):
    bargny = _parcel(node, BARGNY)  # written while the node was single
    _become(node, "pole", THIES)
    assert node.execute(text("SELECT sifc_owns(:s), sifc_owns(:b), sifc_owns('SN1303-mont-rolland')"),
                        {"s": SANDIARA, "b": BARGNY}).one() == (True, False, True)
    _refused(node, BARGNY, lambda: _parcel(node, BARGNY))
    sandiara = _parcel(node, SANDIARA)
    # Closing a version is an UPDATE: refused on the other pole's commune, allowed on one's own.
    node.execute(text("SELECT set_config('sifc.actor', 'test', true)"))
    close = "UPDATE parcel_version SET valid_to = now(), closed_by = 'test' WHERE parcel_id = :id"
    _refused(node, BARGNY, lambda: node.execute(text(close), {"id": bargny}))
    assert node.execute(text(close), {"id": sandiara}).rowcount == 1


def test_a_pole_refuses_rows_filled_from_a_parent_of_another_pole(node):
    """A child row written without its commune takes its parent's, and the guard judges that one."""
    documents = {}
    for commune in (BARGNY, SANDIARA):
        documents[commune] = uuid.uuid4()
        node.execute(text("""
            INSERT INTO source_document (id, kind, document_date, commune_code, created_by)
            VALUES (:id, 'plan', current_date, :c, 'test')"""), {"id": documents[commune], "c": commune})
    _become(node, "pole", THIES)

    def attach(commune: str) -> None:
        content = b"%PDF-1.4 test"
        node.execute(text("""
            INSERT INTO source_file (id, source_id, file_name, media_type, size_bytes, sha256, content, created_by)
            VALUES (:id, :s, 'plan.pdf', 'application/pdf', :n, repeat('a', 64), :content, 'test')"""),
            {"id": uuid.uuid4(), "s": documents[commune], "n": len(content), "content": content})

    _refused(node, BARGNY, lambda: attach(BARGNY))
    attach(SANDIARA)
    assert node.execute(text("SELECT commune_code FROM source_file WHERE source_id = :s"),
                        {"s": documents[SANDIARA]}).scalar() == SANDIARA


def test_the_national_node_writes_no_registry_row(node):
    _become(node, "national")
    assert node.execute(text("SELECT sifc_owns(:s) OR sifc_owns(:b)"), {"s": SANDIARA, "b": BARGNY}).scalar() is False
    _refused(node, BARGNY, lambda: _parcel(node, BARGNY))
    _refused(node, SANDIARA, lambda: _parcel(node, SANDIARA))
    # The audits have no guard: a national node logs its own reads and writes.
    node.execute(text("""
        INSERT INTO access_audit (actor_kind, actor, role, method, endpoint, subject_kind, subject_id, commune_code)
        VALUES ('cli', 'sifc', 'administrateur', 'GET', '/parcels', 'parcel', 'x', :c)"""), {"c": BARGNY})


def test_replication_apply_writes_whatever_the_owner(node):
    """How a subscription applies rows and a re-sync copies them: ordinary triggers do not fire."""
    _become(node, "national")
    node.execute(text("RESET ROLE"))
    node.execute(text("SET LOCAL session_replication_role = replica"))
    bargny = _parcel(node, BARGNY)
    node.execute(text("SET LOCAL session_replication_role = origin"))
    assert node.execute(text("SELECT commune_code FROM parcel_version WHERE parcel_id = :id"),
                        {"id": bargny}).scalar() == BARGNY
    # The service role cannot take that mode for itself.
    node.execute(text(f'SET LOCAL ROLE "{node.info["service_role"]}"'))
    with pytest.raises(ProgrammingError, match="permission denied"), node.begin_nested():
        node.execute(text("SET LOCAL session_replication_role = replica"))


def test_audit_rows_get_time_ordered_uuids_and_the_node_id(node):
    _become(node, "single")
    ids = [node.execute(text("""
        INSERT INTO write_audit (actor_kind, actor, role, operation, object_kind, object_id)
        VALUES ('cli', 'sifc', 'administrateur', 'test', 'parcel', :n) RETURNING id, node_id"""),
        {"n": str(n)}).one() for n in range(50)]
    assert [node_id for _, node_id in ids] == ["local"] * 50
    assert [row_id for row_id, _ in ids] == sorted(row_id for row_id, _ in ids)
    assert all(row_id.version == 7 for row_id, _ in ids)


def test_the_service_role_reads_the_node_and_the_directory_and_writes_neither(node):
    role = node.info["service_role"]
    granted = node.execute(text("""
        SELECT t, p, has_table_privilege(:r, t, p)
        FROM unnest(ARRAY['sifc_node', 'federation_node']) t, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE',
                                                                         'TRUNCATE']) p"""), {"r": role}).all()
    assert {(t, p) for t, p, allowed in granted if allowed} == {("sifc_node", "SELECT"), ("federation_node", "SELECT")}
    node.execute(text(f'SET LOCAL ROLE "{role}"'))
    assert node.execute(text("SELECT sifc_node_id()")).scalar() == "local"
    with pytest.raises(ProgrammingError, match="permission denied"), node.begin_nested():
        node.execute(text("INSERT INTO federation_node (node_id, role, url) VALUES ('x', 'national', 'http://x')"))


def test_a_row_without_a_commune_is_refused_for_what_it_lacks(node):
    _become(node, "pole", THIES)
    with pytest.raises(DBAPIError) as refused, node.begin_nested():
        node.execute(text("""
            INSERT INTO import_batch (id, file_name, sha256, options, counts, report, created_by)
            VALUES (:id, 'f.gpkg', repeat('0', 64), '{}', '{}', '{}', 'test')"""), {"id": uuid.uuid4()})
    assert refused.value.orig.sqlstate == "23502"  # not_null_violation
