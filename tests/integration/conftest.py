"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.conftest import api_key

BARGNY = "SN0104-bargny"


@pytest.fixture
def officer(db) -> dict[str, str]:
    """An agent foncier of Bargny (API key)."""
    return {"X-API-Key": api_key(db, role="agent_foncier", scope=(f"commune:{BARGNY}",), name="agent bargny")}
