"""The listening socket of the HTTP commands (`console`, `mall serve`, the demo's mall).

Bound here rather than by uvicorn so that `--port 0` can print the port it got.
"""

from __future__ import annotations

import socket


def tcp_listener(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A TCP socket listening on ``host:port`` (IPv6 when ``host`` has a colon).

    The protocol is named (``IPPROTO_TCP``, not 0) because asyncio turns Nagle off
    (``TCP_NODELAY``) only on accepted sockets whose protocol says TCP: without it every
    keep-alive response waits ~40 ms for the client's delayed ACK. Raises ``OSError`` when
    the address cannot be bound, with nothing left open.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
