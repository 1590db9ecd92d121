"""``sifc fees`` end to end: a schedule citing a délibération, a request with its fee, a payment with its sealed
receipt written to a file, a cancellation, the bordereau; refusals in one French line, nothing written."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from sifc.db import make_engine, transaction
from sifc.parcels import service as parcel_service
from sifc.settings import Settings
from sifc.tenure import parties, procedures, sources
from tests.e2e.helpers import assert_one_clean_line, run_cli
from tests.helpers_rules import set_rules
from tests.integration.fixtures import square

BARGNY = "SN0104-bargny"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TODAY = date.today().isoformat()


@pytest.fixture(scope="module")
def office(fresh_db: Settings) -> dict[str, str]:
    """Bargny's receipts numbered by SIFC, a délibération, and a party and a parcel for a request."""
    engine = make_engine(fresh_db.db_url)
    with transaction(engine) as session:
        set_rules(session, BARGNY, receipt_mode="recu_pdf")
        deliberation = sources.create(session, data=sources.SourceInput(
            kind="deliberation", document_date=date(2026, 1, 10), commune_code=BARGNY, reference="DEL-CLI-1",
            council_session="séance (fictive)"), by=None, author="tests")
        party = parties.create(session, data=parties.PartyInput(values={
            "kind": "natural_person", "name": "Ba", "commune_code": BARGNY}), by=None, author="tests")
        x, y = session.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(
            ST_SetSRID(ST_MakePoint(-17.2283, 14.6933), 4326), 32628) p) t""")).one()
        parcel = parcel_service.create(session, data=parcel_service.ParcelInput(
            geometry=mapping(square(x, y, 40)), input_crs=32628, reason="levé"), author="tests")
    engine.dispose()
    return {"deliberation": deliberation, "party": party, "parcel": parcel}


def _register(settings: Settings, office: dict[str, str]) -> str:
    engine = make_engine(settings.db_url)
    with transaction(engine) as session:
        found = procedures.register(session, data=procedures.ProcedureInput(
            parcel_id=office["parcel"], applicants=[{"party_id": office["party"], "share": "1"}],
            registered_on=date.today(), reference="CLI-001"), by=None, author="tests")
    engine.dispose()
    return found


def test_the_regie_from_the_console(fresh_db: Settings, office: dict[str, str], tmp_path: Path) -> None:
    bad = run_cli(fresh_db, "fees", "schedule", "--commune", BARGNY, "--kind", "affectation", "--from", "2026-01-01",
                  "--rule", '{"kind": "per_m2", "rate": 0}', "--deliberation", office["deliberation"])
    assert bad.returncode != 0
    assert_one_clean_line(bad)
    made = run_cli(fresh_db, "fees", "schedule", "--commune", BARGNY, "--kind", "affectation", "--from", "2026-01-01",
                   "--rule", '{"kind": "per_m2", "rate": 10}', "--deliberation", office["deliberation"])
    assert made.returncode == 0, made.stderr
    assert re.search(rf"Barème {UUID} enregistré", made.stdout)
    procedure = _register(fresh_db, office)  # 1 600 m² at 10 F: 16 000 F

    over = run_cli(fresh_db, "fees", "pay", procedure, "--amount", "16001")
    assert over.returncode != 0 and "dépasse" in over.stderr
    assert_one_clean_line(over)
    receipt = tmp_path / "recu.pdf"
    paid = run_cli(fresh_db, "fees", "pay", procedure, "--amount", "6000", "--receipt", str(receipt))
    assert paid.returncode == 0, paid.stderr
    assert f"{date.today().year}-000001" in paid.stdout and receipt.read_bytes().startswith(b"%PDF")
    payment = re.search(rf"Paiement ({UUID})", paid.stdout).group(1)  # type: ignore[union-attr]

    cancelled = run_cli(fresh_db, "fees", "cancel", payment, "--reason", "erreur de saisie")
    assert cancelled.returncode == 0, cancelled.stderr
    again = run_cli(fresh_db, "fees", "cancel", payment, "--reason", "encore")
    assert again.returncode != 0 and "déjà annulé" in again.stderr

    slip = tmp_path / "bordereau.pdf"
    done = run_cli(fresh_db, "fees", "bordereau", "--commune", BARGNY, "--from", TODAY, "--to", TODAY,
                   "--pdf", str(slip))
    assert done.returncode == 0, done.stderr
    assert "1 paiement(s), 1 annulation(s)" in done.stdout and "total 0 FCFA" in done.stdout
    assert slip.read_bytes().startswith(b"%PDF")
