"""The hand-written permission policy (data/policy.yaml) covers exactly the routes of the API."""

from api.app import create_app
from sifc.auth import policy
from sifc.settings import Settings


def _routes() -> set[tuple[str, str]]:
    document = create_app(Settings(environment="test")).openapi()
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def test_every_route_of_the_openapi_document_is_in_the_policy_and_no_other():
    listed = set(policy.load())
    served = _routes()
    assert sorted(served - listed) == [], "routes without a decision in data/policy.yaml"
    assert sorted(listed - served) == [], "data/policy.yaml lists routes the API does not serve"


def test_the_policy_is_coherent():
    for (method, path), entry in policy.load().items():
        assert entry.allow, f"{method} {path}: nobody allowed"
        assert entry.personal <= entry.allow, f"{method} {path}: personal fields for roles not allowed"
        assert "public" not in entry.personal, f"{method} {path}: personal data to the public"
        if entry.scope:
            assert "public" not in entry.allow, f"{method} {path}: a scoped route cannot be public"
        if method != "GET" and "public" in entry.allow:
            # Reads whose input is posted: a geometry, a document to verify.
            assert path.startswith("/auth/") or path in ("/parcels/intersecting", "/documents/verify"), \
                f"{method} {path}: public write"
