"""A document sealed at one node verifies at another, through the federation's directory of public keys.

Two databases of the main cluster stand for two nodes (each with its own key file and node id): node A
issues a registre foncier; node B verifies it once its ``federation_node`` holds A's seal public keys
(``sifc keys public`` / :func:`sifc.keyring.seal_public_keys`), and not before, with the reason; a
tampered copy fails at both. When B's register holds A's row (as the national node receives it by
replication), B also compares the file byte for byte.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader, PdfWriter
from sqlalchemy import Engine, text

from api.app import create_app
from sifc import keyring, provision
from sifc.db import make_engine
from sifc.settings import Settings

BARGNY = "SN0104-bargny"
# The table as migration 0016 creates it, for a tree where that migration is not there yet.
FEDERATION_NODE = """CREATE TABLE IF NOT EXISTS federation_node (
    node_id text PRIMARY KEY, role text NOT NULL, pole_code text, url text NOT NULL,
    seal_keys jsonb NOT NULL DEFAULT '[]', updated_at timestamptz NOT NULL DEFAULT now())"""


@dataclass
class Node:
    settings: Settings
    admin: Engine
    client: TestClient


def _node(settings: Settings, template: str, suffix: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    name = f"{settings.db_url.database}_{suffix}"
    provision.drop_database(settings.admin_url, name)
    provision.create_database(settings.admin_url, name, template=template)
    return settings.model_copy(update={
        "database_url": settings.db_url.set(database=name).render_as_string(hide_password=False),
        "admin_database_url": settings.admin_url.set(database=name).render_as_string(hide_password=False),
        "key_file": tmp_path_factory.mktemp(f"keys_{suffix}") / "signing-keys.json",
        "node_id": f"pole-{suffix}"})


@pytest.fixture(scope="module")
def nodes(settings: Settings, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    made = {suffix: _node(settings, template_db, suffix, tmp_path_factory) for suffix in ("a", "b")}
    found: dict[str, Node] = {}
    try:
        for suffix, node_settings in made.items():
            admin = make_engine(node_settings.admin_url, application_name="sifc-tests-seals")
            with admin.begin() as connection:
                if connection.execute(text("SELECT to_regclass('public.federation_node')")).scalar() is None:
                    connection.execute(text(FEDERATION_NODE))
                    role = (node_settings.db_url.username or "sifc_app").replace('"', '""')
                    connection.execute(text(f'GRANT SELECT ON federation_node TO "{role}"'))
            client = TestClient(create_app(node_settings))
            client.__enter__()
            found[suffix] = Node(node_settings, admin, client)
        yield found
    finally:
        for node in found.values():
            node.client.__exit__(None, None, None)
            node.admin.dispose()
        for node_settings in made.values():
            provision.drop_database(settings.admin_url, node_settings.db_url.database or "")


def _verify(node: Node, pdf: bytes) -> dict:
    answer = node.client.post("/documents/verify", files={"file": ("d.pdf", io.BytesIO(pdf), "application/pdf")})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _publish(node: Node, other: Node) -> None:
    """``node``'s directory learns ``other``'s seal public keys (what ``sifc node subscribe`` stores)."""
    with node.admin.begin() as connection:
        connection.execute(text("""
            INSERT INTO federation_node (node_id, role, pole_code, url, seal_keys)
            VALUES (:node, 'pole', 'DKR', 'http://a.example', CAST(:keys AS jsonb))
            ON CONFLICT (node_id) DO UPDATE SET seal_keys = EXCLUDED.seal_keys"""),
            {"node": other.settings.node_id, "keys": json.dumps(keyring.seal_public_keys(other.settings))})


def _forget(node: Node) -> None:
    with node.admin.begin() as connection:
        connection.execute(text("DELETE FROM federation_node"))


def _changed_facts(pdf: bytes) -> bytes:
    """``pdf`` with a fact of its sealed content changed, the code kept."""
    reader = PdfReader(io.BytesIO(pdf))
    facts = orjson.loads(reader.attachments["sifc-document.json"][0])
    facts["commune"] = {"code": BARGNY, "name": "Ailleurs"}
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.add_metadata(dict(reader.metadata or {}))
    writer.add_attachment("sifc-document.json", orjson.dumps(facts, option=orjson.OPT_SORT_KEYS))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def issued(nodes: dict[str, Node]) -> bytes:
    """A registre foncier of Bargny issued at node A."""
    response = nodes["a"].client.get(f"/communes/{BARGNY}/registre.pdf")
    assert response.status_code == 200, response.text[:300]
    return response.content


def test_the_document_is_sealed_with_node_as_ed25519_key(nodes, issued):
    metadata = PdfReader(io.BytesIO(issued)).metadata or {}
    kid, code = str(metadata["/SIFCKeyId"]), str(metadata["/SIFCCode"])
    assert kid.startswith("pole-a-seal-") and len(code) == 128
    answer = _verify(nodes["a"], issued)
    assert answer["authentic"] is True and answer["verified_by"] == "register"
    assert answer["sealed_by_node"] == "pole-a" and answer["code"] == code
    known = nodes["a"].client.get(f"/documents/verify/{code.upper()[:60]}-{code[60:]}").json()
    assert known["issued"] is True and known["sealed_by_node"] == "pole-a" and known["code"] == code


def test_another_node_verifies_it_once_it_knows_the_public_key(nodes, issued):
    a, b = nodes["a"], nodes["b"]
    _forget(b)
    unknown = _verify(b, issued)
    assert unknown["authentic"] is False and unknown["reason"] == "key_unknown"
    assert unknown["sealed_by_node"] is None and "certifies" not in unknown
    assert "fédération" in unknown["detail"]
    _publish(b, a)
    try:
        answer = _verify(b, issued)
        assert answer["authentic"] is True and answer["status"] == "authentique", answer
        assert answer["verified_by"] == "seal" and answer["sealed_by_node"] == "pole-a"
        assert answer["checks"] == {"readable": True, "code_matches_content": True, "issued": False,
                                    "file_unchanged": False}
        assert answer["kind"] == "registre_foncier" and answer["certifies"]["document"] == "registre_foncier"
        # A retired key still verifies: A rotates, publishes again, the first document stays authentic.
        keyring.for_settings(a.settings).rotate("seal")
        _publish(b, a)
        assert _verify(b, issued)["authentic"] is True
        # B's own keys are not A's: what B seals names B, and A does not know B.
        assert _verify(a, b.client.get(f"/communes/{BARGNY}/registre.pdf").content)["reason"] == "key_unknown"
    finally:
        _forget(b)


def test_a_tampered_document_fails_at_both_nodes(nodes, issued):
    a, b = nodes["a"], nodes["b"]
    _publish(b, a)
    try:
        forged = _changed_facts(issued)
        for node in (a, b):
            answer = _verify(node, forged)
            assert answer["authentic"] is False and answer["reason"] == "code_mismatch", answer
            assert answer["checks"]["code_matches_content"] is False and "certifies" not in answer
            assert answer["sealed_by_node"] is None
    finally:
        _forget(b)


def test_a_register_holding_the_document_compares_the_file(nodes, issued):
    """At the national node the register holds the poles' rows (replicated): the file is compared too."""
    a, b = nodes["a"], nodes["b"]
    code = str((PdfReader(io.BytesIO(issued)).metadata or {})["/SIFCCode"])
    with a.admin.connect() as source:
        row = source.execute(text("SELECT * FROM issued_document WHERE code = :c"), {"c": code}).mappings().one()
    with b.admin.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))  # as a subscription applies it
        connection.execute(text("""INSERT INTO issued_document
            SELECT * FROM jsonb_populate_record(NULL::issued_document, CAST(:row AS jsonb))"""),
            {"row": json.dumps(dict(row), default=str)})
    _publish(b, a)
    try:
        answer = _verify(b, issued)
        assert answer["authentic"] is True and answer["verified_by"] == "register"
        assert answer["sealed_by_node"] == "pole-a" and all(answer["checks"].values())
        index = issued.index(b"/Producer")
        flipped = issued[:index] + b"/Producex" + issued[index + 9:]
        changed = _verify(b, flipped)
        assert changed["authentic"] is False and changed["reason"] == "file_changed"
        assert b.client.get(f"/documents/verify/{code}").json()["sealed_by_node"] == "pole-a"
    finally:
        _forget(b)
