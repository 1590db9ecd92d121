"""The response head leaves with the first body write (cli.http_protocol), and nothing else is held."""

from __future__ import annotations

from cli.http_protocol import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-type: application/geo+json\r\n\r\n"


class Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


def test_head_and_body_in_one_write() -> None:
    raw = Recording()
    transport = CoalescingTransport(raw)  # type: ignore[arg-type]
    transport.write(HEAD)
    assert raw.writes == []
    transport.write(b"hello")
    transport.write(b" more")  # a streamed answer's next parts go as they come
    assert raw.writes == [HEAD + b"hello", b" more"]


def test_a_head_without_body_leaves_when_the_response_completes_or_the_connection_closes() -> None:
    raw = Recording()
    transport = CoalescingTransport(raw)  # type: ignore[arg-type]
    transport.write(HEAD)
    transport.flush()
    transport.flush()
    assert raw.writes == [HEAD]
    transport.write(HEAD)
    transport.close()
    assert raw.writes == [HEAD, HEAD] and raw.closed


def test_interim_answers_and_whole_answers_are_not_held() -> None:
    raw = Recording()
    transport = CoalescingTransport(raw)  # type: ignore[arg-type]
    continuing = b"HTTP/1.1 100 Continue\r\n\r\n"
    switching = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"
    whole = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 3\r\n\r\nbad"
    for data in (continuing, switching, whole, b"\x81\x05hello"):
        transport.write(data)
    assert raw.writes == [continuing, switching, whole, b"\x81\x05hello"]


def test_everything_else_is_the_transport_s() -> None:
    transport = CoalescingTransport(Recording())  # type: ignore[arg-type]
    assert transport.get_extra_info("peername") == "info peername"
