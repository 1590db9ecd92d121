"""The ``sifc`` command line on the PROCASEF Boundou communes of ``../shared/data``, end to end, on a
database of its own (the other commands are in tests/e2e/test_cli.py)."""

from tests.conftest import TABLES, shared_path
from tests.e2e.helpers import assert_one_clean_line, fingerprints, run_cli


def _fingerprints(settings):
    return fingerprints(settings, TABLES)


def test_strict_refusal_and_dry_run_change_nothing(fresh_db, tmp_path):
    path = shared_path("cadastre", "procasef_boundou", "procasef_boundou_17_communes.gpkg")
    before = _fingerprints(fresh_db)
    strict = run_cli(fresh_db, "territories", "import-communes", str(path), "--strict")
    assert_one_clean_line(strict)
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
