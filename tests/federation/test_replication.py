"""Three nodes replicating: what Thiès imports and Dakar splits arrives at the national node, identical.

National (5451) holds the reference; Thiès (5452, pole THS: Sandiara) and Dakar (5453, pole DKR: Bargny)
take it from there (``sifc node subscribe`` on a node about to become a pole), become poles (``sifc node
init``), and the national node subscribes to both. Thiès imports a GeoPackage of Sandiara parcels with
``sifc import parcels``; Dakar records a parcel of Bargny, a party and a split over its own API. At the
national node every pole-owned table then holds, for each pole's communes, the same rows as the pole over
the published columns (counts and md5 in key order), the personal columns NULL (default policy), and
``sifc node status --json`` shows both subscriptions streaming. A first load of 3,000 parcels at Thiès, then a
re-import with moved, changed and new parcels, reach the national node complete (counts and an md5 over every
version's id, state, NICAD and geometry).

Through each node's own app (``TestClient`` over its database): a write into Sandiara is refused at the national
node and at Dakar (403 ``federation.not-owner`` naming Thiès from the replicated directory; SF403 from the
database for the service's role), and passes at Thiès; a fiche sealed at Thiès verifies at the national node
(its replicated register) and at Dakar (by the seal, Thiès's key from the directory).
"""

from __future__ import annotations

import io
import json
import subprocess
from typing import Any

import geopandas as gpd
import psycopg
import psycopg.errors
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping

from api.app import create_app
from sifc.federation import registry
from tests.federation.clusters import SIFC, Node, NodeSpec, wait_until
from tests.integration.fixtures import day, square

SANDIARA = "SN1301-sandiara"
BARGNY = "SN0104-bargny"
CRS = {"crs": "EPSG:32628"}


def _run_all(*commands: tuple[Node, tuple[str, ...]]) -> None:
    """Run several ``sifc`` commands at once (one per node); fail with the first failure's output."""
    from tests.conftest import REPO

    started = [(node, args, subprocess.Popen([*SIFC, *args], cwd=REPO, env=node.env(), text=True,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                               stdin=subprocess.DEVNULL))
               for node, args in commands]
    for node, args, process in started:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"sifc {' '.join(args)} on {node.node_id}: {stdout}\n{stderr}"


@pytest.fixture(scope="module")
def federation_nodes(make_federation) -> dict[str, Node]:
    nodes = make_federation(NodeSpec("national", 5451, reference=True), NodeSpec("thies", 5452),
                            NodeSpec("dakar", 5453))
    national, thies, dakar = nodes["national"], nodes["thies"], nodes["dakar"]
    # Peers connect as sifc_replication (published columns only), LOGIN without a password: loopback is trusted.
    national.run("node", "init", "--role", "national", "--url", "http://127.0.0.1:8451", "--replication-login")
    # The poles take the reference from the national node first, then know their communes.
    _run_all((thies, ("node", "subscribe", "--to", national.replication_conninfo)),
             (dakar, ("node", "subscribe", "--to", national.replication_conninfo)))
    _run_all((thies, ("node", "init", "--role", "pole", "--pole", "THS", "--url", "http://127.0.0.1:8452",
                      "--replication-login")),
             (dakar, ("node", "init", "--role", "pole", "--pole", "DKR", "--url", "http://127.0.0.1:8453",
                      "--replication-login")))
    national.run("node", "subscribe", "--to", thies.replication_conninfo)
    national.run("node", "subscribe", "--to", dakar.replication_conninfo)
    return nodes


def _communes(node: Node, pole: str) -> list[str]:
    return [r[0] for r in node.sql("SELECT c.code FROM commune c JOIN region r ON r.code = c.region_code "
                                   "WHERE r.pole_code = :p ORDER BY 1", p=pole)]


def _fingerprint(node: Node, entry: registry.Replicated, columns: list[str], where: str,
                 **params: Any) -> tuple[int, str]:
    """Row count and md5 of the table's published columns, rows in key order."""
    quoted = ", ".join(f'"{c}"' for c in columns)
    order = ", ".join(f'"{c}"' for c in entry.key) or quoted
    row = node.sql(f"SELECT count(*), md5(coalesce(string_agg(ROW({quoted})::text, '|' ORDER BY {order}), '')) "
                   f"FROM {entry.table} WHERE {where}", **params)[0]
    return int(row[0]), str(row[1])


def _published(node: Node, entry: registry.Replicated) -> list[str]:
    with node.engine.connect() as conn:
        return registry.published_columns(conn, entry, "pole")


def _pole_tables(node: Node) -> list[registry.Replicated]:
    return [e for e in registry.owned_by("pole") if e.commune_column
            and node.scalar("SELECT to_regclass(:t) IS NOT NULL", t=e.table)]


def _differences(pole: Node, national: Node, communes: list[str]) -> dict[str, tuple[Any, Any]]:
    differ = {}
    for entry in _pole_tables(pole):
        columns = _published(pole, entry)
        where = f"{entry.commune_column} = ANY(:c)"
        here, there = (_fingerprint(n, entry, columns, where, c=communes) for n in (pole, national))
        if here != there:
            differ[entry.table] = (here, there)
    return differ


def _sandiara_file(thies: Node, folder, offset: float, count: int):
    """A GeoPackage of ``count`` synthetic parcels of Sandiara, ``offset`` metres north of a point inside it."""
    x, y = (float(v) for v in thies.sql(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 32628) p FROM commune "
        "WHERE code = :c) t", c=SANDIARA)[0])
    rows = [{"NICAD": f"1301010{1 if offset else 0}{i:05d}", "USAGE": "habitation",
             "geometry": square(x + 30 * i, y + offset)} for i in range(count)]
    path = folder / f"sandiara-{int(offset)}.gpkg"
    gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:32628").to_file(path)
    return path


def _import_sandiara(thies: Node, tmp_path) -> None:
    path = _sandiara_file(thies, tmp_path, 0, 6)
    done = thies.run("import", "parcels", str(path), "--commune", SANDIARA, "--user", "agent-thies")
    assert "6" in done.stdout, done.stdout


def _split_in_bargny(dakar: Node) -> None:
    header = {"X-API-Key": dakar.run("keys", "create", "--name", "fed", "--role", "administrateur")
              .stdout.strip().splitlines()[-1]}
    x, y = (float(v) for v in dakar.sql(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(-17.2283, 14.6933), 4326), "
        "32628) p) t")[0])
    x, y = x + 600, y + 250
    settings = dakar.settings(public_url="http://testserver", allowed_hosts=["testserver"])
    with TestClient(create_app(settings)) as client:
        parent = client.post("/parcels", params=CRS, headers=header, json={
            "type": "Feature", "geometry": mapping(box(x, y, x + 40, y + 20)),
            "properties": {"reason": "levé", "land_use": "agriculture"}})
        assert parent.status_code == 201, parent.text
        party = client.post("/parties", headers=header, json={
            "kind": "natural_person", "name": "Synthétique Ndiaye", "commune_code": BARGNY})
        assert party.status_code == 201, party.text
        source = client.post("/sources", headers=header, json={
            "kind": "plan", "document_date": day(5), "commune_code": BARGNY, "reference": "plan fédération"})
        assert source.status_code == 201, source.text
        children = [{"type": "Feature", "geometry": mapping(g), "properties": {"land_use": "agriculture"}}
                    for g in (box(x, y, x + 20, y + 20), box(x + 20, y, x + 40, y + 20))]
        split = client.post(f"/parcels/{parent.json()['id']}/split", params=CRS,
                            headers={**header, "If-Match": parent.headers["ETag"]},
                            json={"occurred_on": day(1), "source_ids": [source.json()["id"]],
                                  "reason": "morcellement", "children": children})
        assert split.status_code == 201, split.text


def test_what_the_poles_write_arrives_identical_at_the_national_node(federation_nodes, tmp_path):
    national, thies, dakar = (federation_nodes[n] for n in ("national", "thies", "dakar"))
    # Each pole's reference is the national one, and its pieces were rebuilt from it.
    for pole in (thies, dakar):
        assert pole.scalar("SELECT count(*) FROM commune") == national.scalar("SELECT count(*) FROM commune")
        assert pole.scalar("SELECT count(DISTINCT code) FROM territory_piece WHERE level = 'commune'") \
            == national.scalar("SELECT count(*) FROM commune WHERE geom IS NOT NULL")

    _import_sandiara(thies, tmp_path)
    _split_in_bargny(dakar)
    assert thies.scalar("SELECT count(*) FROM parcel_version WHERE commune_code = :c", c=SANDIARA) == 6
    assert dakar.scalar("SELECT count(*) FROM parcel_lineage") == 2

    for pole, code in ((thies, "THS"), (dakar, "DKR")):
        communes = _communes(national, code)
        wait_until(lambda p=pole, c=communes: not _differences(p, national, c), timeout=90,
                   what=f"{pole.node_id}'s rows at the national node")
        assert not _differences(pole, national, communes)
    assert national.scalar("SELECT count(*) FROM parcel_version WHERE commune_code = :c", c=SANDIARA) == 6
    assert national.scalar("SELECT count(*) FROM parcel_lineage WHERE commune_code = :c", c=BARGNY) == 2
    assert national.scalar("SELECT count(*) FROM write_audit WHERE node_id = 'dakar'") > 0

    # Personal columns stay at the pole (personal = 'pole'): NULL at the national node.
    assert dakar.scalar("SELECT count(*) FROM party_version WHERE name IS NOT NULL") == 1
    received = _communes(national, "THS") + _communes(national, "DKR")
    for entry in _pole_tables(national):
        for column in entry.personal:
            assert national.scalar(f'SELECT count(*) FROM {entry.table} WHERE "{column}" IS NOT NULL '
                                   f"AND {entry.commune_column} = ANY(:c)", c=received) == 0, (entry.table, column)

    # The national node's status: both poles streaming, with their lag.
    status = json.loads(national.run("node", "status", "--json").stdout)
    assert status["role"] == "national"
    subscriptions = {s["peer"]: s for s in status["subscriptions"]}
    assert set(subscriptions) == {"thies", "dakar"}
    for sub in subscriptions.values():
        assert sub["state"] == "streaming", sub
        assert sub["enabled"] and sub["worker_pid"] and sub["slot_wal_status"] in ("reserved", "extended")
        assert isinstance(sub["lag_bytes"], int) and isinstance(sub["lag_seconds"], float)
    assert status["healthy"] is True
    # A pole sees its own subscription to the reference and the slot it keeps for the national node.
    pole_status = json.loads(thies.run("node", "status", "--json").stdout)
    assert [s["state"] for s in pole_status["subscriptions"]] == ["streaming"]
    assert [s["name"] for s in pole_status["slots"]] == ["sifc_to_national"]


def test_each_node_owns_what_the_guard_lets_it_write(federation_nodes):
    owns = "SELECT sifc_owns(:c)"
    assert federation_nodes["dakar"].scalar(owns, c=BARGNY) is True
    assert federation_nodes["thies"].scalar(owns, c=SANDIARA) is True
    assert federation_nodes["thies"].scalar(owns, c=BARGNY) is False
    assert federation_nodes["national"].scalar(owns, c=BARGNY) is False
    # The directory the national node wrote reached the poles, each pole's seal keys with it.
    directory = federation_nodes["thies"].sql("SELECT node_id, role, pole_code, jsonb_array_length(seal_keys) "
                                              "FROM federation_node ORDER BY node_id")
    assert [(r[0], r[1], r[2]) for r in directory] == [("dakar", "pole", "DKR"), ("national", "national", None),
                                                       ("thies", "pole", "THS")]
    assert all(r[3] >= 1 for r in directory)


def test_pieces_that_no_longer_match_the_reference_are_shown_and_rebuilt(federation_nodes):
    thies = federation_nodes["thies"]

    def stale() -> bool:
        return json.loads(thies.run("node", "status", "--json", "--no-probe").stdout)["pieces_stale"]

    assert stale() is False
    thies.sql("DELETE FROM territory_piece WHERE code = :c", c=SANDIARA)
    assert stale() is True
    thies.run("node", "pieces")
    assert stale() is False


def test_a_paused_subscription_says_how_to_resume_and_a_resync_copies_the_pole_again(federation_nodes):
    national, dakar = federation_nodes["national"], federation_nodes["dakar"]
    communes = _communes(national, "DKR")
    national.run("node", "pause", "dakar")
    status = json.loads(national.run("node", "status", "--json").stdout)
    paused = {s["peer"]: s for s in status["subscriptions"]}["dakar"]
    assert (paused["state"], paused["action"], status["healthy"]) == ("disabled", "sifc node resume dakar", False)
    assert "sifc node resume dakar" in national.run("node", "status", env={"COLUMNS": "200"}).stdout
    national.run("node", "resume", "dakar")

    done = national.run("node", "resync", "dakar")
    assert "sifc_from_dakar" in done.stdout, done.stdout
    assert not _differences(dakar, national, communes)
    assert national.scalar("SELECT count(*) FROM parcel_lineage WHERE commune_code = :c", c=BARGNY) == 2
    status = json.loads(national.run("node", "status", "--json").stdout)
    assert {s["peer"]: s["state"] for s in status["subscriptions"]} == {"dakar": "streaming", "thies": "streaming"}


def test_init_again_rebuilds_the_same_publications_and_replication_goes_on(federation_nodes):
    national, thies = federation_nodes["national"], federation_nodes["thies"]
    query = ("SELECT pubname, tablename, attnames::text, rowfilter FROM pg_publication_tables "
             "ORDER BY pubname, tablename")
    before = thies.sql(query)
    assert all("SN1301-sandiara" in row[3] for row in before if row[1] != "federation_heartbeat")
    thies.run("node", "init", "--role", "pole", "--pole", "THS", "--url", "http://127.0.0.1:8452")
    assert thies.sql(query) == before
    thies.run("import", "parcels", str(_sandiara_file(thies, thies.key_file.parent, 60, 2)),
              "--commune", SANDIARA, "--user", "agent-thies")
    wait_until(lambda: national.scalar("SELECT count(*) FROM parcel_version WHERE commune_code = :c",
                                       c=SANDIARA) == thies.scalar("SELECT count(*) FROM parcel_version"),
               what="the second import at the national node")


def test_a_refused_node_command_answers_one_line(federation_nodes):
    national = federation_nodes["national"]
    for args in (("node", "init", "--role", "pole", "--url", "http://x"),
                 ("node", "subscribe", "--to", "host=127.0.0.1 port=5454 dbname=sifc user=postgres connect_timeout=2"),
                 ("node", "resync", "nowhere")):
        done = national.run(*args, check=False)
        assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout, done.stderr
        assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr


def test_the_national_node_knows_the_age_of_each_poles_data(federation_nodes):
    national = federation_nodes["national"]
    for pole in ("thies", "dakar"):
        federation_nodes[pole].run("node", "beat")

    def ages() -> dict:
        found = json.loads(national.run("node", "status", "--json", "--no-probe").stdout)["data_age"]
        return found if found and all(age is not None for age in found.values()) else {}

    found = wait_until(ages, timeout=60, interval=1, what="both poles' heartbeats at the national node")
    assert set(found) == {"thies", "dakar"} and all(0 <= age < 120 for age in found.values()), found
    assert "thies" in national.run("node", "status", env={"COLUMNS": "200"}).stdout


def _refused(peer: Any, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
        peer.execute(statement)
    assert raised.value.sqlstate == "42501"


def test_the_replication_role_reads_the_published_columns_only_and_replication_goes_on(federation_nodes):
    national, thies = federation_nodes["national"], federation_nodes["thies"]
    assert thies.sql("SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles "
                     "WHERE rolname = 'sifc_replication'") == [(False, True, True)]
    # A grant made by hand is taken back by the next `sifc node init` (the role holds its own grants only).
    thies.sql("GRANT SELECT ON app_user TO sifc_replication")
    thies.run("node", "init", "--role", "pole", "--pole", "THS", "--url", "http://127.0.0.1:8452")
    with thies.engine.connect() as conn:
        published = {entry.table: registry.published_columns(conn, entry, "pole")
                     for entry in registry.owned_by("pole")}
    with psycopg.connect(thies.replication_conninfo, autocommit=True) as peer:
        _refused(peer, "SELECT name FROM party_version")  # a personal column
        for statement in ("SELECT id_number FROM party_version", 'SELECT "before", "after" FROM write_audit',
                          "SELECT content FROM source_file", "SELECT count(*) FROM app_user",
                          "SELECT count(*) FROM api_key", "SELECT count(*) FROM refresh_token",
                          "SELECT count(*) FROM import_job", "SELECT legal_basis FROM sifc_node",
                          "SELECT count(*) FROM territory_piece"):
            _refused(peer, statement)
        for table, columns in published.items():  # the publications' columns, as the initial copy reads them
            listed = ", ".join(f'"{column}"' for column in columns)
            peer.execute(f'SELECT {listed} FROM "{table}" LIMIT 1').fetchall()
        assert peer.execute("SELECT node_id, role, pole_code, url, personal, seal_keys FROM sifc_node"
                            ).fetchone()[:2] == ("thies", "pole")
        assert peer.execute("SELECT version_num FROM alembic_version").fetchone() is not None
        peer.execute("SELECT count(*) FROM parcel_version").fetchone()  # rows: their published columns
    with psycopg.connect(national.replication_conninfo, autocommit=True) as peer:
        _refused(peer, "SELECT count(*) FROM app_user")
        _refused(peer, "SELECT name FROM party_version")  # the national node publishes no registry table
        assert peer.execute("SELECT count(*) FROM commune").fetchone()[0] > 0
    # Replication goes on as sifc_replication: Thiès's next heartbeat reaches the national node.
    thies.run("node", "beat")
    beat = thies.scalar("SELECT beat_at FROM federation_heartbeat WHERE node_id = 'thies'")
    wait_until(lambda: national.scalar("SELECT beat_at FROM federation_heartbeat WHERE node_id = 'thies'") == beat,
               what="Thiès's heartbeat at the national node")
    status = json.loads(national.run("node", "status", "--json").stdout)
    assert {s["peer"]: s["state"] for s in status["subscriptions"]} == {"dakar": "streaming", "thies": "streaming"}


# --- the API of each node: writes go to the owner; a seal verifies anywhere ------------------------------------

NOT_OWNER = "urn:sifc:problem:federation.not-owner"


def _key(node: Node, role: str, *scope: str) -> dict[str, str]:
    """Headers of an API key made at ``node`` with ``sifc keys create`` (keys are per node)."""
    args = [arg for code in scope for arg in ("--scope", code)]
    done = node.run("keys", "create", "--name", f"api-{role}", "--role", role, *args)
    return {"X-API-Key": done.stdout.strip().splitlines()[-1]}


def _client(node: Node) -> TestClient:
    """The real app over the node's database, keys and node id (enter it as a context)."""
    return TestClient(create_app(node.settings(public_url="http://testserver", allowed_hosts=["testserver"],
                                               node_id=node.node_id)))


def _free_sandiara_spot(thies: Node) -> tuple[float, float]:
    """A corner (UTM 28N) of a 20 m square well inside Sandiara that no parcel at Thiès touches."""
    row = thies.sql("""
        SELECT ST_X(p), ST_Y(p) FROM commune c,
             LATERAL (SELECT ST_Translate(ST_PointOnSurface(ST_Buffer(c.geom, -300)), dx * 100, -400) p
                      FROM generate_series(0, 30) dx) s
        WHERE c.code = :c AND ST_Covers(c.geom, ST_Buffer(p, 60))
          AND NOT EXISTS (SELECT 1 FROM parcel_version v WHERE v.valid_to IS NULL AND ST_DWithin(v.geom, p, 60))
        ORDER BY ST_X(p) LIMIT 1""", c=SANDIARA)
    assert row, "no free spot in Sandiara"
    return float(row[0][0]), float(row[0][1])


def _parcel_in(x: float, y: float, land_use: str = "agriculture") -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(box(x, y, x + 20, y + 20)),
            "properties": {"reason": "levé", "land_use": land_use}}


def _written(node: Node) -> tuple[int, int]:
    """What the node holds of Sandiara's parcels, and the writes it audited itself."""
    return (node.scalar("SELECT count(*) FROM parcel_version WHERE commune_code = :c", c=SANDIARA),
            node.scalar("SELECT count(*) FROM write_audit WHERE node_id = :n", n=node.node_id))


def _refused_by_the_guard(node: Node, statement: str, **params: Any) -> str:
    """The SQLSTATE of ``statement`` run as the service's role on ``node`` (rolled back either way)."""
    import psycopg

    url = node.cluster.service_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('sifc.actor', 'tests', true)")  # as the service names its writer
        try:
            conn.execute(statement, params)
        except psycopg.Error as error:
            conn.rollback()
            return str(error.sqlstate)
        conn.rollback()
    return "00000"


INSERT_VERSION = """
    INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, geom, land_use, action, author)
    VALUES (gen_random_uuid(), 1, 'absent', %(commune)s,
            ST_Multi(ST_MakeEnvelope(%(x)s, %(y)s, %(x)s + 20, %(y)s + 20, 32628)),
            'agriculture', 'create', 'tests')"""


def test_a_write_into_a_commune_of_thies_is_refused_at_the_national_node_and_at_dakar(
        federation_nodes: dict[str, Node]) -> None:
    national, thies, dakar = (federation_nodes[n] for n in ("national", "thies", "dakar"))
    # Thiès's URL as the directory holds it: written by the national node, replicated to Dakar.
    thies_url = national.scalar("SELECT url FROM federation_node WHERE node_id = 'thies'")
    assert thies_url == "http://127.0.0.1:8452"
    assert dakar.scalar("SELECT url FROM federation_node WHERE node_id = 'thies'") == thies_url
    x, y = _free_sandiara_spot(thies)
    officer = _key(thies, "agent_foncier", f"commune:{SANDIARA}")
    with _client(thies) as client:
        own = client.post("/parcels", params=CRS, headers=officer, json=_parcel_in(x, y))
        assert own.status_code == 201, own.text
    parcel = own.json()["id"]
    wait_until(lambda: national.scalar("SELECT count(*) FROM parcel_version WHERE parcel_id = :p", p=parcel),
               what="Thiès's parcel at the national node")

    admins = {node.node_id: _key(node, "administrateur") for node in (national, dakar)}
    before = {node.node_id: _written(node) for node in (national, dakar)}
    for node in (national, dakar):
        with _client(node) as client:
            admin = admins[node.node_id]
            attempts = [client.post("/parcels", params=CRS, headers=admin, json=_parcel_in(x + 40, y))]
            if node is national:  # Dakar holds none of Thiès's parcels: nothing there to modify
                etag = client.get(f"/parcels/{parcel}").headers["ETag"]
                attempts.append(client.patch(f"/parcels/{parcel}", params=CRS, headers={**admin, "If-Match": etag},
                                             json={"type": "Feature", "geometry": None,
                                                   "properties": {"land_use": "habitation", "reason": "test"}}))
            for refused in attempts:
                assert refused.status_code == 403, (node.node_id, refused.text)
                assert refused.headers["content-type"].startswith("application/problem+json")
                body = refused.json()
                assert (body["type"], body["commune"], body["owner_node"], body["owner_url"]) == (
                    NOT_OWNER, SANDIARA, "thies", thies_url), (node.node_id, body)
        # The database refuses the service's role the same write, whoever forgot to ask.
        assert _refused_by_the_guard(node, INSERT_VERSION, commune=SANDIARA, x=x + 40, y=y) == "SF403"
        if node is national:
            assert _refused_by_the_guard(node, "UPDATE parcel_version SET valid_to = now(), closed_by = 'tests' "
                                               "WHERE parcel_id = %(p)s AND valid_to IS NULL", p=parcel) == "SF403"
    assert {node.node_id: _written(node) for node in (national, dakar)} == before

    # At Thiès the same writes pass, and reach the national node.
    with _client(thies) as client:
        created = client.post("/parcels", params=CRS, headers=officer, json=_parcel_in(x + 40, y))
        assert created.status_code == 201, created.text
        etag = client.get(f"/parcels/{parcel}").headers["ETag"]
        changed = client.patch(f"/parcels/{parcel}", params=CRS, headers={**officer, "If-Match": etag},
                               json={"type": "Feature", "geometry": None,
                                     "properties": {"land_use": "habitation", "reason": "test"}})
        assert changed.status_code == 200, changed.text
    wait_until(lambda: national.scalar(
        "SELECT count(*) FROM parcel_version WHERE valid_to IS NULL AND (parcel_id = :new "
        "OR (parcel_id = :p AND land_use = 'habitation'))", new=created.json()["id"], p=parcel) == 2,
        what="Thiès's writes at the national node")


def test_a_document_sealed_at_thies_verifies_at_the_national_node_and_by_its_seal_at_dakar(
        federation_nodes: dict[str, Node]) -> None:
    national, thies, dakar = (federation_nodes[n] for n in ("national", "thies", "dakar"))
    from pypdf import PdfReader

    x, y = _free_sandiara_spot(thies)
    officer = _key(thies, "agent_foncier", f"commune:{SANDIARA}")
    with _client(thies) as client:
        parcel = client.post("/parcels", params=CRS, headers=officer, json=_parcel_in(x, y))
        assert parcel.status_code == 201, parcel.text
        fiche = client.get(f"/parcels/{parcel.json()['id']}/fiche.pdf", headers=officer)
        assert fiche.status_code == 200, fiche.text
    pdf = fiche.content
    metadata = PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None
    code, kid = str(metadata["/SIFCCode"]), str(metadata["/SIFCKeyId"])
    assert kid.startswith("thies-")
    wait_until(lambda: national.scalar("SELECT count(*) FROM issued_document WHERE code = :c", c=code),
               what="the issued document at the national node")

    def verify(node: Node, content: bytes) -> dict[str, Any]:
        with _client(node) as client:
            answer = client.post("/documents/verify",
                                 files={"file": ("fiche.pdf", io.BytesIO(content), "application/pdf")})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    at_national = verify(national, pdf)
    assert (at_national["authentic"], at_national["sealed_by_node"], at_national["verified_by"]) == (
        True, "thies", "register"), at_national
    assert at_national["certifies"]["parcel"]["id"] == parcel.json()["id"]
    assert at_national["certifies"]["parcel"]["commune_code"] == SANDIARA
    index = pdf.index(b"/Producer")
    flipped = pdf[:index] + b"/Producex" + pdf[index + 9:]  # one byte of the file, outside the sealed facts
    changed = verify(national, flipped)
    assert (changed["authentic"], changed["reason"]) == (False, "file_changed"), changed

    # Dakar's register holds no row of Thiès: the seal alone, with Thiès's key from the replicated directory.
    assert dakar.scalar("SELECT count(*) FROM issued_document WHERE code = :c", c=code) == 0
    assert dakar.scalar("SELECT count(*) FROM federation_node, jsonb_array_elements(seal_keys) k "
                        "WHERE node_id = 'thies' AND k ->> 'kid' = :kid", kid=kid) == 1
    at_dakar = verify(dakar, pdf)
    assert (at_dakar["authentic"], at_dakar["sealed_by_node"], at_dakar["verified_by"]) == (
        True, "thies", "seal"), at_dakar


# --- a pole's first load of a commune, then a re-import with changes, complete at the national node ------------

LOAD_COLUMNS, LOAD_ROWS, LOAD_PITCH = 60, 50, 25.0  # 3,000 parcels of 20 m, 5 m apart


def _free_sandiara_area(thies: Node, width: float, height: float) -> tuple[float, float]:
    """The south-west corner of a ``width`` × ``height`` m area of Sandiara, 100 m inside it, no parcel near."""
    row = thies.sql("""
        SELECT x, y FROM commune c,
             LATERAL (SELECT ST_XMin(c.geom) + i * 1000 AS x, ST_YMin(c.geom) + j * 1000 AS y
                      FROM generate_series(0, 30) i, generate_series(0, 30) j) s
        WHERE c.code = :c AND ST_Covers(ST_Buffer(c.geom, -100), ST_MakeEnvelope(x, y, x + :w, y + :h, 32628))
          AND NOT EXISTS (SELECT 1 FROM parcel_version v
                          WHERE ST_DWithin(v.geom, ST_MakeEnvelope(x, y, x + :w, y + :h, 32628), 200))
        ORDER BY y DESC, x LIMIT 1""", c=SANDIARA, w=width, h=height)
    assert row, "no free area in Sandiara"
    return float(row[0][0]), float(row[0][1])


def _load_file(path, squares: list[tuple[str, Any, str]]):
    """A shapefile of (NICAD, shape, use) rows, as a surveyor's tool writes it (EPSG:32628)."""
    import numpy as np
    import shapely
    from pyogrio.raw import write

    write(path, shapely.to_wkb(np.array([s[1] for s in squares], dtype=object)),
          [np.array([s[0] for s in squares], dtype=object), np.array([s[2] for s in squares], dtype=object)],
          ["NICAD", "USAGE"], driver="ESRI Shapefile", geometry_type="Polygon", crs="EPSG:32628", encoding="UTF-8")
    return path


def _registry_sum(node: Node, communes: list[str]) -> tuple[int, int, str]:
    """Versions, current ones, and an md5 of every version's id, number, state, NICAD and geometry (EWKB)."""
    row = node.sql("""
        SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL),
               md5(coalesce(string_agg(concat_ws('|', parcel_id, version, valid_to IS NULL, nicad, nicad_status,
                                                 land_use, encode(ST_AsEWKB(geom), 'hex')),
                                       ';' ORDER BY parcel_id, version), ''))
        FROM parcel_version WHERE commune_code = ANY(:c)""", c=communes)[0]
    return int(row[0]), int(row[1]), str(row[2])


def test_a_poles_first_load_and_its_reimport_arrive_complete_at_the_national_node(federation_nodes, tmp_path):
    national, thies = federation_nodes["national"], federation_nodes["thies"]
    communes = _communes(national, "THS")
    x, y = _free_sandiara_area(thies, LOAD_COLUMNS * LOAD_PITCH, (LOAD_ROWS + 2) * LOAD_PITCH)

    def at(i: int, dx: float = 0.0):
        column, row = i % LOAD_COLUMNS, i // LOAD_COLUMNS
        x0, y0 = x + column * LOAD_PITCH + dx, y + row * LOAD_PITCH
        return box(x0, y0, x0 + 20, y0 + 20)

    total = LOAD_COLUMNS * LOAD_ROWS
    nicads = [f"13010104{i:05d}" for i in range(total)]
    before = _registry_sum(thies, communes)
    # The last parcel and a copy of it under another NICAD overlap: the overlap is found once the parcel is
    # written (a first load is streamed), so it is withdrawn from the uncommitted batch; that must replicate too.
    first = _load_file(tmp_path / "premier_chargement.shp", [(n, at(i), "habitation") for i, n in enumerate(nicads)]
                       + [("1301010499999", at(total - 1), "habitation")])
    thies.run("import", "parcels", str(first), "--commune", SANDIARA, "--user", "agent-thies")
    loaded = _registry_sum(thies, communes)
    assert loaded[:2] == (before[0] + total - 1, before[1] + total - 1)
    wait_until(lambda: _registry_sum(national, communes) == loaded, timeout=120,
               what="the first load at the national node")

    # A re-import: 100 parcels moved 5 cm, 100 with another use, 500 as they were, a row of new ones beside.
    moved, renamed, same = range(0, 100), range(100, 200), range(200, 700)
    second = _load_file(tmp_path / "reprise.shp",
                        [(nicads[i], at(i, 0.05), "habitation") for i in moved]
                        + [(nicads[i], at(i), "commerce") for i in renamed]
                        + [(nicads[i], at(i), "habitation") for i in same]
                        + [(f"13010105{k:05d}", at(total + k), "habitation") for k in range(LOAD_COLUMNS)])
    thies.run("import", "parcels", str(second), "--commune", SANDIARA, "--user", "agent-thies")
    changed = len(moved) + len(renamed)
    reloaded = _registry_sum(thies, communes)
    assert reloaded[:2] == (loaded[0] + changed + LOAD_COLUMNS, loaded[1] + LOAD_COLUMNS)
    wait_until(lambda: _registry_sum(national, communes) == reloaded, timeout=120,
               what="the re-import at the national node")
    # One current version per parcel there too, and every other table of the pole's communes identical.
    assert national.scalar("""
        SELECT count(*) FROM (SELECT parcel_id FROM parcel_version WHERE commune_code = ANY(:c)
                              GROUP BY parcel_id HAVING count(*) FILTER (WHERE valid_to IS NULL) <> 1) t""",
                           c=communes) == 0
    wait_until(lambda: not _differences(thies, national, communes), timeout=60,
               what="the pole's tables at the national node")
