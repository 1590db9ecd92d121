"""A pole's heartbeat: its own row of ``federation_heartbeat``, written every few seconds.

The row travels to the national node with the pole's publication, where ``now() - beat_at`` is the age
of what that pole's subscription has delivered (``sifc.federation.status.data_age``). A subscription's
lag alone cannot say it: a quiet pole and a pole cut off since an hour both send nothing.

Written by ``sifc node beat`` (once) and by a thread of ``sifc serve`` (every ``INTERVAL_S`` seconds).
The thread must never take the service down: a failed beat (the database restarting, the table not
migrated yet) is logged once, and the next one is tried on time.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

log = logging.getLogger("sifc.federation.heartbeat")

INTERVAL_S = 10.0
# A beat is one statement: it never waits long for a connection or a lock (the next one comes soon).
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 5000

# One statement that writes only at a pole: elsewhere (a single node, the national node) it inserts nothing.
BEAT = text("""
INSERT INTO federation_heartbeat (node_id, beat_at)
SELECT node_id, now() FROM sifc_node WHERE role = 'pole'
ON CONFLICT (node_id) DO UPDATE SET beat_at = excluded.beat_at
RETURNING node_id""")


def beat(session: Session) -> str | None:
    """Write this pole's heartbeat now; return its node id, or ``None`` when this node is not a pole."""
    node_id = session.execute(BEAT).scalar_one_or_none()
    return None if node_id is None else str(node_id)


class HeartbeatTask:
    """A daemon thread that beats every ``interval`` seconds on ``url`` until :meth:`stop`.

    It holds no connection between beats (one connection per beat, no pool): a restarted server, a database
    dropped by an operator or a test, are never held up by an idle heartbeat connection.
    """

    def __init__(self, url: URL, *, interval: float = INTERVAL_S) -> None:
        self.url = url
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sifc-heartbeat", daemon=True)
        # Made here, connected at each beat only.
        self._engine: Engine = create_engine(url, poolclass=NullPool, connect_args={
            "application_name": "sifc-heartbeat", "connect_timeout": CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"})
        self._failing: str | None = None  # the last failure logged, so a lasting one is logged once

    def start(self) -> None:
        """Start beating (the first beat at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; waits for a beat under way to end."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(CONNECT_TIMEOUT_S + STATEMENT_TIMEOUT_MS / 1000)
        self._engine.dispose()

    def beat_once(self) -> str | None:
        """One beat; a database error is logged (once while it lasts) and gives ``None``."""
        try:
            with Session(self._engine) as session, session.begin():
                node_id = beat(session)
        except SQLAlchemyError as error:
            # Only the error's class and first line: never the URL, which may carry a password.
            cause = (error.orig if isinstance(error, DBAPIError) else None) or error
            reason = f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0]}"
            if reason != self._failing:
                log.warning("federation heartbeat not written (%s); trying again every %.0f s", reason,
                            self.interval)
                self._failing = reason
            return None
        if self._failing is not None:
            log.info("federation heartbeat written again")
            self._failing = None
        return node_id

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.beat_once()
            self._stopping.wait(self.interval)
