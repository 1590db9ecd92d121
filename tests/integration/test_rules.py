"""Commune settings, dated and sourced (ADR 0005 §1, migration 0018)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sifc.auth.principal import Principal, ScopeEntry
from sifc.errors import Conflict, Forbidden, InvalidInput, NotFound
from sifc.rules import defaults, keys
from sifc.rules import service as rules
from tests.helpers_rules import set_rules

BARGNY = "SN0104-bargny"
SANDIARA = "SN1301-sandiara"
MISSIRAH = "SN1204-missirah"  # no commune row in the test database (the pilots have the demo's)


def _officer(*communes: str) -> Principal:
    return Principal(kind="user", role="agent_foncier", name="agent.test",
                     scope=tuple(ScopeEntry("commune", c) for c in communes), communes=frozenset(communes))


def test_the_commune_row_in_force_is_the_latest_valid_from_not_after_the_date(db):
    set_rules(db, BARGNY, on=date(2021, 1, 1), display_days=15)
    set_rules(db, BARGNY, on=date(2023, 1, 1), display_days=30)
    assert rules.maybe_in_force(db, commune_code=BARGNY, key="display_days", on=date(2020, 12, 31)) is None
    assert rules.in_force(db, commune_code=BARGNY, key="display_days", on=date(2022, 6, 1)) == 15
    assert rules.in_force(db, commune_code=BARGNY, key="display_days", on=date(2023, 1, 1)) == 30
    # A correction: a new row with the same valid_from, recorded later, wins.
    set_rules(db, BARGNY, on=date(2023, 1, 1), display_days=21)
    assert rules.in_force(db, commune_code=BARGNY, key="display_days", on=date(2024, 1, 1)) == 21
    assert rules.maybe_in_force(db, commune_code=MISSIRAH, key="display_days", on=date(2024, 1, 1)) is None


def test_a_missing_setting_refuses_naming_the_key_in_french(db):
    with pytest.raises(Conflict) as refused:
        rules.in_force(db, commune_code=MISSIRAH, key="claim_days", on=date(2024, 1, 1))
    assert refused.value.status == 409 and refused.value.key == "setting.missing"
    assert "« claim_days »" in refused.value.message("fr") and MISSIRAH in refused.value.message("fr")


def test_the_national_default_applies_from_its_date_and_cites_its_text(db):
    found = rules.resolve(db, commune_code=MISSIRAH, key="approval_thresholds_ha", on=date(2024, 1, 1))
    assert found is not None and found.origin == "default" and found.value == [10.0, 50.0]
    assert "72-1288" in (found.source or "") and found.docs_anchor
    before = rules.resolve(db, commune_code=MISSIRAH, key="approval_thresholds_ha", on=date(2020, 9, 15))
    assert before is not None and before.origin == "environment"  # before the 2020 text: no default
    set_rules(db, MISSIRAH, on=date(2024, 1, 1), approval_thresholds_ha=[5, 40])
    assert rules.in_force(db, commune_code=MISSIRAH, key="approval_thresholds_ha", on=date(2024, 2, 1)) == [5.0, 40.0]


def test_the_environment_is_a_fallback_for_its_two_keys_logged_unsourced(db, caplog):
    found = rules.resolve(db, commune_code=MISSIRAH, key="desaffectation_notice_days", on=date(2024, 1, 1))
    assert found is not None and found.origin == "environment" and isinstance(found.value, int)
    assert any("unsourced" in record.getMessage() for record in caplog.records)


def test_values_are_checked_against_their_schema_and_a_source_is_required(db):
    with pytest.raises(InvalidInput, match="approval_thresholds_ha"):
        set_rules(db, BARGNY, approval_thresholds_ha=[50, 10])
    with pytest.raises(InvalidInput):
        set_rules(db, BARGNY, receipt_mode="cheque")
    with pytest.raises(NotFound):
        set_rules(db, BARGNY, no_such_key=1)
    with pytest.raises(InvalidInput) as refused:
        rules.set(db, commune_code=BARGNY, key="display_days", value=10, valid_from=date(2024, 1, 1),
                  source="  ", by=None, author="tests")
    assert refused.value.key == "setting.source_required"
    assert db.execute(text("SELECT count(*) FROM commune_setting WHERE recorded_at = now()")).scalar() == 0


def test_writes_need_a_land_officer_in_scope_and_are_journalled(db):
    with pytest.raises(Forbidden):
        rules.set(db, commune_code=BARGNY, key="display_days", value=10, valid_from=date(2024, 1, 1),
                  source="Délibération n° 1", by=_officer(SANDIARA), author="agent.test")
    written = rules.set(db, commune_code=BARGNY, key="display_days", value=10, valid_from=date(2024, 1, 1),
                        source="Délibération n° 1", by=_officer(BARGNY), author="agent.test")
    assert written["value"] == 10 and "set_by" not in written
    journal = db.execute(text("SELECT operation FROM write_audit WHERE object_id = :id"),
                         {"id": written["id"]}).scalars().all()
    assert journal == ["setting.set"]


def test_history_names_the_author_only_to_a_reader_in_scope(db):
    set_rules(db, BARGNY, display_days=10)
    public = rules.history(db, commune_code=BARGNY, key="display_days", reader=None)
    assert public["commune"] and "set_by" not in public["commune"][0]
    officer = _officer(BARGNY)
    private = rules.history(db, commune_code=BARGNY, key="display_days", reader=officer)
    assert private["commune"][0]["set_by"] == "tests"
    assert db.execute(text("SELECT count(*) FROM access_audit WHERE subject_kind = 'commune_setting'")).scalar() == 1


def test_commune_settings_are_append_only(db):
    set_rules(db, BARGNY, display_days=10)
    with pytest.raises(DBAPIError, match="append-only|permission denied"), db.begin_nested():
        db.execute(text("UPDATE commune_setting SET value = '20'"))


def test_the_defaults_load_idempotently_and_every_default_is_cited(db, settings):
    assert defaults.load(db, settings.data_dir) == 0  # loaded with the reference already
    for entry in defaults.read(settings.data_dir / defaults.FILE):
        assert entry["source"] and entry["docs_anchor"].startswith("docs/commune-settings.md#")
        assert entry["key"] in keys.names()


def test_over_http_the_values_are_public_and_a_land_officer_sets_one(client, db, officer):
    body = {"value": 21, "valid_from": "2024-03-01", "source": "Délibération n° 2024-07 du 1er mars 2024"}
    assert client.post(f"/communes/{BARGNY}/settings/display_days", json=body).status_code == 401
    written = client.post(f"/communes/{BARGNY}/settings/display_days", headers=officer, json=body)
    assert written.status_code == 201, written.text
    assert client.post(f"/communes/{SANDIARA}/settings/display_days", headers=officer, json=body).status_code == 403
    bad = client.post(f"/communes/{BARGNY}/settings/display_days", headers=officer, json={**body, "value": "x"})
    assert bad.status_code == 422 and "display_days" in bad.json()["detail"]
    unknown = client.post(f"/communes/{BARGNY}/settings/no_such", headers=officer, json=body)
    assert unknown.status_code == 404
    found = client.get(f"/communes/{BARGNY}/settings", params={"on": "2024-06-01"}).json()
    by_key = {row["key"]: row for row in found["settings"]}
    assert set(by_key) == set(keys.names())
    assert by_key["display_days"]["value"] == 21 and by_key["display_days"]["origin"] == "commune"
    assert by_key["display_days"]["source"].startswith("Délibération n° 2024-07")
    assert by_key["display_days"]["schema"]["type"] == "integer"
    unset = {row["key"]: row for row in client.get(f"/communes/{MISSIRAH}/settings").json()["settings"]}
    assert unset["claim_days"]["origin"] == "none" and unset["claim_days"]["value"] is None
    assert "agent bargny" not in client.get(f"/communes/{BARGNY}/settings").text
    public = client.get(f"/communes/{BARGNY}/settings/display_days/history").json()
    assert public["commune"][-1]["set_by"] is None
    private = client.get(f"/communes/{BARGNY}/settings/display_days/history", headers=officer).json()
    assert private["commune"][-1]["set_by"].endswith("agent bargny")
    assert client.get("/communes/SN0000-x/settings").status_code == 404


def test_a_procedure_step_refuses_when_its_documents_are_not_configured(db):
    from sifc.tenure import procedures

    with pytest.raises(Conflict) as refused:
        procedures._required_sources(db, kind="affectation", step="surveyed", commune_code=MISSIRAH,
                                     on=date(2024, 1, 1))
    assert refused.value.params["key"] == "required_sources"
    assert procedures._required_sources(db, kind="affectation", step="surveyed", commune_code=BARGNY,
                                        on=date(2024, 1, 1)) == ["proces_verbal"]


def test_carry_over_writes_the_legacy_values_once_citing_a_source_to_replace(db, settings):
    from sifc.rules import carry_over

    written = carry_over.carry_over(db, settings=settings, communes=[MISSIRAH], by=None, author="tests")
    carried = {row["key"]: row for row in written}
    assert set(carried) <= {"approval_thresholds_ha", "desaffectation_notice_days", "required_sources"}
    assert "desaffectation_notice_days" in carried and "required_sources" in carried
    assert all(row["source"].startswith("reprise de SIFC_") and "(source à citer)" in row["source"]
               for row in written)
    if settings.approval_thresholds_ha == (10.0, 50.0):
        assert "approval_thresholds_ha" not in carried  # the cited national default already says it
    assert carry_over.carry_over(db, settings=settings, communes=[MISSIRAH], by=None, author="tests") == []
    assert rules.in_force(db, commune_code=MISSIRAH, key="required_sources", on=date(2024, 1, 1))[
        "affectation"]["approved"] == ["approbation"]
