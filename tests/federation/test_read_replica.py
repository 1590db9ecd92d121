"""Reads on a streaming replica (``SIFC_READ_DATABASE_URL``): the read pool there, every write on the primary.

A primary cluster with the project's database and a streaming replica of it made with ``pg_basebackup -R``
(throwaway clusters on ports 5465 and 5466), the real app (lifespan, pools) between them: the parcels written
at the primary are read from the replica by the routes that tolerate its lag (the parcels at a point, the
tiles); while the replica's replay is paused those routes show the old data and the parcel's own page (the
primary) the new one; with the replica stopped they answer a clean 503 problem, and writes still work.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from sifc.settings import Settings
from tests.federation.clusters import Node, NodeSpec, drop_nodes, make_nodes, streaming_replica, wait_until

PRIMARY = NodeSpec("primary", 5465, reference=True)
REPLICA_PORT = 5466
BARGNY = "SN0104-bargny"


@pytest.fixture(scope="module")
def primary_and_replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    nodes = list(make_nodes(tmp_path_factory.mktemp("read-replica"), PRIMARY).values())
    try:
        nodes.append(streaming_replica(nodes[0], REPLICA_PORT))
        yield nodes[0], nodes[1]
    finally:
        drop_nodes(nodes)


def _caught_up(primary: Node, replica: Node) -> None:
    """Wait until the replica has replayed everything the primary wrote so far."""
    target = primary.scalar("SELECT pg_current_wal_lsn()::text")
    wait_until(lambda: replica.scalar("SELECT pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)", lsn=target),
               timeout=30, interval=0.1, what="the replica's replay")


def _tile(lon: float, lat: float, z: int) -> str:
    """The path of the parcels' tile (WebMercatorQuad) at ``z`` holding a point."""
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return f"/tiles/parcels/{z}/{int((lon + 180) / 360 * n)}/{int(y)}.mvt"


def _land_use_at(client: TestClient, lon: float, lat: float) -> str:
    answer = client.get("/parcels/at", params={"lon": lon, "lat": lat})
    assert answer.status_code == 200, answer.text
    features = answer.json()["features"]
    assert len(features) == 1
    return str(features[0]["properties"]["land_use"])


def test_reads_from_the_replica_writes_on_the_primary(primary_and_replica: tuple[Node, Node]) -> None:
    primary, replica = primary_and_replica
    key = primary.run("keys", "create", "--name", "replica-test", "--role", "administrateur")
    headers = {"X-API-Key": key.stdout.strip().splitlines()[-1]}
    # TestClient sends "Host: testserver" (tests/conftest.py's settings allow it the same way).
    app_settings = primary.settings(public_url="http://testserver", allowed_hosts=["testserver"],
                                    read_database_url=replica.cluster.service_url, read_timeout_s=2.0)
    # A 20 m square in Bargny's centre (UTM 28N), and the WGS 84 point in its middle.
    x, y = primary.sql("SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(-17.2283, 14.6933), 4326), "
                       "32628) AS p")[0]
    lon, lat = primary.sql("SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 32628), "
                           "4326) AS p", x=x + 10, y=y + 10)[0]
    square = [[[x, y], [x + 20, y], [x + 20, y + 20], [x, y + 20], [x, y]]]

    with TestClient(create_app(app_settings)) as client:
        created = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers, json={
            "type": "Feature", "geometry": {"type": "Polygon", "coordinates": square},
            "properties": {"reason": "levé", "land_use": "agriculture", "commune_code": BARGNY}})
        assert created.status_code == 201, created.text
        parcel_id = created.json()["id"]
        _caught_up(primary, replica)
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["read_replica"] is True
        assert health["read_replay_lag_s"] is not None and health["read_replay_lag_s"] >= 0
        assert "sifc_app" not in str(health) and str(REPLICA_PORT) not in str(health)  # no URL, no password
        before = _land_use_at(client, lon, lat)
        assert before == "agriculture"
        # The read pool's connections are on the replica (the engine never connects there).
        assert replica.scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sifc-api'") >= 1

        # Replay paused: the primary takes the write and shows it at once; the replica's routes lag behind.
        replica.sql("SELECT pg_wal_replay_pause()")
        page = client.get(f"/parcels/{parcel_id}")
        assert page.status_code == 200, page.text
        after = "espace vert" if before != "espace vert" else "commerce"
        patched = client.patch(f"/parcels/{parcel_id}", headers={**headers, "If-Match": page.headers["ETag"]},
                               json={"type": "Feature", "geometry": None,
                                     "properties": {"land_use": after, "reason": "usage constaté"}})
        assert patched.status_code == 200, patched.text
        assert client.get(f"/parcels/{parcel_id}").json()["properties"]["land_use"] == after
        assert _land_use_at(client, lon, lat) == before
        lagging = client.get("/health").json()["read_replay_lag_s"]
        assert lagging is not None and lagging > 0
        replica.sql("SELECT pg_wal_replay_resume()")
        _caught_up(primary, replica)
        assert _land_use_at(client, lon, lat) == after

        # Replica down: the lag-tolerant reads answer 503 problems; writes and the primary's reads go on.
        replica.stop()
        for path, params in (("/parcels/at", {"lon": lon, "lat": lat}), (_tile(lon, lat, 16), {})):
            refused = client.get(path, params=params, headers={"Accept-Language": "fr"})
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "Traceback" not in refused.text and "5466" not in refused.text
        health = client.get("/health").json()
        assert health["status"] == "degraded" and health["read_replica"] is True
        page = client.get(f"/parcels/{parcel_id}")
        again = client.patch(f"/parcels/{parcel_id}", headers={**headers, "If-Match": page.headers["ETag"]},
                             json={"type": "Feature", "geometry": None,
                                   "properties": {"land_use": before, "reason": "usage corrigé"}})
        assert again.status_code == 200, again.text
        assert client.get(f"/parcels/{parcel_id}").json()["properties"]["land_use"] == before


def test_without_a_replica_the_read_pool_is_the_primary(settings: Settings) -> None:
    """Unset (or blank), the read pool reads the primary and /health says so."""
    assert settings.read_database_url is None and settings.read_url == settings.db_url
    assert settings.read_replica is False
    blank = Settings(database_url=settings.database_url, read_database_url=" ")
    assert blank.read_database_url is None and blank.read_replica is False
    other = Settings(database_url=settings.database_url, read_database_url="postgresql://u:p@replica:5432/sifc")
    assert other.read_replica is True and other.read_url.drivername == "postgresql+psycopg"
