"""Receipts are numbered without gaps: 20 concurrent payments and one rolled back leave receipts 1 to 20.

Real connections (one per thread, the service's role), committed data: each payment takes the commune's
next number with ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on ``receipt_counter`` in its own
transaction; a payment rolled back while holding the row gives its number back to the next one. The
payments go to three files, so that they queue on the counter row and not only on one file's lock. The
year (2019) and the place (a far corner of Sandiara) are this test's own, in a database of its own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from shapely.geometry import mapping
from sqlalchemy import text

from sifc.db import make_engine, transaction
from sifc.fees import schedules, service
from sifc.parcels import service as parcel_service
from sifc.tenure import parties, procedures, sources
from tests.helpers_rules import set_rules
from tests.integration.fixtures import square

SANDIARA = "SN1301-sandiara"
YEAR = 2019
PAID_ON = date(YEAR, 6, 3)
THREADS = 20
AUTHOR = "tests-fees-concurrency"


def _origin(session) -> tuple[float, float]:
    """A point of Sandiara far from its centre, with room around it (UTM 28N)."""
    x, y = session.execute(text("""
        SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_PointOnSurface(ST_Buffer(geom, -1500)), 32628) p
                                      FROM commune WHERE code = :c) t"""), {"c": SANDIARA}).one()
    return float(x), float(y)


@pytest.fixture
def files(fresh_db) -> Iterator[dict[str, Any]]:
    """Three files of Sandiara with a fee of 1 000 000 F, receipts numbered by SIFC, in a database of their own.

    The payments are committed by real connections: a database of the module's own (dropped afterwards) keeps
    them, and their journal, out of the database the other tests share.
    """
    made: dict[str, Any] = {"parcels": [], "procedures": []}
    engine = make_engine(fresh_db.db_url)
    try:
        _make(engine, made)
    finally:
        engine.dispose()
    yield made


def _make(engine, made: dict[str, Any]) -> None:
    with transaction(engine) as session:
        set_rules(session, SANDIARA, on=date(YEAR, 1, 1), receipt_mode="recu_pdf")
        source = sources.create(session, data=sources.SourceInput(
            kind="deliberation", document_date=date(YEAR, 1, 2), commune_code=SANDIARA, reference="DEL-FEES-2019",
            council_session="séance de test"), by=None, author=AUTHOR)
        made["source"] = source
        schedule = schedules.create(session, data=schedules.ScheduleInput(
            commune_code=SANDIARA, procedure_kind="affectation", valid_from=date(YEAR, 1, 1),
            rule={"kind": "fixed", "amount": 1_000_000}, deliberation_source_id=str(source)), by=None, author=AUTHOR)
        made["schedule"] = schedule["id"]
        party = parties.create(session, data=parties.PartyInput(values={
            "kind": "natural_person", "name": "Faye", "commune_code": SANDIARA}), by=None, author=AUTHOR)
        made["party"] = party
        x, y = _origin(session)
        for index in range(3):
            parcel = parcel_service.create(session, data=parcel_service.ParcelInput(
                geometry=mapping(square(x + 40 * index, y, 20)), input_crs=32628, reason="test des reçus"),
                author=AUTHOR)
            made["parcels"].append(str(parcel))
            made["procedures"].append(procedures.register(session, data=procedures.ProcedureInput(
                parcel_id=made["parcels"][-1], applicants=[{"party_id": str(party), "share": "1"}],
                registered_on=date(YEAR, 2, 1), reference=f"FEES-CC-{index}"), by=None, author=AUTHOR))


def test_twenty_concurrent_payments_and_one_rolled_back_leave_receipts_1_to_20(fresh_db, files):
    engine = make_engine(fresh_db.db_url, pool_size=THREADS + 1, application_name="sifc-tests-receipts")
    start = threading.Barrier(THREADS + 1)
    taken = threading.Event()

    def pay(index: int, *, roll_back: bool = False) -> int | None:
        start.wait()
        data = service.PaymentInput(procedure_id=files["procedures"][index % 3], amount=1000 + index,
                                    method="cash", paid_on=PAID_ON)
        if not roll_back:
            taken.wait(10)  # the rolled-back payment takes its number first, then the others queue behind it
            with transaction(engine) as session:
                return int(service.pay(session, data=data, by=None, author=AUTHOR)["receipt_number"])
        factory_session = transaction(engine)
        session = factory_session.__enter__()
        try:
            number = service.pay(session, data=data, by=None, author=AUTHOR)["receipt_number"]
            taken.set()
            threading.Event().wait(0.5)  # hold the counter row while the others wait for it
            raise RuntimeError(f"rolled back with receipt {number}")
        except RuntimeError as error:
            factory_session.__exit__(type(error), error, error.__traceback__)
            return None

    try:
        with ThreadPoolExecutor(THREADS + 1) as pool:
            rolled = pool.submit(pay, 99, roll_back=True)
            futures = [pool.submit(pay, index) for index in range(THREADS)]
            numbers = sorted(future.result(timeout=120) for future in futures)
            assert rolled.result(timeout=120) is None
    finally:
        engine.dispose()
    assert numbers == list(range(1, THREADS + 1))
    reader = make_engine(fresh_db.db_url, pool_size=1)
    try:
        with transaction(reader) as session:
            stored = session.execute(text("""
                SELECT receipt_number FROM payment WHERE commune_code = :c AND receipt_year = :y ORDER BY 1"""),
                {"c": SANDIARA, "y": YEAR}).scalars().all()
            last = session.execute(text("SELECT last_number FROM receipt_counter WHERE commune_code = :c AND year = :y"),
                                   {"c": SANDIARA, "y": YEAR}).scalar()
    finally:
        reader.dispose()
    assert stored == list(range(1, THREADS + 1)) and last == THREADS
    assert len({uuid.UUID(p) for p in files["procedures"]}) == 3
