"""The public tracking page (web/src/pages/suivi.html) in a real browser, signed out.

A demo request of Bargny gets a new tracking code (as a reprinted récépissé would); an anonymous visitor types
the file number and the code and reads the steps and their dates, nothing personal; a wrong code says so in one
line. Same browser and helpers as ``test_web_map.py``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from sifc.db import make_engine, transaction
from sifc.settings import Settings
from sifc.tracking import codes
from tests.conftest import REPO
from tests.e2e.helpers import free_port, get, run_cli, start_server
from tests.e2e.slow_clients import test_web_map as web_map

browser_context = web_map.browser_context
_watched = web_map._watched


@pytest.fixture(scope="module")
def tracked(fresh_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    built = subprocess.run(["bash", "scripts/web.sh"], cwd=REPO, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=600, check=False)
    assert built.returncode == 0, built.stderr
    loaded = run_cli(fresh_db, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    engine = make_engine(fresh_db.db_url)
    with transaction(engine) as session:
        row = session.execute(text("""
            SELECT p.id, p.reference, (SELECT count(*) FROM procedure_step s WHERE s.procedure_id = p.id) AS steps,
                   (SELECT v.name FROM party_version v WHERE v.valid_to IS NULL
                    AND v.party_id = (p.applicants -> 0 ->> 'party_id')::uuid) AS applicant
            FROM tenure_procedure p WHERE p.commune_code = 'SN0104-bargny' AND p.reference IS NOT NULL
            ORDER BY 3 DESC, p.reference LIMIT 1""")).mappings().one()
        code = codes.issue(session, procedure_id=str(row["id"]), by=None, author="tests")
    engine.dispose()
    port = free_port()
    process = start_server(fresh_db, port, tmp_path_factory.mktemp("tracking") / "server.log")
    yield {"server": f"http://127.0.0.1:{port}", "reference": row["reference"], "code": code, "id": str(row["id"]),
           "settings": fresh_db,
           "applicant": row["applicant"], "steps": str(row["steps"])}
    process.terminate()
    process.wait(timeout=30)


def test_an_anonymous_visitor_reads_the_steps_and_dates_of_a_file(browser_context, tracked):
    server = tracked["server"]
    with _watched(browser_context, server) as page:
        page.goto(f"{server}/app/pages/suivi.html?dossier={tracked['reference']}")
        page.evaluate("sessionStorage.clear(); localStorage.clear()")
        page.reload()
        page.wait_for_function("() => document.getElementById('file-number').value !== ''")
        assert page.input_value("#file-number") == tracked["reference"]
        page.fill("#code", tracked["code"].lower())
        page.click("#track button[type=submit]")
        page.wait_for_selector("#result:not([hidden])")
        rows = page.locator("#steps tr")
        assert rows.count() == int(tracked["steps"])
        assert "Demande enregistrée" in rows.nth(0).inner_text()
        assert "Bargny" in page.inner_text("#commune")
        shown = page.inner_text("main")
        assert tracked["applicant"] and tracked["applicant"] not in shown

        page.fill("#code", "AAAA-BBBB-CCCC-DDDD")
        page.click("#track button[type=submit]")
        page.wait_for_selector("#message[role=alert]")
        assert "récépissé" in page.inner_text("#message")
        assert page.locator("#result").is_hidden()

        page.click("#lang")
        page.fill("#code", tracked["code"])
        page.click("#track button[type=submit]")
        page.wait_for_selector("#result:not([hidden])")
        assert "Request registered" in page.inner_text("#steps")


def test_the_console_prints_a_recepisse_with_a_new_code_and_lists_overdue_files(tracked, tmp_path):
    settings, server = tracked["settings"], tracked["server"]
    target = tmp_path / "recepisse.pdf"
    printed = run_cli(settings, "tracking", "recepisse", tracked["id"], "--out", str(target))
    assert printed.returncode == 0, printed.stderr
    code = printed.stdout.strip().rsplit(" ", 1)[-1]
    assert target.read_bytes().startswith(b"%PDF-") and len(code.replace("-", "")) == 16
    assert get(f"{server}/suivi/{tracked['reference']}/{code}")[0] == 200
    assert get(f"{server}/suivi/{tracked['reference']}/{tracked['code']}")[0] == 404  # the earlier code, revoked
    listed = run_cli(settings, "tracking", "overdue", "SN0104-bargny")
    assert listed.returncode == 0, listed.stderr
    unknown = run_cli(settings, "tracking", "overdue", "SN9999-nulle-part")
    assert unknown.returncode != 0 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr
