"""Several outbox relays run by one thread through one Kafka producer (:class:`RelayGroup`).

The messaging transport relays one outbox per service (``KafkaTransport(shared_relay=True)``
groups them); each relay keeps its own store, checkpoint and acknowledgement tracker, so the
guarantees of :mod:`streamsource.bridge.relay` hold for each member unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from streamsource.bridge.background import BackgroundLoop
from streamsource.bridge.errors import RelayStopped, kafka_error
from streamsource.bridge.relay import (
    OutboxRelay,
    end_producing,
    new_producer,
    start_producing,
    wait_serving,
)
from streamsource.errors import InterfaceError, StreamsourceError
from streamsource.observability import live

log = logging.getLogger("streamsource.bridge.relay")


class RelayGroup(BackgroundLoop):
    """Several :class:`OutboxRelay` (each over its own store and checkpoint) run by one
    thread through one Kafka producer.

    Why: the messaging transport relays one outbox per service, and a producer each meant a
    thread each plus librdkafka's threads per client, all taking turns at one GIL for a few
    messages a second apiece; one producer also puts what several services send at once in
    one Produce request. The relays must share their producer settings. An append to any
    member's store wakes the thread, which reads only the stores that saw an append (all of
    them every ``idle_wait``, the least of the members'). A failed delivery restarts the
    producer for all of them, each from its own checkpoint (what was in flight for the
    others is sent again: duplicates the inboxes skip, never a loss).
    """

    thread_kind = "relay"

    def __init__(self, relays: Sequence[OutboxRelay], *, name: str | None = None) -> None:
        if not relays:
            raise InterfaceError("a relay group needs at least one relay")
        lead = relays[0]
        if any(relay._config != lead._config for relay in relays):
            raise InterfaceError("relays sharing a producer need the same producer settings")
        self.relays = list(relays)
        self.name = name or "+".join(relay.name for relay in relays)
        self.backoff = lead.backoff
        self._config = lead._config
        self._idle_wait = min(relay._idle_wait for relay in relays)
        self._flush_timeout = max(relay._flush_timeout for relay in relays)
        self._producer: Any = None
        self._attempt = 0  # retries since a checkpoint last moved (sets the backoff)
        self._attempt_checkpoints: list[int] = []
        super().__init__()

    def run(self, stop: threading.Event | None = None) -> None:
        """Relay until ``stop`` (or :meth:`stop`) is set; then flush and save the checkpoints.

        Raises :class:`~streamsource.bridge.errors.RelayStopped` on a permanent fault.
        """
        stop = stop or self._stop
        start_producing(
            self.name, self.begin, lambda: self._producer is not None, self._back_off, stop
        )
        wake = threading.Event()
        for relay in self.relays:
            relay._appended.watch(wake)
        stopping: BaseException | None = None
        everything = True  # read every store (at start, after a rest, after a fault)
        try:
            while not stop.is_set():
                wake.clear()  # before reading: an append from now on sets it again
                try:
                    behind = False
                    for relay in self.relays:
                        seq = relay._appended.seq
                        if everything or seq != relay._pumped:
                            relay._pumped = seq
                            behind |= relay.pump(stop) >= relay._batch_size
                    self._producer.poll(0)  # acknowledgements: they move the checkpoints
                    if any(relay._failure is not None for relay in self.relays):
                        self._recover(stop)
                    for relay in self.relays:
                        relay._save(force=False)
                except StreamsourceError as exc:
                    if not exc.retriable:
                        raise RelayStopped(f"relay {self.name} stopped: {exc}", exc) from exc
                    self._back_off(exc, stop)
                    everything = True
                    continue
                everything = behind
                if not behind:
                    # caught up with every store as of `wake.clear()`: an append since ends
                    # the rest at once; acknowledgements are served and checkpoints saved
                    # when it ends, so while some are awaited or unsaved it ends soon
                    rest = min(relay._settled_in() for relay in self.relays)
                    everything = (
                        not wake.wait(min(rest, self._idle_wait)) and rest >= self._idle_wait
                    )
        except BaseException as exc:
            stopping = exc
            raise
        finally:
            for relay in self.relays:
                relay._appended.unwatch(wake)
            end_producing(self.name, self.end, stopping)

    def __enter__(self) -> RelayGroup:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def begin(self) -> None:
        """Load every checkpoint and create the producer."""
        if self._producer is not None:
            return
        for relay in self.relays:
            relay._load()
        producer = self._producer = self._new_producer()
        for relay in self.relays:
            relay._producer = producer
        for relay in self.relays:
            live.track("relay", relay)

    def end(self) -> None:
        """Flush, save every checkpoint and drop the producer."""
        producer, self._producer = self._producer, None
        if producer is None:
            return
        for relay in self.relays:
            live.untrack("relay", relay)
        left = producer.flush(self._flush_timeout)
        if left:
            log.warning("relay %s: %d events unacknowledged at stop", self.name, left)
            producer.purge()
            producer.poll(0)
        failed: StreamsourceError | None = None
        for relay in self.relays:
            relay._producer = None
            try:
                relay._save(force=True)
            except StreamsourceError as exc:  # save the others' before raising
                failed = failed or exc
        if failed is not None:
            raise failed

    def _new_producer(self) -> Any:
        return new_producer(self._config, self._on_client_error)

    def _on_client_error(self, err: Any) -> None:
        # Broker down, connection refused...: the client retries by itself. Only a fatal
        # error (the idempotent producer's state is lost) needs a new producer.
        if not err.fatal():
            log.debug("kafka client: %s", err)
            return
        failure = kafka_error(err, "the producer")
        for relay in self.relays:
            if relay._failure is None:
                relay._failure = failure

    def _back_off(self, fault: StreamsourceError, stop: threading.Event) -> None:
        """Wait before retrying ``fault``, longer each time no checkpoint has moved."""
        checkpoints = [relay.checkpoint for relay in self.relays]
        if checkpoints != self._attempt_checkpoints:
            self._attempt, self._attempt_checkpoints = 0, checkpoints
        delay = self.backoff.delay(self._attempt)
        self._attempt += 1
        for relay in self.relays:
            relay.retries += 1
        log.warning("relay %s: %s; retrying in %.2fs", self.name, fault, delay)
        wait_serving(lambda: self._producer, delay, stop)

    def _recover(self, stop: threading.Event) -> None:
        """After a failed delivery: stop on a permanent fault, else back off and start a new
        producer, every relay from its checkpoint."""
        failure = next(r._failure for r in self.relays if r._failure is not None)
        assert failure is not None
        old = self._producer
        old.flush(min(self._flush_timeout, 5.0))  # let what can still be acked be acked
        old.purge()
        old.poll(0)  # the purged messages' callbacks report errors: handled here
        for relay in self.relays:
            relay._save(force=True)
        for relay in self.relays:
            if relay._failure is not None and not relay._failure.retriable:
                raise relay._failure
        self._back_off(failure, stop)
        self._producer = self._new_producer()
        for relay in self.relays:
            relay.restarts += 1
            log.warning(
                "relay %s: delivery failed (%s); resending from position %d",
                relay.name,
                failure,
                relay.checkpoint + 1,
            )
            relay._restart(relay.checkpoint, self._producer)
