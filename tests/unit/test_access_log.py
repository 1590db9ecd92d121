"""The access log never holds the name of a data subject."""

import logging

from api.access_log import PersonalDataFilter, redact


def test_subject_paths_and_audit_filters_are_redacted():
    assert redact("/admin/subjects/Awa%20Diop") == "/admin/subjects/***"
    assert redact("/admin/subjects/Awa%20Diop?limit=10") == "/admin/subjects/***?limit=10"
    assert redact("/admin/audit?subject=Awa+Diop&user=agent.bargny&limit=5") == (
        "/admin/audit?subject=***&user=***&limit=5")
    assert redact("/admin/audit") == "/admin/audit"
    assert redact("/admin/writes?actor=agent.bargny&object_kind=rrr") == "/admin/writes?actor=***&object_kind=rrr"


def test_uvicorn_access_records_are_rewritten_other_lines_kept():
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/admin/subjects/Awa%20Diop", "1.1", 200), None)
    assert PersonalDataFilter().filter(record) and "Awa" not in record.getMessage()
    kept = ("127.0.0.1:5000", "GET", "/ogc/collections/parcels/items?filter=nicad%3D%271%27", "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', kept, None)
    assert PersonalDataFilter().filter(record) and record.args == kept
