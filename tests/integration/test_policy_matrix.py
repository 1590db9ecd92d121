"""The role matrix: every route of the OpenAPI document × every role, against data/policy.yaml.

The policy file is written by hand; this test sends one minimal valid request per route and role
(users with tokens scoped to Bargny, plus a national administrator) and compares: an allowed role
never gets 401/403, a refused one gets 401 (anonymous) or 403 (signed in). A route of the document
that the file does not list, or that this test cannot call, fails. Then hostile strings in every
string path and query parameter of every GET route: a 4xx or a 200, never a 500, nothing leaked.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text

from sifc.auth import policy, tokens, users
from sifc.auth.principal import ScopeEntry
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, square

BARGNY = "SN0104-bargny"
PASSWORD = "matrix password 2026"
ROLES = ("public", "lecteur", "agent_foncier", "analyste_sig", "administrateur", "regisseur")
HOSTILE = ["' OR 1=1 --", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%00", "\u0000", "x" * 5000,
           "'; DROP TABLE parcel; --", "<script>alert(1)</script>", "${jndi:ldap://x}", "é" * 300]
LEAKS = ("Traceback", "psycopg", "sqlalchemy", "SELECT ", "root:x:0:0", "/work/", "password", "secret")
PDF = b"%PDF-1.4\n% matrice\n%%EOF\n"


@pytest.fixture
def world(client, db, settings) -> dict[str, Any]:
    """Users of every role scoped to Bargny with their tokens, a national administrator, a parcel, a job,
    and the tenure records of that parcel: a party, a source with a file, a servitude, a procedure."""
    headers: dict[str, dict[str, str]] = {"public": {}}
    ids = {}
    for role in ROLES[1:]:
        user_id = users.create(db, username=f"matrix.{role}", password=PASSWORD, role=role,
                               scope=[ScopeEntry("commune", BARGNY)], created_by="tests")
        ids[role] = user_id
        token = tokens.start_session(db, settings, user_id=user_id).access_token
        headers[role] = {"Authorization": f"Bearer {token}"}
    national = {"X-API-Key": api_key(db)}
    x, y = bargny_origin(db)
    created = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=national,
                          json={"type": "Feature", "geometry": mapping(square(x, y)),
                                "properties": {"nicad": "0104040199999", "reason": "matrice"}})
    assert created.status_code == 201, created.text
    job = client.post("/imports", headers=national, data={"commune": BARGNY, "dry_run": "true"},
                      files={"file": ("m.geojson", _geojson_bytes(db))})
    assert job.status_code == 202, job.text
    where = client.get("/locate", params={"lon": -17.2283, "lat": 14.6933}).json()
    parcel = created.json()["id"]
    borne = client.post("/bornes", params={"crs": "EPSG:32628"}, headers=national,
                        json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [x - 5, y - 5]},
                              "properties": {"label": "B1", "precision_m": 0.05, "survey_method": "gnss_rtk"}})
    assert borne.status_code == 201, borne.text
    package = client.post("/field/packages", headers=national, json={"commune": BARGNY})
    assert package.status_code == 201, package.text
    return {"headers": headers, "national": national, "user_ids": ids, "parcel": parcel, "borne": borne.json()["id"],
            "package": package.json()["id"], "localite": _localite(client, national, x, y - 600),
            "job": job.json()["id"], "where": where, "origin": (x, y), "settings": settings, "db": db,
            **_tenure(client, national, parcel), **_fees(client, db, national, (x, y)),
            "dispute": _dispute(client, national, (x, y + 250), ""), "session": _session(client, national),
            **_campaign(client, national, parcel)}


def _campaign(client, national: dict[str, str], parcel: str) -> dict[str, str]:
    """A campaign of Bargny around the world parcel, and a claim on that parcel (outside any campaign)."""
    made = client.post("/campaigns", headers=national, json={
        "commune_code": BARGNY, "name": "matrice", "area": {"kind": "bbox", "bbox": [-17.24, 14.68, -17.22, 14.70]}})
    assert made.status_code == 201, made.text
    claim = client.post("/claims", headers=national, json={
        "parcel_id": parcel, "claimant_name": "Réclamant matrice", "grounds": "m", "received_on": date.today().isoformat()})
    assert claim.status_code == 201, claim.text
    return {"campaign": made.json()["id"], "claim": claim.json()["id"]}


def _session(client, national: dict[str, str]) -> str:
    """A council session of Bargny, planned by the national administrator: its id."""
    made = client.post("/sessions", headers=national, json={
        "commune_code": BARGNY, "kind": "commission_domaniale", "held_on": date.today().isoformat()})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _tenure(client, national: dict[str, str], parcel: str) -> dict[str, str]:
    """A party and a source (with a PDF) of Bargny, a servitude on ``parcel``, a procedure on it (no affectation)."""
    today = date.today().isoformat()
    party = client.post("/parties", headers=national, json={
        "kind": "natural_person", "name": "Ndiaye", "given_names": "Awa", "id_number": "1234567890123",
        "commune_code": BARGNY, "reason": "matrice"})
    assert party.status_code == 201, party.text
    source = client.post("/sources", headers=national, json={
        "kind": "proces_verbal", "document_date": today, "commune_code": BARGNY, "reference": "PV-M-1"})
    assert source.status_code == 201, source.text
    attached = client.post(f"/sources/{source.json()['id']}/files", headers=national,
                           files={"file": ("pv.pdf", io.BytesIO(PDF), "application/pdf")})
    assert attached.status_code == 201, attached.text
    right = client.post(f"/parcels/{parcel}/rights", headers=national, json={
        "type": "servitude", "start_date": today, "source_ids": [source.json()["id"]], "description": "passage"})
    assert right.status_code == 201, right.text
    procedure = client.post("/procedures", headers=national, json={
        "parcel_id": parcel, "applicants": [{"party_id": party.json()["id"], "share": "1"}], "registered_on": today,
        "purpose": "habitation"})
    assert procedure.status_code == 201, procedure.text
    return {"party": party.json()["id"], "source": source.json()["id"], "file": attached.json()["id"],
            "rrr": right.json()["id"], "procedure": procedure.json()["id"]}


def _fees(client, db, national: dict[str, str], origin: tuple[float, float]) -> dict[str, str]:
    """A fee schedule of Bargny (its délibération), receipts numbered by SIFC, a file with a fee and one payment."""
    from tests.helpers_rules import set_rules

    today = date.today().isoformat()
    set_rules(db, BARGNY, receipt_mode="recu_pdf")
    deliberation = client.post("/sources", headers=national, json={
        "kind": "deliberation", "document_date": today, "commune_code": BARGNY, "reference": "DEL-M-FEES",
        "council_session": "séance matrice"})
    assert deliberation.status_code == 201, deliberation.text
    schedule = client.post("/fee-schedules", headers=national, json={
        "commune_code": BARGNY, "procedure_kind": "affectation", "valid_from": "2000-01-01",
        "rule": {"kind": "fixed", "amount": 100000}, "deliberation_source_id": deliberation.json()["id"]})
    assert schedule.status_code == 201, schedule.text
    x, y = origin
    parcel = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=national, json={
        "type": "Feature", "geometry": mapping(square(x, y - 500)), "properties": {"reason": "matrice"}})
    assert parcel.status_code == 201, parcel.text
    party = client.post("/parties", headers=national, json={"kind": "natural_person", "name": "Sarr",
                                                           "commune_code": BARGNY})
    procedure = client.post("/procedures", headers=national, json={
        "parcel_id": parcel.json()["id"], "applicants": [{"party_id": party.json()["id"], "share": "1"}],
        "registered_on": today, "reference": "MATRICE-FEES-1"})
    assert procedure.status_code == 201, procedure.text
    paid = client.post("/payments", headers=national, json={
        "procedure_id": procedure.json()["id"], "amount": 1000, "method": "cash", "paid_on": today})
    assert paid.status_code == 201, paid.text
    return {"fee_procedure": procedure.json()["id"], "deliberation": deliberation.json()["id"],
            "payment": paid.json()["id"]}


def _dispute(client, national: dict[str, str], corner: tuple[float, float], step: str) -> str:
    """A dispute of Bargny on a parcel of its own (opened, then taken to ``step`` if given): its id."""
    today = date.today().isoformat()
    made = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=national, json={
        "type": "Feature", "geometry": mapping(square(*corner)), "properties": {"reason": "matrice"}})
    assert made.status_code == 201, made.text
    source = client.post("/sources", headers=national, json={
        "kind": "proces_verbal", "document_date": today, "commune_code": BARGNY, "reference": "PV-M-LITIGE"})
    opened = client.post("/disputes", headers=national, json={
        "commune_code": BARGNY, "kind": "limites", "parcel_ids": [made.json()["id"]], "opened_on": today,
        "source_ids": [source.json()["id"]]})
    assert opened.status_code == 201, opened.text
    if step:
        moved = client.post(f"/disputes/{opened.json()['id']}/steps", headers={
            **national, "If-Match": opened.headers["ETag"]}, json={"step": step, "occurred_on": today})
        assert moved.status_code == 200, moved.text
    return str(opened.json()["id"])


def _geojson_bytes(db) -> bytes:
    lon, lat = -17.2283, 14.6933
    ring = [[lon, lat], [lon + 0.0002, lat], [lon + 0.0002, lat + 0.0002], [lon, lat + 0.0002], [lon, lat]]
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}).encode()


def _localite(client, national: dict[str, str], x: float, y: float) -> str:
    """A localité of Bargny placed by the national administrator (UTM 28N)."""
    made = client.post("/localites", params={"crs": "EPSG:32628"}, headers=national, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
        "properties": {"name": "Localité matrice", "kind": "quartier"}})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _retire_localite(client, national: dict[str, str], x: float, y: float, headers: dict[str, str]) -> Any:
    """Retire a localité of its own (the world's stays current for the other routes)."""
    lid = _localite(client, national, x, y)
    tag = client.get(f"/localites/{lid}").headers["ETag"]
    return client.request("DELETE", f"/localites/{lid}", headers={**headers, "If-Match": tag}, json={"reason": "m"})


def _path_values(world: dict[str, Any]) -> dict[str, str]:
    return {"parcel_id": world["parcel"], "nicad": "0104040199999", "job_id": world["job"], "level": "commune",
            "collection_id": "parcels", "feature_id": world["parcel"], "collection": "parcels",
            "z": "14", "x": "7599", "y": "7520", "code": BARGNY, "subject": "matrix.lecteur",
            "party_id": world["party"], "source_id": world["source"], "file_id": world["file"], "rrr_id": world["rrr"],
            "procedure_id": world["procedure"], "borne_id": world["borne"], "payment_id": world["payment"], "dispute_id": world["dispute"], "session_id": world["session"], "reference": world["procedure"],
            "package_id": world["package"], "localite_id": world["localite"],
            "campaign_id": world["campaign"], "claim_id": world["claim"], "setting_key": "display_days", "period_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12}


TERRITORY_CODES = {"poles": "pole", "regions": "region", "departments": "department",
                   "arrondissements": "arrondissement", "communes": "commune"}


def _fill(path: str, world: dict[str, Any]) -> str:
    values = _path_values(world)
    first = path.strip("/").split("/")[0]
    if first in TERRITORY_CODES and "{code}" in path and not path.endswith("/parcels") and "export" not in path \
            and not any(part in path for part in ("overlaps", "boundary-issues", "gaps")):
        values["code"] = world["where"][TERRITORY_CODES[first]]["code"]
    for name, value in values.items():
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, f"no value for a path parameter of {path}"
    return path


def _requests(world: dict[str, Any], role: str) -> dict[tuple[str, str], Callable[[Any, str, dict], Any]]:
    """Per route, a minimal valid request (the callable gets the client, the filled path and the headers)."""
    settings, db = world["settings"], world["db"]
    x, y = world["origin"]
    offset = 40 * ((*ROLES, "national").index(role) + 1)

    def refresh_token() -> str:
        return tokens.issue_refresh_token(db, settings, user_id=world["user_ids"]["administrateur"])[0]

    lon, lat = -17.2283, 14.6933
    point = {"type": "Point", "coordinates": [lon, lat]}
    national = world["national"]
    today = date.today().isoformat()

    def if_match(c, url: str, h: dict[str, str]) -> dict[str, str]:
        """``h`` and the ETag of the record at ``url``, read by the national administrator."""
        read = c.get(url, headers=national)
        assert read.status_code == 200 and read.headers.get("ETag"), (url, read.status_code, read.text[:300])
        return {**h, "If-Match": read.headers["ETag"]}

    def fresh_parcel(c, dx: float, dy: float, size: float = 20.0) -> str:
        """A parcel of Bargny of its own, created by the national administrator (retired, applied for, mutated)."""
        made = c.post("/parcels", params={"crs": "EPSG:32628"}, headers=national, json={
            "type": "Feature", "geometry": mapping(square(x + dx, y + dy, size)), "properties": {"reason": "m"}})
        assert made.status_code == 201, made.text
        return made.json()["id"]

    def retire(c, p, h):
        # A parcel of its own per call: the world parcel stays current for the tenure routes after this one.
        pid = fresh_parcel(c, offset, -200)
        return c.post(f"/parcels/{pid}/retire", headers=if_match(c, f"/parcels/{pid}", h), json={"reason": "m"})

    def fresh_borne(c, dx: float) -> str:
        created = c.post("/bornes", params={"crs": "EPSG:32628"}, headers=national, json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [x - dx, y - 300]},
            "properties": {"precision_m": 0.05}})
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def retire_borne(c, p, h):
        bid = fresh_borne(c, offset)
        return c.post(f"/bornes/{bid}/retire", headers=if_match(c, f"/bornes/{bid}", h), json={"reason": "m"})

    def fresh_package(c) -> str:
        """An open field package of Bargny of its own (declared lost or handed over by the call)."""
        made = c.post("/field/packages", headers=national, json={"commune": BARGNY})
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def lose_package(c, p, h):
        return c.post(f"/field/packages/{fresh_package(c)}/lost", headers=h, json={"reason": "m"})

    def reassign_package(c, p, h):
        return c.post(f"/field/packages/{fresh_package(c)}/reassign", headers=h,
                      json={"to": "matrix.agent_foncier", "reason": "m"})

    def return_package(c, p, h):
        # Only a package's holder returns it: a field worker returns one checked out to itself.
        made = c.post("/field/packages", headers=h, json={"commune": BARGNY})
        target = f"/field/packages/{made.json()['id']}/return" if made.status_code == 201 else p
        return c.post(target, headers=h, params={"dry_run": "true"},
                      files={"file": ("data.gpkg", io.BytesIO(b"SQLite format 3\0"))})

    def procedure(c, p, h):
        # The world parcel has an open procedure: a new request goes to a parcel with none.
        return c.post(p, headers=h, json={"parcel_id": fresh_parcel(c, -offset, -200), "registered_on": today,
                                          "applicants": [{"party_id": world["party"], "share": "1"}]})

    def halves(dx: float, dy: float) -> list[dict[str, Any]]:
        """The two halves of the 20 m square at (dx, dy), as features."""
        return [{"type": "Feature", "properties": {}, "geometry": mapping(box(x + dx + i, y + dy, x + dx + i + 10,
                                                                               y + dy + 20))} for i in (0, 10)]

    mutation = {"occurred_on": today, "source_ids": [world["source"]], "reason": "m"}

    def pay(c, h):
        return c.post("/payments", headers=h, json={"procedure_id": world["fee_procedure"], "amount": 100,
                                                    "method": "cash", "paid_on": today})

    def split(c, p, h):
        pid = fresh_parcel(c, offset, -100)
        return c.post(f"/parcels/{pid}/split", params={"crs": "EPSG:32628"}, headers=if_match(c, f"/parcels/{pid}", h),
                      json={**mutation, "children": halves(offset, -100)})

    def lotissement(c, p, h):
        pid = fresh_parcel(c, -offset, -100)
        return c.post(f"/parcels/{pid}/lotissement", params={"crs": "EPSG:32628"},
                      headers=if_match(c, f"/parcels/{pid}", h), json={**mutation, "lots": halves(-offset, -100)})

    def merge(c, p, h):
        pids = [fresh_parcel(c, offset, 100, 10), fresh_parcel(c, offset + 10, 100, 10)]
        tags = [if_match(c, f"/parcels/{pid}", {})["If-Match"] for pid in pids]
        return c.post(p, headers={**h, "If-Match": ", ".join(tags)}, json={**mutation, "parcel_ids": pids})

    def boundary(c, p, h):
        pid = fresh_parcel(c, -offset, 100)
        return c.post(f"/parcels/{pid}/boundary-correction", params={"crs": "EPSG:32628"},
                      headers=if_match(c, f"/parcels/{pid}", h),
                      json={**mutation, "geometry": mapping(box(x - offset, y + 100, x - offset + 21, y + 120))})

    return {
        ("POST", "/auth/token"): lambda c, p, h: c.post(p, headers=h, data={"username": "matrix.administrateur",
                                                                             "password": PASSWORD}),
        ("POST", "/auth/refresh"): lambda c, p, h: c.post(p, headers=h, json={"refresh_token": refresh_token()}),
        ("POST", "/auth/logout"): lambda c, p, h: c.post(p, headers=h, json={"refresh_token": refresh_token()}),
        ("GET", "/locate"): lambda c, p, h: c.get(p, headers=h, params={"lon": lon, "lat": lat}),
        ("POST", "/parcels"): lambda c, p, h: c.post(p, headers=h, params={"crs": "EPSG:32628"}, json={
            "type": "Feature", "geometry": mapping(square(x + offset, y + 200)), "properties": {"reason": "m"}}),
        ("PATCH", "/parcels/{parcel_id}"): lambda c, p, h: c.patch(p, headers=if_match(c, p, h), json={
            "type": "Feature", "geometry": None, "properties": {"land_use": f"usage {role}", "reason": "m"}}),
        ("POST", "/parcels/{parcel_id}/retire"): retire,
        ("POST", "/bornes"): lambda c, p, h: c.post(p, headers=h, params={"crs": "EPSG:32628"}, json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [x + offset, y - 400]},
            "properties": {"precision_m": 0.1, "survey_method": "station_totale"}}),
        ("PATCH", "/bornes/{borne_id}"): lambda c, p, h: c.patch(p, headers=if_match(c, p, h), json={
            "type": "Feature", "geometry": None, "properties": {"label": f"B {role}", "reason": "m"}}),
        ("POST", "/bornes/{borne_id}/retire"): retire_borne,
        ("POST", "/field/packages"): lambda c, p, h: c.post(p, headers=h, json={"commune": BARGNY}),
        ("POST", "/field/packages/{package_id}/lost"): lose_package,
        ("POST", "/field/packages/{package_id}/reassign"): reassign_package,
        ("POST", "/field/packages/{package_id}/return"): return_package,
        ("GET", "/parcels/at"): lambda c, p, h: c.get(p, headers=h, params={"lon": lon, "lat": lat}),
        ("GET", "/parcels/in-bbox"): lambda c, p, h: c.get(p, headers=h, params={
            "bbox": f"{lon},{lat},{lon + 0.01},{lat + 0.01}"}),
        ("POST", "/parcels/intersecting"): lambda c, p, h: c.post(p, headers=h, json=point),
        ("GET", "/parcels/near"): lambda c, p, h: c.get(p, headers=h, params={"lon": lon, "lat": lat, "distance": 100}),
        ("GET", "/parcels/nearest"): lambda c, p, h: c.get(p, headers=h, params={"lon": lon, "lat": lat, "k": 2}),
        ("POST", "/imports"): lambda c, p, h: c.post(p, headers=h, data={"commune": BARGNY, "dry_run": "true"},
                                                     files={"file": ("m.geojson", io.BytesIO(_geojson_bytes(db)))}),
        ("POST", "/imports/{job_id}/retry"): lambda c, p, h: c.post(p, headers=h),
        ("GET", "/exports/parcels"): lambda c, p, h: c.get(p, headers=h, params={"format": "csv", "commune": BARGNY}),
        # --- tenure: writes on an existing record send the If-Match of its current version
        ("POST", "/parties"): lambda c, p, h: c.post(p, headers=h, json={
            "kind": "natural_person", "name": f"Partie {role}", "commune_code": BARGNY}),
        ("PATCH", "/parties/{party_id}"): lambda c, p, h: c.patch(p, headers=if_match(c, p, h), json={
            "contact": f"contact {role}", "reason": "m"}),
        ("POST", "/sources"): lambda c, p, h: c.post(p, headers=h, json={
            "kind": "acte", "document_date": today, "commune_code": BARGNY, "reference": f"acte {role}"}),
        ("POST", "/sources/{source_id}/files"): lambda c, p, h: c.post(p, headers=h, files={
            "file": (f"{role}.pdf", io.BytesIO(PDF), "application/pdf")}),
        ("POST", "/parcels/{parcel_id}/rights"): lambda c, p, h: c.post(p, headers=h, json={
            "type": "servitude", "start_date": today, "source_ids": [world["source"]],
            "description": f"servitude {role}"}),
        ("PATCH", "/rights/{rrr_id}"): lambda c, p, h: c.patch(p, headers=if_match(c, p, h), json={
            "description": f"passage {role}", "reason": "m"}),
        ("POST", "/rights/{rrr_id}/end"): lambda c, p, h: c.post(
            p, headers=if_match(c, p.removesuffix("/end"), h),
            json={"end_date": today, "cause": "renonciation", "reason": "m"}),
        ("POST", "/procedures"): procedure,
        # --- parcel mutations: each on parcels of its own, with the If-Match of every parcel retired
        ("POST", "/parcels/{parcel_id}/split"): split,
        ("POST", "/parcels/{parcel_id}/lotissement"): lotissement,
        ("POST", "/parcels/merge"): merge,
        ("POST", "/parcels/{parcel_id}/boundary-correction"): boundary,
        ("POST", "/procedures/{procedure_id}/steps"): lambda c, p, h: c.post(
            p, headers=if_match(c, p.removesuffix("/steps"), h),
            json={"step": "surveyed", "occurred_on": today, "source_ids": [world["source"]],
                  "details": {"neighbours_consulted": True}}),
        ("POST", "/procedures/{procedure_id}/recepisse.pdf"): lambda c, p, h: c.post(p, headers=h),
        # --- campaigns and claims: the world campaign (no display: writes answer 409 past the permission check)
        ("GET", "/campaigns"): lambda c, p, h: c.get(p, headers=h, params={"commune_code": BARGNY}),
        ("POST", "/campaigns"): lambda c, p, h: c.post(p, headers=h, json={
            "commune_code": BARGNY, "name": f"campagne {role}", "area": {"kind": "bbox",
                                                                         "bbox": [-17.24, 14.68, -17.22, 14.70]}}),
        ("POST", "/campaigns/{campaign_id}/parcels"): lambda c, p, h: c.post(p, headers=h, json={"source": "area"}),
        ("POST", "/campaigns/{campaign_id}/display-periods"): lambda c, p, h: c.post(p, headers=h,
                                                                                   json={"starts_on": today}),
        ("POST", "/campaigns/{campaign_id}/display-periods/{period_id}/close"): lambda c, p, h: c.post(
            p, headers=h, json={"closed_on": today}),
        ("POST", "/campaigns/{campaign_id}/display-documents"): lambda c, p, h: c.post(p, headers=h),
        ("POST", "/campaigns/{campaign_id}/register"): lambda c, p, h: c.post(p, headers=h, json={"closed_on": today}),
        ("GET", "/claims"): lambda c, p, h: c.get(p, headers=h, params={"commune_code": BARGNY}),
        ("POST", "/claims"): lambda c, p, h: c.post(p, headers=h, json={
            "parcel_id": world["parcel"], "claimant_name": f"Réclamant {role}", "grounds": "m", "received_on": today}),
        ("POST", "/claims/{claim_id}/resolve"): lambda c, p, h: c.post(
            p, headers=if_match(c, p.removesuffix("/resolve"), h),
            json={"decision": "rejected", "resolved_on": today, "reason": "m"}),
        # --- disputes: each write on a dispute (and its parcel) of its own, with the If-Match of its version
        ("GET", "/disputes"): lambda c, p, h: c.get(p, headers=h, params={"commune_code": BARGNY}),
        ("POST", "/disputes"): lambda c, p, h: c.post(p, headers=h, json={
            "commune_code": BARGNY, "kind": "occupation", "parcel_ids": [fresh_parcel(c, offset, 250)],
            "opened_on": today, "source_ids": [world["source"]]}),
        ("POST", "/disputes/from-overlap"): lambda c, p, h: c.post(p, headers=h, json={
            "parcel_ids": [fresh_parcel(c, -offset, 280, 20), fresh_parcel(c, -offset + 19.98, 280, 20)],
            "opened_on": today, "source_ids": [world["source"]]}),
        ("POST", "/disputes/{dispute_id}/steps"): lambda c, p, h: c.post(
            f"/disputes/{(d := _dispute(c, national, (x + offset, y + 280), ''))}/steps",
            headers=if_match(c, f"/disputes/{d}", h), json={"step": "mediation", "occurred_on": today}),
        ("POST", "/disputes/{dispute_id}/close"): lambda c, p, h: c.post(
            f"/disputes/{(d := _dispute(c, national, (x - offset, y + 250), 'resolved'))}/close",
            headers=if_match(c, f"/disputes/{d}", h), json={"closed_on": today, "outcome": "accord"}),
        # --- fees: a payment of its own to cancel, a period for the bordereau
        ("GET", "/fee-schedules"): lambda c, p, h: c.get(p, headers=h, params={"commune_code": BARGNY}),
        ("POST", "/fee-schedules"): lambda c, p, h: c.post(p, headers=h, json={
            "commune_code": BARGNY, "procedure_kind": "regularisation", "valid_from": today,
            "rule": {"kind": "per_m2", "rate": 50}, "deliberation_source_id": world["deliberation"]}),
        ("POST", "/payments"): lambda c, p, h: pay(c, h),
        ("POST", "/payments/{payment_id}/cancel"): lambda c, p, h: c.post(
            f"/payments/{pay(c, national).json()['id']}/cancel", headers=h, json={"reason": "erreur de saisie"}),
        ("GET", "/communes/{code}/bordereau"): lambda c, p, h: c.get(p, headers=h, params={"from": today,
                                                                                        "to": today}),
        # --- commune settings: a new dated row (append-only), citing a source
        ("POST", "/communes/{code}/settings/{setting_key}"): lambda c, p, h: c.post(p, headers=h, json={
            "value": 15, "valid_from": today, "source": "Délibération de la matrice"}),
        # --- localités: a write on an existing one sends its If-Match; each retirement retires one of its own
        ("POST", "/localites"): lambda c, p, h: c.post(p, params={"crs": "EPSG:32628"}, headers=h, json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [x + offset, y - 650]},
            "properties": {"name": f"Quartier {role}", "kind": "quartier"}}),
        ("PATCH", "/localites/{localite_id}"): lambda c, p, h: c.patch(p, headers=if_match(c, p, h), json={
            "type": "Feature", "geometry": None, "properties": {"name": f"Localité {role}", "reason": "m"}}),
        ("DELETE", "/localites/{localite_id}"): lambda c, p, h: _retire_localite(c, national, x - offset, y - 650, h),
        # --- council sessions: each write on a planned session of its own, with the If-Match of its version
        ("POST", "/sessions"): lambda c, p, h: c.post(p, headers=h, json={
            "commune_code": BARGNY, "kind": "conseil_municipal", "held_on": today}),
        ("GET", "/sessions"): lambda c, p, h: c.get(p, headers=h, params={"commune_code": BARGNY}),
        ("PUT", "/sessions/{session_id}/agenda"): lambda c, p, h: c.put(
            f"/sessions/{(s := _session(c, national))}/agenda", headers=if_match(c, f"/sessions/{s}", h),
            json={"procedure_ids": []}),
        ("POST", "/sessions/{session_id}/agenda"): lambda c, p, h: c.post(
            f"/sessions/{(s := _session(c, national))}/agenda", headers=if_match(c, f"/sessions/{s}", h),
            json={"procedure_id": world["procedure"]}),
        ("DELETE", "/sessions/{session_id}/agenda/{procedure_id}"): lambda c, p, h: c.delete(
            f"/sessions/{(s := _session(c, national))}/agenda/{world['procedure']}",
            headers=if_match(c, f"/sessions/{s}", h)),
        ("POST", "/sessions/{session_id}/attendees"): lambda c, p, h: c.post(
            f"/sessions/{(s := _session(c, national))}/attendees", headers=if_match(c, f"/sessions/{s}", h),
            json={"capacity": "membre", "name": f"Conseiller {role}"}),
        ("POST", "/sessions/{session_id}/close-agenda"): lambda c, p, h: c.post(
            f"/sessions/{(s := _session(c, national))}/close-agenda", headers=if_match(c, f"/sessions/{s}", h)),
        ("POST", "/sessions/{session_id}/deliberate"): lambda c, p, h: c.post(
            f"/sessions/{(s := _session(c, national))}/deliberate", headers=if_match(c, f"/sessions/{s}", h),
            json={"number": "DEL-M", "deliberated_on": today, "source_id": world["deliberation"],
                  "decisions": [{"procedure_id": world["procedure"], "decision": "granted"}]}),
        # --- batch documents of a session (409 while it is not deliberated: the roles are what is tested)
        ("POST", "/sessions/{session_id}/documents"): lambda c, p, h: c.post(p, headers=h),
        # --- printed documents: anyone may upload a PDF to verify it
        ("POST", "/documents/verify"): lambda c, p, h: c.post(p, headers=h, files={
            "file": ("document.pdf", io.BytesIO(PDF), "application/pdf")}),
    }


def _call(client, world, role: str, method: str, path: str):
    special = _requests(world, role).get((method, path))
    url = _fill(path, world)
    headers = world["headers"][role]
    if special is not None:
        return special(client, url, headers)
    assert method == "GET", f"{method} {path}: no minimal request in the matrix test"
    return client.get(url, headers=headers)


def _operations(client) -> list[tuple[str, str]]:
    document = client.app.openapi()
    return sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)


def test_every_route_every_role_against_the_policy(client, world):
    rules = policy.load()
    operations = _operations(client)
    missing = [op for op in operations if op not in rules]
    assert not missing, f"routes not in data/policy.yaml: {missing}"
    wrong = []
    for method, path in operations:
        allowed = rules[(method, path)].allow
        if rules[(method, path)].scope == "national":  # the roles here are scoped to Bargny: refused
            allowed = frozenset()
        for role in ROLES:
            response = _call(client, world, role, method, path)
            status = response.status_code
            assert status < 500, (method, path, role, status, response.text[:300])
            if role in allowed:
                ok = status not in (401, 403)
            else:
                ok = status == (401 if role == "public" else 403)
            if not ok:
                wrong.append(f"{method} {path} as {role}: {status} {response.text[:160]}")
    assert not wrong, "\n".join(wrong)


def test_a_national_administrator_is_allowed_everywhere_the_policy_says(client, world):
    rules = policy.load()
    world["headers"]["national"] = world["national"]
    for method, path in _operations(client):
        if "administrateur" in rules[(method, path)].allow:
            status = _call(client, world, "national", method, path).status_code
            assert status not in (401, 403) and status < 500, (method, path, status)


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload[:-2]}{'AA' if payload[-2:] != 'AA' else 'BB'}.{signature}"


def test_expired_or_tampered_tokens_are_refused_with_401(client, world):
    settings = world["settings"]
    user_id = world["user_ids"]["administrateur"]
    expired = tokens.start_session(world["db"], settings, user_id=user_id,
                                   now=datetime.now(UTC) - timedelta(hours=2)).access_token
    good = world["headers"]["administrateur"]["Authorization"].removeprefix("Bearer ")
    for token in (expired, _tamper(good), good[:-3], "x.y.z"):
        for url in ("/auth/me", "/imports", "/communes/SN0104-bargny/parcels", f"/parcels/{world['parcel']}"):
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (url, response.text)
            assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/imports", headers={"X-API-Key": "sifc_0123456789_nope"}).status_code == 401


def _string_parameters(document: dict[str, Any], path: str) -> tuple[list[str], list[str]]:
    """The string path and query parameters of ``GET path``."""
    operation = document["paths"][path]["get"]
    in_path, in_query = [], []
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
        if "string" in types and "enum" not in schema and not any("enum" in s for s in schema.get("anyOf", [])):
            (in_path if parameter["in"] == "path" else in_query).append(parameter["name"])
    return in_path, in_query


def test_hostile_strings_in_every_string_parameter_never_cause_a_500_nor_leak(client, world):
    document = client.app.openapi()
    headers = world["national"]
    tried = 0
    for path, item in document["paths"].items():
        if "get" not in item:
            continue
        in_path, in_query = _string_parameters(document, path)
        base = _fill(path, world)
        for hostile in HOSTILE:
            for name in in_path:
                url = path
                for other in in_path:
                    url = url.replace("{" + other + "}", "\u2063" if other == name else "{" + other + "}")
                url = _fill(url, world).replace("\u2063", _quote(hostile))
                tried += _check(client, url, headers, {})
            for name in in_query:
                tried += _check(client, base, headers, {name: hostile})
    assert tried > 200


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _check(client, url: str, headers: dict[str, str], params: dict[str, str]) -> int:
    response = client.get(url, headers=headers, params=params)
    assert response.status_code < 500, (url, params, response.status_code, response.text[:300])
    assert response.status_code in (200, 204, 400, 401, 403, 404, 405, 406, 409, 410, 413, 414, 422, 429), \
        (url, params, response.status_code)
    body = response.text
    # An error says nothing of the server's internals; no answer holds a file read through a traversal.
    leaks = LEAKS if response.status_code >= 400 else ("Traceback", "root:x:0:0")
    assert not any(leak in body for leak in leaks), (url, params, body[:300])
    return 1


def test_nothing_was_written_by_a_hostile_string(world):
    db = world["db"]
    assert db.execute(text("SELECT count(*) FROM commune")).scalar() > 500
    assert db.execute(text("SELECT to_regclass('parcel')")).scalar() == "parcel"
