"""``sifc serve`` with two HTTP processes (SIFC_WORKERS=2): both serve, the node's own tasks run once, it stops cleanly."""

from __future__ import annotations

import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from shapely.geometry import shape

from sifc.settings import Settings
from tests.e2e.helpers import free_port, get, run_cli, start_server


@pytest.fixture(scope="module")
def demo(fresh_db: Settings) -> Settings:
    done = run_cli(fresh_db, "demo", "load")
    assert done.returncode == 0, done.stderr
    return fresh_db


def _children(pid: int) -> dict[int, str]:
    """The child processes of ``pid`` and their command lines."""
    found: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found[int(child)] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_workers_serve_alike_and_stop_cleanly(demo, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    server = start_server(demo, port, log, extra_env={"SIFC_WORKERS": "2", "SIFC_IMPORT_WORKERS": "1"})
    try:
        children = _children(server.pid)
        # The import worker is the parent's, once; the two HTTP processes are uvicorn's spawned children.
        assert sum(" cli worker " in command for command in children.values()) == 1, children
        assert sum("spawn_main" in command for command in children.values()) == 2, children
        assert all(not _children(pid) for pid in children)  # no HTTP process starts workers of its own

        status, _, page = get(f"{base}/communes/SN0104-bargny/parcels?limit=5")
        assert status == 200
        features = json.loads(page)["features"]
        points = [shape(f["geometry"]).representative_point() for f in features]
        queries = [f"/parcels/at?lon={p.x!r}&lat={p.y!r}" for p in points]
        with ThreadPoolExecutor(8) as pool:  # enough at once that both processes answer
            answers = list(pool.map(lambda q: get(base + q), queries * 8))
        for (status, headers, body), feature in zip(answers, features * 8, strict=True):
            assert status == 200 and headers["content-type"] == "application/geo+json"
            assert feature["id"] in [f["id"] for f in json.loads(body)["features"]]
        for query in queries:  # the plain query's path and FastAPI's route give the same bytes
            assert get(base + query)[2] == get(base + query + "&_=1")[2]

        status, headers, body = get(f"{base}/parcels/at?lon=200&lat=14")
        assert status == 422 and headers["content-type"] == "application/problem+json"
        request = urllib.request.Request(f"{base}/health", method="HEAD")  # a head with no body still leaves
        try:
            urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as error:
            assert error.code == 405 and error.headers["content-type"] == "application/problem+json"
    finally:
        server.terminate()
        code = server.wait(timeout=30)
    assert code == 0
    deadline = time.monotonic() + 10  # the import worker and multiprocessing's tracker see their parent gone
    while time.monotonic() < deadline and (left := {pid: c for pid, c in children.items() if _alive(pid)}):
        time.sleep(0.2)
    assert not left, left
    text = log.read_text()
    assert "Traceback" not in text
    assert text.count('"GET /parcels/at?') >= 8 * len(queries)  # every answer has its access-log line
    assert text.count("Started server process") == 2
