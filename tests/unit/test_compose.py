"""docker-compose.yml is valid Compose and agrees with the scripts' versions.

No Docker engine runs on CI machines, so the file is checked against the Compose
Specification's JSON schema (vendored by check-jsonschema) instead of being run.
"""

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from sifc.settings import Settings

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


# --- production profile: docker-compose.prod.yml and the proxy's template ----------------------

TEMPLATE = REPO / "deploy" / "nginx" / "sifc.conf.template"
REQUIRED = re.compile(r"^\$\{(SIFC_[A-Z_]+):\?[^}]+\}$")


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (``!reset`` empties what the base file set)."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: [] if isinstance(node, yaml.SequenceNode) else None)


def _production() -> dict:
    return yaml.load((REPO / "docker-compose.prod.yml").read_text(), Loader=_ComposeLoader)  # noqa: S506


def _required_variable(value: str) -> str | None:
    match = REQUIRED.match(value)
    return match.group(1) if match else None


def test_production_override_matches_the_compose_specification():
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    jsonschema.validate(_production(), json.loads(schema_file.read_text()))
    assert set(_production()["services"]) <= set(_compose()["services"]) | {"proxy"}


def test_production_has_no_default_secret():
    services = _production()["services"]
    api = services["api"]["environment"]
    assert api["SIFC_ENVIRONMENT"] == "production"
    assert _required_variable(api["SIFC_SECRET_KEY"]) == "SIFC_SECRET_KEY"
    assert _required_variable(services["db"]["environment"]["POSTGRES_PASSWORD"]) == "SIFC_DB_PASSWORD"
    for url, variable in ((api["SIFC_ADMIN_DATABASE_URL"], "SIFC_DB_PASSWORD"),
                          (api["SIFC_DATABASE_URL"], "SIFC_APP_DB_PASSWORD")):
        password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert _required_variable(password) == variable, url


def test_production_serves_only_through_the_proxy():
    services = _production()["services"]
    assert services["api"]["ports"] == [] and services["db"]["ports"] == []
    assert [port.split(":")[-1] for port in services["proxy"]["ports"]] == ["80", "443"]
    assert services["proxy"]["networks"] == ["edge"]  # the proxy never reaches the database
    command = " ".join(services["api"]["command"])
    assert "demo" not in command and "sifc db provision" in command and "sifc serve" in command


def test_the_api_writes_its_links_from_the_proxy_public_address():
    production = _production()
    public = production["services"]["api"]["environment"]["SIFC_PUBLIC_URL"]
    proxy = production["services"]["proxy"]["environment"]
    assert public == "https://${SIFC_SERVER_NAME:?set SIFC_SERVER_NAME}:${SIFC_PUBLIC_HTTPS_PORT:-443}"
    assert proxy["SIFC_SERVER_NAME"].startswith("${SIFC_SERVER_NAME") and "SIFC_PUBLIC_HTTPS_PORT" in proxy


def test_the_api_trusts_forwarded_headers_from_the_proxy_network_only():
    production = _production()
    subnet = production["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert production["services"]["api"]["environment"]["SIFC_FORWARDED_ALLOW_IPS"] == subnet
    assert production["services"]["proxy"]["image"] == _versions()["NGINX_IMAGE"]


def test_the_proxy_template_gets_every_variable_it_uses():
    used = set(re.findall(r"\$\{(SIFC_[A-Z_]+)\}", TEMPLATE.read_text()))
    environment = _production()["services"]["proxy"]["environment"]
    assert used == {name for name in environment if name.startswith("SIFC_")}
    assert environment["NGINX_ENVSUBST_FILTER"] == "^SIFC_"
    mounts = [volume.rsplit(":", 2)[1] for volume in _production()["services"]["proxy"]["volumes"]]
    assert "/etc/nginx/templates/default.conf.template" in mounts
    assert {environment["SIFC_TLS_CERT"], environment["SIFC_TLS_KEY"]} <= set(mounts)


def test_the_proxy_upload_limit_is_the_api_limit():
    services = _production()["services"]
    limit = services["api"]["environment"]["SIFC_MAX_UPLOAD_BYTES"]
    assert services["proxy"]["environment"]["SIFC_MAX_UPLOAD_BYTES"] == limit
    default = Settings.model_fields["max_upload_bytes"].default
    assert limit == f"${{SIFC_MAX_UPLOAD_BYTES:-{default}}}"
    assert "client_max_body_size ${SIFC_MAX_UPLOAD_BYTES};" in TEMPLATE.read_text()
