"""An unexpected exception is a bug: it answers 500 with a problem+json body and is logged with its trace."""

import logging

from fastapi.testclient import TestClient

from api.app import create_app


def test_an_unexpected_exception_is_a_logged_500_problem(settings, caplog):
    app = create_app(settings)

    @app.get("/__boom")
    def boom() -> None:
        raise RuntimeError("boom: a bug, not the user's fault")

    with caplog.at_level(logging.ERROR, logger="sifc.api"), TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/__boom", headers={"Accept-Language": "en"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:sifc:problem:http.internal" and "boom" not in body["detail"]  # no internals leak
    record = next(r for r in caplog.records if r.name == "sifc.api" and "/__boom" in r.getMessage())
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError  # the trace is in the log
