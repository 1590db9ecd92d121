"""Systematic campaigns, public display and claims over HTTP (ADR 0005 §5).

The story: a campaign over parcels of Bargny (a pilot commune) with their presumed holders → a public
display whose length is the commune's ``display_days`` → three claims (one accepted, one rejected,
one turned into a dispute) → the close registers a régularisation procedure for every parcel without
an open claim. Around it: claims outside the display refused with its dates, a close before the last
day refused, personal data (presumed holders, claimants, grounds) only to readers of the commune.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from tests.conftest import api_key
from tests.helpers_rules import TENURE_RULES, set_rules
from tests.integration.fixtures import bargny_origin, day, square

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
CRS = {"crs": "EPSG:32628"}
GROUNDS = "Zqxcampagne : la limite nord empiète sur le champ de mon père"
HOLDER = "Zqxdetenteur"


def _ok(response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _lon_lat(db, x: float, y: float) -> tuple[float, float]:
    return tuple(db.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(
        ST_SetSRID(ST_MakePoint(:x, :y), 32628), 4326) p) t"""), {"x": x, "y": y}).one())  # type: ignore[return-value]


@pytest.fixture
def story(client, db, admin_headers) -> dict[str, Any]:
    """Five parcels of Bargny in a row, each with a presumed holder; the rules the story needs."""
    set_rules(db, BARGNY, display_days=15, display_shows_names=True, procedure_kinds=["affectation", "regularisation"],
              **TENURE_RULES)
    x, y = bargny_origin(db)
    x, y = x + 300, y - 250
    parcels, parties = [], []
    for i in range(5):
        made = _ok(client.post("/parcels", params=CRS, headers=admin_headers, json={
            "type": "Feature", "geometry": mapping(square(x + 30 * i, y)),
            "properties": {"nicad": f"01040401{90000 + i}", "reason": "campagne"}}), 201)
        parcels.append(made["id"])
        party = _ok(client.post("/parties", headers=admin_headers, json={
            "kind": "natural_person", "name": f"{HOLDER}{i}", "given_names": "Awa", "commune_code": BARGNY}), 201)
        parties.append(party["id"])
    sw, ne = _lon_lat(db, x - 5, y - 5), _lon_lat(db, x + 30 * 5, y + 25)
    return {"parcels": parcels, "parties": parties, "bbox": [sw[0], sw[1], ne[0], ne[1]]}


def _campaign(client, headers, story) -> str:
    created = _ok(client.post("/campaigns", headers=headers, json={
        "commune_code": BARGNY, "name": "Campagne de Ndeyane", "area": {"kind": "bbox", "bbox": story["bbox"]}}), 201)
    holders = [{"parcel_id": p, "presumed_holders": [{"party_id": h, "share": "1"}]}
               for p, h in zip(story["parcels"], story["parties"], strict=True)]
    added = _ok(client.post(f"/campaigns/{created['id']}/parcels", headers=headers,
                            json={"source": "parcels", "parcels": holders}))
    assert added == {"added": 5, "already": 0}
    again = _ok(client.post(f"/campaigns/{created['id']}/parcels", headers=headers, json={"source": "area"}))
    assert again == {"added": 0, "already": 5}  # the area holds exactly these five
    return str(created["id"])


def _claim(client, headers, parcel: str, on: str, **extra: Any):
    return client.post("/claims", headers=headers, json={
        "parcel_id": parcel, "grounds": GROUNDS, "received_on": on, **extra})


def test_the_story_campaign_display_claims_close(client, db, admin_headers, story):
    admin = admin_headers
    campaign = _campaign(client, admin, story)
    p = story["parcels"]
    # Before the display: no claim on a campaign parcel.
    refused = _claim(client, admin, p[0], day(40), claimant_name="Moussa Zqxvoisin")
    assert refused.status_code == 409 and "affichage public n'est pas ouvert" in refused.json()["detail"]

    opened = _ok(client.post(f"/campaigns/{campaign}/display-periods", headers=admin,
                             json={"starts_on": day(30)}), 201)
    assert opened["display_days"] == 15
    assert opened["ends_on"] == (date.today() - timedelta(days=30) + timedelta(days=14)).isoformat()
    assert _ok(client.get(f"/campaigns/{campaign}", headers=admin))["state"] == "display"

    # Outside the period: refused with its dates, nothing written.
    late = _claim(client, admin, p[0], day(5), claimant_name="Moussa Zqxvoisin")
    assert late.status_code == 409, late.text
    assert opened["starts_on"] in late.json()["detail"] and opened["ends_on"] in late.json()["detail"]

    # Three claims during the display.
    accepted = _claim(client, admin, p[0], day(25), claimant_name="Moussa Zqxvoisin")
    rejected = _claim(client, admin, p[1], day(24), claimant_party_id=story["parties"][2], kind="opposition")
    complaint = _ok(client.post("/sources", headers=admin, json={
        "kind": "proces_verbal", "document_date": day(23), "commune_code": BARGNY, "reference": "PV-R-3"}), 201)
    disputed = _claim(client, admin, p[2], day(23), claimant_party_id=story["parties"][1],
                      source_ids=[complaint["id"]])
    for answer in (accepted, rejected, disputed):
        assert answer.status_code == 201, answer.text
    # A close before the last day is refused: claims may still come.
    period = opened["id"]
    early = client.post(f"/campaigns/{campaign}/display-periods/{period}/close", headers=admin,
                        json={"closed_on": day(20)})
    assert early.status_code == 409 and opened["ends_on"] in early.json()["detail"]

    # Resolve: accepted; rejected needs a reason; disputed opens a litige on the parcel.
    def resolve(response, **body: Any):
        return client.post(f"/claims/{response.json()['id']}/resolve",
                           headers={**admin, "If-Match": response.headers["ETag"]}, json=body)

    assert resolve(accepted, decision="accepted", resolved_on=day(12)).json()["state"] == "accepted"
    assert resolve(rejected, decision="rejected", resolved_on=day(12)).status_code == 422
    assert resolve(rejected, decision="rejected", resolved_on=day(12),
                   reason="limite confirmée par le plan").json()["state"] == "rejected"
    turned = _ok(resolve(disputed, decision="disputed", resolved_on=day(12), dispute={"kind": "limites"}))
    assert turned["state"] == "disputed" and turned["dispute_id"]
    assert resolve(accepted, decision="rejected", resolved_on=day(12), reason="x").status_code == 412
    # A fourth claim stays open on p[3]: received during the display, never resolved.
    _ok(_claim(client, admin, p[3], day(22), claimant_name="Fatou Zqxvoisine"), 201)

    closed = _ok(client.post(f"/campaigns/{campaign}/display-periods/{period}/close", headers=admin,
                             json={"closed_on": day(10)}))
    registered = {r["parcel_id"]: r["procedure_id"] for r in closed["registered"]}
    waiting = {w["parcel_id"]: w["reason"] for w in closed["waiting"]}
    assert set(registered) == {p[0], p[1], p[4]}, closed["waiting"]
    assert waiting == {p[2]: "disputed", p[3]: "claim_open"}
    for parcel, procedure_id in registered.items():
        procedure = _ok(client.get(f"/procedures/{procedure_id}", headers=admin))
        assert procedure["parcel_id"] == parcel and procedure["state"] == "registered"
        assert procedure["kind"] in ("regularisation", "affectation")  # régularisation once kinds exist (0019)
        assert procedure["applicants"][0]["party_id"] == story["parties"][story["parcels"].index(parcel)]
    assert client.post(f"/campaigns/{campaign}/display-periods/{period}/close", headers=admin,
                       json={"closed_on": day(9)}).status_code == 409
    listed = _ok(client.get(f"/campaigns/{campaign}/parcels", headers=admin))
    assert {x["parcel_id"] for x in listed if x["procedure_id"]} == set(registered)
    assert _ok(client.get(f"/campaigns/{campaign}", headers=admin))["counts"] == {
        "parcels": 5, "registered": 3, "open_claims": 1}


def test_presumed_holders_claimants_and_grounds_are_personal(client, db, admin_headers, story):
    campaign = _campaign(client, admin_headers, story)
    _ok(client.post(f"/campaigns/{campaign}/display-periods", headers=admin_headers,
                    json={"starts_on": day(5)}), 201)
    claim = _ok(_claim(client, admin_headers, story["parcels"][0], day(2), claimant_name="Moussa Zqxvoisin"), 201)
    sandiara = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{SANDIARA}",), name="lecteur sandiara")}
    bargny = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur bargny")}
    urls = [f"/campaigns/{campaign}", f"/campaigns/{campaign}/parcels", f"/claims/{claim['id']}",
            f"/claims?campaign_id={campaign}", f"/campaigns?commune_code={BARGNY}", f"/claims?commune_code={BARGNY}"]
    for url in urls:
        assert client.get(url).status_code == 401, url
        other = client.get(url, headers=sandiara)
        assert other.status_code in (403, 404), (url, other.text)
        assert "Zqx" not in other.text
    before = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind IN ('campaign', 'claim')")).scalar()
    assert HOLDER in client.get(f"/campaigns/{campaign}/parcels", headers=bargny).text
    assert "Zqxcampagne" in client.get(f"/claims/{claim['id']}", headers=bargny).text
    after = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind IN ('campaign', 'claim')")).scalar()
    assert after == before + 2
    # The public parcel answers and the campaign's own public-ish head never carry holders.
    assert HOLDER not in client.get(f"/parcels/{story['parcels'][0]}").text
    assert HOLDER not in client.get(f"/campaigns/{campaign}", headers=bargny).text


def test_refusals_change_nothing(client, db, admin_headers, story):
    before = db.execute(text("SELECT count(*) FROM campaign")).scalar()
    for body, status in (
            ({"commune_code": BARGNY, "name": "x", "area": {"kind": "bbox", "bbox": [0, 0, 1, 1]}}, 422),
            ({"commune_code": BARGNY, "name": "x", "area": {"kind": "bbox", "bbox": [1, 1, 0, 0]}}, 422),
            ({"commune_code": BARGNY, "name": "x", "area": {"kind": "section", "section": "ZZ99"}}, 422),
            ({"commune_code": "nowhere", "name": "x", "area": {"kind": "bbox", "bbox": story["bbox"]}}, 404)):
        response = client.post("/campaigns", headers=admin_headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert db.execute(text("SELECT count(*) FROM campaign")).scalar() == before
    campaign = _campaign(client, admin_headers, story)
    empty = _ok(client.post("/campaigns", headers=admin_headers, json={
        "commune_code": BARGNY, "name": "vide", "area": {"kind": "bbox", "bbox": story["bbox"]}}), 201)
    assert client.post(f"/campaigns/{empty['id']}/display-periods", headers=admin_headers,
                       json={"starts_on": day(3)}).status_code == 409
    _ok(client.post(f"/campaigns/{campaign}/display-periods", headers=admin_headers, json={"starts_on": day(3)}), 201)
    assert client.post(f"/campaigns/{campaign}/display-periods", headers=admin_headers,
                       json={"starts_on": day(2)}).status_code == 409  # overlaps the open one
    assert client.post(f"/campaigns/{campaign}/parcels", headers=admin_headers,
                       json={"source": "area"}).status_code == 409  # on display: no more parcels
    no_claimant = _claim(client, admin_headers, story["parcels"][0], day(1))
    assert no_claimant.status_code == 422
    assert db.execute(text("SELECT count(*) FROM claim")).scalar() == 0


@pytest.mark.parametrize("shows", [True, False])
def test_the_printed_display_names_holders_only_when_the_commune_says_so(client, db, settings, admin_headers, story,
                                                                       shows):
    import io
    import zipfile

    from pypdf import PdfReader

    from sifc.documents import jobs

    set_rules(db, BARGNY, on=date.today() - timedelta(days=1), display_shows_names=shows)
    campaign = _campaign(client, admin_headers, story)
    queued = client.post(f"/campaigns/{campaign}/display-documents", headers=admin_headers)
    assert queued.status_code == 202, queued.text
    before = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind = 'campaign'")).scalar()
    outcome = jobs.run_now(db, job_id=queued.json()["id"], settings=settings)
    assert outcome["report"]["documents"] == 1
    with zipfile.ZipFile(jobs.output(settings, queued.json()["id"]) / jobs.ZIP_NAME) as archive:
        [name] = archive.namelist()
        pdf = archive.read(name)
    printed = "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "01040401" in printed  # the NICADs are listed
    assert (HOLDER in printed) is shows
    verified = client.post("/documents/verify", files={"file": (name, io.BytesIO(pdf), "application/pdf")})
    assert verified.status_code == 200 and verified.json()["authentic"] is True, verified.text
    code = str(PdfReader(io.BytesIO(pdf)).metadata["/SIFCCode"])
    by_code = client.get(f"/documents/verify/{code}")  # anyone, with the code alone: the register's summary
    assert by_code.json()["authentic"] is True and HOLDER not in by_code.text
    row = db.execute(text("SELECT kind, personal FROM issued_document WHERE subject_id = :id"),
                     {"id": campaign}).one()
    assert row == ("affichage_public", shows)
    after = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind = 'campaign'")).scalar()
    assert after - before == (1 if shows else 0)


def test_a_campaign_import_takes_the_presumed_holders_from_the_survey_file(client, db, admin_headers, tmp_path):
    from sifc.errors import ImportRejected, SifcError
    from sifc.imports.parcels import ParcelImportOptions, import_parcels
    from tests.integration.fixtures import write

    x, y = bargny_origin(db)
    x, y = x - 250, y + 250
    rows = [{"nicad": f"01040401{80000 + i}", "nom": f"{HOLDER}{i}" if i < 2 else None, "prenom": "Fatou",
             "sexe": "Femme" if i == 0 else "H", "geometry": square(x + 30 * i, y)} for i in range(3)]
    path = write(tmp_path, rows)
    sw, ne = _lon_lat(db, x - 5, y - 5), _lon_lat(db, x + 100, y + 25)
    campaign = _ok(client.post("/campaigns", headers=admin_headers, json={
        "commune_code": BARGNY, "name": "Levé de Minam", "area": {"kind": "bbox", "bbox": [*sw, *ne]}}), 201)["id"]
    # The holder columns are read only for a campaign: named without one, the import is refused.
    with pytest.raises(ImportRejected):
        import_parcels(db, path, ParcelImportOptions(commune=BARGNY, mapping={"holder_name": "nom"}, author="tests"))
    with pytest.raises(SifcError):  # an unknown campaign is refused before the file is read
        import_parcels(db, path, ParcelImportOptions(commune=BARGNY, campaign=str(uuid.uuid4()), author="tests"))
    report = import_parcels(db, path, ParcelImportOptions(commune=BARGNY, campaign=campaign, author="tests"))
    assert report.accepted == 3 and report.mapping["holder_name"] == "nom" and report.mapping["holder_sex"] == "sexe"
    listed = _ok(client.get(f"/campaigns/{campaign}/parcels", headers=admin_headers))
    assert len(listed) == 3 and {p["origin"] for p in listed} == {"import_batch"}
    named = sorted(h["name"] for p in listed for h in p["presumed_holders"])
    assert named == [f"Fatou {HOLDER}0", f"Fatou {HOLDER}1"]  # the third line names nobody: no presumed holder
    sexes = db.execute(text("SELECT sex FROM party_version WHERE name LIKE :n AND valid_to IS NULL ORDER BY name"),
                       {"n": f"{HOLDER}%"}).scalars().all()
    assert sexes == ["F", "M"]
    assert HOLDER not in client.get(f"/parcels/{listed[0]['parcel_id']}").text  # never a parcel attribute
