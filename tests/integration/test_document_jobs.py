"""Document jobs (ADR 0005, § Jobs and batch documents): a batch of sealed PDFs built by the job queue.

Jobs run here in the test's transaction (``jobs.run_now``, as ``sifc documents batch`` runs them at
the console); the worker runs the same function (``sifc.imports.worker``), tested in
``test_a_worker_builds_a_batch_and_a_reaped_job_keeps_no_file``.
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from typing import Any

import pytest
from pypdf import PdfReader
from shapely.geometry import mapping
from sqlalchemy import text

from sifc.auth.principal import Principal
from sifc.documents import jobs, session_batch
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, day, square
from tests.integration.test_sessions import _closed_session, _ready
from tests.integration.test_tenure import _complete, _party, _source, _step

BARGNY = "SN0104-bargny"


@pytest.fixture
def officer(db) -> dict[str, str]:
    return {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent lots")}


def _parcel(client, headers, x: float, y: float, nicad: str) -> dict:
    response = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers, json={
        "type": "Feature", "geometry": mapping(square(x, y, 20)),
        "properties": {"nicad": nicad, "land_use": "habitation", "reason": "levé"}})
    assert response.status_code == 201, response.text
    return response.json()


def notified_procedures(client, db, headers, admin_headers, count: int, *, dx: float = 900) -> list[dict]:
    """``count`` procedures of Bargny taken to notification, each on a parcel of its own."""
    x, y = bargny_origin(db)
    found = []
    for n in range(count):
        parcel = _parcel(client, admin_headers, x + dx + 30 * (n % 20), y + 900 + 30 * (n // 20),
                         f"01040401{77000 + n:05d}")
        holder = _party(client, headers, f"Lot{n:03d}")
        found.append(_complete(client, headers, parcel, [{"party_id": holder, "share": "1"}],
                               reference=f"DEM-LOT-{n:03d}"))
    return found


def _console() -> Principal:
    return Principal(kind="cli", role="administrateur", name="console", everywhere=True)


def test_a_procedure_batch_builds_one_pdf_and_one_file_per_document_each_verifiable(
        client, db, settings, officer, admin_headers):
    procedures = notified_procedures(client, db, officer, admin_headers, 3)
    job_id = jobs.submit(db, builder="procedure_batch", params={"procedure_ids": [p["id"] for p in procedures]},
                         commune_code=BARGNY, by=_console(), author="console")
    outcome = jobs.run_now(db, job_id=job_id, settings=settings)
    assert outcome["report"]["files"] == {"pdf": True, "zip": True, "pages": 6}
    assert outcome["report"]["printed"] == 3 and outcome["report"]["skipped"] == []
    job = jobs.get(db, job_id=uuid.UUID(job_id), by=_console())
    assert job["status"] == "done" and job["progress_done"] == job["progress_total"]

    folder = jobs.output(settings, job_id)
    combined = PdfReader(str(folder / jobs.PDF_NAME))
    assert len(combined.pages) == 6
    with zipfile.ZipFile(folder / jobs.ZIP_NAME) as archive:
        names = archive.namelist()
        assert len(names) == 6 and names[0].startswith("0001-DEM-LOT-000-extrait")
        for name in names:
            pdf = archive.read(name)
            answer = client.post("/documents/verify", files={"file": (name, io.BytesIO(pdf), "application/pdf")})
            assert answer.status_code == 200 and answer.json()["authentic"] is True, answer.text
            code = str(PdfReader(io.BytesIO(pdf)).metadata["/SIFCCode"])
            # the same page in the combined PDF prints that code: verifiable from paper
            page = names.index(name)
            printed = (combined.pages[page].extract_text() or "").replace(" ", "").replace("\n", "")
            assert code[:32] in printed
            assert client.get(f"/documents/verify/{code}").json()["authentic"] is True
    issued = db.execute(text("SELECT count(*) FROM issued_document WHERE subject_id = ANY(:ids)"),
                        {"ids": [p["id"] for p in procedures]}).scalar()
    assert issued == 6


def test_a_batch_that_fails_keeps_no_document_and_no_file(client, db, settings, officer, admin_headers,
                                                          monkeypatch):
    from sifc.documents import procedure_documents

    procedures = notified_procedures(client, db, officer, admin_headers, 1)
    job_id = jobs.submit(db, builder="procedure_batch", params={"procedure_ids": [procedures[0]["id"]]},
                         commune_code=BARGNY, by=_console(), author="console")
    before = db.execute(text("SELECT count(*) FROM issued_document")).scalar()
    original, calls = procedure_documents.build, []

    def failing(*args, **kwargs):  # the certificate fails after the extract was sealed and recorded
        calls.append(kwargs["kind"])
        if len(calls) == 2:
            raise RuntimeError("disque plein")
        return original(*args, **kwargs)

    monkeypatch.setattr(procedure_documents, "build", failing)
    savepoint = db.begin_nested()  # the job's transaction, as the worker's: rolled back on the failure
    with pytest.raises(RuntimeError):
        jobs.run_now(db, job_id=job_id, settings=settings)
    savepoint.rollback()
    assert db.execute(text("SELECT count(*) FROM issued_document")).scalar() == before
    assert not jobs.output(settings, job_id).exists()


def test_unknown_builders_and_foreign_procedures_are_refused_at_submission(client, db, officer, admin_headers):
    from sifc.errors import InvalidInput

    with pytest.raises(InvalidInput) as unknown:
        jobs.submit(db, builder="nope", params={}, commune_code=BARGNY, by=_console(), author="console")
    assert "Lot de documents inconnu" in unknown.value.message("fr") and "session_batch" in unknown.value.message("fr")
    with pytest.raises(InvalidInput) as foreign:
        jobs.submit(db, builder="procedure_batch", params={"procedure_ids": [str(uuid.uuid4())]},
                    commune_code=BARGNY, by=_console(), author="console")
    assert foreign.value.key == "document_job.procedures_commune"
    assert db.execute(text("SELECT count(*) FROM import_job WHERE kind = 'documents'")).scalar() == 0


def test_document_jobs_are_not_imports_and_imports_are_not_document_jobs(client, db, officer, admin_headers):
    procedures = notified_procedures(client, db, officer, admin_headers, 1)
    job_id = jobs.submit(db, builder="procedure_batch", params={"procedure_ids": [procedures[0]["id"]]},
                         commune_code=BARGNY, by=_console(), author="console")
    assert client.get(f"/imports/{job_id}", headers=admin_headers).status_code == 404
    assert all(j["id"] != job_id for j in client.get("/imports", headers=admin_headers).json()["jobs"])
    answer = client.get(f"/document-jobs/{job_id}", headers=officer)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "queued" and body["builder"] == "procedure_batch" and "created_by" not in body
    assert client.get(f"/document-jobs/{job_id}/pdf", headers=officer).status_code == 409
    sandiara = {"X-API-Key": api_key(db, role="agent_foncier", scope=("commune:SN1301-sandiara",), name="agent s")}
    assert client.get(f"/document-jobs/{job_id}", headers=sandiara).status_code == 403
    reader = {"X-API-Key": api_key(db, role="lecteur", scope=(f"commune:{BARGNY}",), name="lecteur lots")}
    assert client.get(f"/document-jobs/{job_id}", headers=reader).status_code == 403
    assert client.get(f"/document-jobs/{uuid.uuid4()}", headers=officer).status_code == 404
    assert client.get("/document-jobs/pas-un-id", headers=officer).status_code == 404


def test_the_files_are_served_to_officers_in_scope_and_each_download_is_audited(
        client, db, settings, officer, admin_headers):
    procedures = notified_procedures(client, db, officer, admin_headers, 2)
    job_id = jobs.submit(db, builder="procedure_batch", params={"procedure_ids": [p["id"] for p in procedures]},
                         commune_code=BARGNY, by=_console(), author="console")
    jobs.run_now(db, job_id=job_id, settings=settings)
    body = client.get(f"/document-jobs/{job_id}", headers=officer).json()
    assert body["status"] == "done" and set(body["links"]) == {"self", "pdf", "zip"}
    pdf = client.get(f"/document-jobs/{job_id}/pdf", headers=officer)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 4
    archive = client.get(f"/document-jobs/{job_id}/zip", headers=officer)
    assert archive.status_code == 200 and len(zipfile.ZipFile(io.BytesIO(archive.content)).namelist()) == 4
    audited = db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind = 'document_job' "
                              "AND subject_id = :id"), {"id": job_id}).scalar()
    assert audited == 2
    jobs.discard(settings, job_id)
    gone = client.get(f"/document-jobs/{job_id}/pdf", headers=officer)
    assert gone.status_code == 410 and "conservation" in gone.json()["detail"]


def deliberated_session(client, db, officer, count: int, *, notify: bool = True) -> tuple[Any, list[dict]]:
    """A session of Bargny that granted ``count`` procedures, each then approved and (``notify``) notified."""
    parcels = _session_parcels(client, db, officer, count)
    procedures = [_ready(client, officer, parcel, n) for n, parcel in enumerate(parcels)]
    council = _closed_session(client, db, officer, procedures)
    deliberation = _source(client, officer, "deliberation", reference="DEL-2026-LOT")
    council.call("POST", "/deliberate", {"number": "DEL-2026-LOT", "deliberated_on": day(12), "source_id": deliberation,
                                         "decisions": [{"procedure_id": p["id"], "decision": "granted"}
                                                       for p in procedures]})
    approval = _source(client, officer, "approbation", authority="sous_prefet", reference="ARR-LOT")
    for procedure in procedures:
        procedure.update(etag=client.get(f"/procedures/{procedure['id']}", headers=officer).headers["ETag"])
        assert _step(client, officer, procedure, "approved", on=day(8), source_ids=[approval]).status_code == 200
        if notify:
            assert _step(client, officer, procedure, "notified", on=day(5)).status_code == 200
    return council, procedures


def _session_parcels(client, db, headers, count: int) -> list[str]:
    x, y = bargny_origin(db)
    made = []
    for i in range(count):
        response = client.post("/parcels", params={"crs": "EPSG:32628"}, headers=headers, json={
            "type": "Feature", "geometry": mapping(square(x + 900 + 40 * (i % 15), y + 1100 + 40 * (i // 15), 30)),
            "properties": {"land_use": "habitation", "reason": "levé"}})
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    return made


def _verify_batch(client, settings, job_id: str) -> tuple[PdfReader, list[str]]:
    """The combined PDF and the codes of the zip's documents, each checked authentic, page by page."""
    folder = jobs.output(settings, job_id)
    combined = PdfReader(str(folder / jobs.PDF_NAME))
    codes = []
    page = 0
    with zipfile.ZipFile(folder / jobs.ZIP_NAME) as archive:
        for name in archive.namelist():
            pdf = archive.read(name)
            reader = PdfReader(io.BytesIO(pdf))
            answer = client.post("/documents/verify", files={"file": (name, io.BytesIO(pdf), "application/pdf")})
            assert answer.status_code == 200 and answer.json()["authentic"] is True, answer.text
            code = str(reader.metadata["/SIFCCode"])
            assert client.get(f"/documents/verify/{code}").json()["authentic"] is True
            for _ in reader.pages:  # the same pages, in the same order, in the combined PDF: verifiable from paper
                printed = (combined.pages[page].extract_text() or "").replace(" ", "").replace("\n", "")
                assert code[:32] in printed, (name, page)
                page += 1
            codes.append(code)
    assert page == len(combined.pages)
    return combined, codes


def test_a_deliberated_session_prints_its_documents_and_register_through_a_job(client, db, settings, officer):
    council, procedures = deliberated_session(client, db, officer, 3)
    response = client.post(f"/sessions/{council.id}/documents", headers=officer)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == response.json()["links"]["self"]
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued" and response.json()["builder"] == "session_batch"
    jobs.run_now(db, job_id=job_id, settings=settings)
    body = client.get(response.headers["Location"].removeprefix(settings.public_base), headers=officer).json()
    assert body["status"] == "done", body
    assert body["report"]["granted"] == 3 and body["report"]["printed"] == 3 and body["report"]["skipped"] == []
    assert body["report"]["files"]["pages"] == 2 * 3 + 1 and body["report"]["documents"] == 7
    combined, codes = _verify_batch(client, settings, job_id)
    assert len(combined.pages) == 7 and len(set(codes)) == 7
    register = client.get(f"/documents/verify/{codes[-1]}").json()
    assert register["kind"] == "registre_session" and register["certifies"]["items"] == 3
    last = combined.pages[-1].extract_text() or ""
    assert "Registre de la session" in last and "DEM-S0" in last and "accordée" in last
    for holder in ("Demandeur0", "Demandeur1"):
        assert holder not in last  # the register names nobody
    first = combined.pages[0].extract_text() or ""
    assert "Demandeur0" in first  # the extract names its holders, as the single one does
    kinds = db.execute(text("SELECT kind, count(*) FROM issued_document WHERE code = ANY(:c) GROUP BY kind"),
                       {"c": codes}).all()
    assert dict(kinds) == {"extrait_deliberation": 3, "certificat_affectation": 3, "registre_session": 1}
    pdf = client.get(f"/document-jobs/{job_id}/pdf", headers=officer)
    assert pdf.status_code == 200 and len(PdfReader(io.BytesIO(pdf.content)).pages) == 7


def test_a_session_not_yet_deliberated_is_refused_with_409_and_nothing_is_queued(client, db, officer):
    parcels = _session_parcels(client, db, officer, 1)
    council = _closed_session(client, db, officer, [_ready(client, officer, parcels[0], 0)])
    response = client.post(f"/sessions/{council.id}/documents", headers=officer)
    assert response.status_code == 409, response.text
    assert "pas encore délibérée" in response.json()["detail"]
    english = client.post(f"/sessions/{council.id}/documents", headers={**officer, "Accept-Language": "en"})
    assert "not been deliberated" in english.json()["detail"]
    assert client.post(f"/sessions/{uuid.uuid4()}/documents", headers=officer).status_code == 404
    sandiara = {"X-API-Key": api_key(db, role="agent_foncier", scope=("commune:SN1301-sandiara",), name="agent s2")}
    assert client.post(f"/sessions/{council.id}/documents", headers=sandiara).status_code == 403
    assert db.execute(text("SELECT count(*) FROM import_job WHERE kind = 'documents'")).scalar() == 0


def test_granted_procedures_not_yet_notified_are_listed_not_printed(client, db, settings, officer):
    council, _procedures = deliberated_session(client, db, officer, 2, notify=False)
    job_id = session_batch.submit_session(db, session_id=council.id, by=_console(), author="console")
    outcome = jobs.run_now(db, job_id=job_id, settings=settings)
    report = outcome["report"]
    assert report["printed"] == 0 and len(report["skipped"]) == 2
    assert {s["state"] for s in report["skipped"]} == {"approved"}
    assert report["files"]["pages"] == 1  # the register alone


def test_a_session_of_sixty_procedures_reports_its_progress_and_time(client, db, settings, officer):
    council, _procedures = deliberated_session(client, db, officer, 60)
    job_id = session_batch.submit_session(db, session_id=council.id, by=_console(), author="console")
    seen: list[tuple[str, int, int]] = []
    started = time.perf_counter()
    outcome = jobs.run_now(db, job_id=job_id, settings=settings, notify=lambda s, d, t: seen.append((s, d, t)))
    elapsed = time.perf_counter() - started
    pages = outcome["report"]["files"]["pages"]
    print(f"\nsession of 60 procedures, {pages} pages: {elapsed:.1f} s ({elapsed / pages * 1000:.0f} ms a page)")
    assert pages >= 121
    building = [d for s, d, t in seen if s == "building"]
    assert building == sorted(building) and building[-1] == 61 and {t for s, d, t in seen if s == "building" and d} == {61}
    _verify_batch(client, settings, job_id)
