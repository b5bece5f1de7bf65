"""uvicorn's httptools protocol, writing each response to its socket once instead of twice.

uvicorn writes a response's status line and headers when the app starts it and the body
when the app sends it: two ``send`` system calls, each of which (on loopback) runs the
receiving side's TCP stack and wakes the reader, on the thread that holds the GIL. That was
about a fifth of the mall's main-thread CPU under load (py-spy). Here a connection's writes
during one turn of the event loop go out together at the end of it: an app that starts and
finishes a response without waiting in between (every mall route) costs one ``send``.

Why by hand: uvicorn has no setting for it; the only way in is the transport its protocol
is given, wrapped here (the protocol and its request cycles only ``write`` and ``close``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteTransport:
    """``transport``, its writes gathered until the event loop's current turn ends."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))  # a copy only of what is not bytes already

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()  # what was written before a close goes out before it
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # reads, extra info, pausing: the transport's
        return getattr(self._transport, name)


class OneWriteHttpTools(HttpToolsProtocol):
    """uvicorn's ``http="httptools"`` protocol on a :class:`OneWriteTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWriteTransport(transport, self.loop))  # type: ignore[arg-type]
