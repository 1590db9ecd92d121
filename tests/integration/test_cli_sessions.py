"""``sifc session``: its refusals are one French line (the domain's message), and nothing is written.

The happy path of a session runs through the same services as the API (tests/integration/test_sessions.py);
here, the console's face: an unknown session, a kind that does not exist, a deliberation of an unknown session.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from typer.testing import CliRunner

from cli import app

BARGNY = "SN0104-bargny"


def _refused(args: list[str]) -> str:
    done = CliRunner().invoke(app, ["--lang", "fr", *args])
    assert done.exit_code != 0, done.output
    assert isinstance(done.exception, Exception) and hasattr(done.exception, "message"), done.exception
    return str(done.exception.message("fr"))


def test_the_command_line_refuses_in_one_french_line(settings, admin_engine):
    unknown = str(uuid.uuid4())
    assert unknown in _refused(["session", "show", unknown])
    assert "Type de session" in _refused(["session", "create", "--commune", BARGNY, "--kind", "assemblee"])
    assert unknown in _refused(["session", "deliberate", unknown, "--number", "DEL-1", "--source", unknown,
                                "--decision", f"{unknown}:granted"])
    with admin_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM council_session WHERE kind NOT IN "
                                 "('commission_domaniale', 'conseil_municipal')")).scalar() == 0


def test_the_command_line_lists_a_communes_sessions(settings):
    done = CliRunner().invoke(app, ["--lang", "fr", "session", "list", "--commune", BARGNY],
                              env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "Délibération" in done.output
