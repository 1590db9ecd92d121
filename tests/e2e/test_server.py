"""The real server process over real HTTP."""

import json
import signal

from tests.e2e.helpers import free_port, get, start_server


def test_server_answers_health_and_locate_then_survives_a_kill(fresh_db, tmp_path):
    port = free_port()
    server = start_server(fresh_db, port, tmp_path / "server.log")
    try:
        status, headers, body = get(f"http://127.0.0.1:{port}/health")
        assert status == 200 and json.loads(body)["postgis"].startswith("PostGIS")
        status, _, body = get(f"http://127.0.0.1:{port}/locate?lon=-17.2283&lat=14.6933")
        assert status == 200 and json.loads(body)["commune"]["code"] == "SN0104-bargny"
        status, headers, body = get(f"http://127.0.0.1:{port}/locate?lon=-17&lat=91")
        assert status == 422 and headers["content-type"] == "application/problem+json"
        status, headers, _ = get(f"http://127.0.0.1:{port}/communes?limit=2")
        assert status == 200 and headers["content-type"] == "application/geo+json"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
    # Killed mid-life, it leaves nothing behind that stops a new one from serving.
    server = start_server(fresh_db, port, tmp_path / "server2.log")
    try:
        assert get(f"http://127.0.0.1:{port}/health")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert "Traceback" not in (tmp_path / "server.log").read_text()
