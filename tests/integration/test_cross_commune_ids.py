"""Ids from another commune: every route that takes a party, source, parcel or procedure id.

An agent foncier of Bargny sends ids of Sandiara's records, in the path or in the body. Linking a
party or a source the caller may not read is answered exactly as linking one that does not exist
(404, same message): a write cannot be used to learn who is registered elsewhere, nor to show a
Sandiara name to Bargny's readers. Other records (parcels, rights, procedures, whose ids the public
register shows) are refused with 403. Every refusal leaves the database as it was, and no answer
carries a Sandiara name.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text

from api.preconditions import etag
from tests.conftest import api_key, table_fingerprint
from tests.integration.fixtures import bargny_origin, day

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
CRS = {"crs": "EPSG:32628"}
NAME = "Thiamzeta"  # the Sandiara party's name, which no answer to Bargny's agent may carry
TABLES = ("parcel_version", "party_version", "rrr_version", "rrr_holder", "source_document", "source_file",
          "tenure_procedure", "procedure_step", "parcel_mutation", "parcel_lineage", "write_audit", "access_audit",
          "issued_document")


def _ok(response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return {**response.json(), "etag": response.headers.get("ETag")}


def _parcel(client, headers, geom) -> dict[str, Any]:
    return _ok(client.post("/parcels", params=CRS, headers=headers, json={
        "type": "Feature", "geometry": mapping(geom), "properties": {"reason": "levé", "land_use": "habitation"}}))


def _source(client, headers, commune: str, kind: str = "plan") -> str:
    body = {"kind": kind, "document_date": day(20), "commune_code": commune, "reference": f"{kind} 12"}
    if kind == "deliberation":
        body["council_session"] = "session ordinaire"
    return _ok(client.post("/sources", headers=headers, json=body))["id"]


@pytest.fixture
def world(client, db, admin_headers) -> dict[str, Any]:
    """Sandiara's records (a parcel, a person, a source with a file, a lease, a request) and Bargny's."""
    admin = admin_headers
    sx, sy = db.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Buffer(geom, -500)) p
                                FROM commune WHERE code = :c) t"""), {"c": SANDIARA}).one()
    s_parcel = _parcel(client, admin, box(sx, sy, sx + 30, sy + 30))
    s_party = _ok(client.post("/parties", headers=admin, json={
        "kind": "natural_person", "name": NAME, "given_names": "Fatou", "id_number": "SYN-THIAM-1",
        "commune_code": SANDIARA}))["id"]
    s_source = _source(client, admin, SANDIARA, "acte")
    s_file = _ok(client.post(f"/sources/{s_source}/files", headers=admin,
                             files={"file": ("acte.pdf", b"%PDF-1.4\n% acte\n%%EOF\n")}))["id"]
    s_right = _ok(client.post(f"/parcels/{s_parcel['id']}/rights", headers=admin, json={
        "type": "bail", "start_date": day(30), "source_ids": [s_source], "holders": [{"party_id": s_party}]}))
    s_procedure = _ok(client.post("/procedures", headers=admin, json={
        "parcel_id": s_parcel["id"], "applicants": [{"party_id": s_party}], "registered_on": day(30)}))

    x, y = bargny_origin(db)
    x, y = x + 700, y - 300
    leased, requested, b3, b4 = (_parcel(client, admin, box(x + dx, y, x + dx + 20, y + 20)) for dx in (0, 60, 120, 140))
    b_party = _ok(client.post("/parties", headers=admin, json={
        "kind": "natural_person", "name": "Ndiaye", "commune_code": BARGNY}))["id"]
    group = _ok(client.post("/parties", headers=admin, json={
        "kind": "group", "group_type": "famille", "name": "Famille Ndiaye", "members": [b_party],
        "commune_code": BARGNY}))
    b_source = _source(client, admin, BARGNY, "acte")
    b_right = _ok(client.post(f"/parcels/{leased['id']}/rights", headers=admin, json={
        "type": "bail", "start_date": day(30), "source_ids": [b_source], "holders": [{"party_id": b_party}]}))
    b_procedure = _ok(client.post("/procedures", headers=admin, json={
        "parcel_id": requested["id"], "applicants": [{"party_id": b_party}], "registered_on": day(30)}))
    return {"s_parcel": s_parcel, "s_party": s_party, "s_source": s_source, "s_file": s_file, "s_right": s_right,
            "s_procedure": s_procedure, "leased": leased, "b3": b3, "b4": b4, "b_party": b_party, "group": group,
            "b_source": b_source, "b_right": b_right, "b_procedure": b_procedure, "origin": (x, y)}


def _halves(x: float, y: float, dx: float) -> list[dict[str, Any]]:
    return [{"type": "Feature", "geometry": mapping(box(x + dx, y, x + dx + 10, y + 20)), "properties": {}},
            {"type": "Feature", "geometry": mapping(box(x + dx + 10, y, x + dx + 20, y + 20)), "properties": {}}]


def _mutation(source: str, **extra) -> dict[str, Any]:
    return {"occurred_on": day(1), "source_ids": [source], "reason": "mutation", **extra}


def _linking_cases(w: dict[str, Any], party: str, source: str) -> dict[str, tuple[str, str, dict[str, Any], str]]:
    """Requests of Bargny's agent on Bargny's records that name ``party`` or ``source`` (method, path, body, tag)."""
    x, y = w["origin"]
    b3, b4 = w["b3"], w["b4"]
    b_source, b_party = w["b_source"], w["b_party"]
    return {
        "right's holder": ("POST", f"/parcels/{w['leased']['id']}/rights", {
            "type": "bail", "start_date": day(10), "source_ids": [b_source], "holders": [{"party_id": party}]}, ""),
        "right's new holder": ("PATCH", f"/rights/{w['b_right']['id']}", {
            "holders": [{"party_id": party}], "reason": "cession"}, w["b_right"]["etag"]),
        "applicant": ("POST", "/procedures", {
            "parcel_id": b3["id"], "applicants": [{"party_id": party}], "registered_on": day(5)}, ""),
        "co-applicant": ("POST", "/procedures", {
            "parcel_id": b3["id"], "applicants": [{"party_id": b_party, "share": "1/2"},
                                                  {"party_id": party, "share": "1/2"}], "registered_on": day(5)}, ""),
        "group member": ("POST", "/parties", {
            "kind": "group", "group_type": "gie", "name": "GIE", "members": [party], "commune_code": BARGNY}, ""),
        "group's new member": ("PATCH", f"/parties/{w['group']['id']}", {
            "members": [b_party, party], "reason": "adhésion"}, w["group"]["etag"]),
        "right's source": ("POST", f"/parcels/{w['leased']['id']}/rights", {
            "type": "servitude", "start_date": day(10), "source_ids": [source]}, ""),
        "right's new source": ("PATCH", f"/rights/{w['b_right']['id']}", {
            "source_ids": [source], "reason": "acte rectifié"}, w["b_right"]["etag"]),
        "end's source": ("POST", f"/rights/{w['b_right']['id']}/end", {
            "end_date": day(0), "cause": "resiliation", "source_ids": [source], "reason": "résiliation"},
            w["b_right"]["etag"]),
        "request's source": ("POST", "/procedures", {
            "parcel_id": b3["id"], "applicants": [{"party_id": b_party}], "registered_on": day(5),
            "source_ids": [source]}, ""),
        "step's source": ("POST", f"/procedures/{w['b_procedure']['id']}/steps", {
            "step": "surveyed", "occurred_on": day(2), "source_ids": [source],
            "details": {"neighbours_consulted": True}}, w["b_procedure"]["etag"]),
        "split's source": ("POST", f"/parcels/{b3['id']}/split?crs=EPSG:32628", _mutation(
            source, children=_halves(x, y, 120)), b3["etag"]),
        "lotissement's source": ("POST", f"/parcels/{b3['id']}/lotissement?crs=EPSG:32628", _mutation(
            source, lots=_halves(x, y, 120)), b3["etag"]),
        "merge's source": ("POST", "/parcels/merge", _mutation(source, parcel_ids=[b3["id"], b4["id"]]),
                           f"{b3['etag']}, {b4['etag']}"),
        "correction's source": ("POST", f"/parcels/{b3['id']}/boundary-correction?crs=EPSG:32628", _mutation(
            source, geometry=mapping(box(x + 120, y, x + 139.5, y + 20))), b3["etag"]),
    }


def _send(client, headers: dict[str, str], method: str, path: str, body: dict[str, Any] | None = None,
          tag: str = "", files: dict[str, Any] | None = None):
    if tag:
        headers = {**headers, "If-Match": tag}
    if files is not None:
        return client.request(method, path, headers=headers, files=files)
    return client.request(method, path, headers=headers, json=body)


def _fingerprints(db) -> dict[str, tuple[int, str]]:
    return {table: table_fingerprint(db, table) for table in TABLES}


def _same_answer(refused, missing, *, real: str, fake: str) -> None:
    """Two answers that differ only by the id they name."""
    assert refused.status_code == missing.status_code == 404, (refused.text, missing.text)
    assert json.loads(refused.text.replace(real, "ID")) == json.loads(missing.text.replace(fake, "ID"))


def test_linking_a_party_or_a_source_of_another_commune_is_as_linking_none(client, db, officer, world):
    fake_party, fake_source = str(uuid.uuid4()), str(uuid.uuid4())
    real = _linking_cases(world, world["s_party"], world["s_source"])
    absent = _linking_cases(world, fake_party, fake_source)
    before = _fingerprints(db)
    for case, (method, path, body, tag) in real.items():
        refused = _send(client, officer, method, path, body, tag)
        kind = "source" if "source" in case else "party"
        assert refused.status_code == 404 and refused.json()["type"] == f"urn:sifc:problem:{kind}.not_found", (
            case, refused.text)
        assert NAME not in refused.text, case
        method, path, body, tag = absent[case]
        _same_answer(refused, _send(client, officer, method, path, body, tag),
                     real=world["s_source"] if kind == "source" else world["s_party"],
                     fake=fake_source if kind == "source" else fake_party)
        assert _fingerprints(db) == before, case
    # The same requests naming Bargny's own records pass (the refusals were about the commune only).
    own = _linking_cases(world, world["b_party"], world["b_source"])
    method, path, body, tag = own["right's holder"]
    assert _send(client, officer, method, path, body, tag).status_code == 201


def test_a_party_of_another_commune_reads_as_no_party(client, db, officer, world):
    fake = str(uuid.uuid4())
    before = _fingerprints(db)
    for method, suffix, body in (("GET", "", None), ("GET", "/versions", None),
                                 ("PATCH", "", {"contact": "x", "reason": "y"})):
        real_tag = etag("party", world["s_party"], 1) if method == "PATCH" else ""  # as its commune reads it
        refused = _send(client, officer, method, f"/parties/{world['s_party']}{suffix}", body, real_tag)
        missing = _send(client, officer, method, f"/parties/{fake}{suffix}", body, real_tag)
        _same_answer(refused, missing, real=world["s_party"], fake=fake)
        assert NAME not in refused.text
    assert _fingerprints(db) == before


def test_records_of_another_commune_refuse_every_write_and_show_no_name(client, db, officer, world):
    w = world
    x, y = w["origin"]
    s_parcel, s_right, s_procedure = w["s_parcel"], w["s_right"], w["s_procedure"]
    sid, b_source, b_party = s_parcel["id"], w["b_source"], w["b_party"]
    pdf = {"file": ("plan.pdf", b"%PDF-1.4\n% plan\n%%EOF\n")}
    forbidden = {
        "create a party there": ("POST", "/parties", {"kind": "natural_person", "name": "X", "commune_code": SANDIARA},
                                 "", None),
        "create a source there": ("POST", "/sources", {"kind": "plan", "document_date": day(1),
                                                       "commune_code": SANDIARA}, "", None),
        "read its source": ("GET", f"/sources/{w['s_source']}", None, "", None),
        "attach to its source": ("POST", f"/sources/{w['s_source']}/files", None, "", pdf),
        "read its source's file": ("GET", f"/sources/{w['s_source']}/files/{w['s_file']}", None, "", None),
        "a right on its parcel": ("POST", f"/parcels/{sid}/rights", {
            "type": "servitude", "start_date": day(1), "source_ids": [b_source]}, "", None),
        "change its right": ("PATCH", f"/rights/{s_right['id']}", {"description": "x", "reason": "y"},
                             s_right["etag"], None),
        "end its right": ("POST", f"/rights/{s_right['id']}/end", {
            "end_date": day(0), "cause": "resiliation", "reason": "x"}, s_right["etag"], None),
        "a request on its parcel": ("POST", "/procedures", {
            "parcel_id": sid, "applicants": [{"party_id": b_party}], "registered_on": day(1)}, "", None),
        "read its request": ("GET", f"/procedures/{s_procedure['id']}", None, "", None),
        "a step of its request": ("POST", f"/procedures/{s_procedure['id']}/steps", {
            "step": "refused", "occurred_on": day(1), "reason": "x"}, s_procedure["etag"], None),
        "its request's extract": ("GET", f"/procedures/{s_procedure['id']}/extrait.pdf", None, "", None),
        "its request's certificate": ("GET", f"/procedures/{s_procedure['id']}/certificat.pdf", None, "", None),
        "its parcel's requests": ("GET", f"/parcels/{sid}/procedures", None, "", None),
        "its parcel's write log": ("GET", f"/parcels/{sid}/audit", None, "", None),
        "change its parcel": ("PATCH", f"/parcels/{sid}", {
            "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "x"}},
            s_parcel["etag"], None),
        "retire its parcel": ("POST", f"/parcels/{sid}/retire", {"reason": "x"}, s_parcel["etag"], None),
        "split its parcel": ("POST", f"/parcels/{sid}/split", _mutation(b_source, children=_halves(x, y, 120)),
                             s_parcel["etag"], None),
        "lotir its parcel": ("POST", f"/parcels/{sid}/lotissement", _mutation(b_source, lots=_halves(x, y, 120)),
                             s_parcel["etag"], None),
        "correct its parcel": ("POST", f"/parcels/{sid}/boundary-correction?crs=EPSG:32628", _mutation(
            b_source, geometry=s_parcel["geometry"]), s_parcel["etag"], None),
        "merge with its parcel": ("POST", "/parcels/merge", _mutation(b_source, parcel_ids=[w["b3"]["id"], sid]),
                                  f"{w['b3']['etag']}, {s_parcel['etag']}", None),
        "a parcel there": ("POST", "/parcels?crs=EPSG:32628", {"type": "Feature", "geometry": s_parcel["geometry"],
                                                "properties": {"reason": "levé"}}, "", None),
    }
    refused_as_invalid = {
        "follow its right": ("POST", "/procedures", {
            "parcel_id": w["b3"]["id"], "applicants": [{"party_id": b_party}], "registered_on": day(1),
            "follows_rrr_id": s_right["id"]}, "", None),
        "end its right by a merge": ("POST", "/parcels/merge", _mutation(
            b_source, parcel_ids=[w["b3"]["id"], w["b4"]["id"]], end_rights=[s_right["id"]]),
            f"{w['b3']['etag']}, {w['b4']['etag']}", None),
    }
    before = _fingerprints(db)
    for case, (method, path, body, tag, files) in {**forbidden, **refused_as_invalid}.items():
        response = _send(client, officer, method, path, body, tag, files)
        expected = 403 if case in forbidden else 422
        assert response.status_code == expected, (case, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), case
        assert NAME not in response.text, case
        assert _fingerprints(db) == before, case
    # What the public register shows of Sandiara, Bargny's agent sees too: never the holder's name.
    for path in (f"/parcels/{sid}", f"/parcels/{sid}/versions", f"/parcels/{sid}/history", f"/parcels/{sid}/rights",
                 f"/parcels/{sid}/lineage", f"/rights/{s_right['id']}", f"/rights/{s_right['id']}/versions",
                 f"/communes/{SANDIARA}/parcels", f"/communes/{SANDIARA}/registre.csv"):
        response = client.get(path, headers=officer)
        assert response.status_code == 200, (path, response.text)
        assert NAME not in response.text and "Fatou" not in response.text and "SYN-THIAM" not in response.text, path
    assert "holders" not in client.get(f"/rights/{s_right['id']}", headers=officer).json()
    assert _fingerprints(db) == before


def test_a_lecteur_of_bargny_never_reads_a_name_registered_elsewhere(client, db, officer, world):
    """The defect end to end: the link refused, Bargny's reader finds no Sandiara name on Bargny's parcel."""
    leased = world["leased"]["id"]
    linked = client.post(f"/parcels/{leased}/rights", headers=officer, json={
        "type": "bail", "start_date": day(10), "source_ids": [world["b_source"]],
        "holders": [{"party_id": world["s_party"]}]})
    assert linked.status_code == 404 and NAME not in linked.text
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur bargny")}
    for path in (f"/parcels/{leased}/rights", f"/parcels/{leased}/history"):
        response = client.get(path, headers=reader)
        assert response.status_code == 200 and "Ndiaye" in response.text and NAME not in response.text, path
