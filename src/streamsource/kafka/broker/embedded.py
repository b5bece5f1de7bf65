"""``EmbeddedBroker``: a ``Broker`` in a background thread, for synchronous code.

Tests, the demo and scripts that are not async start a broker with a context manager and
hand ``bootstrap`` to any Kafka client; the broker's event loop runs in its own thread::

    with EmbeddedBroker(data_dir=tmp_path, port=0) as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from streamsource.errors import BrokerError
from streamsource.kafka.broker.app import Broker
from streamsource.kafka.broker.config import BrokerConfig

T = TypeVar("T")


class EmbeddedBroker:
    """A ``Broker`` running in a background thread with its own event loop.

    ``start()`` returns once it listens; ``stop()`` shuts it down cleanly. Use it as a
    context manager in synchronous code::

        with EmbeddedBroker(data_dir=tmp_path, port=0) as broker:
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    """

    def __init__(self, config: BrokerConfig | None = None, **overrides: Any) -> None:
        self._config = config
        self._overrides = overrides
        self._broker: Broker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_requested: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._started = threading.Event()

    def start(self) -> tuple[str, int]:
        """Start the broker thread; returns the bound (host, port) once it listens."""
        if self._thread is not None:
            raise BrokerError("this EmbeddedBroker was already started")
        self._thread = threading.Thread(target=self._run, name="streamsource-broker", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self.host, self.port

    def stop(self) -> None:
        """Shut the broker down cleanly and wait for its thread."""
        thread, loop, event = self._thread, self._loop, self._stop_requested
        if thread is None or loop is None or event is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(event.set)
        thread.join()
        self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def call(self, fn: Callable[[Broker], Awaitable[T]], timeout: float | None = 30) -> T:
        """Run ``await fn(broker)`` on the broker's loop and return its result (tests)."""
        if self._loop is None or self._broker is None:
            raise BrokerError("the broker is not running")
        broker = self._broker
        return asyncio.run_coroutine_threadsafe(_call(fn, broker), self._loop).result(timeout)

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            raise BrokerError("the broker is not running")
        return self._broker

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port

    @property
    def bootstrap(self) -> str:
        """``host:port`` for a client's ``bootstrap_servers``."""
        return self.broker.bootstrap

    @property
    def data_dir(self) -> Path:
        """Where this broker keeps its data (pass it to a new one to restart)."""
        return self.broker.config.data_dir

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        broker = Broker(self._config, **self._overrides)
        try:
            await broker.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._broker = broker
        self._started.set()
        try:
            await self._stop_requested.wait()
        finally:
            await broker.stop()


async def _call(fn: Callable[[Broker], Awaitable[T]], broker: Broker) -> T:
    return await fn(broker)
