"""Property-based tests of the spatial questions and OGC API - Features, generated from the OpenAPI documents.

Schemathesis reads the running server's documents (``/openapi.json``, OpenAPI 3.1, and ``/ogc/api``,
the OpenAPI 3.0 ``service-desc`` of ``/ogc``), generates valid and invalid requests for each
operation and checks every answer: never a server error, only documented status codes and content
types, bodies that match their documented schemas. Half of the path parameters are replaced by
codes and ids that exist in the demo data, so the generated queries reach the spatial SQL rather
than stopping at a 404.

Examples are bounded and derandomized: the file runs in about a minute and a failure reproduces.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.helpers import SIFC, free_port, get, run_cli, start_server

# The issue-5 operations of the whole service's document.
SPATIAL_PATHS = (r"^/(parcels/(at|in-bbox|intersecting|near|nearest|\{parcel_id\}/neighbours)"
                 r"|communes/\{code\}/(overlaps|boundary-issues|gaps)|stats/|ogc)")


@schemathesis.check
def documented_content_type(ctx, response, case):  # noqa: ANN001, ANN201 (schemathesis check)
    """``content_type_conformance``, except for uvicorn's own refusal of a request line past its size limit.

    That 400 (``Invalid HTTP request received.``, text/plain) comes from the HTTP server before the
    application sees anything; generated CQL2 filters of 20,000 multibyte characters reach it.
    """
    if response.status_code == 400 and response.text == "Invalid HTTP request received.":
        return None
    return content_type_conformance(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, documented_content_type, response_schema_conformance]
# Not checked: `positive_data_acceptance`. The domain refuses values a schema cannot express (a bbox
# text of four ordered numbers, a point outside Senegal for `nearest`, a CQL2 filter that does not parse),
# always with a documented problem.
EXAMPLES = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def server(fresh_db, tmp_path_factory):
    assert run_cli(fresh_db, "demo", "load").returncode == 0
    log = tmp_path_factory.mktemp("schemathesis") / "server.log"
    port = free_port()
    process = start_server(fresh_db, port, log)
    yield f"http://127.0.0.1:{port}", log
    process.terminate()
    process.wait(timeout=30)


def _json(url: str) -> dict:
    status, _, body = get(url)
    assert status == 200, (url, body[:300])
    return json.loads(body)


@pytest.fixture(scope="module")
def known(server) -> dict[str, list[dict[str, str]]]:
    """Path parameters that exist in the demo data, by the sorted names of an operation's parameters."""
    base, _ = server
    parcel = _json(f"{base}/parcels/at?lon=-17.2283&lat=14.6933")["features"][0]["id"]
    where = _json(f"{base}/locate?lon=-17.2283&lat=14.6933")
    communes = ["SN0104-bargny", "SN1301-sandiara", "SN1303-mont-rolland"]
    return {
        "code": [{"code": c} for c in communes],
        "code,level": [{"level": "commune", "code": communes[0]},
                       {"level": "department", "code": where["department"]["code"]},
                       {"level": "pole", "code": where["pole"]["code"]}],
        "parcel_id": [{"parcel_id": parcel}],
        "collection_id": [{"collection_id": c} for c in
                          ("poles", "regions", "departments", "arrondissements", "communes", "parcels")],
        "collection_id,feature_id": [{"collection_id": "parcels", "feature_id": parcel},
                                     {"collection_id": "communes", "feature_id": communes[0]},
                                     {"collection_id": "departments", "feature_id": where["department"]["code"]}],
    }


def _strategy(operation, known: dict[str, list[dict[str, str]]]) -> st.SearchStrategy:
    """Valid and invalid requests, and valid ones on path parameters that exist."""
    generated = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    names = sorted(p.name for p in operation.path_parameters)
    real = [operation.as_strategy(GenerationMode.POSITIVE, path_parameters=values)
            for values in known.get(",".join(names), [])]
    return st.one_of(*generated, *real)


def _run(url: str, known: dict[str, list[dict[str, str]]], path_regex: str | None = None,
         headers: dict[str, str] | None = None, examples: settings = EXAMPLES) -> list[str]:
    """Run the generated requests of every operation of the document at ``url``; the failures, described."""
    schema = schemathesis.openapi.from_url(url)
    if path_regex:
        schema = schema.include(path_regex=path_regex)
    failures, tested = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        @given(case=_strategy(operation, known))
        @examples
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS, headers=headers)

        try:
            check()
        except (Exception, BaseExceptionGroup) as error:  # a check failed (schemathesis raises FailureGroup,
            # a BaseExceptionGroup): keep going, report every operation at the end
            failures.append(f"{operation.label}: {error}")
    assert tested, f"no operation in {url}"
    return failures


def test_spatial_and_ogc_operations_answer_as_documented(server, known):
    failures = _run(f"{server[0]}/openapi.json", known, SPATIAL_PATHS)
    assert not failures, "\n\n".join(failures)


def test_ogc_openapi_30_operations_answer_as_documented(server, known):
    failures = _run(f"{server[0]}/ogc/api", known)
    assert not failures, "\n\n".join(failures)


def _admin_token(fresh_db, base: str) -> dict[str, str]:
    """A signed-in national administrator's access token (POST /auth/token), as a header."""
    from tests.conftest import env_for

    password = "schemathesis administrator"
    created = subprocess.run([*SIFC, "users", "create", "st.admin", "--role", "administrateur", "--password-stdin"],
                             input=f"{password}\n", env=env_for(fresh_db), capture_output=True, text=True,
                             timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    form = urllib.parse.urlencode({"username": "st.admin", "password": password}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/auth/token", data=form), timeout=30) as answer:
        return {"Authorization": f"Bearer {json.loads(answer.read())['access_token']}"}


def _job_id(base: str, headers: dict[str, str]) -> str:
    body = json.dumps({"type": "FeatureCollection", "features": []}).encode()
    request = urllib.request.Request(f"{base}/imports?filename=vide.geojson&dry_run=true", data=body,
                                     headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["id"]


def test_every_operation_with_an_administrator_token_answers_as_documented(server, known, fresh_db):
    """The whole API (writes, imports, exports, tiles, accounts) signed in as an administrator: no server error."""
    base = server[0]
    headers = _admin_token(fresh_db, base)
    everything = {**known, "job_id": [{"job_id": _job_id(base, headers)}],
                  "collection,x,y,z": [{"collection": "parcels", "z": 14, "x": 7599, "y": 7520},
                                       {"collection": "communes", "z": 8, "x": 117, "y": 118}]}
    bounded = settings(EXAMPLES, max_examples=12)
    failures = _run(f"{base}/openapi.json", everything, headers=headers, examples=bounded)
    assert not failures, "\n\n".join(failures)


def test_no_trace_in_the_server_log(server):
    # Runs after the generated tests of this module: an unexpected exception is logged with its trace.
    log: Path = server[1]
    assert "Traceback" not in log.read_text(errors="replace")
