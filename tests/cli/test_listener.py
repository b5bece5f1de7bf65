"""The HTTP commands' listening socket: Nagle off on accepted connections, and a port in use
refused with the address named."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from click.testing import CliRunner

import streamsource as ss
from streamsource.cli import cli
from streamsource.cli.listener import tcp_listener


def test_accepted_connections_have_nagle_off() -> None:
    # the 40 ms keep-alive stall came from accepted sockets without TCP_NODELAY
    async def accepted_nodelay() -> int:
        listener = tcp_listener("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=listener)
        async with server:
            port = listener.getsockname()[1]
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            result = await asyncio.wait_for(seen, 5)
            writer.close()
            return result

    assert asyncio.run(accepted_nodelay()) != 0


def test_a_port_in_use_is_refused_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        store = f"sqlite:///{tmp_path / 'console.db'}"
        ss.open_store(store).close()
        result = CliRunner().invoke(cli, ["console", "--store", store, "--port", str(port)])
    assert result.exit_code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
