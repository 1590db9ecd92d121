"""docker-compose.yml is valid Compose and agrees with the scripts' versions.

No Docker engine runs on CI machines, so the file is checked against the Compose
Specification's JSON schema (vendored by check-jsonschema) instead of being run.
"""

import json
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]


def _versions() -> dict[str, str]:
    lines = (REPO / "scripts" / "versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(_compose(), schema)


def test_compose_uses_the_versions_the_scripts_use():
    versions = _versions()
    compose = _compose()
    assert compose["services"]["db"]["image"] == versions["POSTGIS_IMAGE"]
    tag = versions["POSTGIS_IMAGE"].split(":")[1]
    assert tag.split("-")[0] == versions["POSTGRES_MAJOR"]
    assert tag.split("-")[1].split(".")[0] == versions["POSTGIS_MAJOR"]
    assert compose["services"]["api"]["build"]["args"]["PYTHON_IMAGE"] == versions["PYTHON_IMAGE"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG PYTHON_IMAGE={versions['PYTHON_IMAGE']}" in dockerfile


def test_compose_api_runs_the_same_commands_as_make_run():
    command = " ".join(_compose()["services"]["api"]["command"])
    run = (REPO / "scripts" / "run.sh").read_text()
    for step in ("sifc db provision", "sifc territories load", "sifc demo load", "sifc serve"):
        assert step in command
        assert step.replace("sifc ", ".venv/bin/sifc ") in run
