"""The ``sifc`` command line, end to end, on a database of its own."""

import pytest

from tests.conftest import TABLES, env_for, shared_path
from tests.e2e.helpers import fingerprints, run_cli

pytestmark = pytest.mark.e2e


def _fingerprints(settings):
    return fingerprints(settings, TABLES)


def _assert_one_clean_line(done):
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, done.stderr  # one message, wrapped at most by the terminal


def test_loading_twice_gives_the_same_database(fresh_db):
    first = run_cli(fresh_db, "territories", "load")
    assert first.returncode == 0, first.stderr
    before = _fingerprints(fresh_db)
    second = run_cli(fresh_db, "territories", "load")
    assert second.returncode == 0, second.stderr
    assert "Aucun changement" in second.stdout
    assert _fingerprints(fresh_db) == before


def test_load_reports_repairs(fresh_db):
    done = run_cli(fresh_db, "--lang", "en", "territories", "load")
    assert "Repaired: region SN13 (Thiès)" in done.stdout
    assert "Source defect: arrondissement SN010404" in done.stdout


def test_missing_file_is_one_line_and_exit_2(fresh_db):
    done = run_cli(fresh_db, "territories", "import-communes", "/nonexistent/communes.gpkg")
    _assert_one_clean_line(done)
    assert done.returncode == 2
    assert "Fichier introuvable : /nonexistent/communes.gpkg" in done.stderr


def test_messages_in_english_on_request(fresh_db):
    done = run_cli(fresh_db, "--lang", "en", "territories", "import-communes", "/nonexistent.gpkg")
    assert "File not found: /nonexistent.gpkg" in done.stderr


def test_unreachable_database_is_one_line(fresh_db):
    env = env_for(fresh_db)
    env["SIFC_DATABASE_URL"] = "postgresql://sifc_app@127.0.0.1:1/nowhere"
    done = run_cli(fresh_db, "territories", "load", env=env)
    _assert_one_clean_line(done)
    assert "injoignable" in done.stderr


def test_strict_refusal_and_dry_run_change_nothing(fresh_db, tmp_path):
    path = shared_path("cadastre", "procasef_boundou", "procasef_boundou_17_communes.gpkg")
    before = _fingerprints(fresh_db)
    strict = run_cli(fresh_db, "territories", "import-communes", str(path), "--strict")
    _assert_one_clean_line(strict)
    assert "DINDEFELLO" in strict.stderr and "Rien n'a été modifié" in strict.stderr
    assert _fingerprints(fresh_db) == before
    dry = run_cli(fresh_db, "territories", "import-communes", str(path), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "13 remplacée(s)" in dry.stdout and "simulation" in dry.stdout
    assert _fingerprints(fresh_db) == before


def test_import_with_aliases_then_locate(fresh_db, tmp_path):
    path = shared_path("cadastre", "procasef_boundou", "procasef_boundou_17_communes.gpkg")
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("FONGOLEMBI,Fongolimbi\nTOMBORONKOTO,Tomboroncoto\nSABODALA,Sabadola\n"
                       "DINDEFELLO,Dindéfélo\n", encoding="utf-8")
    report = tmp_path / "report.json"
    done = run_cli(fresh_db, "territories", "import-communes", str(path), "--code-field",
                   "COD_ENTITE", "--aliases", str(aliases), "--report", str(report))
    assert done.returncode == 0, done.stderr
    assert "17 remplacée(s)" in done.stdout
    assert report.exists()
    again = run_cli(fresh_db, "territories", "import-communes", str(path), "--aliases", str(aliases))
    assert "0 remplacée(s), 17 inchangée(s)" in again.stdout
    # Reloading the provisional reference keeps the official boundaries.
    before = _fingerprints(fresh_db)
    reload = run_cli(fresh_db, "territories", "load")
    assert reload.returncode == 0 and "Aucun changement" in reload.stdout
    assert _fingerprints(fresh_db) == before
