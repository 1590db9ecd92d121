"""The README's walk-through of ``sifc node demo``, as a new user types it (docs/federation.md).

``sifc node demo`` on ports of its own (5457-5459, clusters ``sifc_tdemo_*``, so a user's demo on 5461-5463
is left alone) and a temporary directory; ``sifc serve`` of the national node; Sandiara's parcels imported at
Thiès with the node's environment file, until the national node's OGC features show them all; ``sifc node
status --json`` at the national node, healthy; the link to Thiès cut (``--cut thies``) while Thiès imports
Mont-Rolland, then restored (``--restore thies``): the national node catches up; ``--down`` leaves no cluster.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sifc.federation import local_clusters
from tests.conftest import REPO
from tests.federation.clusters import SIFC, wait_until

PORT, LABEL = 5457, "tdemo"
OPTIONS = ("--port", str(PORT), "--label", LABEL)
NATIONAL_HTTP = PORT + 3000
NODES = ("national", "dakar", "thies")


def _sifc(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*SIFC, *args], cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"sifc {' '.join(args)}: {done.stderr or done.stdout}"
    return done


def _env(file: Path) -> dict[str, str]:
    """The variables of a node's ``<node>.env`` (``export K=V`` lines, as a shell reads them)."""
    return dict(shlex.split(line.removeprefix("export "))[0].split("=", 1)
                for line in file.read_text().splitlines() if line.startswith("export "))


def _ours() -> list[str]:
    return [name for name in local_clusters.listed() if name.startswith(f"{local_clusters.PREFIX}{LABEL}_")]


def _parcels_in(file: Path) -> int:
    with sqlite3.connect(file) as conn:
        return int(conn.execute("SELECT count(*) FROM parcelles").fetchone()[0])


def _items(commune: str) -> int:
    url = f"http://127.0.0.1:{NATIONAL_HTTP}/ogc/collections/parcels/items?commune_code={commune}&limit=1000"
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback, the test's own server)
        return len(json.load(answer)["features"])


def _status(env: dict[str, str]) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(_sifc("node", "status", "--json", env=env).stdout)
    return status


def _subscription(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["subscriptions"] if s["name"] == name)


@contextmanager
def _serving(env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    with log.open("wb") as handle:
        process = subprocess.Popen([*SIFC, "serve", "--port", str(port), "--import-workers", "0"], cwd=REPO,
                                   env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):  # noqa: S310
                    return True
            except OSError:
                assert process.poll() is None, log.read_text()[-2000:]
                return False

        wait_until(up, timeout=60, what="sifc serve at the national node")
        yield
    finally:
        process.terminate()
        process.wait(30)


def test_the_readme_walk_through_of_the_demo(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    try:
        made = _sifc("node", "demo", "--dir", str(directory), *OPTIONS, timeout=600).stdout
        assert sorted(_ours()) == sorted(f"sifc_{LABEL}_{node}" for node in NODES)
        env = {node: _env(directory / f"{node}.env") for node in NODES}
        sandiara, mont_rolland = directory / "sandiara.gpkg", directory / "mont-rolland.gpkg"
        assert f"node demo --cut thies --port {PORT} --label {LABEL}" in made
        assert f"import parcels {sandiara}" in made

        with _serving(env["national"], NATIONAL_HTTP, tmp_path / "serve-national.log"):
            expected = _parcels_in(sandiara)
            assert expected > 100
            _sifc("import", "parcels", str(sandiara), env=env["thies"])
            wait_until(lambda: _items("SN1301-sandiara") == expected, timeout=60,
                       what="Sandiara's parcels in the national node's OGC features")

            _sifc("node", "beat", env=env["thies"])
            status = wait_until(lambda: (s := _status(env["national"]))["data_age"].get("thies") is not None and s,
                                timeout=30, what="Thiès's heartbeat at the national node")
            assert status["role"] == "national" and status["healthy"] is True
            assert {s["peer"]: s["state"] for s in status["subscriptions"]} == {"dakar": "streaming",
                                                                               "thies": "streaming"}

            _sifc("node", "demo", "--cut", "thies", *OPTIONS)
            _sifc("import", "parcels", str(mont_rolland), env=env["thies"])  # the pole goes on writing
            cut = wait_until(lambda: (s := _status(env["national"])) and
                             _subscription(s, "sifc_from_thies")["state"] == "unreachable" and s,
                             timeout=30, what="Thiès unreachable from the national node")
            assert cut["healthy"] is False
            assert "Connection refused" in _subscription(cut, "sifc_from_thies")["publisher_error"]
            assert _items("SN1303-mont-rolland") == 0

            _sifc("node", "demo", "--restore", "thies", *OPTIONS)
            wait_until(lambda: _items("SN1303-mont-rolland") == _parcels_in(mont_rolland), timeout=60,
                       what="Mont-Rolland's parcels at the national node after the link is restored")
            wait_until(lambda: _status(env["national"])["healthy"], timeout=30, what="a healthy national node")
    finally:
        _sifc("node", "demo", "--down", *OPTIONS)
    assert _ours() == []
