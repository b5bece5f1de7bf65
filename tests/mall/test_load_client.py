"""The shoppers' HTTP client (``examples/mall/client.py``) against a real HTTP/1.1 server: JSON
answers over one kept-alive connection, a connection the server closed is opened again once,
and a malformed, oversized or missing answer ends that request with an error, never a hang."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from examples.mall import client as client_module
from examples.mall.client import AsyncHttp


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
    connections: list[object] = []  # one entry per connection the server accepted

    def setup(self) -> None:
        super().setup()
        Handler.connections.append(self.connection)

    def do_PUT(self) -> None:
        size = int(self.headers["content-length"])
        sent = json.loads(self.rfile.read(size)) if size else None
        self.answer(200, json.dumps({"path": self.path, "sent": sent}).encode())

    def do_GET(self) -> None:
        if self.path == "/garbage":
            self.wfile.write(b"this is not HTTP\r\n\r\n")
        elif self.path == "/big":
            self.answer(200, b'"' + b"a" * 4096 + b'"')
        elif self.path == "/silent":
            self.rfile.read(1)  # waits for bytes the client never sends
        elif self.path == "/close":  # answers, then closes: the next request finds it closed
            self.close_connection = True
            self.answer(200, b"{}", close=True)
        elif self.path == "/text":
            self.answer(404, b"<html>not here</html>")
        else:
            self.answer(200, json.dumps({"path": self.path}).encode())

    def answer(self, status: int, body: bytes, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        if close:
            self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    Handler.connections = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_json_answers_on_one_kept_alive_connection(url: str) -> None:
    http = AsyncHttp(url, timeout=10)
    try:
        assert await http.call("PUT", "/a", {"productId": "p", "quantity": 2}) == (
            200,
            {"path": "/a", "sent": {"productId": "p", "quantity": 2}},
        )
        assert await http.call("GET", "/b") == (200, {"path": "/b"})
        assert await http.call("GET", "/text") == (404, "<html>not here</html>")
    finally:
        http.close()
    assert len(Handler.connections) == 1


async def test_a_connection_the_server_closed_is_opened_again(url: str) -> None:
    http = AsyncHttp(url, timeout=10)
    try:
        assert await http.call("GET", "/close") == (200, {})
        assert await http.call("GET", "/after") == (200, {"path": "/after"})
    finally:
        http.close()
    assert len(Handler.connections) == 2


async def test_a_malformed_answer_is_an_error(url: str) -> None:
    http = AsyncHttp(url, timeout=10)
    try:
        with pytest.raises(ConnectionError, match="malformed"):
            await http.call("GET", "/garbage")
        assert await http.call("GET", "/fine") == (200, {"path": "/fine"})  # a new connection
    finally:
        http.close()


async def test_an_answer_over_the_limit_is_an_error(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_RESPONSE", 1024)
    http = AsyncHttp(url, timeout=10)
    try:
        with pytest.raises(ConnectionError, match="over 1024 bytes"):
            await http.call("GET", "/big")
    finally:
        http.close()


async def test_no_answer_within_the_timeout_is_a_timeout(url: str) -> None:
    http = AsyncHttp(url, timeout=0.5)
    try:
        with pytest.raises(TimeoutError):
            await http.call("GET", "/silent")
    finally:
        http.close()


async def test_no_server_is_a_connection_error() -> None:
    http = AsyncHttp("http://127.0.0.1:9", timeout=10)
    with pytest.raises(OSError):
        await http.call("GET", "/")
