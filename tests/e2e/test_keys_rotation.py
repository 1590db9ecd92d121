"""Signing keys across processes: the server makes its private key file on its first
start, ``sifc keys rotate`` changes the keys while it runs, and every document issued before still verifies."""

from __future__ import annotations

import json
import stat
import urllib.request
import uuid

from sifc.documents import verification
from tests.conftest import env_for
from tests.e2e.helpers import get, run_cli, serving


def _verify(base: str, pdf: bytes) -> dict:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fiche.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode() + pdf + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}/documents/verify", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_documents_verify_across_a_rotation_made_by_the_command_line(fresh_db, tmp_path):
    key_file = tmp_path / "state" / "keys" / "signing-keys.json"
    env = {**env_for(fresh_db), "SIFC_KEY_FILE": str(key_file)}
    loaded = run_cli(fresh_db, "demo", "load", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert not key_file.exists()
    with serving(fresh_db, tmp_path / "server.log", extra_env={"SIFC_KEY_FILE": str(key_file)}) as base:
        # Made on the first start, for the service's user alone; no secret typed by anyone.
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert str(key_file) in (tmp_path / "server.log").read_text()
        status, _, page = get(f"{base}/communes/SN0104-bargny/parcels?limit=1")
        assert status == 200, page[:300]
        parcel = json.loads(page)["features"][0]["id"]
        status, _, before = get(f"{base}/parcels/{parcel}/fiche.pdf", timeout=60)
        assert status == 200, before[:300]

        rotated = run_cli(fresh_db, "keys", "rotate", "--kind", "seal", env=env)
        assert rotated.returncode == 0, rotated.stderr
        status, _, after = get(f"{base}/parcels/{parcel}/fiche.pdf", timeout=60)
        assert status == 200, after[:300]
        first, second = verification.read(before).key_id, verification.read(after).key_id
        assert first and second and first != second and second in rotated.stdout

        assert _verify(base, before)["status"] == "authentique"
        assert _verify(base, after)["status"] == "authentique"
        assert _verify(base, before.replace(b"/Producer", b"/Producex", 1))["status"] == "non authentique"

    listed = run_cli(fresh_db, "keys", "signing", env=env)
    assert listed.returncode == 0, listed.stderr
    assert first in listed.stdout and second in listed.stdout
    assert key_file.read_bytes().decode() not in listed.stdout  # ids only, never the keys
