"""uvicorn's httptools protocol, with what a response writes in one turn of the loop sent at once.

uvicorn writes a response's status line and headers to the socket when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send()``
calls, two TCP segments, and a client that wakes for the head and then again for the body. A
small JSON answer (every ``/v1/match``) paid for the first one twice, in the server's system
time and in the client's. :class:`CoalescingHttpToolsProtocol` is uvicorn's own protocol
whose transport keeps the writes made during one turn of the event loop and hands them to the
socket together at the end of it (``loop.call_soon``): a response sent by one task without
waiting in between goes out in one write; nothing is held longer than that turn. Closing,
aborting or upgrading the connection writes (or, aborting, drops) what is kept first, in order.

``hashwatch serve`` runs with it (``--http hashwatch.web.http_protocol:CoalescingHttpToolsProtocol``
for uvicorn's command line).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol"]


class _TurnWriter:
    """A transport whose writes within one turn of the loop reach the socket as one write."""

    __slots__ = ("_kept", "_kept_bytes", "_loop", "_transport")

    #: Kept bytes past which a write goes to the socket at once: a body streamed in one turn
    #: (an async generator that never waits) must not pile up here, out of the transport's
    #: flow control.
    FLUSH_AT = 256 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._kept: list[bytes] = []
        self._kept_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._kept:
            self._loop.call_soon(self.flush)
        self._kept.append(bytes(data))
        self._kept_bytes += len(data)
        if self._kept_bytes >= self.FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._kept:
            return
        data = self._kept[0] if len(self._kept) == 1 else b"".join(self._kept)
        self._kept = []
        self._kept_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._kept = []
        self._kept_bytes = 0
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._kept_bytes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol writing each turn's output at once (see the module)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _TurnWriter(transport, self.loop)  # type: ignore[assignment]
