"""Gender indicators (ADR 0005 §3): holders of current affectations by sex per commune, small counts withheld,
nothing published without the commune's threshold; a person's sex never in a public answer."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from sifc import dashboards
from sifc.db import act_as
from sifc.demo import load_demo
from sifc.localites import indicators
from sifc.tenure import parties
from tests.conftest import api_key
from tests.helpers_rules import set_rules

BARGNY = "SN0104-bargny"


@pytest.fixture
def holders(db) -> list[str]:
    """The demo's holders of current affectations in Bargny, the first ones recorded as women, then men."""
    assert load_demo(db) is not None
    found = db.execute(text("""
        SELECT DISTINCT h.party_id::text FROM rrr_version v JOIN rrr_holder h ON h.rrr_id = v.rrr_id
                                                          AND h.version = v.version
        JOIN party_version p ON p.party_id = h.party_id AND p.valid_to IS NULL AND p.kind = 'natural_person'
        WHERE v.valid_to IS NULL AND v.type = 'affectation' AND v.end_date IS NULL AND v.commune_code = :c
        ORDER BY 1"""), {"c": BARGNY}).scalars().all()
    assert len(found) >= 3, found
    return list(found)


def _set_sex(db, party_id: str, sex: str | None) -> None:
    act_as(db, "tests")  # a version is closed in the name of the transaction's actor
    parties.update(db, party_id=party_id, data=parties.PartyInput({"sex": sex}, reason="recensement"),
                   expected_version=None, by=None, author="tests")


def _expected(db) -> dict[str, int]:
    row = db.execute(text(indicators.COUNTS), {"communes": [BARGNY]}).mappings().one()
    return {k: int(row[k]) for k in ("holders", "women", "men", "unrecorded", "entities")}


def test_without_the_threshold_nothing_is_published_and_the_row_says_why(db, holders):
    _set_sex(db, holders[0], "F")
    [row] = indicators.refresh(db, communes=[BARGNY], by=None, author="tests")
    assert row["withheld"] == "setting_missing" and row["women"] is None and row["min_count"] is None
    assert row["holders"] == _expected(db)["holders"]


def test_counts_at_or_above_the_threshold_are_published_and_small_ones_withheld(db, holders):
    women, men = holders[: len(holders) // 2], holders[len(holders) // 2:]
    for party in women:
        _set_sex(db, party, "F")
    for party in men:
        _set_sex(db, party, "M")
    expected = _expected(db)
    set_rules(db, BARGNY, gender_min_count=1)
    [row] = indicators.refresh(db, communes=[BARGNY], by=None, author="tests")
    assert row["withheld"] is None
    assert (row["women"], row["men"], row["unrecorded"]) == (expected["women"], expected["men"],
                                                             expected["unrecorded"])
    assert expected["women"] == len(women) and expected["men"] == len(men)
    summary = dashboards.get(db, level="commune", code=BARGNY)["gender"]
    assert summary["total"]["women_share"] == round(len(women) / len(holders), 4)

    # A threshold above the smaller count: the figures by sex are withheld, the total holders stay.
    set_rules(db, BARGNY, gender_min_count=min(len(women), len(men)) + 1)
    [again] = indicators.refresh(db, communes=[BARGNY], by=None, author="tests")
    assert again["withheld"] == "small_counts" and again["women"] is None and again["men"] is None
    assert db.execute(text("SELECT count(*) FROM tenure_indicator WHERE commune_code = :c"),
                      {"c": BARGNY}).scalar() == 1
    pole = db.execute(text("SELECT r.pole_code FROM commune c JOIN region r ON r.code = c.region_code "
                           "WHERE c.code = :c"), {"c": BARGNY}).scalar_one()
    shown = dashboards.get(db, level="pole", code=pole)
    assert shown["gender"]["total"]["women_share"] is None
    assert all(row["women_share"] is None for row in shown["communes"])


def test_a_persons_sex_is_personal(client, db, holders):
    officer = {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",))}
    made = client.post("/parties", headers=officer, json={"kind": "natural_person", "name": "Faye", "sex": "F",
                                                          "commune_code": BARGNY})
    assert made.status_code == 201, made.text
    assert made.json()["sex"] == "F"
    party = made.json()["id"]
    assert client.get(f"/parties/{party}").status_code == 401  # a party is personal through and through
    assert client.get(f"/parties/{party}", headers=officer).json()["sex"] == "F"
    refused = client.post("/parties", headers=officer, json={"kind": "group", "group_type": "famille",
                                                             "name": "Famille Faye", "sex": "F",
                                                             "commune_code": BARGNY})
    assert refused.status_code == 422
    # Public parameters naming it are refused, whatever the data.
    for name in ("sex", "sexe", "genre"):
        answer = client.get(f"/ogc/collections/parcels/items?{name}=F")
        assert answer.status_code == 400 and answer.json()["type"] == "urn:sifc:problem:personal.refused", name
    assert uuid.UUID(party)
