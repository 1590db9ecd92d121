"""``sifc admin subject``: a subject access request from the command line, logged as the operator's."""

from __future__ import annotations

import json
import subprocess

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from tests.conftest import REPO, env_for
from tests.e2e.helpers import SIFC, run_cli


@pytest.fixture(scope="module")
def awa(fresh_db: Settings) -> Settings:
    done = subprocess.run([*SIFC, "users", "create", "awa.diop", "--role", "lecteur", "--scope",
                           "commune:SN0104-bargny", "--password-stdin"], cwd=REPO, env=env_for(fresh_db),
                          input="un mot de passe assez long\n", capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    return fresh_db


def test_the_report_in_json_and_the_read_in_the_log(awa: Settings) -> None:
    done = run_cli(awa, "admin", "subject", "awa.diop", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    account = next(source for source in report["sources"] if source["name"] == "account")
    assert [row["username"] for row in account["rows"]] == ["awa.diop"]
    assert "argon2" not in done.stdout
    [read] = report["reads"]["rows"]
    assert read["actor_kind"] == "cli" and read["method"] == "CLI" and read["endpoint"] == "sifc admin subject"
    engine = create_engine(awa.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM access_audit WHERE actor_kind = 'cli' "
                                   "AND subject_kind = 'app_user'")).scalar()
    engine.dispose()
    assert logged == 1


def test_the_report_as_tables_in_both_languages(awa: Settings) -> None:
    french = run_cli(awa, "admin", "subject", "awa.diop")
    assert french.returncode == 0, french.stderr
    assert "Personne : awa.diop" in french.stdout and "Qui a lu ses données" in french.stdout
    english = run_cli(awa, "--lang", "en", "admin", "subject", "nobody at all")
    assert english.returncode == 0, english.stderr
    assert "no account" in english.stdout


def test_a_blank_subject_is_one_line(awa: Settings) -> None:
    done = run_cli(awa, "admin", "subject", "   ")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Personne à rechercher invalide" in done.stderr
