"""Real OGC API - Features clients read the collections of the running server.

GDAL's OAPIF driver twice: through pyogrio (the GDAL its wheel carries) and as the command-line tools of
the OS packages (``ogrinfo``/``ogr2ogr`` from Debian's gdal-bin, what a GIS analyst runs; installed by
``scripts/test.sh``); then OWSLib.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import unquote_plus

import pyogrio
import pytest
from owslib.ogcapi.features import Features
from pyproj import Transformer
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import REPO
from tests.e2e.helpers import free_port, run_cli, start_server


@pytest.fixture(scope="module")
def server_log(tmp_path_factory):
    return tmp_path_factory.mktemp("ogc") / "server.log"


@pytest.fixture(scope="module")
def server(fresh_db, server_log):
    assert run_cli(fresh_db, "demo", "load").returncode == 0
    port = free_port()
    process = start_server(fresh_db, port, server_log)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def _count(settings, sql: str) -> int:
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar_one()
    engine.dispose()
    return int(value)


def test_gdal_lists_the_collections(server):
    layers = [row[0] for row in pyogrio.list_layers(f"OAPIF:{server}/ogc")]
    assert sorted(layers) == COLLECTIONS


def test_gdal_reads_every_parcel_exactly_once_across_pages(server, fresh_db):
    # A small page size makes GDAL follow many next links.
    frame = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="parcels", fid_as_index=False,
                                   PAGE_SIZE=97)
    current = _count(fresh_db, "SELECT count(*) FROM parcel")
    assert current > 97 * 3
    assert len(frame) == current
    assert frame["id"].is_unique
    # The collection advertises its storage CRS (Part 2): GDAL asks for it and gets UTM 28N.
    assert frame.crs.to_epsg() == 32628
    minx, miny, maxx, maxy = frame.to_crs(4326).total_bounds
    assert -17.6 < minx and maxx < -11.2 and 12.2 < miny and maxy < 16.8


def test_gdal_reads_the_communes_with_a_bbox(server):
    # In the layer's CRS (the storage CRS GDAL chose): GDAL sends it with bbox-crs.
    to_utm = Transformer.from_crs(4326, 32628, always_xy=True)
    x0, y0 = to_utm.transform(-17.3, 14.6)
    x1, y1 = to_utm.transform(-17.1, 14.8)
    frame = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="communes", bbox=(x0, y0, x1, y1))
    assert "SN0104-bargny" in set(frame["code"])
    assert 0 < len(frame) < 549


def test_gdal_filters_parcels_on_the_server(server, server_log, fresh_db):
    # GDAL reads /ogc/api (the landing page's service-desc): a `filter-lang` enum holding "cql-text"
    # (the draft's name) makes it translate the attribute filter to CQL and send it as `filter=`.
    where = "land_use = 'commerce' AND commune_code = 'SN0104-bargny' AND area_m2 > 450"
    frame = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="parcels", where=where)
    expected = _count(fresh_db, "SELECT count(*) FROM parcel WHERE land_use = 'commerce' "
                                "AND commune_code = 'SN0104-bargny' AND area_m2 > 450")
    assert 0 < len(frame) == expected
    assert set(frame["land_use"]) == {"commerce"} and (frame["area_m2"] > 450).all()
    sent = [unquote_plus(line) for line in server_log.read_text().splitlines() if "/ogc/collections/parcels/items?" in line]
    assert any("filter-lang=cql-text" in line and "area_m2 > 450" in line for line in sent), sent[-3:]


def test_gdal_case_insensitive_like_reaches_the_server(server, server_log, fresh_db):
    frame = pyogrio.read_dataframe(f"OAPIF:{server}/ogc", layer="parcels", where="land_use ILIKE 'COMM%'")
    assert len(frame) == _count(fresh_db, "SELECT count(*) FROM parcel WHERE land_use ILIKE 'comm%'") > 0


# OWSLib, the Python client of OGC web services, reads every collection.
COLLECTIONS = ["arrondissements", "bornes", "communes", "departments", "localites", "parcels", "poles", "regions"]
TABLES = {"arrondissements": "arrondissement", "bornes": "borne", "communes": "commune", "departments": "department",
          "localites": "localite", "parcels": "parcel", "poles": "pole", "regions": "region"}


def _gdal_tool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(args[0])
    assert tool, f"{args[0]} is missing: scripts/test.sh installs gdal-bin"
    return subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=600, check=False,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_os_ogrinfo_reads_each_collection(server, fresh_db, collection):
    # -so: the summary, whose "Feature Count" GDAL takes from numberMatched or by reading every page.
    done = _gdal_tool("ogrinfo", "-ro", "-so", f"OAPIF:{server}/ogc", collection)
    assert done.returncode == 0, done.stderr
    count = re.search(r"^Feature Count: (\d+)$", done.stdout, re.MULTILINE)
    assert count, done.stdout
    assert int(count.group(1)) == _count(fresh_db, f"SELECT count(*) FROM {TABLES[collection]}") > 0


def test_os_ogr2ogr_copies_every_parcel_once_and_filters_on_the_server(server, server_log, fresh_db, tmp_path):
    copy = tmp_path / "parcels.gpkg"
    done = _gdal_tool("ogr2ogr", "-f", "GPKG", str(copy), f"OAPIF:{server}/ogc", "parcels", "-oo", "PAGE_SIZE=97")
    assert done.returncode == 0, done.stderr
    frame = pyogrio.read_dataframe(copy)
    assert len(frame) == _count(fresh_db, "SELECT count(*) FROM parcel") > 97 * 3
    assert frame["id"].is_unique

    where = "land_use = 'commerce' AND area_m2 > 450"
    filtered = tmp_path / "commerce.gpkg"
    done = _gdal_tool("ogr2ogr", "-f", "GPKG", str(filtered), f"OAPIF:{server}/ogc", "parcels", "-where", where)
    assert done.returncode == 0, done.stderr
    frame = pyogrio.read_dataframe(filtered)
    assert 0 < len(frame) == _count(fresh_db, f"SELECT count(*) FROM parcel WHERE {where}")
    sent = [unquote_plus(line) for line in server_log.read_text().splitlines() if "/ogc/collections/parcels/items?" in line]
    assert any("filter=" in line and "area_m2 > 450" in line for line in sent), sent[-3:]


def test_owslib_reads_the_landing_page_conformance_and_openapi(server):
    api = Features(f"{server}/ogc")
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in api.conformance()["conformsTo"]
    document = api.api()  # found through the landing page's service-desc link (OpenAPI 3.0)
    assert document["openapi"].startswith("3.0.")
    assert document["components"]["parameters"]["limit"]["schema"]["maximum"] == 1000
    assert sorted(api.feature_collections()) == COLLECTIONS


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_owslib_reads_each_collection(server, collection):
    api = Features(f"{server}/ogc")
    described = api.collection(collection)
    assert described["id"] == collection and described["itemType"] == "feature"
    assert "geometry" in api.collection_queryables(collection)["properties"]
    page = api.collection_items(collection, limit=3)
    assert page["type"] == "FeatureCollection"
    assert 0 < page["numberReturned"] == len(page["features"]) <= 3
    first = page["features"][0]
    assert api.collection_item(collection, str(first["id"]))["id"] == first["id"]
    west, south, east, north = described["extent"]["spatial"]["bbox"][0]
    inside = api.collection_items(collection, bbox=[west, south, east, north], limit=3)
    assert inside["numberReturned"] == page["numberReturned"]  # the whole extent: the same first page


def test_owslib_finds_bargny_in_a_bbox_and_filters(server, fresh_db):
    api = Features(f"{server}/ogc")
    communes = api.collection_items("communes", bbox=[-17.3, 14.6, -17.1, 14.8], limit=1000)
    assert "SN0104-bargny" in {f["properties"]["code"] for f in communes["features"]}
    assert communes["numberReturned"] < 549
    expected = _count(fresh_db, "SELECT count(*) FROM parcel WHERE land_use = 'commerce'")
    by_cql2 = api.collection_items("parcels", filter="land_use = 'commerce'", limit=1000)
    by_property = api.collection_items("parcels", land_use="commerce", limit=1000)
    assert 0 < by_cql2["numberReturned"] == by_property["numberReturned"] == expected


def test_owslib_pages_through_every_parcel(server, fresh_db):
    api = Features(f"{server}/ogc")
    ids, offset = [], 0
    while True:
        page = api.collection_items("parcels", limit=250, offset=offset)
        ids += [f["id"] for f in page["features"]]
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += 250
    assert len(ids) == len(set(ids)) == _count(fresh_db, "SELECT count(*) FROM parcel") > 250 * 3


# QGIS's own OGC API - Features provider, from Debian's packages (python3-qgis and qgis-providers, installed by
# scripts/test.sh), driven headless by scripts/check_qgis.py with the system Python that QGIS is built for.
SYSTEM_PYTHON = "/usr/bin/python3"


def test_qgis_adds_every_collection_pages_through_it_and_filters_the_parcels(server, server_log, tmp_path):
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, text=True, check=False)
    assert probe.returncode == 0, f"QGIS's Python bindings are missing (scripts/test.sh installs them): {probe.stderr}"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen",
           "XDG_RUNTIME_DIR": str(tmp_path), "LANG": "C.UTF-8"}
    done = subprocess.run([SYSTEM_PYTHON, "scripts/check_qgis.py", server, str(server_log)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    verdicts = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in verdicts] == ["[OK"] * (len(COLLECTIONS) + 1), done.stdout
    assert {line.split(":")[0].removeprefix("[OK] ") for line in verdicts} == {*COLLECTIONS, "parcels [land_use = 'commerce']"}
    assert "fournisseur OAPIF présent" in done.stdout
    # QGIS read the page size (1,000) from /ogc/api and followed the next link past the first page.
    assert "GET /ogc/collections/parcels/items?limit=1000&offset=1000 " in done.stdout, done.stdout
