"""The demo's synthetic tenure records: what ``sifc demo load`` writes, that no public
answer names a party, and the subject access request of a party."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import quote

import mapbox_vector_tile
import morecantile
import pytest
from sqlalchemy import text

from sifc.auth import scopes, users
from sifc.demo import DEMO_AUTHOR, DEMO_RULES, PILOTS, THRESHOLDS_HA, load_demo
from sifc.tenure import procedures
from tests.conftest import api_key

TMS = morecantile.tms.get("WebMercatorQuad")
PASSWORD = "un mot de passe assez long"


@pytest.fixture
def demo(db):
    outcome = load_demo(db)
    assert outcome is not None
    return outcome


def _rights_in_force(db):
    return db.execute(text("""
        SELECT r.rrr_id::text AS id, r.parcel_id::text AS parcel, r.commune_code, r.type, r.tf_number, r.procedure_id,
               r.synthetic,
               coalesce(array_agg(h.share_numerator || '/' || h.share_denominator ORDER BY h.party_id)
                        FILTER (WHERE h.party_id IS NOT NULL), '{}') AS shares
        FROM rrr_version r LEFT JOIN rrr_holder h ON h.rrr_id = r.rrr_id AND h.version = r.version
        WHERE r.valid_to IS NULL AND r.start_date <= current_date AND (r.end_date IS NULL OR r.end_date > current_date)
        GROUP BY r.rrr_id, r.version, r.parcel_id, r.commune_code, r.type, r.tf_number, r.procedure_id, r.synthetic
    """)).mappings().all()


def _procedures(db):
    rows = db.execute(text("""
        SELECT p.id::text AS id, p.parcel_id::text AS parcel, p.commune_code, p.synthetic,
               array_agg(s.step ORDER BY s.seq) AS steps, array_agg(s.occurred_on ORDER BY s.seq) AS dates,
               (SELECT rrr_id::text FROM rrr_version r WHERE r.procedure_id = p.id LIMIT 1) AS rrr_id
        FROM tenure_procedure p JOIN procedure_step s ON s.procedure_id = p.id
        GROUP BY p.id"""))
    return rows.mappings().all()


# --- (a) what the demo holds ------------------------------------------------------------------------

def test_the_demo_holds_synthetic_tenure_records_in_every_pilot_commune(db, demo):
    counts = db.execute(text("""SELECT
        (SELECT count(DISTINCT party_id) FROM party_version), (SELECT count(*) FROM source_document),
        (SELECT count(DISTINCT rrr_id) FROM rrr_version), (SELECT count(*) FROM tenure_procedure)""")).one()
    assert tuple(counts) == (demo.parties, demo.sources, demo.rights, demo.procedures)
    # Everything the demo wrote is flagged synthetic, and every write is in the write audit.
    for table in ("party_version", "source_document", "rrr_version", "tenure_procedure"):
        assert db.execute(text(f"SELECT count(*) FROM {table} WHERE NOT synthetic")).scalar() == 0, table
    # (the reference data and the pilots' settings loaded before the demo are in the write audit too, under
    # their own actor: the test database's fixtures)
    assert db.execute(text("SELECT count(*) FROM write_audit WHERE actor <> :a AND object_kind NOT IN "
                           "('territorial_reference', 'commune_setting')"), {"a": DEMO_AUTHOR}).scalar() == 0
    written = dict(db.execute(text("SELECT object_kind, count(*) FROM write_audit WHERE actor = :a "
                                   "GROUP BY object_kind"), {"a": DEMO_AUTHOR}).all())
    assert written["party"] == demo.parties and written["source"] == demo.sources
    assert written["rrr"] == demo.rights
    steps = db.execute(text("SELECT count(*) FROM procedure_step")).scalar()
    assert written["procedure"] == steps  # register (its first step) and every later step

    rights = _rights_in_force(db)
    today = date.today()
    for code in PILOTS:
        parties = db.execute(text("""
            SELECT kind, group_type, name, id_number, members FROM party_version
            WHERE commune_code = :c AND valid_to IS NULL"""), {"c": code}).mappings().all()
        persons = [p for p in parties if p["kind"] == "natural_person"]
        assert len(persons) >= 5
        assert all(p["id_number"].startswith("SYN-") for p in persons)
        [famille] = [p for p in parties if p["group_type"] == "famille"]
        assert len(famille["members"]) >= 2
        assert len([p for p in parties if p["group_type"] == "gie"]) == 1

        mine = [r for r in rights if r["commune_code"] == code]
        assert {r["type"] for r in mine} == {"affectation", "bail", "titre_foncier", "litige"}
        assert all(r["synthetic"] for r in mine)
        shared = [r for r in mine if r["type"] == "affectation" and len(r["shares"]) == 2]
        assert len(shared) == 1 and shared[0]["shares"] == ["1/2", "1/2"]
        [tf] = [r for r in mine if r["type"] == "titre_foncier"]
        assert tf["tf_number"].startswith("TF ") and "/" in tf["tf_number"]
        [litige] = [r for r in mine if r["type"] == "litige"]
        assert litige["parcel"] in {r["parcel"] for r in mine if r["type"] == "affectation"}

        found = [p for p in _procedures(db) if p["commune_code"] == code]
        complete = [p for p in found if p["steps"][-1] == "notified"]
        refused = [p for p in found if p["steps"][-1] == "refused"]
        pending = [p for p in found if p["steps"][-1] not in ("notified", "refused")]
        assert len(complete) >= 3
        assert all(p["steps"] == ["registered", "surveyed", "deliberated", "approved", "notified"] for p in complete)
        assert all(p["rrr_id"] for p in complete)
        assert [(p["steps"], p["rrr_id"]) for p in refused] == [(["registered", "refused"], None)]
        assert [(p["steps"][-1], p["rrr_id"]) for p in pending] == [("deliberated", None)]
        for procedure in found:
            assert procedure["synthetic"]
            assert procedure["dates"] == sorted(procedure["dates"]) and procedure["dates"][-1] <= today


def test_each_step_rests_on_its_documents(db, demo):
    rows = db.execute(text("""
        SELECT s.step, d.kind, d.authority, d.reference, d.council_session, pv.area_m2
        FROM procedure_step s JOIN tenure_procedure p ON p.id = s.procedure_id
        JOIN parcel pv ON pv.parcel_id = p.parcel_id
        JOIN source_document d ON d.id = ANY(s.source_ids)""")).mappings().all()
    by_step: dict[str, set[str]] = {}
    for row in rows:
        by_step.setdefault(row["step"], set()).add(row["kind"])
        if row["kind"] == "deliberation":
            assert row["reference"] and row["council_session"].startswith("Session")
        if row["kind"] == "approbation":
            assert row["authority"] == procedures.required_authority(row["area_m2"], THRESHOLDS_HA)
    for step, kinds in DEMO_RULES["required_sources"]["affectation"].items():
        assert set(kinds) <= by_step[step], step
    assert by_step["refused"] == {"proces_verbal"}


def test_loading_the_demo_twice_writes_nothing_more(db, demo):
    before = db.execute(text("SELECT count(*) FROM write_audit")).scalar()
    assert load_demo(db) is None
    assert db.execute(text("SELECT count(*) FROM write_audit")).scalar() == before


def test_an_officer_sees_the_shared_affectation_with_its_two_holders(client, db, demo):
    shared = next(r for r in _rights_in_force(db) if r["type"] == "affectation" and len(r["shares"]) == 2)
    headers = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{shared['commune_code']}",),
                                    name="lecteur")}
    body = client.get(f"/rights/{shared['id']}", headers=headers).json()
    assert sorted(h["share"] for h in body["holders"]) == ["1/2", "1/2"] and all(h["name"] for h in body["holders"])
    assert body["status"] == "in_force" and body["procedure_id"]


# --- (b) no public answer names a party ---------------------------------------------------------------

def _secrets(db) -> set[str]:
    found: set[str] = set()
    for name, given, id_number, contact in db.execute(text(
            "SELECT name, given_names, id_number, contact FROM party_version WHERE synthetic")).all():
        found |= {v for v in (name, id_number, contact) if v}
        if given:
            found |= {given, f"{given} {name}"}
    assert len(found) > 30
    return found


def _leaks(body: str, secrets: set[str]) -> list[str]:
    return sorted(s for s in secrets if s in body)


def _tile_for(db, parcel_id: str, z: int = 17):
    lon, lat = db.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 4326) AS p FROM parcel
                                      WHERE parcel_id = CAST(:id AS uuid)) s"""), {"id": parcel_id}).one()
    tile = TMS.tile(lon, lat, z)
    return f"/tiles/parcels/{tile.z}/{tile.x}/{tile.y}.mvt"


def test_no_public_answer_names_a_party(client, db, demo):
    secrets = _secrets(db)
    rights = _rights_in_force(db)
    procedures_found = _procedures(db)
    parcels = sorted({r["parcel"] for r in rights} | {p["parcel"] for p in procedures_found})
    checked: list[str] = []

    def public(url: str) -> str:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
        body = response.content.decode("utf-8")
        assert _leaks(body, secrets) == [], url
        checked.append(url)
        return body

    for parcel in parcels:
        public(f"/parcels/{parcel}")
        listed = json.loads(public(f"/parcels/{parcel}/rights"))
        assert all("holders" not in r and "author" not in r for r in listed["rights"])
        history = json.loads(public(f"/parcels/{parcel}/history"))
        assert all("applicants" not in p for p in history["procedures"])
    for right in rights:
        body = json.loads(public(f"/rights/{right['id']}"))
        assert "holders" not in body
    for code in PILOTS:
        public(f"/communes/{code}/parcels?limit=1000")
        public(f"/exports/parcels?format=geojson&commune={code}")
    public("/ogc/collections/parcels/items?limit=1000")
    public("/ogc/collections/parcels/items?limit=1000&filter=" + quote("tenure_regime = 'bail' OR land_use = 'habitation'"))
    public("/exports/parcels?format=csv")

    # A vector tile over a parcel with an affectation, a litige, a bail: decoded, then as raw bytes.
    for kind in ("litige", "bail", "titre_foncier"):
        parcel = next(r["parcel"] for r in rights if r["type"] == kind)
        url = _tile_for(db, parcel)
        response = client.get(url)
        assert response.status_code == 200, url
        features = mapbox_vector_tile.decode(response.content)["parcels"]["features"]
        assert features
        values = json.dumps([f["properties"] for f in features], ensure_ascii=False)
        assert _leaks(values, secrets) == [], url
        assert [s for s in secrets if s.encode("utf-8") in response.content] == [], url
    assert len(checked) > 40

    # The check would see a leak: an officer of the commune is shown the holders of the same right.
    shared = next(r for r in rights if r["type"] == "affectation" and len(r["shares"]) == 2)
    officer = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{shared['commune_code']}",), name="l")}
    assert len(_leaks(client.get(f"/rights/{shared['id']}", headers=officer).text, secrets)) >= 2

    # Personal records answer 401 to anyone not signed in.
    party_ids = db.execute(text("SELECT DISTINCT party_id::text FROM party_version")).scalars().all()
    for party in party_ids:
        assert client.get(f"/parties/{party}").status_code == 401
        assert client.get(f"/parties/{party}/versions").status_code == 401
    for procedure in procedures_found:
        assert client.get(f"/procedures/{procedure['id']}").status_code == 401
        assert client.get(f"/parcels/{procedure['parcel']}/procedures").status_code == 401
        assert client.get(f"/parcels/{procedure['parcel']}/audit").status_code == 401


@pytest.mark.parametrize("query", [
    "filter=" + quote("name = 'X'"),
    "filter=" + quote("id_number LIKE 'SYN%'"),
    "filter=" + quote("given_names = 'Awa'"),
    "filter=" + quote("holders IS NOT NULL"),
    "filter=" + quote("contact LIKE '%exemple.invalid'"),
    "filter=" + quote("sex = 'F'"),  # a person's sex: aggregated indicators only (ADR 0005 §3)
    "sortby=sexe",
    "sortby=holders",
    "sortby=name",
    "sortby=-id_number",
])
def test_filters_and_sorts_naming_personal_fields_are_refused(client, demo, query):
    response = client.get(f"/ogc/collections/parcels/items?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if query.startswith("filter="):
        export = client.get(f"/exports/parcels?format=geojson&{query}")
        if query.split("%20")[0] == "filter=name":  # "name": not a queryable (territories have public names), no export
            assert 400 <= export.status_code < 500, export.text
        else:  # a personal field: the same 400 as OGC's, whatever the data
            assert export.status_code == 400, export.text
            assert export.json()["type"] == "urn:sifc:problem:personal.refused"


# --- (c) the subject access request of a party -----------------------------------------------------------

def _source(report: dict, name: str) -> dict:
    return next(source for source in report["sources"] if source["name"] == name)


@pytest.fixture
def admin(db):
    return {"X-API-Key": api_key(db, name="dpo")}


def _shared_holder(db):
    """A holder of a shared affectation: their party row and the right."""
    return db.execute(text("""
        SELECT p.party_id::text AS party_id, p.name, p.given_names, p.id_number, p.commune_code,
               h.rrr_id::text AS rrr_id, r.parcel_id::text AS parcel_id, r.procedure_id::text AS procedure_id
        FROM rrr_holder h JOIN rrr_version r ON r.rrr_id = h.rrr_id AND r.version = h.version
        JOIN party_version p ON p.party_id = h.party_id AND p.valid_to IS NULL
        WHERE r.type = 'affectation' AND h.share_numerator = 1 AND h.share_denominator = 2
        ORDER BY p.id_number LIMIT 1""")).mappings().one()


def test_the_subject_access_request_of_a_party_returns_their_records_and_rights(client, db, demo, admin):
    party = _shared_holder(db)
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{party['commune_code']}",), name="lecteur")}
    assert client.get(f"/parties/{party['party_id']}", headers=reader).status_code == 200
    assert client.get(f"/rights/{party['rrr_id']}", headers=reader).status_code == 200

    answer = client.get(f"/admin/subjects/{party['id_number']}", headers=admin)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    [row] = _source(report, "parties")["rows"]
    assert (row["party_id"], row["name"], row["given_names"], row["id_number"]) == (
        party["party_id"], party["name"], party["given_names"], party["id_number"])
    [held] = _source(report, "rights_held")["rows"]
    assert (held["rrr_id"], held["type"], held["parcel_id"]) == (party["rrr_id"], "affectation", party["parcel_id"])
    assert (held["share_numerator"], held["share_denominator"]) == (1, 2)
    [applied] = _source(report, "procedures_applied")["rows"]
    assert applied["id"] == party["procedure_id"] and len(applied["applicants"]) == 2
    assert _source(report, "writes_about_party")["count"] == 1  # party.create
    # register, four steps and the affectation they granted name the applicant in the write audit
    assert _source(report, "writes_naming_party")["count"] == 6
    assert _source(report, "party_groups")["count"] == 0
    # The reads of their records are in the answer: the party's record, the right, and this request.
    reads = {(r["subject_kind"], r["subject_id"]) for r in report["reads"]["rows"]}
    assert {("party", party["party_id"]), ("rrr", party["rrr_id"])} <= reads

    # The same person, asked for by party id or by full name (any case, extra blanks).
    for query in (party["party_id"], f"  {party['given_names'].upper()}   {party['name']} "):
        again = client.get(f"/admin/subjects/{quote(query)}", headers=admin).json()
        assert party["party_id"] in {r["party_id"] for r in _source(again, "parties")["rows"]}
    # A family name alone names no one.
    assert _source(client.get(f"/admin/subjects/{quote(party['name'])}", headers=admin).json(),
                   "parties")["count"] == 0


def test_a_member_of_the_famille_finds_the_group(client, db, demo, admin):
    member = db.execute(text("""
        SELECT m.id_number, g.party_id::text AS famille FROM party_version g
        JOIN party_version m ON m.party_id = ANY(g.members) AND m.valid_to IS NULL
        WHERE g.group_type = 'famille' AND g.valid_to IS NULL ORDER BY m.id_number LIMIT 1""")).mappings().one()
    report = client.get(f"/admin/subjects/{member['id_number']}", headers=admin).json()
    assert [r["party_id"] for r in _source(report, "party_groups")["rows"]] == [member["famille"]]
    named = _source(report, "writes_naming_party")["rows"]
    assert ("party.create", member["famille"]) in {(r["operation"], r["object_id"]) for r in named}


def test_the_writes_of_an_account_are_in_its_subject_access_request(client, db, admin):
    users.create(db, username="khady.agent", password=PASSWORD, role="agent_foncier",
                 scope=scopes.parse(["commune:SN0104-bargny"]), created_by="tests")
    token = client.post("/auth/token", data={"username": "khady.agent", "password": PASSWORD}).json()["access_token"]
    created = client.post("/parties", headers={"Authorization": f"Bearer {token}"}, json={
        "kind": "natural_person", "name": "Testnom", "given_names": "Testprénom", "id_number": "SYN-999999",
        "commune_code": "SN0104-bargny"})
    assert created.status_code == 201, created.text
    report = client.get("/admin/subjects/khady.agent", headers=admin).json()
    [write] = _source(report, "writes_by_subject")["rows"]
    assert (write["operation"], write["object_id"]) == ("party.create", created.json()["id"])
    assert "before" not in write and "after" not in write
    assert _source(report, "party_versions_authored")["count"] == 1
    assert _source(report, "parties")["count"] == 0  # the officer is not a party
    # The party they registered, asked for by identity number.
    about = client.get("/admin/subjects/syn-999999", headers=admin).json()
    assert [r["name"] for r in _source(about, "parties")["rows"]] == ["Testnom"]
    assert _source(about, "writes_about_party")["rows"][0]["after"]["id_number"] == "SYN-999999"


def test_every_tenure_source_names_real_columns():
    from sifc.auth import subjects

    for source in subjects.SOURCES:
        for column in [*(name for name, _, _ in source.within), *(name for _, name in source.audited_also)]:
            assert column in source.sa_table().c or (source.join and column in source.join.sa_table().c), column
        if source.join:
            other = source.join.sa_table()
            assert all(name in other.c and name in source.sa_table().c for name in source.join.on)
            assert all(name in other.c for name in source.join.columns)
        source.audited()  # every audited column resolves
