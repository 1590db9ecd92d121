"""Tenure records: the affectation procedure end to end, the business rules, scopes and privacy.

Each test runs in one rolled-back transaction (the deferred check of the shares runs at commit,
so it is exercised by the end-to-end tests); timings and concurrency are in tests/e2e/test_tenure_http.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from shapely.geometry import mapping
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from sifc.tenure.procedures import required_authority
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, day, square

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
TODAY = date.today()


@pytest.fixture
def parcel(client, db, admin_headers) -> dict:
    x, y = bargny_origin(db)
    response = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=admin_headers, json={
        "type": "Feature", "geometry": mapping(square(x + 500, y + 500, 30)),
        "properties": {"nicad": "0104040177777", "land_use": "habitation", "reason": "levé"}})
    assert response.status_code == 201, response.text
    return response.json()


def _party(client, headers, name: str, **extra) -> str:
    response = client.post("/parties", headers=headers, json={
        "kind": "natural_person", "name": name, "given_names": "Awa", "id_number": f"SYN-{name[:3].upper()}",
        "contact": "+221 00 000 00 00", "commune_code": BARGNY, **extra})
    assert response.status_code == 201, response.text
    assert response.headers["ETag"]
    return response.json()["id"]


def _source(client, headers, kind: str, **extra) -> str:
    body = {"kind": kind, "document_date": day(20), "commune_code": BARGNY, **extra}
    if kind == "deliberation":
        body.update(reference="DEL-2026-014", council_session="session ordinaire du 2e trimestre")
    response = client.post("/sources", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _step(client, headers, procedure: dict, step: str, *, on: str, **body):
    response = client.post(f"/procedures/{procedure['id']}/steps", headers={**headers, "If-Match": procedure["etag"]},
                           json={"step": step, "occurred_on": on, **body})
    if response.status_code == 200:
        procedure.update(response.json(), etag=response.headers["ETag"])
    return response


def _register(client, headers, parcel_id: str, applicants: list[dict], **extra) -> dict:
    response = client.post("/procedures", headers=headers, json={
        "parcel_id": parcel_id, "applicants": applicants, "registered_on": day(30), "purpose": "habitation",
        "reference": "DEM-001", **extra})
    assert response.status_code == 201, response.text
    return {**response.json(), "etag": response.headers["ETag"]}


def _complete(client, headers, parcel: dict, applicants: list[dict], **extra) -> dict:
    procedure = _register(client, headers, parcel["id"], applicants, **extra)
    pv = _source(client, headers, "proces_verbal", reference="PV-77")
    assert _step(client, headers, procedure, "surveyed", on=day(25), source_ids=[pv],
                 details={"neighbours_consulted": True}).status_code == 200
    deliberation = _source(client, headers, "deliberation")
    assert _step(client, headers, procedure, "deliberated", on=day(15), source_ids=[deliberation]).status_code == 200
    approval = _source(client, headers, "approbation", authority="sous_prefet", reference="ARR-12")
    assert _step(client, headers, procedure, "approved", on=day(10), source_ids=[approval]).status_code == 200
    done = _step(client, headers, procedure, "notified", on=day(5))
    assert done.status_code == 200, done.text
    return procedure


def test_a_land_officer_takes_a_request_to_an_affectation(client, db, officer, parcel):
    awa = _party(client, officer, "Ndiaye")
    procedure = _register(client, officer, parcel["id"], [{"party_id": awa, "share": "1"}])
    assert procedure["state"] == "registered" and procedure["rrr_id"] is None
    assert client.get(f"/parcels/{parcel['id']}/rights").json()["rights"] == []

    pv = _source(client, officer, "proces_verbal", reference="PV-77")
    assert _step(client, officer, procedure, "surveyed", on=day(25), source_ids=[pv],
                 details={"neighbours_consulted": True, "neighbour_parcel_ids": []}).status_code == 200
    deliberation = _source(client, officer, "deliberation")
    assert _step(client, officer, procedure, "deliberated", on=day(15), source_ids=[deliberation]).status_code == 200
    approval = _source(client, officer, "approbation", authority="sous_prefet", reference="ARR-12")
    assert _step(client, officer, procedure, "approved", on=day(10), source_ids=[approval]).status_code == 200
    assert client.get(f"/parcels/{parcel['id']}/rights").json()["rights"] == [], "no right before completion"
    notified = _step(client, officer, procedure, "notified", on=day(5))
    assert notified.status_code == 200, notified.text
    assert procedure["state"] == "notified" and procedure["rrr_id"]

    # The affectation appears, resting on the délibération and its approval, held by the applicant.
    rights = client.get(f"/parcels/{parcel['id']}/rights", headers=officer).json()["rights"]
    assert [(r["type"], r["status"], r["start_date"]) for r in rights] == [("affectation", "in_force", day(10))]
    assert set(rights[0]["source_ids"]) == {deliberation, approval}
    assert rights[0]["holders"] == [{"party_id": awa, "share": "1/1", "kind": "natural_person", "name": "Ndiaye",
                                     "given_names": "Awa"}]
    # The public sees the right, never its holders.
    public = client.get(f"/parcels/{parcel['id']}/rights").json()["rights"]
    assert public[0]["type"] == "affectation" and "holders" not in public[0]
    assert "Ndiaye" not in client.get(f"/parcels/{parcel['id']}/history").text

    history = client.get(f"/parcels/{parcel['id']}/history", headers=officer).json()
    assert [v["properties"]["version"] for v in history["versions"]] == [1]
    assert [p["state"] for p in history["procedures"]] == ["notified"]
    assert [s["step"] for s in history["procedures"][0]["steps"]] == [
        "registered", "surveyed", "deliberated", "approved", "notified"]
    assert history["rights"][0]["holders"][0]["name"] == "Ndiaye"

    # Every step is in the write audit, with its author (the registration also issued the récépissé's
    # tracking code, a write of its own).
    operations = db.execute(text("SELECT operation, actor FROM write_audit WHERE parcel_id = :p ORDER BY id"),
                            {"p": parcel["id"]}).all()
    assert [o for o, _ in operations] == ["parcel.create", "procedure.register", "tracking.issue",
                                          "procedure.surveyed", "procedure.deliberated", "procedure.approved",
                                          "rrr.create.affectation", "procedure.notified"]
    assert {a.split(" ", 1)[1] for o, a in operations if o != "parcel.create"} == {"agent bargny"}
    audit = client.get(f"/parcels/{parcel['id']}/audit", headers=officer).json()["entries"]
    assert audit[0]["operation"] == "procedure.notified" and audit[0]["before"]["state"] == "approved"


def test_a_procedure_refused_at_the_survey_creates_no_right(client, db, officer, parcel):
    awa = _party(client, officer, "Diop")
    procedure = _register(client, officer, parcel["id"], [{"party_id": awa}])
    missing_reason = _step(client, officer, procedure, "refused", on=day(20))
    assert missing_reason.status_code == 422
    refused = _step(client, officer, procedure, "refused", on=day(20), reason="parcelle revendiquée par un voisin")
    assert refused.status_code == 200 and procedure["state"] == "refused"
    assert _step(client, officer, procedure, "surveyed", on=day(19), details={"neighbours_consulted": True}
                 ).status_code == 409
    assert db.execute(text("SELECT count(*) FROM rrr_version WHERE parcel_id = :p"), {"p": parcel["id"]}).scalar() == 0
    assert procedure["rrr_id"] is None


@pytest.mark.parametrize("case", ["out_of_order", "no_pv", "neighbours", "date_before", "future"])
def test_steps_are_checked(client, officer, parcel, case):
    awa = _party(client, officer, "Sarr")
    procedure = _register(client, officer, parcel["id"], [{"party_id": awa}])
    pv = _source(client, officer, "proces_verbal")
    body = {"source_ids": [pv], "details": {"neighbours_consulted": True}}
    step, on, status = {
        "out_of_order": ("deliberated", day(20), 409), "no_pv": ("surveyed", day(20), 422),
        "neighbours": ("surveyed", day(20), 422), "date_before": ("surveyed", day(40), 422),
        "future": ("surveyed", (TODAY + timedelta(days=30)).isoformat(), 422)}[case]
    if case == "no_pv":
        body["source_ids"] = []
    if case == "neighbours":
        body["details"] = {}
    response = _step(client, officer, procedure, step, on=on, **body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_the_approving_authority_follows_the_area(client, officer, parcel, settings):
    assert required_authority(9 * 10_000, (10, 50)) == "sous_prefet"
    assert required_authority(10 * 10_000, (10, 50)) == "sous_prefet"
    assert required_authority(30 * 10_000, (10, 50)) == "prefet"
    assert required_authority(51 * 10_000, (10, 50)) == "gouverneur"
    awa = _party(client, officer, "Fall")
    procedure = _register(client, officer, parcel["id"], [{"party_id": awa}])
    pv = _source(client, officer, "proces_verbal")
    _step(client, officer, procedure, "surveyed", on=day(25), source_ids=[pv], details={"neighbours_consulted": True})
    _step(client, officer, procedure, "deliberated", on=day(15), source_ids=[_source(client, officer, "deliberation")])
    governor = _source(client, officer, "approbation", authority="gouverneur")
    wrong = _step(client, officer, procedure, "approved", on=day(10), source_ids=[governor])
    assert wrong.status_code == 422 and "sous_prefet" in wrong.json()["detail"]


def test_one_affectation_per_parcel_unless_shared(client, officer, parcel):
    a, b = _party(client, officer, "Gueye"), _party(client, officer, "Faye")
    bad_shares = client.post("/procedures", headers=officer, json={
        "parcel_id": parcel["id"], "registered_on": day(30),
        "applicants": [{"party_id": a, "share": "1/2"}, {"party_id": b, "share": "1/3"}]})
    assert bad_shares.status_code == 422 and "5/6" in bad_shares.json()["detail"]
    _complete(client, officer, parcel, [{"party_id": a, "share": "1/2"}, {"party_id": b, "share": "0.5"}])
    rights = client.get(f"/parcels/{parcel['id']}/rights", headers=officer).json()["rights"]
    assert sorted(h["share"] for h in rights[0]["holders"]) == ["1/2", "1/2"]
    again = client.post("/procedures", headers=officer, json={
        "parcel_id": parcel["id"], "registered_on": day(1), "applicants": [{"party_id": a}]})
    assert again.status_code == 409 and again.json()["type"] == "urn:sifc:problem:rrr.affectation_exists"


def test_an_affectation_is_never_transferred_and_goes_to_the_heirs(client, db, officer, parcel):
    father, son = _party(client, officer, "Ba"), _party(client, officer, "Ba fils")
    _complete(client, officer, parcel, [{"party_id": father}])
    right = client.get(f"/parcels/{parcel['id']}/rights", headers=officer).json()["rights"][0]
    etag = client.get(f"/rights/{right['id']}").headers["ETag"]
    sale = client.patch(f"/rights/{right['id']}", headers={**officer, "If-Match": etag},
                        json={"holders": [{"party_id": son}], "reason": "vente"})
    assert sale.status_code == 409 and sale.json()["type"] == "urn:sifc:problem:rrr.affectation_not_transferable"
    death = _source(client, officer, "certificat", reference="acte de décès 12")
    ended = client.post(f"/rights/{right['id']}/end", headers={**officer, "If-Match": etag},
                        json={"end_date": day(2), "cause": "deces", "source_ids": [death], "reason": "décès du titulaire"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "ended" and ended.json()["version"] == 2
    # The heirs' request follows the ended affectation; the new right is linked to the first.
    heirs = _complete(client, officer, parcel, [{"party_id": son}], follows_rrr_id=right["id"])
    new = client.get(f"/rights/{heirs['rrr_id']}", headers=officer).json()
    assert new["predecessor_id"] == right["id"] and new["holders"][0]["party_id"] == son
    versions = client.get(f"/rights/{right['id']}/versions").json()
    assert [(v["version"], v["end_cause"]) for v in versions] == [(1, None), (2, "deces")]


def test_a_desaffectation_needs_a_deliberation_and_a_notice(client, officer, parcel, settings):
    holder = _party(client, officer, "Cisse")
    _complete(client, officer, parcel, [{"party_id": holder}])
    right = client.get(f"/parcels/{parcel['id']}/rights").json()["rights"][0]
    etag = client.get(f"/rights/{right['id']}").headers["ETag"]
    deliberation = _source(client, officer, "deliberation")
    body = {"end_date": day(0), "cause": "desaffectation", "source_ids": [deliberation], "reason": "défaut de mise en valeur"}
    no_notice = client.post(f"/rights/{right['id']}/end", headers={**officer, "If-Match": etag}, json=body)
    assert no_notice.status_code == 422
    short = client.post(f"/rights/{right['id']}/end", headers={**officer, "If-Match": etag},
                        json={**body, "notice_date": day(3)})
    assert short.status_code == 422 and str(settings.desaffectation_notice_days) in short.json()["detail"]
    done = client.post(f"/rights/{right['id']}/end", headers={**officer, "If-Match": etag},
                       json={**body, "notice_date": day(settings.desaffectation_notice_days)})
    assert done.status_code == 200, done.text


def test_a_litige_freezes_the_parcel_until_lifted(client, db, officer, parcel):
    decision = _source(client, officer, "decision_justice", reference="TGI Rufisque 2026/88")
    litige = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
        "type": "litige", "start_date": day(3), "source_ids": [decision], "description": "contestation de limite"})
    assert litige.status_code == 201, litige.text
    before = db.execute(text("SELECT count(*) FROM parcel_version WHERE parcel_id = :p"), {"p": parcel["id"]}).scalar()
    etag = client.get(f"/parcels/{parcel['id']}").headers["ETag"]
    change = client.patch(f"/parcels/{parcel['id']}", headers={**officer, "If-Match": etag}, json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "changement"}})
    assert change.status_code == 409 and change.json()["type"] == "urn:sifc:problem:tenure.under_litige"
    retire = client.post(f"/parcels/{parcel['id']}/retire", headers={**officer, "If-Match": etag},
                         json={"reason": "x"})
    assert retire.status_code == 409
    awa = _party(client, officer, "Kane")
    request = client.post("/procedures", headers=officer, json={
        "parcel_id": parcel["id"], "registered_on": day(1), "applicants": [{"party_id": awa}]})
    assert request.status_code == 409
    lease = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
        "type": "bail", "start_date": day(1), "source_ids": [decision], "holders": [{"party_id": awa}]})
    assert lease.status_code == 409
    assert db.execute(text("SELECT count(*) FROM parcel_version WHERE parcel_id = :p"),
                      {"p": parcel["id"]}).scalar() == before
    # Lifted (mainlevée), the parcel changes again.
    litige_tag = client.get(f"/rights/{litige.json()['id']}").headers["ETag"]
    lifted = client.post(f"/rights/{litige.json()['id']}/end", headers={**officer, "If-Match": litige_tag}, json={
        "end_date": day(0), "cause": "mainlevee", "source_ids": [decision], "reason": "jugement"})
    assert lifted.status_code == 200, lifted.text
    assert client.patch(f"/parcels/{parcel['id']}", headers={**officer, "If-Match": etag}, json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": "changement"}}
    ).status_code == 200


def test_direct_rights_and_their_rules(client, officer, parcel):
    owner = _party(client, officer, "Sow")
    act = _source(client, officer, "acte", reference="acte 55")
    base = {"start_date": day(10), "source_ids": [act], "holders": [{"party_id": owner}]}
    assert client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={**base, "type": "affectation"}
                       ).status_code == 422
    assert client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={**base, "type": "titre_foncier"}
                       ).status_code == 422
    no_holder = client.post(f"/parcels/{parcel['id']}/rights", headers=officer,
                            json={**base, "type": "bail", "holders": []})
    assert no_holder.status_code == 422
    tf = client.post(f"/parcels/{parcel['id']}/rights", headers=officer,
                     json={**base, "type": "titre_foncier", "tf_number": "TF 1234/RF"})
    assert tf.status_code == 201 and tf.json()["class"] == "right" and tf.json()["tf_number"] == "TF 1234/RF"
    servitude = client.post(f"/parcels/{parcel['id']}/rights", headers=officer,
                            json={"type": "servitude", "start_date": day(10), "source_ids": [act]})
    assert servitude.status_code == 201 and servitude.json()["class"] == "restriction"
    # A titre foncier changes hands: a new version with the new holders, the old one kept.
    buyer = _party(client, officer, "Mbaye")
    sold = client.patch(f"/rights/{tf.json()['id']}", headers={**officer, "If-Match": tf.headers["ETag"]},
                        json={"holders": [{"party_id": buyer}], "reason": "mutation après vente"})
    assert sold.status_code == 200 and sold.json()["holders"][0]["party_id"] == buyer
    stale = client.patch(f"/rights/{tf.json()['id']}", headers={**officer, "If-Match": tf.headers["ETag"]},
                         json={"description": "x", "reason": "y"})
    assert stale.status_code == 412
    missing = client.patch(f"/rights/{tf.json()['id']}", headers=officer, json={"description": "x", "reason": "y"})
    assert missing.status_code == 428


def test_an_agent_of_bargny_cannot_touch_sandiara(client, db, officer, admin_headers):
    row = db.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Buffer(geom, -500)) p FROM commune
        WHERE code = :c) t"""), {"c": SANDIARA}).one()
    created = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=admin_headers, json={
        "type": "Feature", "geometry": mapping(square(row[0], row[1], 30)), "properties": {"reason": "levé"}})
    assert created.status_code == 201, created.text
    sandiara = created.json()["id"]
    local = client.post("/parties", headers=admin_headers, json={
        "kind": "natural_person", "name": "Thiam", "commune_code": SANDIARA})
    before = db.execute(text("SELECT count(*) FROM write_audit")).scalar()
    assert client.post("/parties", headers=officer, json={
        "kind": "natural_person", "name": "Thiam", "commune_code": SANDIARA}).status_code == 403
    assert client.post("/procedures", headers=officer, json={
        "parcel_id": sandiara, "registered_on": day(1), "applicants": [{"party_id": local.json()["id"]}]}
    ).status_code == 403
    # A party of another commune is answered as a party that does not exist (not an oracle).
    assert client.get(f"/parties/{local.json()['id']}", headers=officer).status_code == 404
    assert client.get(f"/parties/{local.json()['id']}").status_code == 401
    assert db.execute(text("SELECT count(*) FROM write_audit")).scalar() == before


def test_parties_are_versioned_and_their_reads_audited(client, db, officer):
    party = client.post("/parties", headers=officer, json={
        "kind": "group", "group_type": "gie", "name": "GIE Jappo", "commune_code": BARGNY})
    assert party.status_code == 201, party.text
    pid, etag = party.json()["id"], party.headers["ETag"]
    changed = client.patch(f"/parties/{pid}", headers={**officer, "If-Match": etag},
                           json={"contact": "+221 00 111 22 33", "reason": "nouveau contact"})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert client.patch(f"/parties/{pid}", headers={**officer, "If-Match": etag},
                        json={"contact": "x", "reason": "y"}).status_code == 412
    versions = client.get(f"/parties/{pid}/versions", headers=officer).json()
    assert [(v["version"], v["contact"], v["valid_to"] is None) for v in versions] == [
        (1, None, False), (2, "+221 00 111 22 33", True)]
    reads = db.execute(text("SELECT endpoint FROM access_audit WHERE subject_kind = 'party' AND subject_id = :p"),
                       {"p": pid}).scalars().all()
    assert reads == ["/parties/{party_id}/versions"]
    assert client.post("/parties", headers=officer, json={
        "kind": "natural_person", "group_type": "gie", "name": "X", "commune_code": BARGNY}).status_code == 422


def test_source_files_are_checked_and_kept_with_their_checksum(client, db, officer, settings):
    source = _source(client, officer, "deliberation")
    pdf = b"%PDF-1.4\n% synthetic\n" + b"0" * 100
    attached = client.post(f"/sources/{source}/files", headers=officer, files={"file": ("del.pdf", pdf)})
    assert attached.status_code == 201, attached.text
    import hashlib

    assert attached.json()["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert attached.json()["media_type"] == "application/pdf"
    fake = client.post(f"/sources/{source}/files", headers=officer,
                       files={"file": ("del.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")})
    assert fake.status_code == 415
    big = client.post(f"/sources/{source}/files", headers=officer,
                      files={"file": ("big.pdf", b"%PDF-" + b"0" * settings.max_document_bytes)})
    assert big.status_code == 413
    download = client.get(f"/sources/{source}/files/{attached.json()['id']}", headers=officer)
    assert download.status_code == 200 and download.content == pdf
    assert client.get(f"/sources/{source}/files/{attached.json()['id']}").status_code == 401
    listed = client.get(f"/sources/{source}", headers=officer).json()
    assert [f["sha256"] for f in listed["files"]] == [hashlib.sha256(pdf).hexdigest()]


@pytest.mark.parametrize("table", ["write_audit", "source_document", "procedure_step", "rrr_holder"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}"])
def test_the_service_role_cannot_rewrite_the_record(client, db, officer, parcel, table, statement):
    _complete(client, officer, parcel, [{"party_id": _party(client, officer, "Wade")}])
    column = {"write_audit": "actor", "source_document": "reference", "procedure_step": "step",
              "rrr_holder": "party_id"}[table]
    with pytest.raises(ProgrammingError) as raised, db.begin_nested():
        db.execute(text(statement.format(t=table, c=column)))
    # The service role's privileges refuse it (insufficient_privilege), before any append-only trigger.
    assert raised.value.orig.sqlstate == "42501"
    assert f"permission denied for table {table}" in str(raised.value)


@pytest.mark.parametrize("table", ["rrr_version", "party_version"])
def test_versions_are_only_ever_closed(client, db, officer, parcel, table):
    _complete(client, officer, parcel, [{"party_id": _party(client, officer, "Sy")}])
    column = {"rrr_version": "type", "party_version": "name"}[table]
    for statement in (f"UPDATE {table} SET {column} = {column} || 'x'", f"DELETE FROM {table}"):
        with pytest.raises(ProgrammingError, match=f"permission denied for table {table}"), db.begin_nested():
            db.execute(text(statement))


def test_a_reimport_cannot_change_a_parcel_under_litige(client, db, officer, tmp_path):
    from sifc.imports.parcels import ParcelImportOptions, import_parcels
    from tests.integration.fixtures import write

    x, y = bargny_origin(db)
    first = write(tmp_path, [{"NICAD": "0104040100031", "USAGE": "habitation", "geometry": square(x - 400, y)},
                             {"NICAD": "0104040100032", "USAGE": "habitation", "geometry": square(x - 370, y)}],
                  name="levé.gpkg")
    import_parcels(db, first, ParcelImportOptions(author="test"))
    frozen, free = (db.execute(text("SELECT parcel_id FROM parcel WHERE nicad = :n"), {"n": n}).scalar()
                    for n in ("0104040100031", "0104040100032"))
    decision = _source(client, officer, "decision_justice")
    assert client.post(f"/parcels/{frozen}/rights", headers=officer, json={
        "type": "litige", "start_date": day(1), "source_ids": [decision]}).status_code == 201
    corrected = write(tmp_path, [{"NICAD": "0104040100031", "USAGE": "commerce", "geometry": square(x - 400, y)},
                                 {"NICAD": "0104040100032", "USAGE": "commerce", "geometry": square(x - 370, y)}],
                      name="levé_corrigé.gpkg")
    report = import_parcels(db, corrected, ParcelImportOptions(author="test"))
    assert report.changes == {"changed": 1} and report.rejected == 1
    assert [i["reasons"] for i in report.issues if i["status"] == "rejected"] == [["under_litige"]]
    uses = dict(db.execute(text("SELECT parcel_id, land_use FROM parcel WHERE parcel_id IN (:a, :b)"),
                           {"a": frozen, "b": free}).all())
    assert uses == {frozen: "habitation", free: "commerce"}
    batches = db.execute(text("SELECT actor, after->'counts'->>'accepted' FROM write_audit "
                              "WHERE operation = 'import.batch' ORDER BY id")).all()
    assert [(a, n) for a, n in batches] == [("test", "2"), ("test", "1")]


def test_accounts_keys_and_the_reference_are_in_the_write_audit(db):
    from sifc.auth import keys, users
    from sifc.auth.principal import ScopeEntry

    user_id = users.create(db, username="audit.agent", password="a long password 2026", role="agent_foncier",
                           scope=[ScopeEntry("commune", BARGNY)], created_by="admin.national")
    users.disable(db, username="audit.agent", by="admin.national")
    key_id, key = keys.create(db, name="carte", role="lecteur", scope=[ScopeEntry("commune", BARGNY)],
                              expires_at=None, created_by="admin.national")
    keys.revoke(db, prefix=key, by="admin.national")
    rows = db.execute(text("""
        SELECT operation, object_id, actor FROM write_audit WHERE object_kind IN ('app_user', 'api_key') ORDER BY id
    """)).all()
    assert [(o, i) for o, i, _ in rows][-4:] == [("account.create", str(user_id)), ("account.disable", str(user_id)),
                                                 ("api_key.create", str(key_id)), ("api_key.revoke", str(key_id))]
    assert {a for _, _, a in rows[-4:]} == {"admin.national"}
    # The secret never lands in the audit.
    # The whole secret (it may hold '_' itself: a fragment after the last '_' can be one character long).
    secret = key.split("_", 2)[2]
    assert not db.execute(text("SELECT count(*) FROM write_audit WHERE strpos(after::text, :k) > 0"),
                          {"k": secret}).scalar()
    assert db.execute(text("SELECT count(*) FROM write_audit WHERE operation = 'territories.load'")).scalar() >= 1


def test_a_holder_moved_to_another_commune_is_no_longer_named_to_its_former_readers(client, db, officer, parcel,
                                                                                     admin_headers):
    lecteur = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur bargny")}
    owner = _party(client, officer, "Demenagee")
    act = _source(client, officer, "acte", reference="acte 56")
    right = client.post(f"/parcels/{parcel['id']}/rights", headers=officer, json={
        "type": "bail", "start_date": day(10), "source_ids": [act], "holders": [{"party_id": owner}]})
    assert right.status_code == 201, right.text
    procedure = _register(client, officer, parcel["id"], [{"party_id": owner}])
    urls = (f"/parcels/{parcel['id']}/rights", f"/rights/{right.json()['id']}",
            f"/rights/{right.json()['id']}/versions", f"/procedures/{procedure['id']}")
    for url in urls:
        assert "Demenagee" in client.get(url, headers=lecteur).text, url
    # The API does not move a party (no commune in its PATCH); the service does, as a command or a job may.
    from sifc.db import act_as
    from sifc.tenure import parties

    act_as(db, "tests")
    parties.update(db, party_id=owner, data=parties.PartyInput({"commune_code": SANDIARA}, "déménagement"),
                   expected_version=None, by=None, author="tests")
    for url in urls:
        answer = client.get(url, headers=lecteur)
        assert answer.status_code == 200 and owner in answer.text and "Demenagee" not in answer.text, url
    assert "Demenagee" in client.get(urls[0], headers=admin_headers).text
