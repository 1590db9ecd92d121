"""Every read of personal data is decided and logged by the domain service, whoever calls it.

No HTTP here: the records are written and read through the services themselves, as a command,
a worker or a sync job would. A reader of personal data in Bargny gets the personal fields and
leaves one access-log row per subject, in its own name and channel; the public and a reader of
another commune get the public form (or a refusal, for the records that are personal through and
through) and leave no row; the command line is logged under its operator's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from cli.common import operator
from sifc import history, journal, keyring, mutations
from sifc.auth import service as auth_service
from sifc.auth.principal import ANONYMOUS, Principal
from sifc.db import act_as
from sifc.documents import fiche, procedure_documents, registre
from sifc.errors import Forbidden, NotFound, Unauthorized
from sifc.localites import service as localites
from sifc.parcels import service as parcels
from sifc.tenure import parties, procedures, rights, sources
from tests.conftest import api_key
from tests.integration.fixtures import bargny_origin, square

BARGNY = "SN0104-bargny"
NICAD = "0104040157777"
PDF = b"%PDF-1.4\n% synthetic\n" + b"0" * 64


def _ago(days: int) -> date:
    return date.today() - timedelta(days=days)


def _principal(db, role: str, commune: str, name: str) -> Principal:
    return auth_service.from_api_key(db, api_key(db, role=role, scope=(f"commune:{commune}",), name=name))


@pytest.fixture
def readers(db) -> dict[str, Principal]:
    """The principals of the tests: an agent of Bargny (the writer), a lecteur of Bargny and one of Sandiara."""
    return {"agent": _principal(db, "agent_foncier", BARGNY, "agent bargny"),
            "lecteur": _principal(db, "lecteur", BARGNY, "lecteur bargny"),
            "elsewhere": _principal(db, "lecteur", "SN1301-sandiara", "lecteur sandiara")}


def _source(db, agent: Principal, kind: str, **extra: Any) -> str:
    if kind == "deliberation":
        extra.update(reference="DEL-77", council_session="session ordinaire")
    data = sources.SourceInput(kind=kind, document_date=_ago(20), commune_code=BARGNY, **extra)
    return sources.create(db, data=data, by=agent, author=agent.name)


@pytest.fixture
def world(db, readers) -> dict[str, str]:
    """A parcel of Bargny allocated to a party by a completed procedure, with a scanned file; written by the agent."""
    agent = readers["agent"]
    act_as(db, agent.name)
    x, y = bargny_origin(db)
    parcel = parcels.create(db, data=parcels.ParcelInput(
        geometry=mapping(square(x + 900, y + 900, 30)), input_crs=32628,
        values={"nicad": NICAD, "land_use": "habitation"}, reason="levé"), author=agent.name, by=agent)
    party = parties.create(db, data=parties.PartyInput({
        "kind": "natural_person", "name": "Diouf", "given_names": "Awa", "id_number": "SYN-DIO-1", "sex": "F",
        "commune_code": BARGNY}), by=agent, author=agent.name)
    procedure = procedures.register(db, data=procedures.ProcedureInput(
        parcel_id=parcel, applicants=[{"party_id": party, "share": "1"}], registered_on=_ago(30),
        purpose="habitation", reference="DEM-9"), by=agent, author=agent.name)
    steps = [("surveyed", 25, _source(db, agent, "proces_verbal", reference="PV-9"), {"neighbours_consulted": True}),
             ("deliberated", 15, _source(db, agent, "deliberation"), {}),
             ("approved", 10, _source(db, agent, "approbation", authority="sous_prefet", reference="ARR-9"), {}),
             ("notified", 5, None, {})]
    for step, days, source, details in steps:
        done = procedures.advance(db, procedure_id=procedure, step=procedures.StepInput(
            step=step, occurred_on=_ago(days), source_ids=[source] if source else [], details=details),
            expected_version=None, thresholds_ha=(10.0, 50.0), by=agent, author=agent.name)
    corrected = parcels.create(db, data=parcels.ParcelInput(
        geometry=mapping(square(x + 960, y + 900, 30)), input_crs=32628, values={"land_use": "habitation"},
        reason="levé"), author=agent.name, by=agent)
    plan = _source(db, agent, "plan", reference="PLAN-9")
    mutations.correct_boundary(db, parcel_id=corrected, geometry=mapping(square(x + 960, y + 900, 31)),
                               data=mutations.MutationInput(occurred_on=_ago(3), source_ids=[plan],
                                                            reason="rectification", input_crs=32628),
                               expected_version=None, by=agent, author=agent.name)
    source = _source(db, agent, "acte", reference="ACTE-9")
    attached = sources.attach(db, source_id=source, file_name="acte.pdf", content=PDF, max_bytes=10_000, by=agent,
                              author=agent.name)
    return {"parcel": parcel, "corrected": corrected, "party": party, "procedure": procedure, "rrr": done["rrr_id"], "source": source,
            "file": attached["id"], "localite": localites.create(db, data=localites.LocaliteInput(
                geometry={"type": "Point", "coordinates": [x + 950, y + 950]}, input_crs=32628,
                values={"name": "Quartier Diouf", "kind": "quartier"}, reason="placé"), by=agent, author=agent.name)}


def _seal(settings) -> keyring.SigningKey:
    return keyring.for_settings(settings).current("seal")


@dataclass(frozen=True)
class Read:
    """One service returning personal data: how to call it, what it logs, and a personal field it reveals."""

    name: str
    call: Callable[..., Any]  # (db, settings, world, reader) -> the answer
    subject_kind: str
    subject: str  # the world key of the logged subject
    revealed: Callable[[Any, Any], bool] | None = None  # (db, answer); None: personal through and through
    rows: int = 1


def _feature_author(db, body: bytes) -> bool:
    return "author" in orjson.loads(body)["properties"]


def _versions_author(db, body: bytes) -> bool:
    return "author" in orjson.loads(body)["features"][0]["properties"]


def _holders_printed(db, pdf: bytes) -> bool:
    return bool(db.execute(text("""SELECT bool_or(personal) FROM issued_document
                                   WHERE kind = 'fiche_parcellaire' AND summary->>'nicad' = :n"""),
                           {"n": NICAD}).scalar())


READS = [
    Read("parcels.get", lambda db, s, w, r: parcels.get(db, parcel_id=w["parcel"], reader=r), "parcel", "parcel",
         _feature_author),
    Read("parcels.get_with_version", lambda db, s, w, r: parcels.get_with_version(
        db, parcel_id=w["parcel"], reader=r)[0], "parcel", "parcel", _feature_author),
    Read("parcels.get_by_nicad", lambda db, s, w, r: parcels.get_by_nicad(db, nicad=NICAD, reader=r), "parcel",
         "parcel", _feature_author),
    Read("parcels.versions", lambda db, s, w, r: parcels.versions(db, parcel_id=w["parcel"], reader=r), "parcel",
         "parcel", _versions_author),
    Read("parcels.list_commune", lambda db, s, w, r: parcels.list_commune(
        db, commune_code=BARGNY, limit=1000, offset=0, reader=r), "parcel", "parcel", _versions_author, rows=0),
    Read("rights.for_parcel", lambda db, s, w, r: rights.for_parcel(db, parcel_id=w["parcel"], reader=r), "parcel",
         "parcel", lambda db, found: "holders" in found[0]),
    Read("rights.get", lambda db, s, w, r: rights.get(db, rrr_id=w["rrr"], reader=r), "rrr", "rrr",
         lambda db, found: "holders" in found),
    Read("rights.versions", lambda db, s, w, r: rights.versions(db, rrr_id=w["rrr"], reader=r), "rrr", "rrr",
         lambda db, found: "holders" in found[0]),
    Read("history.parcel_history", lambda db, s, w, r: history.parcel_history(db, parcel_id=w["parcel"], reader=r),
         "parcel", "parcel", lambda db, found: "applicants" in found["procedures"][0]),
    Read("mutations.lineage", lambda db, s, w, r: mutations.lineage(db, parcel_id=w["corrected"], reader=r),
         "parcel", "corrected", lambda db, found: "author" in found["corrections"][0]),
    Read("registre.gather", lambda db, s, w, r: registre.gather(db, commune_code=BARGNY, reader=r), "parcel",
         "parcel", lambda db, found: found.personal, rows=0),
    Read("fiche.build", lambda db, s, w, r: fiche.build(
        db, parcel_id=w["parcel"], reader=r, lang="fr", seal_key=_seal(s), verify_url="https://sifc.test/v",
        issued_by=r.name or "public"), "parcel", "parcel", _holders_printed),
    Read("parties.get", lambda db, s, w, r: parties.get(db, party_id=w["party"], reader=r), "party", "party"),
    Read("parties.versions", lambda db, s, w, r: parties.versions(db, party_id=w["party"], reader=r), "party",
         "party"),
    Read("procedures.get", lambda db, s, w, r: procedures.get(db, procedure_id=w["procedure"], reader=r),
         "procedure", "procedure"),
    Read("procedures.for_parcel", lambda db, s, w, r: procedures.for_parcel(db, parcel_id=w["parcel"], reader=r),
         "parcel", "parcel"),
    Read("history.parcel_writes", lambda db, s, w, r: history.parcel_writes(db, parcel_id=w["parcel"], reader=r),
         "parcel", "parcel"),
    Read("sources.get", lambda db, s, w, r: sources.get(db, source_id=w["source"], reader=r), "source", "source"),
    Read("sources.file", lambda db, s, w, r: sources.file(db, source_id=w["source"], file_id=w["file"], reader=r),
         "source_file", "file"),
    Read("procedure_documents.build", lambda db, s, w, r: procedure_documents.build(
        db, kind="certificat_affectation", procedure_id=w["procedure"], reader=r, lang="fr", seal_key=_seal(s),
        verify_url="https://sifc.test/v", issued_by=r.name), "procedure", "procedure"),
]
READS.append(Read("localites.history", lambda db, s, w, r: localites.history(db, localite_id=w["localite"], reader=r),
                  "localite", "localite", _versions_author))
IDS = [read.name for read in READS]


def _log(db) -> list[Any]:
    return db.execute(text("""
        SELECT actor_kind, actor, role, method, endpoint, subject_kind, subject_id, commune_code FROM access_audit
        ORDER BY id""")).all()


@pytest.mark.parametrize("read", READS, ids=IDS)
def test_a_reader_in_scope_gets_the_personal_data_and_the_service_logs_it(db, settings, world, readers, read):
    before = len(_log(db))
    reader = readers["lecteur"].via("JOB", "registry sync")
    found = read.call(db, settings, world, reader)
    if read.revealed is not None:
        assert read.revealed(db, found)
    rows = _log(db)[before:]
    subject_rows = [row for row in rows if row.subject_id == world[read.subject]]
    assert len(subject_rows) == 1, rows
    if read.rows:
        assert len(rows) == read.rows, rows  # one row per subject: nested services do not log again
    assert {(r.actor_kind, r.actor, r.role, r.method, r.endpoint, r.subject_kind, r.commune_code) for r in rows} == {
        ("api_key", reader.name, "lecteur", "JOB", "registry sync", read.subject_kind, BARGNY)}


@pytest.mark.parametrize("who", ["public", "elsewhere"])
@pytest.mark.parametrize("read", READS, ids=IDS)
def test_the_public_and_a_reader_out_of_scope_get_no_personal_data_and_leave_no_row(db, settings, world, readers,
                                                                                    read, who):
    reader = ANONYMOUS if who == "public" else readers[who]
    before = len(_log(db))
    if read.revealed is None:  # personal through and through: refused, as an unknown record for another commune
        with pytest.raises((Unauthorized, Forbidden, NotFound)):
            read.call(db, settings, world, reader)
    else:
        assert not read.revealed(db, read.call(db, settings, world, reader))
    assert len(_log(db)) == before


def test_a_call_that_names_no_channel_is_logged_by_the_service_it_called(db, world, readers):
    parcels.get(db, parcel_id=world["parcel"], reader=readers["lecteur"])
    last = _log(db)[-1]
    assert (last.method, last.endpoint, last.subject_id) == ("CALL", "sifc.parcels.service.get", world["parcel"])


def test_the_command_line_reads_in_its_operators_name_and_is_logged(db, world, readers, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "awa")
    reader = operator().via("CLI", "sifc parcels lineage")  # as `sifc parcels lineage` builds it
    found = mutations.lineage(db, parcel_id=world["corrected"], reader=reader)
    assert found["corrections"][0]["author"] == readers["agent"].name  # the operator sees who wrote it
    last = _log(db)[-1]
    assert (last.actor_kind, last.actor, last.method, last.endpoint, last.subject_kind, last.subject_id) == (
        "cli", "cli:awa", "CLI", "sifc parcels lineage", "parcel", world["corrected"])


def test_a_writer_sees_what_it_wrote_without_a_read_row_and_no_one_else_does(db, world, readers):
    before = len(_log(db))
    assert parties.as_written(db, party_id=world["party"], by=readers["agent"])["name"] == "Diouf"
    assert "holders" in rights.as_written(db, rrr_id=world["rrr"], by=readers["agent"])
    assert len(_log(db)) == before  # the write journal holds that state under the writer's name
    with pytest.raises(Forbidden):
        parties.as_written(db, party_id=world["party"], by=readers["lecteur"])


def test_the_write_journal_read_by_an_administrator_is_logged_per_object(db, world, readers):
    admin = _principal(db, "administrateur", BARGNY, "admin bargny").via("GET", "/admin/writes")
    before = len(_log(db))
    rows = journal.write_log(db, admin, object_kind="party", object_id=world["party"])
    assert rows and all(row["object_id"] == world["party"] for row in rows)
    assert _log(db)[before:] == [("api_key", admin.name, "administrateur", "GET", "/admin/writes", "party",
                                  world["party"], BARGNY)]  # one row for the party, however many writes
