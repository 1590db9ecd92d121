"""Accounts and API keys from the command line, then used over real HTTP against ``sifc serve``."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import REPO, env_for
from tests.e2e.helpers import SIFC, free_port, run_cli, start_server

PASSWORD = "un mot de passe assez long"


def cli_with_input(settings, *args: str, stdin: str = "", env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SIFC, *args], cwd=REPO, env=env or env_for(settings), input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, done.stderr
    return done.stderr


def call(url: str, *, data: dict | None = None, body: dict | None = None, headers: dict | None = None):
    payload, all_headers = None, {"Accept-Language": "fr", **(headers or {})}
    if data is not None:
        payload = urllib.parse.urlencode(data).encode()
        all_headers["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        payload = json.dumps(body).encode()
        all_headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=payload, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(error.read())


def test_first_administrator_from_stdin_and_users_listed(fresh_db):
    done = cli_with_input(fresh_db, "users", "create", "Admin", "--role", "administrateur", "--password-stdin",
                          stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "Compte « admin » créé : administrateur, périmètre country:SN." in done.stdout
    assert PASSWORD not in done.stdout + done.stderr

    done = cli_with_input(fresh_db, "users", "create", "agent.bargny", "--role", "agent_foncier",
                          "--scope", "commune:SN0104-bargny", "--scope", "département:SN1301", "--password-stdin",
                          stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert "commune:SN0104-bargny, department:SN1301" in done.stdout

    listed = run_cli(fresh_db, "users", "list", env={**env_for(fresh_db), "COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    assert "admin" in listed.stdout and "agent.bargny" in listed.stdout and "actif" in listed.stdout
    assert "$argon2" not in listed.stdout


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("users", "create", "admin", "--role", "administrateur"), PASSWORD, "existe déjà"),
    (("users", "create", "court", "--role", "administrateur"), "court", "au moins 10 caractères"),
    (("users", "create", "x", "--role", "lecteur", "--scope", "commune:SN0104-bargny"), PASSWORD,
     "Identifiant « x » invalide"),
    (("users", "create", "sans.perimetre", "--role", "lecteur"), PASSWORD, "demande un périmètre"),
    (("users", "create", "mauvais.role", "--role", "chef"), PASSWORD, "Rôle « chef » inconnu"),
    (("users", "create", "loin", "--role", "lecteur", "--scope", "village:x"), PASSWORD, "Périmètre « village:x »"),
    (("users", "create", "loin", "--role", "lecteur", "--scope", "department:SN9999"), PASSWORD,
     "aucun(e) département de code « SN9999 »"),
    (("users", "disable", "personne"), "", "Aucun compte « personne »"),
    (("keys", "revoke", "0123456789"), "", "Aucune clé d'API de préfixe « 0123456789 »"),
    (("keys", "create", "--name", "app", "--expires", "hier"), "", "Date d'expiration « hier » invalide"),
])
def test_refusals_are_one_readable_line(fresh_db, args, stdin, message):
    extra = ("--password-stdin",) if args[:2] == ("users", "create") else ()
    if args[:3] == ("users", "create", "admin"):
        cli_with_input(fresh_db, *args, *extra, stdin=stdin + "\n")  # exists from now on
    done = cli_with_input(fresh_db, *args, *extra, stdin=stdin + "\n")
    assert message in assert_one_line_error(done)


def test_english_messages_on_request(fresh_db):
    done = cli_with_input(fresh_db, "--lang", "en", "users", "create", "short.pw", "--role", "administrateur",
                          "--password-stdin", stdin="short\n")
    assert "Password too short: at least 10 characters." in assert_one_line_error(done)


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_short_or_published_secret_refuses_to_serve(fresh_db, environment):
    env = {**env_for(fresh_db), "SIFC_ENVIRONMENT": environment, "SIFC_SECRET_KEY": "short"}
    done = cli_with_input(fresh_db, "serve", "--port", str(free_port()), env=env)
    assert "SIFC_SECRET_KEY doit être un secret aléatoire d'au moins 32 caractères" in assert_one_line_error(done)
    env["SIFC_SECRET_KEY"] = "SIFC_SECRET_KEY doit être un secret aléatoire"  # a string of the source
    done = cli_with_input(fresh_db, "serve", "--port", str(free_port()), env=env)
    assert "SIFC_SECRET_KEY figure dans un fichier publié du code source" in assert_one_line_error(done)


def test_a_malformed_base_layer_url_refuses_to_serve(fresh_db):
    env = {**env_for(fresh_db), "SIFC_BASEMAP_URL": "https://tiles.example.sn/{z}/{x}.png"}
    done = cli_with_input(fresh_db, "serve", "--port", str(free_port()), env=env)
    assert "SIFC_BASEMAP_URL doit être une adresse http(s) de tuiles XYZ contenant {z}, {x} et {y}" in \
        assert_one_line_error(done)


def test_tokens_and_keys_over_http(fresh_db, tmp_path):
    created = cli_with_input(fresh_db, "users", "create", "lecteur.thies", "--role", "lecteur",
                             "--scope", "region:SN13", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    key_done = run_cli(fresh_db, "keys", "create", "--name", "carte-sandiara", "--role", "lecteur",
                       "--scope", "commune:SN1301-sandiara", "--expires", "2099-01-01")
    assert key_done.returncode == 0, key_done.stderr
    key = key_done.stdout.strip()
    assert key.startswith("sifc_") and "plus jamais affichée" in key_done.stderr

    port = free_port()
    server = start_server(fresh_db, port, tmp_path / "server.log")
    base = f"http://127.0.0.1:{port}"
    try:
        status, headers, body = call(f"{base}/auth/token", data={"username": "lecteur.thies", "password": PASSWORD})
        assert status == 200, body
        assert headers["cache-control"] == "no-store"
        access, refresh = body["access_token"], body["refresh_token"]

        status, _, me = call(f"{base}/auth/me", headers={"Authorization": f"Bearer {access}"})
        assert status == 200 and me["role"] == "lecteur" and "SN1301-sandiara" in me["communes"]
        assert "SN0104-bargny" not in me["communes"]

        status, _, rotated = call(f"{base}/auth/refresh", body={"refresh_token": refresh})
        assert status == 200 and rotated["refresh_token"] != refresh
        status, _, problem = call(f"{base}/auth/refresh", body={"refresh_token": refresh})
        assert status == 401 and problem["type"] == "urn:sifc:problem:auth.refresh_reused"

        status, headers, problem = call(f"{base}/auth/me", headers={"Authorization": f"Bearer {access}x"})
        assert status == 401 and headers["content-type"].startswith("application/problem+json")
        assert headers["www-authenticate"].startswith("Bearer")

        status, _, me = call(f"{base}/auth/me", headers={"X-API-Key": key})
        assert status == 200 and me["kind"] == "api_key" and me["communes"] == ["SN1301-sandiara"]
        listed = run_cli(fresh_db, "keys", "list", env={**env_for(fresh_db), "COLUMNS": "200"})
        assert "carte-sandiara" in listed.stdout and key.split("_")[2] not in listed.stdout
        prefix = key.split("_")[1]
        revoked = run_cli(fresh_db, "keys", "revoke", prefix)
        assert revoked.returncode == 0 and f"Clé {prefix} (carte-sandiara) révoquée." in revoked.stdout
        status, _, problem = call(f"{base}/auth/me", headers={"X-API-Key": key})
        assert status == 401 and problem["type"] == "urn:sifc:problem:auth.key_invalid"

        disabled = run_cli(fresh_db, "users", "disable", "lecteur.thies")
        assert disabled.returncode == 0, disabled.stderr
        status, _, problem = call(f"{base}/auth/refresh", body={"refresh_token": rotated["refresh_token"]})
        assert status == 401
        status, _, problem = call(f"{base}/auth/token", data={"username": "lecteur.thies", "password": PASSWORD})
        assert status == 401 and problem["detail"] == "Ce compte est désactivé."
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = (tmp_path / "server.log").read_text()
    assert PASSWORD not in log and key not in log and access not in log
