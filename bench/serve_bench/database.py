"""The benchmark's database ``sifc_bench_serve``: migrated, territories loaded, N generated parcels imported.

Loading 1,000,000 parcels takes about a minute, so the database is kept between runs: a comment
on it names the dataset it holds (``COMMENT ON DATABASE``), and it is rebuilt only when the
dataset asked for differs or the parcel count is wrong. ``sifc db provision`` runs every time
(migrations are idempotent), so a new migration is applied to the kept data as it would be in
production.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql

from bench.import_bench.databases import REPO, Server, _run
from bench.import_bench.generate import generate

DATABASE = "sifc_bench_serve"


@dataclass(frozen=True)
class Loaded:
    """What the database holds."""

    dataset: str
    parcels: int
    reused: bool
    load_s: float | None


def _marker(server: Server) -> dict | None:
    with server.admin() as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (DATABASE,)).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def _count(server: Server, table: str) -> int:
    with psycopg.connect(server.url(DATABASE), connect_timeout=10) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def existing(url: str) -> Loaded:
    """An existing database given by its URL (``--database-url``), as it is: its current parcels counted."""
    with psycopg.connect(url, connect_timeout=10) as conn:
        parcels = conn.execute("SELECT count(*) FROM parcel").fetchone()[0]
        where = conn.execute("SELECT current_database() || '@' || inet_server_port()").fetchone()[0]
    return Loaded(json.dumps({"database": where, "parcels": parcels}), parcels, True, None)


def ensure(server: Server, *, parcels: int, seed: int, data_dir, rebuild: bool = False, log=print) -> Loaded:
    """Provision ``sifc_bench_serve`` and load ``parcels`` generated parcels into it unless it holds them."""
    import time

    sifc = str(REPO / ".venv" / "bin" / "sifc")
    env = server.sifc_environment(DATABASE)
    wanted = {"generator": "bench.import_bench", "parcels": parcels, "defect_rate": 0.0, "seed": seed}
    if rebuild:
        server.drop(DATABASE)
    if server.exists(DATABASE):
        _run([sifc, "db", "provision"], env, log)
        if _marker(server) == wanted and _count(server, "parcel") == parcels:
            log(f"{DATABASE}: {parcels:,} parcels already loaded (kept)")
            return Loaded(json.dumps(wanted), parcels, True, None)
        log(f"{DATABASE} holds other data: rebuilt")
        server.drop(DATABASE)
    _run([sifc, "db", "provision"], env, log)
    if not _count(server, "commune"):
        log(f"loading the territorial reference into {DATABASE}")
        _run([sifc, "territories", "load"], env, log)
    # No injected defects: every generated parcel is a clean grid parcel and is accepted.
    dataset = generate(data_dir, parcels=parcels, defect_rate=0.0, seed=seed, admin_url=server.url(DATABASE),
                       log=log)
    log(f"importing {dataset.shapefile.name} with sifc import parcels (about a minute per million)")
    started = time.perf_counter()
    report = data_dir / f"{dataset.shapefile.stem}.serve-import.json"
    _run([sifc, "import", "parcels", str(dataset.shapefile), "--report", str(report),
          "--rejects", str(data_dir / f"{dataset.shapefile.stem}.serve-rejets.gpkg")], env, log)
    load_s = time.perf_counter() - started
    with server.admin(DATABASE) as conn:
        conn.execute("VACUUM (ANALYZE) parcel_version")
    loaded = _count(server, "parcel")
    if loaded != parcels:
        raise SystemExit(f"{DATABASE}: {loaded} parcels after the import, {parcels} expected")
    with server.admin() as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(DATABASE),
                                                                   sql.Literal(json.dumps(wanted))))
    log(f"{DATABASE}: {loaded:,} parcels loaded in {load_s:.0f} s")
    return Loaded(json.dumps(wanted), loaded, False, load_s)
