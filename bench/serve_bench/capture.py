"""The SQL our endpoints send, captured from the application itself (for pgbench to replay).

The app is built as ``sifc serve`` builds it, against the benchmark database, and called in-process
(Starlette's test client); every statement that reaches a psycopg cursor is recorded with its
parameters, whatever layer (SQLAlchemy or psycopg directly) sent it. The endpoint's statement is
the one whose parameters carry the inputs of the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass
class Captured:
    path: str
    statement: str
    params: dict[str, Any]
    all_statements: list[str] = field(default_factory=list)
    status: int = 0


def _text(query: Any, conn: Any) -> str:
    if isinstance(query, bytes):
        return query.decode()
    if isinstance(query, str):
        return query
    return query.as_string(conn)  # psycopg.sql.Composable


def capture(service_url: str, paths: list[str], inputs: list[dict[str, Any]]) -> list[Captured]:
    """For each path (its inputs beside it), the statement that carries those inputs."""
    from starlette.testclient import TestClient

    from api.app import create_app
    from sifc.settings import Settings

    seen: list[tuple[str, dict[str, Any]]] = []
    originals = {cls: cls.execute for cls in (psycopg.Cursor, psycopg.AsyncCursor)}

    def recording(original):
        def execute(self, query, params=None, *args, **kwargs):
            seen.append((_text(query, self.connection), dict(params) if isinstance(params, dict) else {}))
            return original(self, query, params, *args, **kwargs)
        return execute

    results = []
    psycopg.Cursor.execute = recording(originals[psycopg.Cursor])  # type: ignore[method-assign]
    psycopg.AsyncCursor.execute = recording(originals[psycopg.AsyncCursor])  # type: ignore[method-assign]
    try:
        app = create_app(Settings(database_url=service_url, pool_size=1))
        # The service answers only the hosts of its public URL (loopback by default), not the client's "testserver".
        with TestClient(app, base_url="http://127.0.0.1") as client:
            for path, wanted in zip(paths, inputs, strict=True):
                client.get(path)  # first request: pool, catalog lookups
                seen.clear()
                response = client.get(path)
                if response.status_code >= 400:
                    raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
                found = [(s, p) for s, p in seen
                         if all(k in p and float(p[k]) == float(v) for k, v in wanted.items())]
                if not found:
                    raise SystemExit(f"no statement of {path} carries {wanted}: {[s[:80] for s, _ in seen]}")
                results.append(Captured(path, found[0][0], found[0][1], [s for s, _ in seen], response.status_code))
    finally:
        psycopg.Cursor.execute = originals[psycopg.Cursor]  # type: ignore[method-assign]
        psycopg.AsyncCursor.execute = originals[psycopg.AsyncCursor]  # type: ignore[method-assign]
    return results
