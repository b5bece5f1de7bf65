"""One mall service's HTTP API on a real uvicorn server, in a thread, on a free port: for
tests that drive a single service's routes without a whole ``mall serve`` process."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from examples.mall.platform.http import install_error_handlers
from examples.mall.platform.service import Service, Wiring
from examples.mall.platform.storage import ServiceStore
from fastapi import FastAPI

from deadline import wait_until


@contextmanager
def serve_service(service: Service, store: ServiceStore) -> Iterator[httpx.Client]:
    """A client of ``service``'s routes (built on ``store``), served until the block ends."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(service.build(Wiring(store)))
    server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn to start")
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
