"""Starting and stopping the two HTTP services under test, as their own processes.

- **sifc**: ``sifc serve --import-workers 0``, as ``scripts/run.sh`` starts it (one uvicorn process,
  uvloop + httptools, access log on), connected as the service role with ``SIFC_POOL_SIZE``.
- **TiPg**: ``uvicorn tipg.main:app`` from its own virtual environment (``.venv-tipg``, with
  ``uvicorn[standard]`` so both use the same event loop and HTTP parser, access log on), connected
  as the same role to the same database, ``TIPG_DB_MIN_CONN_SIZE = TIPG_DB_MAX_CONN_SIZE`` = the
  same pool size, exposing only the view ``public.parcel`` (the current versions) with
  ``parcel_id`` as its key.
- **sifc@REF**: our service as git revision REF has it (``bench.revision``), started the same way
  on the same database, with the revision's worktree first on ``PYTHONPATH`` and as its directory.

Each of our services gets a signing-key file of its own under the run's work directory
(``SIFC_KEY_FILE``, made on its first start): none reads or writes the user's keys, and two
revisions never share a file whose format one of them might not accept.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.import_bench.databases import REPO
from bench.revision import Revision

HERE = Path(__file__).resolve().parent
TIPG_VENV = HERE / ".venv-tipg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    ready_path: str
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    cwd: Path = REPO

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command + ["--port", str(self.port)], env=self.env, cwd=self.cwd,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.process.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(self.base + self.ready_path, timeout=10) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"{self.name} did not answer {self.ready_path} within {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def sifc(service_url: str, admin_url: str, *, pool_size: int, work: Path, revision: Revision | None = None,
         name: str | None = None, env: dict[str, str] | None = None, workers: int = 1) -> Service:
    """Our service, from the working tree or, with ``revision``, from that revision's worktree.

    ``name`` (default ``sifc`` or the revision's label) names its log and key file; ``env`` adds variables
    (a federation node's ``SIFC_NODE_ID``); ``workers``: HTTP processes (``sifc serve --workers``), each
    with a pool of ``pool_size``.
    """
    name = name or ("sifc" if revision is None else revision.label)
    stem = name.replace("@", "_at_")
    env = dict(os.environ, SIFC_DATABASE_URL=service_url, SIFC_ADMIN_DATABASE_URL=admin_url,
               SIFC_POOL_SIZE=str(pool_size), SIFC_IMPORT_WORKERS="0", SIFC_ENVIRONMENT="development",
               SIFC_KEY_FILE=str((work / f"{stem}-keys" / "signing-keys.json").resolve()), **(env or {}))
    arguments = ["serve", "--host", "127.0.0.1", "--import-workers", "0"]
    if workers > 1:
        arguments += ["--workers", str(workers)]
    if revision is None:
        return Service(name, [str(REPO / ".venv" / "bin" / "sifc"), *arguments], env, "/health", work / f"{stem}.log")
    return Service(name, revision.command(*arguments), revision.environment(env), "/health", work / f"{stem}.log",
                   cwd=revision.tree)


def ensure_tipg(log=print) -> None:
    """TiPg in its own virtual environment (pip), with uvicorn[standard] like ours."""
    python = TIPG_VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import tipg, uvloop, httptools"],
                                          capture_output=True).returncode == 0:
        return
    log(f"installing TiPg into {TIPG_VENV}")
    subprocess.run(["python3", "-m", "venv", str(TIPG_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "tipg", "uvicorn[standard]"], check=True)


def tipg_version() -> str:
    done = subprocess.run([str(TIPG_VENV / "bin" / "python"), "-c", "import tipg; print(tipg.__version__)"],
                          capture_output=True, text=True)
    return done.stdout.strip()


def tipg(service_url: str, *, pool_size: int, work: Path) -> Service:
    env = dict(os.environ, DATABASE_URL=service_url,
               TIPG_DB_SCHEMAS='["public"]', TIPG_DB_TABLES='["public.parcel"]',
               TIPG_DB_MIN_CONN_SIZE=str(pool_size), TIPG_DB_MAX_CONN_SIZE=str(pool_size),
               TIPG_TABLE_CONFIG__public_parcel__PK="parcel_id",
               TIPG_TABLE_CONFIG__public_parcel__GEOMCOL="geom",
               TIPG_MAX_FEATURES_PER_QUERY="10000")
    env.pop("SIFC_DATABASE_URL", None)
    command = [str(TIPG_VENV / "bin" / "uvicorn"), "tipg.main:app", "--host", "127.0.0.1"]
    return Service("tipg", command, env, "/collections/public.parcel", work / "tipg.log")
