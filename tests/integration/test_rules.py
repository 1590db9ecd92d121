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
