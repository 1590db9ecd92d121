"""The hand-written permission policy (``data/policy.yaml``): route × role → allowed.

Read by the tests that hold the service to it; the service itself enforces permissions in its
routes, so that the file stays an independent statement of intent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from sifc.auth.principal import ALL_ROLES
from sifc.settings import REPO_DATA_DIR

POLICY_FILE = REPO_DATA_DIR / "policy.yaml"
SCOPES = ("commune", "parcel", "borne", "job", "national")


@dataclass(frozen=True)
class RoutePolicy:
    """What the policy says of one route."""

    method: str
    path: str
    allow: frozenset[str]
    scope: str | None = None
    personal: frozenset[str] = frozenset()
    limit: str | None = None


def load(path: Path = POLICY_FILE) -> dict[tuple[str, str], RoutePolicy]:
    """The policy, keyed by ``(METHOD, /path)``; a malformed file raises ``ValueError``."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if tuple(document.get("roles", ())) != ALL_ROLES:
        raise ValueError(f"policy roles must be {ALL_ROLES}")
    routes: dict[tuple[str, str], RoutePolicy] = {}
    for key, entry in document["routes"].items():
        method, _, route = key.partition(" ")
        allow = frozenset(entry.get("allow") or ())
        personal = frozenset(entry.get("personal") or ())
        unknown = (allow | personal) - set(ALL_ROLES)
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not route.startswith("/") or unknown:
            raise ValueError(f"policy entry {key!r}: bad method, path or roles {sorted(unknown)}")
        if entry.get("scope") not in (None, *SCOPES):
            raise ValueError(f"policy entry {key!r}: scope must be one of {SCOPES}")
        routes[(method, route)] = RoutePolicy(method, route, allow, entry.get("scope"), personal, entry.get("limit"))
    return routes
