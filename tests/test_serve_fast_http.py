"""A response's head and body leave the server in one write (``hashwatch serve``'s protocol).

uvicorn writes the head of a response when the app starts it and the body when it sends it:
two ``send()`` calls and a client woken twice for every small JSON answer. The server's
protocol keeps what one turn of the event loop writes and sends it at once."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from hashwatch.web.http_protocol import CoalescingHttpToolsProtocol, _TurnWriter


class _Recorded:
    """A transport that records what is done to it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


def test_a_head_and_a_body_written_in_one_turn_reach_the_socket_as_one_write() -> None:
    async def story() -> list[tuple[str, bytes]]:
        sock = _Recorded()
        writer = _TurnWriter(sock, asyncio.get_running_loop())  # type: ignore[arg-type]
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writer.write(b"{}")
        assert sock.calls == []  # kept until the loop's turn ends
        assert writer.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        writer.write(b"next")  # a later turn: its own write
        await asyncio.sleep(0)
        return sock.calls

    assert asyncio.run(story()) == [
        ("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
        ("write", b"next"),
    ]


def test_a_body_streamed_in_one_turn_goes_out_before_it_piles_up() -> None:
    async def story() -> tuple[list[tuple[str, bytes]], int]:
        sock = _Recorded()
        writer = _TurnWriter(sock, asyncio.get_running_loop())  # type: ignore[arg-type]
        chunk = b"x" * 65536
        for _ in range(10):  # 640 KiB written without the loop turning
            writer.write(chunk)
        kept = writer.get_write_buffer_size()
        await asyncio.sleep(0)
        return sock.calls, kept

    calls, kept = asyncio.run(story())
    assert kept < _TurnWriter.FLUSH_AT
    assert len(calls) == 3  # two writes at 256 KiB each, the rest at the turn's end
    assert b"".join(data for _, data in calls) == b"x" * 655360


def test_closing_sends_what_was_kept_first_and_aborting_drops_it() -> None:
    async def story() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
        loop = asyncio.get_running_loop()
        closed, aborted = _Recorded(), _Recorded()
        one = _TurnWriter(closed, loop)  # type: ignore[arg-type]
        one.write(b"last words")
        one.close()
        two = _TurnWriter(aborted, loop)  # type: ignore[arg-type]
        two.write(b"never sent")
        two.abort()
        await asyncio.sleep(0)  # the scheduled flushes find nothing (left) to write
        return closed.calls, aborted.calls

    closed, aborted = asyncio.run(story())
    assert closed == [("write", b"last words"), ("close", b"")]
    assert aborted == [("abort", b"")]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A small JSON answer, or (``/stream``) a body in three parts sent across turns."""
    assert scope["type"] == "http"
    await receive()
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await asyncio.sleep(0.001)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"path": "%s"}' % scope["path"].encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def _running(config: uvicorn.Config) -> Iterator[None]:
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(1000):
        if srv.started:
            break
        threading.Event().wait(0.01)
    assert srv.started, "the server did not start within 10 s"
    try:
        yield
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        _app,
        host="127.0.0.1",
        port=port,
        http=CoalescingHttpToolsProtocol,
        lifespan="off",
        log_level="warning",
    )
    with _running(config):
        yield port


def test_keep_alive_answers_and_a_streamed_body_arrive_whole(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        for path in ("/a", "/stream", "/b"):
            conn.request("POST", path, body=b"{}")
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200
            expected = b"one,two,three" if path == "/stream" else b'{"path": "%s"}' % path.encode()
            assert body == expected
    finally:
        conn.close()


class _CountingSocket:
    """The transport uvicorn is given, counting the writes that reach it."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def test_each_small_answer_reaches_the_socket_in_one_write() -> None:
    writes: list[bytes] = []

    class Counted(CoalescingHttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_CountingSocket(transport, writes))  # type: ignore[arg-type]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=port, http=Counted, lifespan="off", log_level="warning"
    )
    with _running(config):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for path in ("/one", "/two", "/three"):
            conn.request("POST", path, body=b"{}")
            assert conn.getresponse().read() == b'{"path": "%s"}' % path.encode()
        conn.close()
    assert len(writes) == 3  # uvicorn's own protocol: 6 (a head, then a body)
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(b"}") for w in writes)
