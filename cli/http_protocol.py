"""uvicorn's HTTP protocol (httptools) writing a response's head and its first body part in one send.

uvicorn writes the status line and headers as soon as the app starts its answer, then the body
as a second write. On loopback or a LAN each write is a segment sent at once (``TCP_NODELAY``), and
the first wakes the client, which finds half an answer, parses it and waits again; on two cores
shared with the database, the service is often preempted by the client it just woke, between the
two writes. Profiles of the point lookup under load (``bench/serve_bench --profile at``) put 40 % of
the service's samples in that first write once the routing had been trimmed.

:class:`CoalescingHttpToolsProtocol` holds the head back until the first write of the body and sends
both together; a response without a body write (HEAD, or an app that stops early) sends its head
when it completes or the connection closes. Interim answers (``100 Continue``, ``101`` switching to
WebSocket) and everything after the first body part go out as before. A streamed answer's head
therefore leaves with its first part, not before it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """A transport that holds a response head until the next write, and passes everything else through."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``, after a held head; hold a final response's head (its status 2xx–5xx) for the next write."""
        if self._head is not None:
            data, self._head = self._head + bytes(data), None
        elif isinstance(data, bytes) and data.startswith(b"HTTP/1.1 ") and data[9:10] != b"1" \
                and data.endswith(HEAD_END) and data.find(HEAD_END) == len(data) - len(HEAD_END):
            self._head = data
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now (a response that ended without a body write)."""
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        """Send what is held, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport` (``uvicorn.run(http=…)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap the connection's transport before uvicorn keeps it."""
        super().connection_made(CoalescingTransport(transport))  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        """Send a head still held (HEAD, no body written), then let uvicorn go on with the connection."""
        transport = self.transport
        if isinstance(transport, CoalescingTransport):
            transport.flush()
        super().on_response_complete()
