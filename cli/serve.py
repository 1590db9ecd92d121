"""``sifc serve`` and ``sifc worker``: the HTTP service and the import workers it supervises."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import State, err, out, say

if TYPE_CHECKING:
    from fastapi import FastAPI

    from sifc.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Adresse d'écoute.")] = None,
    port: Annotated[int | None, typer.Option(help="Port d'écoute.")] = None,
    import_workers: Annotated[int | None, typer.Option(
        help="Processus d'import à lancer avec le service (0 : aucun).")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, max=32, help="Processus HTTP partageant le port (1 par défaut ; SIFC_WORKERS).")] = None,
) -> None:
    """Sert l'API (documentation OpenAPI sur /docs) et lance le(s) processus d'import."""
    import uvicorn

    from cli.http_protocol import CoalescingHttpToolsProtocol
    from sifc import keyring
    from sifc.federation.heartbeat import HeartbeatTask
    from sifc.imports.supervisor import WorkerSupervisor

    # The address it listens on is the public base URL's default (SIFC_PUBLIC_URL): the same --host/--port.
    configured = State.settings()
    settings = configured.model_copy(update={"host": host or configured.host, "port": port or configured.port})
    # The signing keys exist before the first request (made on the first start, never typed by anyone).
    err.print(say("cli.serve.signing_keys") + str(keyring.for_settings(settings).ensure()),
              highlight=False)
    supervisor = WorkerSupervisor(settings.import_workers if import_workers is None else import_workers,
                                  command=[sys.executable, "-m", "cli", "worker", "--parent", str(os.getpid())])
    supervisor.start()
    # At a pole, its heartbeat every 10 s (the national node's measure of how old its copy is); elsewhere the
    # beat writes nothing. A failed beat is logged, never raised: the service goes on.
    heartbeat = HeartbeatTask(settings.db_url)
    heartbeat.start()
    processes = settings.workers if workers is None else workers
    # A response's head leaves with its body, in one send (cli.http_protocol).
    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": "info",
                               "http": CoalescingHttpToolsProtocol,
                               "proxy_headers": settings.forwarded_allow_ips is not None,
                               "forwarded_allow_ips": settings.forwarded_allow_ips}
    try:
        if processes == 1:
            uvicorn.run(worker_app(settings), **options)
        else:
            # Each worker is a new interpreter (spawned) that builds its app from the environment: the address
            # chosen here goes with it, so its settings (the public URL's default among them) are these.
            os.environ.update(SIFC_HOST=settings.host, SIFC_PORT=str(settings.port))
            uvicorn.run("cli.serve:worker_app", factory=True, workers=processes, **options)
    finally:
        heartbeat.stop()
        supervisor.stop()


def worker_app(settings: Settings | None = None) -> FastAPI:
    """The app one HTTP process serves: ``settings``, or read from the environment (uvicorn's factory).

    Only the app: the import workers, the heartbeat and the signing keys belong to the parent
    (:func:`serve`), once per node whatever the number of HTTP processes.
    """
    import gc

    from api.app import create_app

    application = create_app(settings or State.settings())
    # Everything imported so far (pandas, pyproj, shapely…) lives as long as the process: frozen, it is
    # no longer walked by each full garbage collection, whose pauses were the long tail of fast requests.
    gc.collect()
    gc.freeze()
    return application


def worker(
    once: Annotated[bool, typer.Option(help="S'arrêter quand la file est vide.")] = False,
    parent: Annotated[int | None, typer.Option(help="S'arrêter quand ce processus (le service) disparaît.",
                                               hidden=True)] = None,
) -> None:
    """Exécute les tâches d'import en file (un processus séparé du service web)."""
    import logging

    from sifc.imports.worker import serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    count = serve_forever(State.settings(), once=once, parent=parent)
    if once:
        out.print(say("cli.serve.import_job_s_run", count=count))
