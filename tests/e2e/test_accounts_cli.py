"""Accounts change on the owner's URL only: ``sifc users set-role``, and the service's URL refused."""

from __future__ import annotations

import subprocess

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.conftest import REPO, env_for
from tests.e2e.helpers import SIFC

PASSWORD = "un mot de passe assez long"


def cli(settings, *args: str, stdin: str = "", env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIFC, *args], cwd=REPO, env=env or env_for(settings), input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_role_changes_on_the_owner_url_and_is_journaled(fresh_db):
    done = cli(fresh_db, "users", "create", "agent.bargny", "--role", "agent_foncier", "--scope",
               "commune:SN0104-bargny", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    done = cli(fresh_db, "users", "set-role", "agent.bargny", "lecteur", "--scope", "department:SN0104")
    assert done.returncode == 0, done.stderr
    assert "Compte « agent.bargny » : lecteur, périmètre department:SN0104." in done.stdout

    # The same command with the service's URL as the owner's: the database refuses, in one line.
    env = env_for(fresh_db)
    env["SIFC_ADMIN_DATABASE_URL"] = env["SIFC_DATABASE_URL"]
    refused = cli(fresh_db, "users", "set-role", "agent.bargny", "administrateur", env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stdout + refused.stderr
    assert "Modification de compte refusée" in refused.stderr

    engine = create_engine(fresh_db.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        role = conn.execute(text("SELECT role FROM app_user WHERE username = 'agent.bargny'")).scalar()
        journal = conn.execute(text("""
            SELECT actor_kind, operation, before ->> 'role', after ->> 'role' FROM write_audit
            WHERE object_kind = 'app_user' ORDER BY id""")).all()
    engine.dispose()
    assert role == "lecteur"
    assert [tuple(row) for row in journal] == [("cli", "account.create", None, "agent_foncier"),
                                               ("cli", "account.role", "agent_foncier", "lecteur")]
