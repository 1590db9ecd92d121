#!/usr/bin/env python3
"""Read every /ogc collection of a running SIFC server with QGIS's OGC API - Features provider ("OAPIF").

Run with the system Python that has QGIS (Debian: ``apt-get install python3-qgis qgis-providers``)::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/check_qgis.py http://127.0.0.1:8000 [SERVER_LOG]

Each collection is added as a layer, its features counted (QGIS follows the pages itself), then the
parcels layer gets a subset string. With SERVER_LOG (the server's access log), the report says which
requests QGIS made for each step and whether the filter reached the server. Exit code 0 when every
layer is valid and every count matches the server's own answers.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import Qgis, QgsApplication, QgsFeatureRequest, QgsProviderRegistry, QgsVectorLayer  # noqa: E402

SUBSET = "land_use = 'commerce'"


def fetch(url: str) -> dict:
    """A JSON document of the server."""
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def server_count(base: str, collection: str, query: str = "") -> int:
    """Features of a collection, counted by paging through the server directly."""
    total, url = 0, f"{base}/ogc/collections/{collection}/items?limit=1000{query}"
    while url:
        page = fetch(url)
        total += page["numberReturned"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), "")
    return total


class Log:
    """New lines of the server's access log since the last look."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.seen = self._size()

    def _size(self) -> int:
        return self.path.stat().st_size if self.path and self.path.exists() else 0

    def requests(self) -> list[str]:
        """The request lines (``GET /ogc/... HTTP/1.1``) logged since the last call."""
        if not self.path:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.seen)
            lines = handle.read().decode(errors="replace").splitlines()
        self.seen = self._size()
        return [line.split('"')[1] for line in lines if line.count('"') >= 2 and "HTTP/" in line]


def count(layer: QgsVectorLayer) -> int:
    """Every feature of the layer, read through QGIS (which follows the pages)."""
    return sum(1 for _ in layer.getFeatures(QgsFeatureRequest().setNoAttributes()))


def main() -> None:
    """Check every collection; the exit code says whether all were read."""
    base = sys.argv[1].rstrip("/")
    log = Log(sys.argv[2] if len(sys.argv) > 2 else None)
    app = QgsApplication([], False)
    app.initQgis()
    providers = QgsProviderRegistry.instance().providerList()
    print(f"QGIS {Qgis.version()} ; fournisseur OAPIF {'présent' if 'OAPIF' in providers else 'ABSENT'}")
    ok = True
    collections = [c["id"] for c in fetch(f"{base}/ogc/collections")["collections"]]
    log.requests()
    for collection in collections:
        expected = server_count(base, collection)
        log.requests()  # the script's own requests, not QGIS's
        layer = QgsVectorLayer(f"url='{base}/ogc' typename='{collection}'", collection, "OAPIF")
        if not layer.isValid():
            print(f"[ÉCHEC] {collection}: couche invalide — {layer.error().summary()}")
            ok = False
            continue
        got = count(layer)
        status = "OK" if got == expected else "ÉCHEC"
        ok &= got == expected
        print(f"[{status}] {collection}: {got} entités lues par QGIS, {expected} servies ; "
              f"SCR {layer.crs().authid()} ; featureCount() {layer.featureCount()}")
        for request in log.requests():
            print(f"        {request}")
        if collection == "parcels":
            expected = server_count(base, collection, "&land_use=commerce")
            log.requests()
            layer.setSubsetString(SUBSET)
            got = count(layer)
            requests = log.requests()
            pushed = any("land_use" in r or "filter=" in r for r in requests)
            ok &= got == expected
            print(f"[{'OK' if got == expected else 'ÉCHEC'}] parcels [{SUBSET}]: {got} entités, {expected} attendues ; "
                  f"filtre {'transmis au serveur' if pushed else 'appliqué par QGIS seul (non transmis)'}")
            for request in requests:
                print(f"        {request}")
    print("Résultat :", "tout est lu" if ok else "des écarts", flush=True)
    # QGIS 3.22 may crash in exitQgis() when layers are still alive: leave without it.
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
