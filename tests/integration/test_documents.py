"""Printed documents: fiche parcellaire, extrait, certificat, registre, and their verification."""

from __future__ import annotations

import io
import shutil
import subprocess

import orjson
import pytest
from pypdf import PdfReader, PdfWriter
from shapely.geometry import mapping
from sqlalchemy import text

from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, square
from tests.integration.test_tenure import _complete, _party, _register

BARGNY = "SN0104-bargny"
NICAD = "0104040155555"
NEIGHBOUR = "0104040155556"


@pytest.fixture
def officer(db) -> dict[str, str]:
    """An agent foncier of Bargny (API key)."""
    return {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent bargny")}


@pytest.fixture
def sandiara(db) -> dict[str, str]:
    """A lecteur of Sandiara: out of Bargny's scope."""
    return {"X-API-Key": api_key(db, role="lecteur", scope=("commune:SN1301-sandiara",), name="lecteur sandiara")}


def _parcel(client, headers, x: float, y: float, nicad: str) -> dict:
    response = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers, json={
        "type": "Feature", "geometry": mapping(square(x, y, 30)),
        "properties": {"nicad": nicad, "land_use": "habitation", "declared_area_m2": 905.5, "reason": "levé"}})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def allocated(client, db, officer, admin_headers) -> dict:
    """A parcel of Bargny with a touching neighbour, allocated to two holders by a completed procedure."""
    x, y = bargny_origin(db)
    parcel = _parcel(client, admin_headers, x + 700, y + 700, NICAD)
    _parcel(client, admin_headers, x + 730, y + 700, NEIGHBOUR)
    awa = _party(client, officer, "Sarr")
    moussa = _party(client, officer, "Faye", given_names="Moussa")
    procedure = _complete(client, officer, parcel, [{"party_id": awa, "share": "1/2"},
                                                     {"party_id": moussa, "share": "1/2"}])
    # Equal shares: the register lists the holders by party id (uuid order, that of their text).
    holders = [name for _, name in sorted([(awa, "Awa Sarr"), (moussa, "Moussa Faye")])]
    return {"parcel": parcel, "procedure": procedure, "holders": holders}


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)


def _code(pdf: bytes) -> str:
    return str(PdfReader(io.BytesIO(pdf)).metadata["/SIFCCode"])


def _audited(db, endpoint: str) -> int:
    return db.execute(text("SELECT count(*) FROM access_audit WHERE endpoint = :e"), {"e": endpoint}).scalar()


def test_the_public_sheet_shows_the_parcel_but_not_its_holders(client, db, allocated):
    response = client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    content = _text(response.content)
    assert NICAD in content and NEIGHBOUR not in content.split("Coordonnées")[0].split("Plan")[0]
    assert "900,00 m²" in content and "905,50 m²" in content
    assert "affectation" in content and "Fiche parcellaire" in content
    assert "Sarr" not in content and "Faye" not in content
    assert "non communiqués" in content
    code = _code(response.content)
    assert code[:4] in content and "/documents/verify" in content
    assert _audited(db, "/parcels/{parcel_id}/fiche.pdf") == 0


def test_an_officer_in_scope_gets_the_holders_and_the_read_is_audited(client, db, officer, allocated):
    response = client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf", headers=officer)
    assert response.status_code == 200, response.text
    content = _text(response.content)
    assert "Awa Sarr" in content and "Moussa Faye" in content and "1/2" in content
    assert _audited(db, "/parcels/{parcel_id}/fiche.pdf") == 1
    facts = orjson.loads(PdfReader(io.BytesIO(response.content)).attachments["sifc-document.json"][0])
    assert facts["parcel"]["nicad"] == NICAD and facts["holders_shown"] is True
    assert facts["neighbours"] == [NEIGHBOUR]
    assert len(facts["vertices"]) == 4 and facts["parcel"]["area_m2"] == 900.0


def test_english_titles_with_accept_language(client, allocated):
    response = client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    content = _text(response.content)
    assert "Parcel sheet" in content and "Verification code" in content and "900.00 m²" in content


def test_the_first_page_renders_to_a_non_blank_image(client, allocated, tmp_path):
    assert shutil.which("pdftoppm"), "poppler-utils (pdftoppm) is needed: scripts/test.sh installs it"
    pdf = tmp_path / "fiche.pdf"
    pdf.write_bytes(client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf").content)
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    from PIL import Image

    page = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    dark = sum(page.histogram()[:200])  # pixels darker than light grey: text, tables, the map
    assert dark > 0.005 * page.width * page.height


def test_an_issued_sheet_verifies_and_its_code_is_known(client, db, allocated):
    pdf = client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf").content
    answer = client.post("/documents/verify", files={"file": ("fiche.pdf", io.BytesIO(pdf), "application/pdf")})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["authentic"] is True and body["status"] == "authentique"
    assert body["certifies"]["parcel"]["nicad"] == NICAD
    code = _code(pdf)
    known = client.get(f"/documents/verify/{code.upper()[:20]}-{code[20:]}")
    assert known.status_code == 200 and known.json()["issued"] is True
    assert known.json()["certifies"]["nicad"] == NICAD and "holders" not in known.json()["certifies"]
    page = client.get(f"/documents/verify/{code}", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and "authentique" in page.text
    unknown = client.get("/documents/verify/" + "0" * 64)
    assert unknown.status_code == 200 and unknown.json()["status"] == "non authentique"
    row = db.execute(text("SELECT kind, personal FROM issued_document WHERE code = :c"), {"c": code}).one()
    assert tuple(row) == ("fiche_parcellaire", False)


def _rebuilt(pdf: bytes, change, code: str | None = None) -> bytes:
    """``pdf`` rewritten with its embedded content changed by ``change`` (the code left as it was, or ``code``)."""
    reader = PdfReader(io.BytesIO(pdf))
    facts = orjson.loads(reader.attachments["sifc-document.json"][0])
    change(facts)
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.add_metadata({**dict(reader.metadata), **({"/SIFCCode": code} if code is not None else {})})
    writer.add_attachment("sifc-document.json", orjson.dumps(facts, option=orjson.OPT_SORT_KEYS))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _verify(client, content: bytes):
    return client.post("/documents/verify", files={"file": ("d.pdf", io.BytesIO(content), "application/pdf")})


def test_a_tampered_document_is_not_authentic(client, allocated):
    pdf = client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf").content
    bigger = _rebuilt(pdf, lambda facts: facts["parcel"].update(area_m2=9000.0))
    same_facts = _rebuilt(pdf, lambda facts: None)  # the facts and code intact, the file rebuilt
    index = pdf.index(b"/Producer")
    flipped = pdf[:index] + b"/Producex" + pdf[index + 9:]
    truncated = pdf[: len(pdf) // 2]
    strange_code = _rebuilt(pdf, lambda facts: None, code="é" * 64)
    for forged in (bigger, same_facts, flipped, truncated, strange_code):
        answer = _verify(client, forged)
        assert answer.status_code == 200, answer.text
        assert answer.json()["authentic"] is False and answer.json()["status"] == "non authentique"
        assert "certifies" not in answer.json()
    assert _verify(client, bigger).json()["checks"]["code_matches_content"] is False


@pytest.mark.parametrize("garbage", [b"not a pdf at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, b""])
def test_garbage_is_a_client_error(client, garbage):
    answer = _verify(client, garbage)
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"] == "application/problem+json"


def test_procedure_documents_need_a_completed_procedure(client, db, officer, admin_headers):
    x, y = bargny_origin(db)
    parcel = _parcel(client, admin_headers, x + 800, y + 800, "0104040155557")
    pending = _register(client, officer, parcel["id"], [{"party_id": _party(client, officer, "Diouf"), "share": "1"}])
    for name in ("extrait", "certificat"):
        answer = client.get(f"/procedures/{pending['id']}/{name}.pdf", headers=officer)
        assert answer.status_code == 409 and answer.headers["content-type"] == "application/problem+json"
        assert "registered" in answer.json()["detail"]


@pytest.mark.parametrize("name,title", [("extrait", "Extrait de délibération"),
                                        ("certificat", "Certificat d'affectation")])
def test_procedure_documents_name_the_holders_for_the_commune_only(client, db, officer, sandiara, allocated, name,
                                                                   title):
    url = f"/procedures/{allocated['procedure']['id']}/{name}.pdf"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=sandiara).status_code == 403
    response = client.get(url, headers=officer)
    assert response.status_code == 200, response.text
    content = _text(response.content)
    for fact in (title, NICAD, "Awa Sarr", "Moussa Faye", "DEL-2026-014", "Sous-préfet", "Bargny", "900,00"):
        assert fact in content, fact
    assert _audited(db, f"/procedures/{{procedure_id}}/{name}.pdf") == 1
    assert _verify(client, response.content).json()["authentic"] is True
    known = client.get(f"/documents/verify/{_code(response.content)}").json()
    assert known["issued"] is True and "Sarr" not in orjson.dumps(known).decode()


PURPOSE = "Objetmarqueur 7781"  # an officer's free text: printed for the commune, never told to anyone verifying


@pytest.mark.parametrize("name", ["extrait", "certificat"])
def test_a_requests_purpose_is_in_no_verification_answer(client, db, officer, admin_headers, name):
    x, y = bargny_origin(db)
    parcel = _parcel(client, admin_headers, x + 860, y + 700, "0104040155558")
    procedure = _complete(client, officer, parcel, [{"party_id": _party(client, officer, "Ba"), "share": "1"}],
                          purpose=PURPOSE)
    pdf = client.get(f"/procedures/{procedure['id']}/{name}.pdf", headers=officer).content
    assert PURPOSE in _text(pdf)
    code = _code(pdf)
    stored = db.execute(text("SELECT summary::text FROM issued_document WHERE code = :c"), {"c": code}).scalar_one()
    assert PURPOSE not in stored
    for answer in (client.get(f"/documents/verify/{code}"), client.get(f"/documents/verify/{code}",
                                                                       headers={"Accept": "text/html"}),
                   _verify(client, pdf)):
        assert answer.status_code == 200 and "authenti" in answer.text and PURPOSE not in answer.text
    assert _verify(client, pdf).json()["authentic"] is True


def test_an_older_summary_with_free_text_is_served_without_it(client, db):
    """The register is append-only: a summary written with a purpose (as issued before) is filtered on read."""
    code = "ab" * 32
    summary = {"document": "extrait_deliberation", "procedure": {"id": "p-1", "reference": "DEM-9", "purpose": PURPOSE},
               "rights": [{"type": "bail", "description": PURPOSE, "reason": PURPOSE}]}
    db.execute(text("""
        INSERT INTO issued_document (code, kind, subject_kind, subject_id, commune_code, summary, personal,
                                     content_sha256, issued_by, key_id)
        VALUES (:code, 'extrait_deliberation', 'procedure', 'p-1', :commune, CAST(:summary AS jsonb), true, 'd',
                'tests', 'seal-test')"""), {"code": code, "commune": BARGNY, "summary": orjson.dumps(summary).decode()})
    answer = client.get(f"/documents/verify/{code}")
    assert answer.status_code == 200 and answer.json()["issued"] is True
    assert answer.json()["certifies"] == {"document": "extrait_deliberation",
                                          "procedure": {"id": "p-1", "reference": "DEM-9"},
                                          "rights": [{"type": "bail"}]}
    page = client.get(f"/documents/verify/{code}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and PURPOSE not in page.text and "DEM-9" in page.text


def test_the_register_is_public_without_holders(client, db, officer, allocated):
    public = client.get(f"/communes/{BARGNY}/registre.csv")
    assert public.status_code == 200 and public.headers["content-type"].startswith("text/csv")
    lines = public.content.decode("utf-8").splitlines()
    assert lines[0].startswith("nicad,section,numero,superficie_m2")
    assert any(line.startswith(NICAD) and "affectation" in line for line in lines)
    assert "Sarr" not in public.text
    assert _audited(db, "/communes/{code}/registre.csv") == 0
    full = client.get(f"/communes/{BARGNY}/registre.csv", headers={**officer, "Accept-Language": "en"})
    assert full.text.splitlines()[0].startswith("nicad,section,number,area_m2")
    assert "; ".join(f"{name} (1/2)" for name in allocated["holders"]) in full.text
    assert _audited(db, "/communes/{code}/registre.csv") >= 2
    pdf = client.get(f"/communes/{BARGNY}/registre.pdf", headers=officer)
    assert pdf.status_code == 200
    content = _text(pdf.content)
    assert "Registre foncier communal" in content and NICAD in content and "Awa Sarr" in content
    assert _verify(client, pdf.content).json()["authentic"] is True
    assert "Sarr" not in _text(client.get(f"/communes/{BARGNY}/registre.pdf").content)
    assert client.get("/communes/SN9999-nulle-part/registre.csv").status_code == 404


def test_issued_documents_are_append_only(client, db, allocated):
    client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf")
    from sqlalchemy.exc import ProgrammingError

    for statement in ("UPDATE issued_document SET personal = true", "DELETE FROM issued_document"):
        with pytest.raises(ProgrammingError, match="permission denied for table issued_document"), db.begin_nested():
            db.execute(text(statement))


def test_the_documents_issued_to_a_person_are_in_their_subject_access_report(client, db, settings, admin_headers,
                                                                               allocated):
    from sifc.auth import tokens, users
    from sifc.auth.principal import ScopeEntry

    scope = (ScopeEntry("commune", BARGNY),)
    user_id = users.create(db, username="lecteur.documents", password="documents password 2026", role="lecteur",
                           scope=list(scope), created_by="tests")
    token = tokens.start_session(db, settings, user_id=user_id).access_token
    sheet = client.get(f"/parcels/{allocated['parcel']['id']}/fiche.pdf", headers={"Authorization": f"Bearer {token}"})
    assert "Awa Sarr" in _text(sheet.content)
    report = client.get("/admin/subjects/lecteur.documents", headers=admin_headers)
    assert report.status_code == 200, report.text
    issued = next(source for source in report.json()["sources"] if source["name"] == "documents_issued")
    assert issued["count"] == 1 and issued["rows"][0]["kind"] == "fiche_parcellaire"


def test_issued_documents_are_append_only_even_for_the_owner(admin_engine):
    from sqlalchemy.exc import ProgrammingError

    with admin_engine.connect() as conn, conn.begin() as outer:
        conn.execute(text("""
            INSERT INTO issued_document (code, kind, subject_kind, subject_id, commune_code, summary, content_sha256,
                                         issued_by, key_id)
            VALUES ('c0de', 'fiche_parcellaire', 'parcel', 'x', 'SN0104-bargny', '{}', 'd', 'tests', 'seal-test')"""))
        for statement in ("UPDATE issued_document SET personal = true", "DELETE FROM issued_document",
                          "TRUNCATE issued_document"):
            with pytest.raises(ProgrammingError, match="append-only"), conn.begin_nested():
                conn.execute(text(statement))
        outer.rollback()
