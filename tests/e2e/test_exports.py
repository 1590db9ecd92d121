"""Exports end to end: ``sifc export parcels`` and the HTTP routes on a real server.

Round trip: the demo's parcels of Bargny are exported in each format, then imported with
``sifc import parcels`` into a brand-new database; the parcels must come back the same (count,
geometry within 1 cm, attributes). Memory: an export of 30 000 parcels must not need markedly
more memory than one of 10 000 (peak RSS of the CLI process, and of the server).
"""

from __future__ import annotations

import json
import re
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from sifc import provision
from sifc.settings import Settings
from tests.conftest import REPO, env_for
from tests.e2e.helpers import free_port, get, run_cli, start_server

ATTRIBUTES = ("nicad", "nicad_status", "commune_code", "section", "local_number", "source_id",
              "declared_area_m2", "land_use", "tenure_regime")
BULK_COMMUNE = "SN0703-linkering"  # far from the pilot communes, no demo parcels
BULK = 30_000
SMALL = 10_000  # several batches already: what grows beyond is proportional to the export
MiB = 1024 * 1024


def _engine(settings: Settings):
    return create_engine(settings.admin_url, poolclass=NullPool)


def _parcels(settings: Settings, commune: str) -> dict[tuple, dict]:
    """Current parcels of a commune keyed by (section, number), with their attributes and WKB."""
    engine = _engine(settings)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {', '.join(ATTRIBUTES)}, ST_AsBinary(geom) AS wkb FROM parcel "
                                 "WHERE commune_code = :c"), {"c": commune}).mappings().all()
    engine.dispose()
    return {(r["section"], r["local_number"]): dict(r) for r in rows}


@pytest.fixture(scope="module")
def demo(fresh_db: Settings) -> Settings:
    done = run_cli(fresh_db, "demo", "load")
    assert done.returncode == 0, done.stderr
    return fresh_db


@pytest.fixture
def empty_db(request: pytest.FixtureRequest, settings: Settings, template_db: str) -> Iterator[Settings]:
    """Another brand-new database (reference loaded, no parcels) to import an export into."""
    name = f"{settings.db_url.database}_e2e_export_{re.sub(r'[^a-z0-9]+', '_', request.node.name.lower())}"[:63]
    provision.drop_database(settings.admin_url, name)
    provision.create_database(settings.admin_url, name, template=template_db)
    yield settings.model_copy(update={
        "database_url": settings.db_url.set(database=name).render_as_string(hide_password=False),
        "admin_database_url": settings.admin_url.set(database=name).render_as_string(hide_password=False)})
    provision.drop_database(settings.admin_url, name)


def _assert_same(original: dict[tuple, dict], back: dict[tuple, dict]) -> None:
    assert len(back) == len(original) > 100
    assert set(back) == set(original)
    for key, parcel in original.items():
        copy = back[key]
        assert {a: copy[a] for a in ATTRIBUTES} == {a: parcel[a] for a in ATTRIBUTES}, key
        distance = shapely.hausdorff_distance(shapely.from_wkb(bytes(parcel["wkb"])),
                                              shapely.from_wkb(bytes(copy["wkb"])))
        assert distance <= 0.01, (key, distance)


@pytest.mark.parametrize("name", ["parcelles.geojson", "parcelles.gpkg", "parcelles.zip", "parcelles.csv",
                                  "parcelles.fgb"])
def test_cli_round_trip(demo: Settings, empty_db: Settings, tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    done = run_cli(demo, "export", "parcels", str(target), "--commune", "Bargny")
    assert done.returncode == 0, done.stderr
    original = _parcels(demo, "SN0104-bargny")
    assert f"{len(original)} parcelle(s) exportée(s)" in done.stdout
    crs = ["--crs", "EPSG:32628"] if name.endswith(".csv") else []
    done = run_cli(empty_db, "import", "parcels", str(target), "--commune", "SN0104-bargny", *crs)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_same(original, _parcels(empty_db, "SN0104-bargny"))


def test_cli_refusals_are_one_line(demo: Settings, tmp_path: Path) -> None:
    existing = tmp_path / "deja.gpkg"
    existing.write_bytes(b"")
    for args, message in (
        (["parcelles.kml"], "--format"),
        (["p.gpkg", "--commune", "Atlantide"], "Atlantide"),
        (["p.gpkg", "--filter", "surface_totale > 'x'"], "CQL2"),
        (["p.gpkg", "--filter", "proprietaire = 'x'"], "loi 2008-12"),  # personal data: refused as such
        (["p.gpkg", "--crs", "EPSG:3857"], "EPSG:3857"),
        ([str(existing)], "--overwrite"),
    ):
        done = run_cli(demo, "export", "parcels", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr, (args, done.stderr)
    done = run_cli(demo, "--lang", "en", "export", "parcels", "p.gpkg", "--commune", "Atlantide")
    assert done.returncode == 2 and "No commune" in done.stderr


def test_cli_selection_by_bbox_and_filter(demo: Settings, tmp_path: Path) -> None:
    engine = _engine(demo)
    with engine.connect() as conn:
        box = conn.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent("
                                "ST_Transform(geom, 4326)) e FROM parcel WHERE commune_code = 'SN0104-bargny' "
                                "AND section = 'S01') t")).one()
        expected = conn.execute(text("SELECT count(*) FROM parcel WHERE land_use = 'habitation' AND ST_Intersects("
                                     "geom, ST_Transform(ST_MakeEnvelope(:a, :b, :c, :d, 4326), 32628))"),
                                {"a": box[0], "b": box[1], "c": box[2], "d": box[3]}).scalar()
    engine.dispose()
    target = tmp_path / "s01.geojson"
    done = run_cli(demo, "export", "parcels", str(target), f"--bbox={','.join(str(v) for v in box)}",
                   "--filter", "land_use = 'habitation'")
    assert done.returncode == 0, done.stderr
    assert 0 < len(json.loads(target.read_text())["features"]) == expected


# --- HTTP ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(demo: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    port = free_port()
    process = start_server(demo, port, tmp_path_factory.mktemp("server") / "server.log")
    yield f"http://127.0.0.1:{port}", process.pid
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.parametrize("fmt", ["geojson", "shp"])  # one streamed, one written to a file; the CLI tests all
def test_http_round_trip(demo: Settings, server, empty_db: Settings, tmp_path: Path, fmt: str) -> None:
    base, _ = server
    status, raw_headers, body = get(f"{base}/communes/SN0104-bargny/parcels/export?format={fmt}", timeout=120)
    headers = {k.lower(): v for k, v in raw_headers.items()}
    assert status == 200, body[:500]
    filename = re.search(r'filename="([^"]+)"', headers["content-disposition"]).group(1)
    assert filename.startswith("parcelles_SN0104-bargny_")
    target = tmp_path / filename
    target.write_bytes(body)
    if fmt == "shp":
        assert {"parcelles.shp", "parcelles.prj", "parcelles.cpg", "LISEZMOI.txt"} <= set(
            zipfile.ZipFile(target).namelist())
    crs = ["--crs", "EPSG:32628"] if fmt == "csv" else []
    done = run_cli(empty_db, "import", "parcels", str(target), "--commune", "SN0104-bargny", *crs)
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_same(_parcels(demo, "SN0104-bargny"), _parcels(empty_db, "SN0104-bargny"))


def test_http_refusal_is_a_problem(server) -> None:
    base, _ = server
    status, headers, body = get(f"{base}/exports/parcels?format=gpkg&filter=area_m2%20%3E%20'grand'")
    assert status == 400, body
    assert {k.lower(): v for k, v in headers.items()}["content-type"] == "application/problem+json"


# --- memory -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bulk(demo: Settings) -> Settings:
    """30 000 round parcels (41 vertices each) in a commune of their own, inserted by SQL."""
    engine = _engine(demo)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO parcel_version (parcel_id, version, nicad_status, commune_code, section, local_number,
                                        geom, land_use, action, author)
            SELECT gen_random_uuid(), 1, 'absent', :c, CASE WHEN i <= :small THEN 'petit' ELSE 'grand' END,
                   i::text, ST_Multi(ST_Buffer(ST_Translate(p, (i % 200) * 25.0, (i / 200) * 25.0), 10, 10)),
                   'habitation', 'create', 'test'
            FROM generate_series(1, :n) i,
                 (SELECT ST_Translate(ST_PointOnSurface(geom), -2000, -2000) p FROM commune WHERE code = :c) c
        """), {"c": BULK_COMMUNE, "n": BULK, "small": SMALL})
    engine.dispose()
    return demo


PEAK_WRAPPER = """
import re, sys
from pathlib import Path
import cli, pyarrow, pyogrio, sifc.db, sifc.exports  # libraries loaded before the peak is reset
from cli import main
sys.argv = ["sifc", *sys.argv[1:]]
Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from the current RSS
try:
    main()
finally:
    print("PEAK", re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1), file=sys.stderr)
"""


def _peak_rss_cli(settings: Settings, *args: str) -> int:
    """Peak RSS (bytes) of ``sifc ARGS`` in a process of its own, counted from after the imports."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *args], cwd=REPO, env=env_for(settings),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return int(re.search(r"PEAK (\d+)", done.stderr).group(1)) * 1024


@pytest.mark.parametrize("suffix", [".geojson", ".csv", ".gpkg", ".fgb", ".zip"])
def test_cli_memory_does_not_grow_with_the_export(bulk: Settings, tmp_path: Path, suffix: str,
                                                  record_property) -> None:
    small_file, large_file = tmp_path / f"petit{suffix}", tmp_path / f"grand{suffix}"
    small = _peak_rss_cli(bulk, "export", "parcels", str(small_file), "--commune", BULK_COMMUNE,
                          "--filter", "section = 'petit'")
    large = _peak_rss_cli(bulk, "export", "parcels", str(large_file), "--commune", BULK_COMMUNE)
    size = large_file.stat().st_size
    record_property("rss", {"small_mib": small / MiB, "large_mib": large / MiB, "file_mib": size / MiB})
    print(f"{suffix}: peak RSS {small / MiB:.0f} MiB for {SMALL} parcels, {large / MiB:.0f} MiB for {BULK} "
          f"({size / MiB:.1f} MiB file)")
    assert size > (5 if suffix == ".zip" else 20) * MiB
    assert large - small < 16 * MiB


def _vm_hwm(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_http_memory_does_not_grow_with_the_export(bulk: Settings, server, fmt: str) -> None:
    base, pid = server
    small_url = f"{base}/exports/parcels?format={fmt}&commune={BULK_COMMUNE}&filter=section%20%3D%20'petit'"
    for _ in range(2):  # warm up: libraries loaded, pools and caches filled
        assert get(small_url, timeout=120)[0] == 200
    before = _vm_hwm(pid)
    started = time.monotonic()
    status, _, body = get(f"{base}/exports/parcels?format={fmt}&commune={BULK_COMMUNE}", timeout=300)
    assert status == 200
    growth = _vm_hwm(pid) - before
    print(f"server {fmt}: peak RSS +{growth / MiB:.1f} MiB for a {len(body) / MiB:.1f} MiB export of {BULK} "
          f"parcels in {time.monotonic() - started:.1f} s")
    assert len(body) > 20 * MiB
    assert growth < 16 * MiB
