"""Mutations end to end: a land officer splits, merges, subdivides and corrects parcels over real HTTP.

The history, the lineage and the write audit show each step, and as-of reads across the
mutations return the parcels the register held at that instant.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx2 as httpx
import pytest
from shapely.geometry import box, mapping
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from tests.e2e.helpers import create_key, serving

BARGNY = "SN0104-bargny"
CRS = {"crs": "EPSG:32628"}


@pytest.fixture(scope="module")
def base(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(fresh_db, tmp_path_factory.mktemp("mutations") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def officer(fresh_db: Settings) -> dict[str, str]:
    return create_key(fresh_db, "agent_foncier", f"commune:{BARGNY}")


def _origin(settings: Settings) -> tuple[float, float]:
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        x, y = conn.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(-17.2283, 14.6933), 4326),
                                                               32628) p) t""")).one()
    engine.dispose()
    return x + 600, y + 250


def _now() -> datetime:
    time.sleep(0.05)
    instant = datetime.now(UTC)
    time.sleep(0.05)
    return instant


@pytest.fixture
def api(base: str, officer: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, headers=officer, timeout=60) as client:
        yield client


def test_a_land_officer_splits_merges_subdivides_and_corrects(base: str, api: httpx.Client, fresh_db: Settings):
    x, y = _origin(fresh_db)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    plan = api.post("/sources", json={"kind": "plan", "document_date": yesterday, "commune_code": BARGNY,
                                      "reference": "plan de morcellement 7"}).json()["id"]

    def parcel(geom, **properties) -> str:
        created = api.post("/parcels", params=CRS, json={"type": "Feature", "geometry": mapping(geom),
                                                         "properties": {"reason": "levé", **properties}})
        assert created.status_code == 201, created.text
        return created.json()["id"]

    def tag(parcel_id: str) -> str:
        return api.get(f"/parcels/{parcel_id}").headers["ETag"]

    def body(**extra):
        return {"occurred_on": yesterday, "source_ids": [plan], "reason": "demande du titulaire", **extra}

    def feature(geom, **properties):
        return {"type": "Feature", "geometry": mapping(geom), "properties": properties}

    parent = parcel(box(x, y, x + 40, y + 20), nicad="0104040100951")
    before_split = _now()
    split = api.post(f"/parcels/{parent}/split", params=CRS, headers={"If-Match": tag(parent)}, json=body(
        children=[feature(box(x, y, x + 20, y + 20)), feature(box(x + 20, y, x + 40, y + 20))]))
    assert split.status_code == 201, split.text
    left, right = split.json()["children"]
    after_split = _now()

    merged = api.post("/parcels/merge", headers={"If-Match": f"{tag(left)}, {tag(right)}"},
                      json=body(parcel_ids=[left, right], properties={"nicad": "0104040100952"}))
    assert merged.status_code == 201, merged.text
    whole = merged.json()["children"][0]

    lots = api.post(f"/parcels/{whole}/lotissement", params=CRS, headers={"If-Match": tag(whole)}, json=body(
        lots=[feature(box(x, y, x + 20, y + 15)), feature(box(x + 20, y, x + 40, y + 15))],
        public_land=[feature(box(x, y + 15, x + 40, y + 20), land_use="voirie")]))
    assert lots.status_code == 201, lots.text
    first_lot = lots.json()["children"][0]

    corrected = api.post(f"/parcels/{first_lot}/boundary-correction", params=CRS, headers={"If-Match": tag(first_lot)},
                         json=body(geometry=mapping(box(x, y, x + 19.5, y + 15))))
    assert corrected.status_code == 200, corrected.text

    # Lineage: from the first lot back to the first parcel, through every operation.
    lineage = api.get(f"/parcels/{first_lot}/lineage").json()
    assert [m["operation"] for m in lineage["ancestors"]] == ["split", "merge", "lotissement"]
    assert [m["operation"] for m in lineage["corrections"]] == ["boundary_correction"]
    assert [m["operation"] for m in api.get(f"/parcels/{parent}/lineage").json()["descendants"]] == [
        "split", "merge", "lotissement"]
    # History of the corrected lot: two versions; the write audit has each operation.
    history = api.get(f"/parcels/{first_lot}/history").json()
    assert [v["properties"]["version"] for v in history["versions"]] == [1, 2]
    operations = [e["operation"] for e in api.get(f"/parcels/{first_lot}/audit").json()["entries"]]
    assert "mutation.boundary_correction" in operations and "parcel.update" in operations
    admin = create_key(fresh_db)
    written = [e["operation"] for e in httpx.get(f"{base}/admin/writes", params={"object_kind": "mutation"},
                                                  headers=admin, timeout=60).json()["entries"]]
    assert sorted(written) == sorted(["mutation.split", "mutation.merge", "mutation.lotissement",
                                      "mutation.boundary_correction"])

    # As-of reads across the mutations.
    def held(instant: datetime) -> set[str]:
        page = api.get(f"/communes/{BARGNY}/parcels", params={"at": instant.isoformat(), "limit": 1000}).json()
        return {f["id"] for f in page["features"]}

    assert parent in held(before_split) and not {left, right} & held(before_split)
    assert {left, right} <= held(after_split) and parent not in held(after_split)
    now = held(datetime.now(UTC))
    assert set(lots.json()["children"]) <= now and not {parent, left, right, whole} & now
    assert api.get(f"/parcels/{parent}", params={"at": before_split.isoformat()}).json()["properties"]["nicad"] == (
        "0104040100951")


def test_the_command_line_splits_and_shows_the_lineage(base: str, api: httpx.Client, fresh_db: Settings, tmp_path):
    import geopandas as gpd

    from tests.e2e.helpers import run_cli

    x, y = _origin(fresh_db)
    x += 200
    created = api.post("/parcels", params=CRS, json={"type": "Feature", "geometry": mapping(box(x, y, x + 30, y + 20)),
                                                     "properties": {"reason": "levé"}})
    assert created.status_code == 201, created.text
    parent = created.json()["id"]
    plan = api.post("/sources", json={"kind": "plan", "document_date": date.today().isoformat(),
                                      "commune_code": BARGNY}).json()["id"]
    halves = tmp_path / "morcellement.gpkg"
    gpd.GeoDataFrame({"nicad": ["0104040100961", None]},
                     geometry=[box(x, y, x + 15, y + 20), box(x + 15, y, x + 30, y + 20)], crs="EPSG:32628"
                     ).to_file(halves)
    gap = tmp_path / "lacune.gpkg"
    gpd.GeoDataFrame(geometry=[box(x, y, x + 14, y + 20), box(x + 15, y, x + 30, y + 20)], crs="EPSG:32628"
                     ).to_file(gap)

    refused = run_cli(fresh_db, "parcels", "split", parent, str(gap), "--source", plan, "--reason", "partage")
    assert refused.returncode == 2 and "ne recouvrent pas" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    missing = run_cli(fresh_db, "parcels", "split", parent, str(tmp_path / "absent.gpkg"), "--source", plan,
                      "--reason", "partage")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    done = run_cli(fresh_db, "--lang", "en", "parcels", "split", parent, str(halves), "--source", plan, "--reason",
                   "partage")
    assert done.returncode == 0, done.stderr
    assert "Split recorded" in done.stdout
    lineage = run_cli(fresh_db, "parcels", "lineage", parent, "--json")
    assert lineage.returncode == 0, lineage.stderr
    import json

    descendants = json.loads(lineage.stdout)["descendants"]
    assert [m["operation"] for m in descendants] == ["split"]
    assert sorted(c["nicad"] or "" for c in descendants[0]["children"]) == ["", "0104040100961"]
    assert "author" in descendants[0]  # the operator reads personal data: checked and logged in its own name
    engine = create_engine(fresh_db.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        logged = conn.execute(text("""SELECT actor_kind, actor, endpoint FROM access_audit
                                      WHERE method = 'CLI' AND subject_id = :p"""), {"p": parent}).all()
    engine.dispose()
    assert [(row.actor_kind, row.endpoint) for row in logged] == [("cli", "sifc parcels lineage")]
    assert logged[0].actor.startswith("cli:")
