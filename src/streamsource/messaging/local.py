"""The in-process transport: services of one process exchange messages through their stores.

Same semantics as Kafka, and as durable: for each service, :class:`LocalTransport` reads the
service's outbox streams (category ``messages.{service}``) from its store's log after a
checkpoint kept in that store (``streamsource_relay_checkpoints``, name
``messages.local.{service}``), hands every message to the services that receive on its
channel (:meth:`Service.deliver <streamsource.messaging.Service.deliver>`: inbox, handler and
effects in one transaction of the receiver's store), and only then moves the checkpoint. A
crash in between delivers those messages again and the receivers' inboxes skip them; nothing
is held in Python lists between the two.

Run one transport per set of services (two would deliver everything twice, harmlessly but
for nothing): :meth:`LocalTransport.drain` (tests, scripts), :meth:`~LocalTransport.start` /
:meth:`~LocalTransport.stop` (a thread) or :meth:`LocalTransport.run_async` (an asyncio task).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

from streamsource.bridge.background import BackgroundLoop
from streamsource.bridge.backoff import Backoff
from streamsource.bridge.checkpoints import CheckpointStore, checkpoints_for
from streamsource.errors import InterfaceError, StreamsourceError
from streamsource.messaging.context import channel_of, outbox_category
from streamsource.messaging.service import Service

log = logging.getLogger("streamsource.messaging.local")


class LocalTransport(BackgroundLoop):
    """Delivers the outbox messages of ``services`` to the services that receive them."""

    thread_kind = "messaging"

    def __init__(
        self,
        services: Sequence[Service],
        *,
        name: str = "local",
        batch_size: int = 500,
        idle_wait: float = 0.005,
        backoff: Backoff | None = None,
    ) -> None:
        names = [service.name for service in services]
        if len(set(names)) != len(names):
            raise InterfaceError(f"two services share a name: {sorted(names)}")
        self.services = list(services)
        self.name = name
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self.backoff = backoff or Backoff()
        self._checkpoints: dict[str, CheckpointStore] = {
            service.name: checkpoints_for(service.store) for service in services
        }
        self.delivered = 0  # messages handed to a receiver (duplicates included)
        super().__init__()

    def _checkpoint_name(self, service: Service) -> str:
        return f"messages.{self.name}.{service.name}"

    def pump(self) -> int:
        """Deliver one batch of each service's outbox; the number of messages read."""
        moved = 0
        for sender in self.services:
            moved += self._pump_one(sender)
        return moved

    def _pump_one(self, sender: Service) -> int:
        checkpoints = self._checkpoints[sender.name]
        name = self._checkpoint_name(sender)
        after = checkpoints.load(name)
        events = sender.store.read_category(
            outbox_category(sender.name), after=after, limit=self._batch_size
        )
        last = after
        count = 0
        try:
            for event in events:
                channel = channel_of(event.stream)
                for receiver in self.services:
                    if receiver.wants(channel):
                        receiver.deliver(event, channel)
                        self.delivered += 1
                last = event.position
                count += 1
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
            if last != after:
                checkpoints.save(name, last)
        return count

    def drain(self, timeout: float = 30.0) -> None:
        """Deliver until no service has an undelivered message (each delivery may send
        more); TimeoutError if that takes longer than ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.pump():
            if time.monotonic() > deadline:
                raise TimeoutError(f"messages still flowing after {timeout}s")

    def run(self, stop: threading.Event | None = None) -> None:
        """Deliver until ``stop`` is set; store faults that may pass are retried with backoff."""
        stop = stop or self._stop
        attempt = 0
        while not stop.is_set():
            try:
                moved = self.pump()
                attempt = 0
            except StreamsourceError as exc:
                if not exc.retriable:
                    raise
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("transport %s: %s; retrying in %.2fs", self.name, exc, delay)
                stop.wait(delay)
                continue
            if not moved:
                stop.wait(self._idle_wait)

    async def run_async(self) -> None:
        """Deliver in a worker thread until this task is cancelled."""
        stop = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self.run, stop))
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            stop.set()
            await worker
            raise

    def __enter__(self) -> LocalTransport:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
