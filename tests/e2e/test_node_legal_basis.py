"""``sifc node init --personal national`` needs ``--legal-basis`` (the CDP formality's reference), and
``sifc node status`` shows it; on a database of its own, since the command commits and publishes."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from tests.conftest import env_for
from tests.e2e.helpers import run_cli

BASIS = "CDP, récépissé de déclaration n° 0000/TEST (synthétique)"
INIT = ("node", "init", "--role", "national", "--url", "http://127.0.0.1:9", "--node-id", "national")


def _node_row(settings: Settings) -> tuple[str, str, str | None]:
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT role, personal, legal_basis FROM sifc_node")).one()
    engine.dispose()
    return row.role, row.personal, row.legal_basis


def test_the_national_policy_without_a_legal_basis_is_refused_in_one_line(fresh_db: Settings) -> None:
    for extra in (("--personal", "national"), ("--personal", "national", "--legal-basis", "  ")):
        done = run_cli(fresh_db, *INIT, *extra)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert "--legal-basis" in lines[0] and "Traceback" not in done.stderr + done.stdout
        assert "loi n° 2008-12" in lines[0] and "décret n° 2008-721" in lines[0]
    assert _node_row(fresh_db) == ("single", "pole", None)


def test_the_legal_basis_is_kept_and_shown_by_sifc_node_status(fresh_db: Settings) -> None:
    env = {**env_for(fresh_db), "COLUMNS": "200"}
    done = run_cli(fresh_db, *INIT, "--personal", "national", "--legal-basis", f" {BASIS} ", env=env)
    assert done.returncode == 0, done.stderr
    assert BASIS in done.stdout
    assert _node_row(fresh_db) == ("national", "national", BASIS)
    shown = run_cli(fresh_db, "node", "status", "--no-probe", env=env)
    assert shown.returncode == 0 and "national" in shown.stdout and BASIS in shown.stdout, shown.stdout
    status = json.loads(run_cli(fresh_db, "node", "status", "--json", "--no-probe", env=env).stdout)
    assert (status["personal"], status["legal_basis"]) == ("national", BASIS)

    done = run_cli(fresh_db, *INIT, env=env)  # back to the default: personal data stay at the poles
    assert done.returncode == 0, done.stderr
    assert _node_row(fresh_db) == ("national", "pole", None)
    assert json.loads(run_cli(fresh_db, "node", "status", "--json", "--no-probe", env=env).stdout)["legal_basis"] is None
