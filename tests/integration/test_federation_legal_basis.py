"""Personal data sent to the national node need their legal basis (loi n° 2008-12, décret n° 2008-721).

``sifc_node.legal_basis`` holds the reference of the CDP formality; the database refuses
``personal = 'national'`` without one (CHECK ``ck_sifc_node_legal_basis``), ``sifc node init`` refuses it
before writing anything, ``sifc node status`` shows it, and ``/health`` says the policy, never the reference.
The reference below is synthetic.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sifc.federation import node as nodes
from sifc.federation.status import node_status
from sifc.settings import Settings

BASIS = "CDP, récépissé de déclaration n° 0000/TEST (synthétique)"


def _owner(db: Session, settings: Settings, sql: str, params: dict[str, object] | None = None) -> None:
    """Change the node's row as the database's owner (the service role only reads it), in the test's transaction."""
    connection = db.connection()
    connection.exec_driver_sql("RESET ROLE")
    connection.execute(text(sql), params or {})
    role = (settings.db_url.username or "sifc_app").replace('"', '""')
    connection.exec_driver_sql(f'SET LOCAL ROLE "{role}"')


@pytest.mark.parametrize("basis", [None, "", "   "])
def test_the_database_refuses_the_national_policy_without_a_legal_basis(db, settings, basis):
    with pytest.raises(IntegrityError, match="ck_sifc_node_legal_basis"), db.begin_nested():
        _owner(db, settings, "UPDATE sifc_node SET personal = 'national', legal_basis = :b", {"b": basis})


def test_the_national_policy_with_its_legal_basis_is_kept_and_shown(db, settings, client):
    _owner(db, settings, "UPDATE sifc_node SET node_id = 'national', role = 'national', personal = 'national', "
                         "legal_basis = :b", {"b": BASIS})
    assert nodes.current(db.connection()).legal_basis == BASIS
    status = node_status(db, probe=False)
    assert (status.personal, status.legal_basis) == ("national", BASIS)
    assert status.as_dict()["legal_basis"] == BASIS
    federation = client.get("/health").json()["federation"]
    assert federation["personal"] == "national"
    assert BASIS not in client.get("/health").text


def test_under_the_pole_policy_no_legal_basis_is_needed(db, settings):
    _owner(db, settings, "UPDATE sifc_node SET personal = 'pole', legal_basis = NULL")
    assert nodes.current(db.connection()).legal_basis is None


@pytest.mark.parametrize(("policy", "basis", "key"), [
    ("national", None, "federation.legal_basis_required"),
    ("national", "  ", "federation.legal_basis_required"),
    ("pole", BASIS, "federation.legal_basis_unused"),
])
def test_init_refuses_a_policy_and_basis_that_do_not_go_together_before_writing(admin_engine, policy, basis, key):
    with admin_engine.connect() as conn:
        before = nodes.current(conn)
    with pytest.raises(nodes.FederationError) as refused:
        nodes.init(admin_engine, role="national", node_id="national", url="http://127.0.0.1:9",
                   personal_policy=policy, legal_basis=basis)
    assert refused.value.key == key
    with admin_engine.connect() as conn:
        assert nodes.current(conn) == before
