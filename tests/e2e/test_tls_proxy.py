"""The production proxy's configuration, run for real on loopback.

No Docker engine runs here, so the template the production profile mounts into the nginx image
(deploy/nginx/sifc.conf.template) is rendered the same way (only ``${SIFC_*}``) and served by the
nginx of the OS packages (installed by scripts/ensure-nginx.sh when missing), in front of a real
``sifc serve``, with a self-signed certificate made by openssl. Clients connect from other
loopback addresses (127.0.0.2, 127.0.0.3…) so that the address the API sees is telling.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sifc.settings import Settings
from tests.conftest import IN_CI, REPO
from tests.e2e.helpers import free_port, run_cli, start_server

TEMPLATE = REPO / "deploy" / "nginx" / "sifc.conf.template"
UPLOAD_LIMIT = 200_000
SIGN_IN_RATE = 3
BARGNY = "SN0104-bargny"


def render(template: str, values: dict[str, str]) -> str:
    """``envsubst`` restricted to ``SIFC_*`` (NGINX_ENVSUBST_FILTER=^SIFC_ in the nginx image)."""
    rendered = re.sub(r"\$\{(SIFC_[A-Z_]+)\}", lambda match: values[match.group(1)], template)
    assert not re.search(r"\$\{SIFC_[A-Z_]+\}", rendered)
    return rendered


def _nginx() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if found:
        return found
    done = subprocess.run(["bash", "scripts/ensure-nginx.sh"], cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900, check=False)
    if done.returncode != 0:
        message = f"nginx absent and scripts/ensure-nginx.sh failed: {done.stderr[-1500:]}"
        if IN_CI:
            pytest.fail(message + " — in CI this is a failure")
        pytest.skip(message)
    return done.stdout.strip().splitlines()[-1]


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return cert, key


def _main_conf(folder: Path, site: Path) -> str:
    """What the nginx image's own nginx.conf does around conf.d/, with paths of this test."""
    user = "user root root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                            "uwsgi", "scgi"))
    return f"""{user}daemon off;
worker_processes 1;
pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder / 'access.log'};
{temp}
    include {site};
}}
"""


@dataclass
class Stack:
    https_port: int
    http_port: int
    ca: Path
    api_port: int
    api_log: Path
    nginx_log: Path

    def request(self, method: str, path: str, *, tls: bool = True, source: str = "127.0.0.2",
                headers: dict[str, str] | None = None, body: bytes | None = None,
                direct: bool = False) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request from loopback address ``source``: through the proxy, or ``direct`` to the API."""
        connection: http.client.HTTPConnection
        if direct:
            connection = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30,
                                                    source_address=(source, 0))
        elif tls:
            context = ssl.create_default_context(cafile=str(self.ca))
            connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, timeout=30, context=context,
                                                     source_address=(source, 0))
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30,
                                                    source_address=(source, 0))
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def demo(fresh_db: Settings) -> Settings:
    done = run_cli(fresh_db, "demo", "load")
    assert done.returncode == 0, done.stderr
    return fresh_db


@pytest.fixture(scope="module")
def stack(demo: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx = _nginx()
    folder = tmp_path_factory.mktemp("proxy")
    cert, key = _certificate(folder)
    api_port, http_port, https_port = free_port(), free_port(), free_port()
    site = folder / "sifc.conf"
    site.write_text(render(TEMPLATE.read_text(), {
        "SIFC_SERVER_NAME": "127.0.0.1", "SIFC_HTTP_PORT": str(http_port), "SIFC_HTTPS_PORT": str(https_port),
        "SIFC_PUBLIC_HTTPS_PORT": str(https_port), "SIFC_TLS_CERT": str(cert), "SIFC_TLS_KEY": str(key),
        "SIFC_UPSTREAM": f"127.0.0.1:{api_port}", "SIFC_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
    }))
    conf = folder / "nginx.conf"
    conf.write_text(_main_conf(folder, site))
    command = [nginx, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert checked.returncode == 0, checked.stderr
    server = start_server(demo, api_port, folder / "api.log", extra_env={
        "SIFC_FORWARDED_ALLOW_IPS": "127.0.0.1",  # nginx reaches the API from 127.0.0.1
        "SIFC_PUBLIC_URL": f"https://127.0.0.1:{https_port}",  # the proxy's address, the one clients use
        "SIFC_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "SIFC_LOGIN_RATE_PER_IP": str(SIGN_IN_RATE),
        "SIFC_IMPORT_WORKERS": "0",
    })
    proxy = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    result = Stack(https_port, http_port, cert, api_port, folder / "api.log", folder / "error.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if result.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                if proxy.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not answer: {result.nginx_log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield result
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)


def test_https_answers_through_the_proxy_with_hsts(stack: Stack) -> None:
    status, headers, body = stack.request("GET", "/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    assert headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "nginx/" not in headers.get("Server", "")  # server_tokens off


def _tls_context(ca: Path, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client would offer old versions: the server refuses them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1_1 is deprecated: the point
        context.minimum_version = context.maximum_version = version
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_served(stack: Stack, version: ssl.TLSVersion) -> None:
    context = _tls_context(stack.ca, version)
    with socket.create_connection(("127.0.0.1", stack.https_port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() == version.name.replace("_", ".")


def test_tls_below_1_2_is_refused(stack: Stack) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ssl.TLSVersion.TLSv1_1
    context = _tls_context(stack.ca, old)
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", stack.https_port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1"):
        pass


def test_http_redirects_to_https(stack: Stack) -> None:
    status, headers, _ = stack.request("GET", "/communes?q=bargny", tls=False, headers={"Host": "evil.example"})
    assert status == 301
    assert headers["Location"] == f"https://127.0.0.1:{stack.https_port}/communes?q=bargny"


def test_the_api_sees_the_client_address_and_scheme(stack: Stack) -> None:
    def sign_in(source: str, name: str, **kwargs: object) -> int:
        return stack.request("POST", "/auth/token", source=source, body=f"username={name}&password=x".encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      **kwargs.pop("headers", {})},  # type: ignore[dict-item]
                             **kwargs)[0]  # type: ignore[arg-type]

    # The sign-in limiter counts per client: 127.0.0.2 exhausts its attempts…
    assert [sign_in("127.0.0.2", f"nobody{i}") for i in range(SIGN_IN_RATE)] == [401] * SIGN_IN_RATE
    assert sign_in("127.0.0.2", "nobody-more") == 429
    # … which does not stop 127.0.0.3, even when it claims to be someone else (nginx sets the header).
    assert sign_in("127.0.0.3", "somebody") == 401
    assert sign_in("127.0.0.3", "somebody-else", headers={"X-Forwarded-For": "127.0.0.9"}) == 401
    # A client that is not the proxy cannot borrow an address either: its header is ignored.
    assert sign_in("127.0.0.4", "direct", direct=True, headers={"X-Forwarded-For": "127.0.0.2"}) == 401
    log = stack.api_log.read_text()
    assert re.search(r"127\.0\.0\.2:\d+ - \"POST /auth/token HTTP/1\.1\" 429", log), log[-2000:]

    # SIFC_PUBLIC_URL is the proxy's address: the API's absolute links are the public ones.
    status, _, body = stack.request("GET", "/ogc")
    assert status == 200
    hrefs = [link["href"] for link in json.loads(body)["links"]]
    assert hrefs and all(href.startswith(f"https://127.0.0.1:{stack.https_port}/") for href in hrefs), hrefs


def test_a_host_the_service_does_not_serve_is_refused_through_the_proxy(stack: Stack) -> None:
    # nginx passes the client's Host on; the API refuses a name that is not its own (DNS rebinding,
    # links and documents built from a forged Host).
    status, headers, body = stack.request("GET", "/ogc/collections/parcels/items?limit=1",
                                          headers={"Host": "evil.example"})
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert b"evil.example" not in body
    # The names of the service itself (public, loopback) are answered, with the public links.
    status, _, body = stack.request("GET", "/ogc", headers={"Host": f"localhost:{stack.https_port}"})
    assert status == 200 and b"localhost" not in body


def test_an_upload_over_the_limit_is_refused_by_the_proxy(stack: Stack) -> None:
    before = stack.api_log.read_text().count("POST /imports")
    status, headers, body = stack.request("POST", "/imports?filename=big.geojson", body=b" " * (UPLOAD_LIMIT + 1),
                                          headers={"Content-Type": "application/geo+json"})
    assert status == 413
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
    assert "Strict-Transport-Security" in headers
    # A body under the limit reaches the API, which answers for itself: sign in first.
    small = b'{"type":"FeatureCollection","features":[]}'
    status, _, _ = stack.request("POST", "/imports?filename=small.geojson&dry_run=true", body=small,
                                 headers={"Content-Type": "application/geo+json"})
    assert status == 401
    assert stack.api_log.read_text().count("POST /imports") == before + 1


def test_json_is_compressed(stack: Stack) -> None:
    status, headers, body = stack.request("GET", "/communes?geometry=false&limit=50",
                                          headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["type"] == "FeatureCollection"


def test_a_streamed_export_passes_through(stack: Stack) -> None:
    status, headers, body = stack.request("GET", f"/exports/parcels?format=geojson&commune={BARGNY}")
    assert status == 200, body[:500]
    assert headers["Content-Disposition"].startswith("attachment;")
    collection = json.loads(body)
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) > 0
    # Its rows reach the client as they are read: chunked, not buffered into a length by nginx.
    assert headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in headers
