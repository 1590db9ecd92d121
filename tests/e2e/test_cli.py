"""The ``sifc`` command line, end to end, on a database of its own (on the Boundou communes of
``../shared/data``: tests/e2e/shared_data/test_cli_boundou.py)."""

from tests.conftest import TABLES, env_for
from tests.e2e.helpers import assert_one_clean_line, fingerprints, run_cli


def _fingerprints(settings):
    return fingerprints(settings, TABLES)


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
    assert_one_clean_line(done)
    assert done.returncode == 2
    assert "Fichier introuvable : /nonexistent/communes.gpkg" in done.stderr


def test_messages_in_english_on_request(fresh_db):
    done = run_cli(fresh_db, "--lang", "en", "territories", "import-communes", "/nonexistent.gpkg")
    assert "File not found: /nonexistent.gpkg" in done.stderr


def test_unreachable_database_is_one_line(fresh_db):
    env = env_for(fresh_db)
    env["SIFC_DATABASE_URL"] = "postgresql://sifc_app@127.0.0.1:1/nowhere"
    done = run_cli(fresh_db, "territories", "load", env=env)
    assert_one_clean_line(done)
    assert "injoignable" in done.stderr
