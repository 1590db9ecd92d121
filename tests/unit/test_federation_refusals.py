"""The refusal of a write into another node's commune, and the national node's data-age header, without a database."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from api.middleware import data_age_value
from api.problems import problem
from sifc.errors import NotOwner
from sifc.federation.directory import refused_commune


def guard_error(detail: str | None, message: str = "commune SN0104-bargny is not owned by this node",
                sqlstate: str = "SF403") -> SimpleNamespace:
    """What SQLAlchemy raises for the guard: the driver's error as ``orig``, with its sqlstate and diagnostics."""
    diag = SimpleNamespace(message_detail=detail, message_primary=message)
    return SimpleNamespace(orig=SimpleNamespace(sqlstate=sqlstate, diag=diag))


@pytest.mark.parametrize(("error", "commune"), [
    (guard_error("SN0104-bargny"), "SN0104-bargny"),
    (guard_error(None), "SN0104-bargny"),  # no DETAIL: the message names it
    (guard_error(None, message="refused"), ""),
    (guard_error("SN0104-bargny", sqlstate="23505"), None),  # any other error is not a refusal
    (ValueError("x"), None),
])
def test_the_guards_refusal_is_recognised_by_its_sqlstate(error, commune):
    assert refused_commune(error) == commune


def test_not_owner_names_the_owner_in_both_languages():
    known = NotOwner(commune="SN1301-sandiara", owner_node="thies", owner_url="https://thies.example")
    assert known.status == 403 and known.key == "federation.not-owner"
    assert "« thies »" in known.message("fr") and "https://thies.example" in known.message("fr")
    assert known.message("en").startswith("Commune SN1301-sandiara is owned by node 'thies'")
    assert str(known) == known.message("en")
    unknown = NotOwner(commune="SN1301-sandiara")
    assert unknown.extensions == {"commune": "SN1301-sandiara", "owner_node": None, "owner_url": None}
    assert "annuaire" in unknown.message("fr") and "directory" in unknown.message("en")


def test_extension_members_never_replace_a_standard_one():
    response = problem(403, key="federation.not-owner", detail="d", lang="fr", instance="/parcels",
                       title="Commune gérée par un autre nœud",
                       extensions={"commune": "SN0104-bargny", "status": 200, "owner_url": None})
    body = orjson.loads(response.body)
    assert body["status"] == 403 and body["commune"] == "SN0104-bargny" and body["owner_url"] is None
    assert body["title"] == "Commune gérée par un autre nœud"


def test_the_data_age_header_lists_each_pole():
    assert data_age_value({"thies": 12.7, "dakar": 3.2, "sud": None}) == "dakar=3, sud=unknown, thies=12"
    assert data_age_value({"dakar": 3.2}, elapsed=1.5) == "dakar=4"
    assert data_age_value({}) == ""


def test_concurrent_requests_at_the_national_node_share_one_read_of_the_ages(monkeypatch):
    """While the directory is being read, the other requests answer with the ages read before (no pile of reads)."""
    import asyncio
    import threading
    import time as clock

    from api import middleware

    calls = []
    gate = threading.Lock()

    def slow_read(factory):
        with gate:
            calls.append(factory)
        clock.sleep(0.2)
        return {"thies": 5.0}

    monkeypatch.setattr(middleware, "_national_ages", slow_read)
    age = middleware.DataAge(app=None)  # type: ignore[arg-type]
    app = SimpleNamespace(state=SimpleNamespace(sessionmaker=object()))

    async def many() -> list[str | None]:
        return await asyncio.gather(*(age._value(app) for _ in range(20)))

    values = asyncio.run(many())
    assert len(calls) == 1
    assert values.count("thies=5") >= 1
