"""Officers' free text is personal.

A parcel's reason like "demande de Awa Diop, CNI …, tél …" was served to anonymous clients by
``GET /parcels/{id}``, ``/versions`` and ``/history``. Every free-text column of the register is
listed once, in :data:`sifc.personal.FREE_TEXT_FIELDS`; here a distinctive text is written into
every one of them, then every public route of the OpenAPI document (parcels, versions, history,
lineage, rights, procedures, sources, spatial queries, OGC items, tiles, exports, registers) is
read anonymously and by a reader of another commune: the text never appears. A reader of the
commune reads it.
"""

from __future__ import annotations

import json
import math
import uuid
from itertools import product
from typing import Any

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text

from sifc.db import act_as
from sifc.personal import FREE_TEXT_FIELDS, PERSONAL_FIELDS
from sifc.versioning import close_version
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, day

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
CRS = {"crs": "EPSG:32628"}
MARK = "Zqxdiop"  # as an officer's note naming someone: demande de Awa Zqxdiop, CNI …


def note(where: str) -> str:
    return f"demande de Awa {MARK} ({where}), CNI 1 751 1990 01234, tél 77 000 00 00"


# Where each collection of FREE_TEXT_FIELDS is stored, and the other text columns of those tables,
# each with why it is not officers' free text. A new text column fails the schema test until it is
# placed here or in sifc.personal.
TABLES = {"parcels": "parcel_version", "parties": "party_version", "rights": "rrr_version",
          "procedures": "tenure_procedure", "procedure_steps": "procedure_step", "sources": "source_document",
          "source_files": "source_file", "mutations": "parcel_mutation", "bornes": "borne_version",
          "localites": "localite_version",
          "disputes": "dispute", "dispute_steps": "dispute_step", "session_items": "session_item",
          "payments": "payment"}
AUTHORS = {"author", "closed_by", "created_by"}  # user names: personal (provenance), never public
NOT_FREE_TEXT = {
    "session_item": {"commune_code", "decision"},  # granted, refused, deferred
    "parcel_version": {"nicad", "nicad_status", "commune_code", "section", "local_number", "source_id", "land_use",
                       "tenure_regime", "action"},  # codes and the register's public attributes
    "party_version": {"kind", "group_type", "commune_code", "action"},
    "rrr_version": {"class", "type", "tf_number", "end_cause", "commune_code", "action"},  # tf_number: public
    "tenure_procedure": {"kind", "reference", "commune_code"},  # reference: a registration number
    "procedure_step": {"step", "commune_code"},
    "source_document": {"kind", "reference", "authority", "council_session", "commune_code"},
    "source_file": {"media_type", "sha256", "commune_code"},
    "parcel_mutation": {"operation", "commune_code", "details"},  # details: counts the service writes
    "borne_version": {"code", "label", "commune_code", "source_id", "survey_method", "action"},  # label: B12
    "localite_version": {"name", "name_search", "kind", "origin", "commune_code", "action"},  # a place's public name
    "dispute": {"kind", "commune_code", "origin"},  # origin: ids of an overlap or a claim
    "dispute_step": {"step", "commune_code", "court_reference"},  # court_reference: a case number
    # an operator's transaction reference and the Treasury's quittance number: what a receipt prints
    "payment": {"commune_code", "method", "mobile_reference", "quittance_number"},
}
PERSONAL_COLUMNS = {"party_version": PERSONAL_FIELDS["parties"], "tenure_procedure": {"applicants"},
                    "session_item": {"added_by"}, "payment": {"recorded_by"}}


def test_every_text_column_of_the_register_is_classified(db):
    for collection, table in TABLES.items():
        columns = set(db.execute(text("""
            SELECT column_name FROM information_schema.columns
            WHERE table_name = :t AND data_type IN ('text', 'character varying', 'jsonb', 'json')"""),
            {"t": table}).scalars())
        classified = (FREE_TEXT_FIELDS[collection] | AUTHORS | NOT_FREE_TEXT[table]
                      | PERSONAL_COLUMNS.get(table, set()))
        assert columns - classified == set(), f"{table}: text columns nobody decided about"
        assert FREE_TEXT_FIELDS[collection] <= columns, f"{table}: FREE_TEXT_FIELDS names no such column"


def _ok(response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
def world(client, db, admin_headers) -> dict[str, Any]:
    """Bargny's records with a distinctive note in every free-text field."""
    admin = admin_headers
    x, y = bargny_origin(db)
    x, y = x - 500, y - 400

    def parcel(dx: float, width: float = 20) -> dict[str, Any]:
        created = client.post("/parcels", params=CRS, headers=admin, json={
            "type": "Feature", "geometry": mapping(box(x + dx, y, x + dx + width, y + 20)),
            "properties": {"reason": note("parcel reason"), "land_use": "habitation"}})
        return {**_ok(created), "etag": created.headers["ETag"]}

    main, retired, split = parcel(0), parcel(40), parcel(80, 40)
    _ok(client.patch(f"/parcels/{main['id']}", headers={**admin, "If-Match": main["etag"]}, json={
        "type": "Feature", "geometry": None, "properties": {"land_use": "commerce", "reason": note("update")}}), 200)
    assert client.post(f"/parcels/{retired['id']}/retire", headers={**admin, "If-Match": retired["etag"]},
                       json={"reason": note("retired")}).status_code == 204
    party = client.post("/parties", headers=admin, json={
        "kind": "natural_person", "name": "Ndiaye", "commune_code": BARGNY, "reason": note("party")})
    _ok(client.patch(f"/parties/{party.json()['id']}", headers={**admin, "If-Match": party.headers["ETag"]},
                     json={"contact": "+221 00", "reason": note("party update")}), 200)
    source = _ok(client.post("/sources", headers=admin, json={
        "kind": "proces_verbal", "document_date": day(20), "commune_code": BARGNY, "reference": "PV-9",
        "description": note("source")}))["id"]
    _ok(client.post(f"/sources/{source}/files", headers=admin,
                    files={"file": (f"CNI {MARK}.pdf", b"%PDF-1.4\n% scan\n%%EOF\n")}))
    right = client.post(f"/parcels/{main['id']}/rights", headers=admin, json={
        "type": "servitude", "start_date": day(10), "source_ids": [source], "description": note("right"),
        "reason": note("right reason")})
    _ok(client.patch(f"/rights/{right.json()['id']}", headers={**admin, "If-Match": right.headers["ETag"]},
                     json={"description": note("right description 2"), "reason": note("right update")}), 200)
    procedure = client.post("/procedures", headers=admin, json={
        "parcel_id": main["id"], "applicants": [{"party_id": party.json()["id"]}], "registered_on": day(30),
        "purpose": note("purpose")})
    surveyed = client.post(f"/procedures/{procedure.json()['id']}/steps",
                           headers={**admin, "If-Match": procedure.headers["ETag"]}, json={
                               "step": "surveyed", "occurred_on": day(20), "source_ids": [source],
                               "details": {"neighbours_consulted": True, "observations": note("details")}})
    _ok(surveyed, 200)
    _ok(client.post(f"/procedures/{procedure.json()['id']}/steps",
                    headers={**admin, "If-Match": surveyed.headers["ETag"]},
                    json={"step": "refused", "occurred_on": day(10), "reason": note("refusal")}), 200)
    # A council session that refused the request, with an officer's motive (as its deliberation writes it).
    council = uuid.uuid4()
    db.execute(text("""INSERT INTO council_session (id, commune_code, kind, held_on, state, created_by)
                       VALUES (:id, :c, 'commission_domaniale', current_date, 'agenda_closed', 'tests')"""),
               {"id": council, "c": BARGNY})
    db.execute(text("""INSERT INTO session_item (session_id, procedure_id, commune_code, position, decision, reason,
                                                 added_by)
                       VALUES (:s, :p, :c, 1, 'refused', :reason, 'tests')"""),
               {"s": council, "p": procedure.json()["id"], "c": BARGNY, "reason": note("session motive")})
    plan = _ok(client.post("/sources", headers=admin, json={
        "kind": "plan", "document_date": day(5), "commune_code": BARGNY}))["id"]
    halves = [{"type": "Feature", "geometry": mapping(box(x + 80 + dx, y, x + 100 + dx, y + 20)), "properties": {}}
              for dx in (0, 20)]
    children = _ok(client.post(f"/parcels/{split['id']}/split", params=CRS,
                               headers={**admin, "If-Match": split["etag"]}, json={
                                   "occurred_on": day(1), "source_ids": [plan], "reason": note("split"),
                                   "children": halves}))["children"]
    borne = _ok(client.post("/bornes", params=CRS, headers=admin, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [x - 20, y - 20]},
        "properties": {"precision_m": 0.05, "label": "B1", "source": note("borne source"),
                       "reason": note("borne reason")}}))
    localite = _ok(client.post("/localites", params=CRS, headers=admin, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [x - 30, y - 30]},
        "properties": {"name": "Quartier Zq", "kind": "quartier", "reason": note("localite reason")}}))
    dispute = _dispute_with_notes(client, admin, parcel(200)["id"], source)
    fees = _payment_with_a_note(client, db, admin, parcel(250)["id"], party.json()["id"])
    # The service writes the closing reasons of parties, rights and bornes itself ("remplacée par la version 2"):
    # close one version of each with an officer's note, as a closing write may.
    for table, key, object_id in (("party_version", "party_id", party.json()["id"]),
                                  ("rrr_version", "rrr_id", right.json()["id"]),
                                  ("borne_version", "borne_id", borne["id"]),
                                  ("localite_version", "localite_id", localite["id"])):
        version = db.execute(text(f"SELECT version FROM {table} WHERE {key} = :id AND valid_to IS NULL"),
                             {"id": object_id}).scalar()
        act_as(db, "tests")  # a version is closed in the name of the transaction's actor
        close_version(db, table, key, uuid.UUID(object_id), version, author="tests", reason=note("closed"))
    for collection, fields in FREE_TEXT_FIELDS.items():
        for field in fields:
            found = db.execute(text(f"SELECT count(*) FROM {TABLES[collection]} WHERE {field}::text LIKE :m"),
                               {"m": f"%{MARK}%"}).scalar()
            assert found, f"no note written in {collection}.{field}: the crawl would prove nothing"
    # A procedure document's summary as the register kept it before (with the request's purpose): the
    # register is append-only, so the verification filters it on read.
    document = "cd" * 32
    db.execute(text("""
        INSERT INTO issued_document (code, kind, subject_kind, subject_id, commune_code, summary, personal,
                                     content_sha256, issued_by, key_id)
        VALUES (:code, 'extrait_deliberation', 'procedure', :id, :commune, CAST(:summary AS jsonb), true, 'd',
                'tests', 'seal-test')"""), {"code": document, "id": procedure.json()["id"], "commune": BARGNY,
                                            "summary": json.dumps({"procedure": {"purpose": note("document")}})})
    # A documents job of the commune (officers only: no public answer, crawled all the same).
    from sifc.auth.principal import Principal
    from sifc.documents import jobs

    document_job = jobs.submit(db, builder="procedure_batch", params={"procedure_ids": [procedure.json()["id"]]},
                               commune_code=BARGNY, author="tests",
                               by=Principal(kind="cli", role="administrateur", name="tests", everywhere=True))
    served = _ok(client.post("/bornes", params=CRS, headers=admin, json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [x - 25, y - 20]},
        "properties": {"precision_m": 0.05, "label": "B2", "source": note("borne source 2"),
                       "reason": note("borne reason 2")}}))
    return {"parcels": [main["id"], retired["id"], split["id"], *children], "party": party.json()["id"],
            "bornes": [served["id"], borne["id"]],
            "document": document,
            "source": source, "right": right.json()["id"], "procedure": procedure.json()["id"],
            "nicad_of": main["properties"].get("nicad"), "origin": (x, y), "dispute": dispute,
            "session": str(council), "localite": localite["id"], "document_job": document_job,
            # the récépissé's code given at registration: the file (no reference: its id) tracked publicly
            "tracking": procedure.json()["tracking_code"], **fees}


def _payment_with_a_note(client, db, admin: dict[str, str], parcel_id: str, party_id: str) -> dict[str, str]:
    """A request with a fee (a synthetic schedule), paid on a paper quittance, the payment cancelled with a note."""
    from tests.helpers_rules import set_rules

    set_rules(db, BARGNY, receipt_mode="quittance_papier")
    deliberation = _ok(client.post("/sources", headers=admin, json={
        "kind": "deliberation", "document_date": day(60), "commune_code": BARGNY, "reference": "DEL-FT",
        "council_session": "séance"}))["id"]
    _ok(client.post("/fee-schedules", headers=admin, json={
        "commune_code": BARGNY, "procedure_kind": "affectation", "valid_from": "2000-01-01",
        "rule": {"kind": "fixed", "amount": 5000}, "deliberation_source_id": deliberation}))
    procedure = _ok(client.post("/procedures", headers=admin, json={
        "parcel_id": parcel_id, "applicants": [{"party_id": party_id}], "registered_on": day(3)}))["id"]
    payment = _ok(client.post("/payments", headers=admin, json={
        "procedure_id": procedure, "amount": 5000, "method": "cash", "paid_on": day(2), "quittance_number": "Q-FT-1"}))
    _ok(client.post(f"/payments/{payment['id']}/cancel", headers=admin, json={"reason": note("payment cancel")}))
    return {"fee_procedure": procedure, "payment": payment["id"]}


def _dispute_with_notes(client, admin: dict[str, str], parcel_id: str, source: str) -> str:
    """A dispute of Bargny, resolved and closed, with a note in its grounds, a step's note and its outcome."""
    opened = client.post("/disputes", headers=admin, json={
        "commune_code": BARGNY, "kind": "limites", "parcel_ids": [parcel_id], "opened_on": day(9),
        "source_ids": [source], "description": note("dispute grounds")})
    resolved = client.post(f"/disputes/{_ok(opened)['id']}/steps", headers={**admin, "If-Match": opened.headers["ETag"]},
                           json={"step": "resolved", "occurred_on": day(8), "note": note("dispute step")})
    _ok(client.post(f"/disputes/{opened.json()['id']}/close", headers={**admin, "If-Match": _ok(resolved, 200) and
                                                                       resolved.headers["ETag"]},
                    json={"closed_on": day(7), "outcome": note("dispute outcome")}), 200)
    return str(opened.json()["id"])


def _lon_lat(db, x: float, y: float) -> tuple[float, float]:
    return tuple(db.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(
        ST_SetSRID(ST_MakePoint(:x, :y), 32628), 4326) p) t"""), {"x": x, "y": y}).one())  # type: ignore[return-value]


def _tile(lon: float, lat: float, z: int) -> dict[str, str]:
    n = 2 ** z
    return {"z": str(z), "x": str(int((lon + 180) / 360 * n)),
            "y": str(int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))}


# No register content; or not public at all (imports; field packages and returns: field workers in scope only).
SKIPPED = ("/admin/", "/auth/", "/imports", "/field/")
BINARY = (".pdf", ".png")  # printed documents and charts: their facts are the public ones (documents tests)


def _public_urls(client, db, world: dict[str, Any]) -> list[str]:
    """Every public GET route of the OpenAPI document, filled with the world's ids (several per parameter)."""
    lon, lat = _lon_lat(db, world["origin"][0] + 10, world["origin"][1] + 10)
    values: dict[str, list[str]] = {
        "parcel_id": world["parcels"], "feature_id": [*world["parcels"], *world["bornes"]], "rrr_id": [world["right"]],
        "party_id": [world["party"]], "procedure_id": [world["procedure"]], "source_id": [world["source"]],
        "code": [BARGNY, world["document"], world["tracking"]], "level": ["commune"], "collection_id": ["parcels", "bornes"],
        "collection": ["parcels", "bornes"], "borne_id": world["bornes"],
        "nicad": ["0104040100001"], "file_id": [str(uuid.uuid4())], "dispute_id": [world["dispute"]],
        "session_id": [world["session"]], "localite_id": [world["localite"]],
        "payment_id": [world["payment"]], "job_id": [world["document_job"]], "reference": [world["procedure"]],
        "setting_key": ["receipt_mode", "display_days"]}
    # Campaigns and claims serve no public answer at all (401/403): any id is enough to crawl them.
    values.update({k: [str(uuid.uuid4())] for k in ("campaign_id", "claim_id", "period_id")})
    values.update({k: [v] for k, v in _tile(lon, lat, 16).items()})
    query = {"lon": str(lon), "lat": str(lat), "distance": "200", "limit": "1000",
             "bbox": f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"}
    urls = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if "get" not in operations or path.startswith(SKIPPED) or path.endswith(BINARY):
            continue
        parameters = operations["get"].get("parameters", [])
        names = [p["name"] for p in parameters if p["in"] == "path"]
        wanted = [p["name"] for p in parameters if p["in"] == "query" and (p.get("required") or p["name"] in query)]
        suffix = "&".join(f"{name}={query[name]}" for name in wanted if name in query)
        for combination in product(*(values[name] for name in names)):
            url = path
            for name, value in zip(names, combination, strict=True):
                url = url.replace("{" + name + "}", value)
            urls.append(url + ("?" + suffix if suffix else ""))
            if any(p["name"] == "at" for p in parameters):
                urls.append(url + ("?" + suffix + "&" if suffix else "?") + f"at={day(0)}")
            if any(p["name"] == "format" for p in parameters):
                urls.append(url + ("?" + suffix + "&" if suffix else "?") + "format=csv")
    return urls


def test_no_public_route_serves_officers_free_text(client, db, world):
    sandiara = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{SANDIARA}",), name="lecteur sandiara")}
    urls = _public_urls(client, db, world)
    assert len(urls) > 60
    served = set()
    for url, headers in product(urls, ({}, sandiara)):
        response = client.get(url, headers=headers)
        assert response.status_code < 500, (url, response.text[:300])
        assert MARK not in response.content.decode("utf-8", "replace"), (url, "reader of Sandiara" if headers else "")
        if response.status_code == 200:
            served.add(url.split("?")[0])
    # The routes that carried the text before are among those read (and answered).
    for parcel in world["parcels"][:1]:
        for suffix in ("", "/versions", "/history", "/lineage", "/rights"):
            assert f"/parcels/{parcel}{suffix}" in served
    assert f"/communes/{BARGNY}/parcels" in served and "/ogc/collections/parcels/items" in served
    assert f"/communes/{BARGNY}/bornes" in served and "/ogc/collections/bornes/items" in served
    assert f"/bornes/{world['bornes'][0]}" in served and any(u.startswith("/tiles/bornes/16/") for u in served)
    assert "/exports/parcels" in served and any(u.startswith("/tiles/parcels/16/") for u in served)
    assert f"/documents/verify/{world['document']}" in served
    assert f"/suivi/{world['procedure']}/{world['tracking']}" in served
    assert f"/communes/{BARGNY}/settings/receipt_mode/history" in served
    assert f"/document-jobs/{world['document_job']}" in {url.split("?")[0] for url in urls}


def test_a_reader_of_the_commune_reads_the_free_text(client, db, world):
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur bargny")}
    main, retired, split = world["parcels"][:3]
    reads = {
        f"/parcels/{main}": "update", f"/parcels/{main}/versions": "update",
        f"/parcels/{retired}/versions": "retired", f"/parcels/{main}/history": "refusal",
        f"/parcels/{split}/lineage": "split", f"/rights/{world['right']}/versions": "right update",
        f"/parties/{world['party']}/versions": "party update", f"/procedures/{world['procedure']}": "purpose",
        f"/sources/{world['source']}": "source", f"/disputes/{world['dispute']}": "dispute grounds",
        f"/sessions/{world['session']}": "session motive",
        f"/localites/{world['localite']}/history": "localite reason",
        f"/procedures/{world['fee_procedure']}/fees": "payment cancel",
    }
    for url, where in reads.items():
        response = client.get(url, headers=reader)
        assert response.status_code == 200, (url, response.text)
        assert MARK in response.text, (url, where)
    history = client.get(f"/parcels/{main}/history", headers=reader).json()
    assert any(MARK in str(s.get("details")) for p in history["procedures"] for s in p["steps"])
    assert MARK in str(client.get(f"/sources/{world['source']}", headers=reader).json()["files"])
