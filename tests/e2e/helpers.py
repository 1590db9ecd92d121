"""Running the real command line and the real server against a test database."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from sifc.settings import Settings
from tests.conftest import REPO, env_for, table_fingerprint

SIFC = [sys.executable, "-m", "cli"]


def run_cli(settings: Settings, *args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``sifc ARGS`` in a subprocess bound to ``settings``' database."""
    return subprocess.run([*SIFC, *args], cwd=REPO, env=env or env_for(settings),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 10, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept-Language": "fr", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def start_server(settings: Settings, port: int, log: Path,
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([*SIFC, "serve", "--port", str(port)], cwd=REPO,
                                   env={**env_for(settings), **(extra_env or {})}, stdout=handle,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if get(f"http://127.0.0.1:{port}/health", timeout=2)[0] == 200:
                return process
        except OSError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not answer: {log.read_text()[-2000:]}")


def fingerprints(settings: Settings, tables: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """Row count and md5 of each table of ``settings``' database, read as the superuser."""
    engine = create_engine(settings.admin_url, poolclass=NullPool)
    with engine.connect() as conn:
        result = {t: table_fingerprint(conn, t) for t in tables}
    engine.dispose()
    return result


def assert_one_clean_line(done: subprocess.CompletedProcess[str]) -> None:
    """A refused command: a non-zero exit and one message on stderr, never a traceback."""
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, done.stderr  # one message, wrapped at most by the terminal


def create_key(settings: Settings, role: str = "administrateur", *scope: str) -> dict[str, str]:
    """Headers carrying a new API key made with ``sifc keys create`` (national administrator by default)."""
    args = ["keys", "create", "--name", f"e2e-{role}", "--role", role]
    for entry in scope:
        args += ["--scope", entry]
    done = run_cli(settings, *args)
    assert done.returncode == 0, done.stderr
    return {"X-API-Key": done.stdout.strip().splitlines()[-1]}


@contextmanager
def serving(settings: Settings, log: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A real server (no import worker unless asked) on a free port for the block; its base URL."""
    port = free_port()
    process = start_server(settings, port, log, extra_env={"SIFC_IMPORT_WORKERS": "0", **(extra_env or {})})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
