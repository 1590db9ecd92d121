"""Three nodes replicating: what Thiès imports and Dakar splits arrives at the national node, identical.

National (5451) holds the reference; Thiès (5452, pole THS: Sandiara) and Dakar (5453, pole DKR: Bargny)
take it from there (``sifc node subscribe`` on a node about to become a pole), become poles (``sifc node
init``), and the national node subscribes to both. Thiès imports a GeoPackage of Sandiara parcels with
``sifc import parcels``; Dakar records a parcel of Bargny, a party and a split over its own API. At the
national node every pole-owned table then holds, for each pole's communes, the same rows as the pole over
the published columns (counts and md5 in key order), the personal columns NULL (default policy), and
``sifc node status --json`` shows both subscriptions streaming.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import geopandas as gpd
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
    national.run("node", "init", "--role", "national", "--url", "http://127.0.0.1:8451")
    # The poles take the reference from the national node first, then know their communes.
    _run_all((thies, ("node", "subscribe", "--to", national.conninfo)),
             (dakar, ("node", "subscribe", "--to", national.conninfo)))
    _run_all((thies, ("node", "init", "--role", "pole", "--pole", "THS", "--url", "http://127.0.0.1:8452")),
             (dakar, ("node", "init", "--role", "pole", "--pole", "DKR", "--url", "http://127.0.0.1:8453")))
    national.run("node", "subscribe", "--to", thies.conninfo)
    national.run("node", "subscribe", "--to", dakar.conninfo)
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
