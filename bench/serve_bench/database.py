"""The benchmark's databases: migrated, territories loaded, N generated parcels imported.

- ``sifc_bench_serve``: N parcels in one file, all in Dialacoto (``--parcels``);
- ``sifc_bench_serve_<N>``: N parcels in communes of ``per_commune`` parcels each, one file and one
  ``sifc import parcels`` per commune, into a registry that grows commune by commune (``--scales``):
  what a national roll-out looks like, and the import at scale (each commune's load is timed).

Loading 1,000,000 parcels takes about a minute, so the database is kept between runs: a comment
on it names the dataset it holds (``COMMENT ON DATABASE``), and it is rebuilt only when the
dataset asked for differs or the parcel count is wrong. ``sifc db provision`` runs every time
(migrations are idempotent), so a new migration is applied to the kept data as it would be in
production.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from bench.import_bench.databases import REPO, Server, _run
from bench.import_bench.generate import PARCEL_DEPTH, PARCEL_WIDTH, STREET, Dataset, commune_order, generate

DATABASE = "sifc_bench_serve"


@dataclass(frozen=True)
class Loaded:
    """What the database holds."""

    dataset: str
    parcels: int
    reused: bool
    load_s: float | None
    database: str = DATABASE
    loads: list[dict] = field(default_factory=list)  # one per commune file imported (--scales)


def _marker(server: Server, database: str = DATABASE) -> dict | None:
    with server.admin() as conn:
        row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                           (database,)).fetchone()
    try:
        return json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None


def _set_marker(server: Server, database: str, marker: dict) -> None:
    with server.admin() as conn:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(database),
                                                                   sql.Literal(json.dumps(marker))))


def _count(server: Server, table: str, database: str = DATABASE) -> int:
    with psycopg.connect(server.url(database), connect_timeout=10) as conn:
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


# --scales: one database per scale, N parcels in communes of ``per_commune`` parcels each.
# Ground per parcel in the generator's layout (a block of 10 × 4 parcels of 20 × 25 m with 8 m streets).
PARCEL_FOOTPRINT_M2 = (10 * PARCEL_WIDTH + STREET) * (4 * PARCEL_DEPTH + STREET) / 40


def scale_database(parcels: int) -> str:
    """The database of one scale: ``sifc_bench_serve_<N>``."""
    return f"{DATABASE}_{parcels}"


def scale_communes(url: str, count: int, per_commune: int) -> list[str]:
    """``count`` communes with room for ``per_commune`` parcels, in the order the generator fills communes
    (``commune_order``: Dialacoto, the other communes of its region, of its pole, then of the country).

    Room is certain when the commune's largest inscribed circle holds the disc the generator lays
    the parcels out in (15 % of slack for the blocks' corners, 300 m for the boundary margin), so no
    commune is tried and refused.
    """
    radius = math.sqrt(per_commune * PARCEL_FOOTPRINT_M2 * 1.15 / math.pi) + 300.0
    with psycopg.connect(url, connect_timeout=10) as conn:
        roomy = {r[0] for r in conn.execute("""
            SELECT code FROM commune WHERE geom IS NOT NULL AND (ST_MaximumInscribedCircle(geom)).radius >= %s""",
                                            (radius,)).fetchall()}
    codes = [code for code, _, _ in commune_order(url) if code in roomy][:count]
    if len(codes) < count:
        raise SystemExit(f"only {len(codes)} communes have room for {per_commune:,} parcels, {count} needed")
    return codes


def _scale_files(url: str, communes: list[str], *, per_commune: int, seed: int, data_dir: Path,
                 log) -> list[Dataset]:
    """One clean generated file per commune, each with a seed of its own (its NICADs differ from the others')."""
    return [generate(data_dir, parcels=per_commune, defect_rate=0.0, seed=seed + i, admin_url=url, commune=code,
                     log=log) for i, code in enumerate(communes)]


def _import(sifc: str, env: dict[str, str], dataset: Dataset, data_dir: Path, log) -> tuple[float, dict]:
    """``sifc import parcels`` of one file: its wall time and its report (counts and stage timings)."""
    report = data_dir / f"{dataset.shapefile.stem}.serve-import.json"
    started = time.perf_counter()
    _run([sifc, "import", "parcels", str(dataset.shapefile), "--report", str(report),
          "--rejects", str(data_dir / f"{dataset.shapefile.stem}.serve-rejets.gpkg")], env, log)
    seconds = time.perf_counter() - started
    return seconds, json.loads(report.read_text())


def ensure_scale(server: Server, *, parcels: int, per_commune: int, seed: int, data_dir: Path,
                 rebuild: bool = False, log=print) -> Loaded:
    """``sifc_bench_serve_<parcels>``: ``parcels`` clean parcels, ``per_commune`` in each commune, loaded
    commune by commune with one ``sifc import parcels`` each, timed.

    Kept between runs like ``sifc_bench_serve``: its comment names the dataset and lists the communes
    loaded so far with each import's time. A load that was interrupted resumes at the next commune;
    a database holding another dataset is rebuilt. The registry grows as a national roll-out's does,
    so each commune's time is a first import into a registry of the communes before it.

    Autovacuum is off on the benchmark's server: after each import ``ANALYZE`` (untimed) stands in for
    the analyze autovacuum would run after a load of that size; after the last, ``VACUUM (ANALYZE)``.
    """
    if parcels % per_commune:
        raise SystemExit(f"--scales: {parcels:,} is not a multiple of --per-commune {per_commune:,}")
    database = scale_database(parcels)
    sifc = str(REPO / ".venv" / "bin" / "sifc")
    env = server.sifc_environment(database)
    wanted = {"generator": "bench.import_bench", "parcels": parcels, "per_commune": per_commune,
              "defect_rate": 0.0, "seed": seed}
    if rebuild:
        server.drop(database)
    marker = _marker(server, database) if server.exists(database) else None
    if marker is not None and marker.get("dataset") != wanted:
        log(f"{database} holds other data: rebuilt")
        server.drop(database)
        marker = None
    _run([sifc, "db", "provision"], env, log)
    url = server.url(database)
    if not _count(server, "commune", database):
        log(f"loading the territorial reference into {database}")
        _run([sifc, "territories", "load"], env, log)
    communes = scale_communes(url, parcels // per_commune, per_commune)
    loads: list[dict] = list((marker or {}).get("loaded", []))
    if [x["commune"] for x in loads] != communes[:len(loads)] or _count(server, "parcel", database) != len(
            loads) * per_commune:
        if loads or _count(server, "parcel_version", database):
            log(f"{database}: its parcels do not match its record: rebuilt")
            server.drop(database)
            return ensure_scale(server, parcels=parcels, per_commune=per_commune, seed=seed, data_dir=data_dir,
                                log=log)
    dataset = json.dumps({**wanted, "communes": communes})  # what the cached inputs are drawn from
    if marker and marker.get("complete"):
        log(f"{database}: {parcels:,} parcels in {len(communes)} communes already loaded (kept)")
        return Loaded(dataset, parcels, True, None, database, loads)
    files = _scale_files(url, communes, per_commune=per_commune, seed=seed, data_dir=data_dir, log=log)
    for number, (code, file) in enumerate(zip(communes, files, strict=True)):
        if number < len(loads):
            continue
        seconds, report = _import(sifc, env, file, data_dir, log)
        accepted = report.get("accepted")
        if accepted != per_commune:
            raise SystemExit(f"{database}: {code}: {accepted} parcels accepted, {per_commune} expected")
        with server.admin(database) as conn:
            conn.execute("ANALYZE parcel_version")
        loads.append({"commune": code, "seconds": round(seconds, 2), "registry_before": number * per_commune,
                      "timings": report.get("timings")})
        _set_marker(server, database, {"dataset": wanted, "loaded": loads})
        log(f"{database}: {code} imported in {seconds:.1f} s ({number + 1}/{len(communes)}, "
            f"{(number + 1) * per_commune:,} parcels)")
    with server.admin(database) as conn:
        conn.execute("VACUUM (ANALYZE)")
    loaded = _count(server, "parcel", database)
    if loaded != parcels:
        raise SystemExit(f"{database}: {loaded} parcels after the imports, {parcels} expected")
    _set_marker(server, database, {"dataset": wanted, "loaded": loads, "complete": True})
    total = sum(x["seconds"] for x in loads)
    log(f"{database}: {loaded:,} parcels in {len(communes)} communes, imports {total:.0f} s in all")
    return Loaded(dataset, loaded, False, total, database, loads)
