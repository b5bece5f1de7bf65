"""The outbox relay: publishes the store's recorded events to Kafka topics, in order, reliably.

The store *is* the outbox: every appended event has a global position, and the relay reads
``read_all`` from its checkpoint, produces each selected event (see
:mod:`~streamsource.bridge.mapping` and :mod:`~streamsource.bridge.messages`) with an
idempotent producer and ``acks=all``, and saves as its checkpoint the lowest position up to
which the broker acknowledged everything (:class:`~streamsource.bridge.tracker.AckTracker`).

Faults: every error is classified once (store errors by the backend's translation, Kafka
errors by :func:`~streamsource.bridge.errors.kafka_error`). A retriable one (the store busy or
away, the broker away, a delivery timed out, a fatal idempotent-producer state) is retried
after a capped exponential backoff with full jitter (:mod:`~streamsource.bridge.backoff`),
from the checkpoint, indefinitely; any other (a message larger than the topic allows, an
authorization error, a missing table, a full disk) stops the relay: :meth:`OutboxRelay.run`
raises :class:`~streamsource.bridge.errors.RelayStopped` naming the cause, after saving the
checkpoint, which never passes the event that could not be delivered.

Delivery guarantees: after a crash (``kill -9``) of the relay or of the broker, the relay
starts again from its checkpoint, so nothing is lost; the only duplicates are events that
had been sent but not yet checkpointed. Consumers skip those with an inbox
(:mod:`streamsource.bridge.inbox`). A delivery the client gives up on (the broker gone
longer than ``message.timeout.ms``, a fatal idempotence error) makes the relay start a
fresh producer from its checkpoint after a backoff, which again only repeats unconfirmed
events.

Only standard client features are used (librdkafka through confluent-kafka), so the same
relay serves ``streamsource broker`` and any Kafka cluster.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from streamsource.bridge.background import BackgroundLoop
from streamsource.bridge.backoff import Backoff
from streamsource.bridge.checkpoints import CheckpointStore, MemoryCheckpoints
from streamsource.bridge.errors import KafkaClientError, RelayStopped, kafka_error
from streamsource.bridge.mapping import TopicMapping
from streamsource.bridge.messages import OutgoingMessage, message_for, traced
from streamsource.bridge.tracker import AckTracker
from streamsource.errors import InterfaceError, StreamsourceError
from streamsource.eventstore.appended import signal_for
from streamsource.eventstore.events import category_of
from streamsource.eventstore.recorder import ReadAllFilter, StoredRecord
from streamsource.eventstore.store import EventStore
from streamsource.extras import require
from streamsource.kafka.client_security import ClientSecurity
from streamsource.observability import live, metrics, tracing

log = logging.getLogger("streamsource.bridge.relay")
client_log = logging.getLogger("streamsource.bridge.kafka")

PRODUCER_DEFAULTS: Mapping[str, Any] = {
    "enable.idempotence": True,  # retries never duplicate or reorder within a partition
    "acks": "all",
    "linger.ms": 5,
    "partitioner": "murmur2_random",  # the Java client's partitioner: same key, same partition
    "queue.buffering.max.messages": 100_000,  # bounds what the relay holds in memory
}

_REQUIRED_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "enable.idempotence": ("true", "1"),
    "acks": ("all", "-1"),
}

Router = Callable[[StoredRecord], "tuple[str, OutgoingMessage] | None"]
"""Chooses the topic and builds the message of a selected event (None: skip it)."""

ACK_REST = 0.02
"""Seconds a relay group rests at most while acknowledgements are awaited or a checkpoint is
not saved (it serves and saves them when it wakes; an append wakes it sooner)."""

MAX_PENDING = 200_000
"""Events read but not yet below the checkpoint (sent, or skipped behind a sent one) after
which the relay stops reading: bounds its memory while the broker is away."""


class OutboxRelay(BackgroundLoop):
    """Publishes recorded events from ``store`` to Kafka at ``bootstrap``.

    ``mapping`` chooses events and topics; ``checkpoints`` keeps the relay's position under
    ``name`` (default: in memory; :func:`~streamsource.bridge.checkpoints.checkpoints_for`
    gives the one beside a store URL). ``router`` replaces the mapping's topic and the
    standard message for the events the mapping selects (the messaging transport routes
    each outbox message to its channel). ``producer_config`` adds or overrides
    librdkafka settings. Run it with :meth:`run` (blocking), :meth:`start`/:meth:`stop`
    (a thread) or :meth:`run_async` (an asyncio task).
    """

    thread_kind = "relay"

    def __init__(
        self,
        store: EventStore,
        bootstrap: str,
        *,
        mapping: TopicMapping | None = None,
        checkpoints: CheckpointStore | None = None,
        name: str = "default",
        producer_config: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        idle_wait: float = 0.01,
        checkpoint_interval: float = 0.05,
        flush_timeout: float = 10.0,
        backoff: Backoff | None = None,
        router: Router | None = None,
    ) -> None:
        require("confluent_kafka", "kafka", "the outbox relay")  # the client the methods import
        # a kafka:// URL carries its security settings (ClientSecurity): librdkafka's names
        bootstrap, security = ClientSecurity.resolve(bootstrap, producer_config)
        if not 1 <= batch_size <= 100_000:
            raise InterfaceError("batch_size must be between 1 and 100,000")
        self.store = store
        self.mapping = mapping or TopicMapping()
        self.checkpoints = checkpoints or MemoryCheckpoints()
        self.name = name
        self._config: dict[str, Any] = {
            **PRODUCER_DEFAULTS,
            "logger": client_log,
            **(producer_config or {}),
            **security.librdkafka(),
            "bootstrap.servers": bootstrap,
        }
        for key, required in _REQUIRED_SETTINGS.items():
            if str(self._config[key]).lower() not in required:
                raise InterfaceError(
                    f"the relay needs {key}={required[0]} (its checkpoint relies on it),"
                    f" not {self._config[key]!r}"
                )
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._checkpoint_interval = checkpoint_interval
        self._flush_timeout = flush_timeout
        self.backoff = backoff or Backoff()
        self._filter = _db_filter(self.mapping)
        self._router = router
        self._appended = signal_for(store.recorder)
        super().__init__()
        self._saved = -1
        self._tracker = AckTracker(0)
        self._next = 1
        self._failure: KafkaClientError | None = None
        self._producer: Any = None
        self._attempt = 0  # retries since the checkpoint last moved (sets the backoff)
        self._attempt_checkpoint = -1
        self._pumped = -1  # in a RelayGroup: the append signal's count when pump last began
        self.published = 0  # events the broker acknowledged (duplicates after restarts included)
        self.restarts = 0  # producers replaced after a failed delivery
        self.retries = 0  # waits after a retriable fault

    # -- running --------------------------------------------------------------------------

    @property
    def checkpoint(self) -> int:
        """The position up to which every selected event was acknowledged (and is saved soon)."""
        return self._tracker.checkpoint

    @property
    def saved_checkpoint(self) -> int:
        """The checkpoint last written to the checkpoint store (-1 before the first run)."""
        return self._saved

    def lag(self) -> int:
        """Positions of the global log recorded and not yet acknowledged by Kafka (events
        the mapping does not select count until the relay has read past them)."""
        return max(0, self.store.head_position() - self._tracker.checkpoint)

    def run(self, stop: threading.Event | None = None) -> None:
        """Relay until ``stop`` (or :meth:`stop`) is set; then flush and save the checkpoint.

        Raises :class:`~streamsource.bridge.errors.RelayStopped` on a permanent fault.
        """
        stop = stop or self._stop
        start_producing(
            self.name, self._begin, lambda: self._producer is not None, self._back_off, stop
        )
        stopping: BaseException | None = None
        try:
            while not stop.is_set():
                seen = self._appended.seq  # before reading: a later append ends the wait
                try:
                    moved = self.pump(stop)
                    if self._failure is not None:
                        self._recover(stop)
                    self._save(force=False)
                except StreamsourceError as exc:
                    if not exc.retriable:
                        raise RelayStopped(f"relay {self.name} stopped: {exc}", exc) from exc
                    self._back_off(exc, stop)
                    continue
                if moved < self._batch_size:
                    # caught up with the log as of `seen` (a partial batch: reading again at
                    # once would only find what appended since, which ends this wait anyway);
                    # an append in this process ends the wait at once (acknowledgements are
                    # served at the next turn)
                    self._producer.poll(0)
                    self._appended.wait(seen, self._idle_wait)
        except BaseException as exc:
            stopping = exc
            raise
        finally:
            end_producing(self.name, self._end, stopping)

    def _back_off(self, fault: StreamsourceError, stop: threading.Event) -> None:
        """Wait before retrying ``fault``, longer each time the checkpoint has not moved."""
        checkpoint = self._tracker.checkpoint
        if checkpoint != self._attempt_checkpoint:
            self._attempt, self._attempt_checkpoint = 0, checkpoint
        delay = self.backoff.delay(self._attempt)
        self._attempt += 1
        self.retries += 1
        log.warning("relay %s: %s; retrying in %.2fs", self.name, fault, delay)
        wait_serving(lambda: self._producer, delay, stop)

    def pump(self, stop: threading.Event | None = None) -> int:
        """Read one batch after the last read position and hand it to the producer.

        Returns the number of events read. :meth:`run` calls this in a loop; call it yourself
        only between :meth:`open` and :meth:`close`.
        """
        producer = self._producer
        if producer is None:
            raise InterfaceError("the relay is not open")
        if self._failure is not None:
            return 0  # a delivery failed: run() recovers before reading on
        if self._tracker.pending >= MAX_PENDING:
            producer.poll(0.05)  # the broker is behind: wait for acknowledgements first
            return 0
        recorder = self.store.recorder
        head = recorder.head_position()
        if head < self._next:  # nothing new: spare the read (an idle relay looks often)
            producer.poll(0)
            return 0
        records = recorder.read_all(
            from_position=self._next, limit=self._batch_size, filter=self._filter
        )
        count = 0
        tracker = self._tracker
        try:
            for record in records:
                count += 1
                if not self._publish(producer, tracker, record, stop):
                    return count  # stopping while the client's queue was full
                self._next = record.position + 1
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()
        if count < self._batch_size and head >= self._next:
            # caught up: nothing at or below `head` remains unread, selected or not
            tracker.skipped(head)
            self._next = head + 1
        producer.poll(0)
        return count

    def open(self) -> None:
        """Load the checkpoint and create the producer (``run`` does this itself)."""
        self._begin()

    def close(self) -> None:
        """Flush, save the checkpoint and drop the producer (``run`` does this itself)."""
        self._end()

    async def run_async(self) -> None:
        """Relay in a worker thread until this task is cancelled (then flush and checkpoint)."""
        stop = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self.run, stop))
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            stop.set()
            await worker  # the relay flushes and saves its checkpoint before we return
            raise

    def wait_for(self, position: int, timeout: float = 30.0) -> bool:
        """Wait until every selected event up to ``position`` is acknowledged and saved."""
        deadline = time.monotonic() + timeout
        while self._saved < position:
            if self._error is not None or time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def __enter__(self) -> OutboxRelay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    def _begin(self) -> None:
        if self._producer is not None:
            return
        self._load()
        self._producer = self._new_producer()
        live.track("relay", self)

    def _load(self) -> None:
        """Start from the saved checkpoint (a RelayGroup then hands over its producer)."""
        start = self.checkpoints.load(self.name)
        self._saved = start
        self._restart(start, None)
        log.info("relay %s starting after position %d", self.name, start)

    def _restart(self, checkpoint: int, producer: Any) -> None:
        self._tracker = AckTracker(checkpoint)
        self._next = checkpoint + 1
        self._failure = None
        self._producer = producer

    def _settled_in(self) -> float:
        """Seconds until this relay has something to do without an append (in a group):
        serve awaited acknowledgements (soon), save a moved checkpoint (when due), else
        nothing (inf)."""
        if self._tracker.in_flight:
            return ACK_REST
        if self._tracker.checkpoint != self._saved:
            return max(0.0, self._last_save + self._checkpoint_interval - time.monotonic())
        return math.inf

    def _end(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        live.untrack("relay", self)
        left = producer.flush(self._flush_timeout)
        if left:
            log.warning("relay %s: %d events unacknowledged at stop", self.name, left)
            producer.purge()
            producer.poll(0)
        self._save(force=True)

    def _new_producer(self) -> Any:
        return new_producer(self._config, self._on_client_error)

    def _publish(
        self,
        producer: Any,
        tracker: AckTracker,
        record: StoredRecord,
        stop: threading.Event | None,
    ) -> bool:

        category = category_of(record.stream)
        if not self.mapping.selects(category, record.type):
            tracker.skipped(record.position)
            return True
        if self._router is None:
            message = message_for(record)
            topic = self.mapping.topic_for(category)
        elif (routed := self._router(record)) is not None:
            topic, message = routed
        else:
            tracker.skipped(record.position)
            return True
        if tracing.TRACER is not None:
            parent = tracing.metadata_traceparent(record.metadata)
            with tracing.span(
                "streamsource.relay.publish",
                parent=parent,
                kind="PRODUCER",
                attributes={
                    "messaging.destination.name": topic,
                    "streamsource.position": record.position,
                },
            ):
                return self._send(producer, tracker, record, topic, traced(message), stop)
        return self._send(producer, tracker, record, topic, message, stop)

    def _send(
        self,
        producer: Any,
        tracker: AckTracker,
        record: StoredRecord,
        topic: str,
        message: OutgoingMessage,
        stop: threading.Event | None,
    ) -> bool:
        from confluent_kafka import KafkaException

        callback = partial(self._on_delivery, tracker, record.position)
        while True:
            try:
                producer.produce(
                    topic, message.value, message.key, headers=message.headers, on_delivery=callback
                )
            except BufferError:  # the client's queue is full: wait for acknowledgements
                producer.poll(0.05)
                if (stop is not None and stop.is_set()) or self._failure is not None:
                    return False
                continue
            except KafkaException as exc:  # refused at once (too large for the client...)
                self._count(metrics.INSTRUMENTS, ok=False)
                raise kafka_error(exc.args[0], f"producing position {record.position}") from None
            tracker.sent(record.position)
            return True

    def _on_delivery(self, tracker: AckTracker, position: int, err: Any, _msg: Any) -> None:
        instruments = metrics.INSTRUMENTS
        if err is None:
            tracker.acked(position)
            self.published += 1
            self._count(instruments, ok=True)
            return
        self._count(instruments, ok=False)
        if tracker is self._tracker and self._failure is None:
            self._failure = kafka_error(err, f"delivering position {position}")

    def _count(self, instruments: metrics.Instruments | None, *, ok: bool) -> None:
        if instruments is not None:
            metric = instruments.relay_published if ok else instruments.relay_send_errors
            instruments.child(metric, self.name).inc()

    def _on_client_error(self, err: Any) -> None:
        # Broker down, connection refused...: the client retries by itself. Only a fatal
        # error (the idempotent producer's state is lost) needs a new producer.
        if err.fatal():
            self._failure = kafka_error(err, "the producer")
        else:
            log.debug("kafka client: %s", err)

    def _recover(self, stop: threading.Event) -> None:
        """After a failed delivery: stop on a permanent fault, else back off and start a new
        producer from the checkpoint."""
        failure = self._failure
        assert failure is not None
        old = self._producer
        old.flush(min(self._flush_timeout, 5.0))  # let what can still be acked be acked
        old.purge()
        old.poll(0)  # the purged messages' callbacks report errors: already handled here
        self._save(force=True)
        if not failure.retriable:
            raise failure
        self._back_off(failure, stop)
        self.restarts += 1
        log.warning(
            "relay %s: delivery failed (%s); resending from position %d",
            self.name,
            failure,
            self._tracker.checkpoint + 1,
        )
        self._failure = None
        self._tracker = AckTracker(self._tracker.checkpoint)
        self._next = self._tracker.checkpoint + 1
        self._producer = self._new_producer()

    _last_save = 0.0

    def _save(self, *, force: bool) -> None:
        checkpoint = self._tracker.checkpoint
        if checkpoint == self._saved:
            return
        now = time.monotonic()
        if not force and now - self._last_save < self._checkpoint_interval:
            return
        self.checkpoints.save(self.name, checkpoint)
        self._saved = checkpoint
        self._last_save = now


def _db_filter(mapping: TopicMapping) -> ReadAllFilter | None:
    """Push what the database can filter (one category, the types) into ``read_all``."""
    categories = mapping.categories
    category = next(iter(categories)) if categories is not None and len(categories) == 1 else None
    if category is None and mapping.types is None:
        return None
    return ReadAllFilter(category=category, types=mapping.types)


# -- shared by OutboxRelay's loop and RelayGroup's ------------------------------------------


def start_producing(
    name: str,
    begin: Callable[[], None],
    started: Callable[[], bool],
    back_off: Callable[[StreamsourceError, threading.Event], None],
    stop: threading.Event,
) -> None:
    """Call ``begin`` until ``started()`` (or ``stop``), backing off after retriable faults;
    a permanent one raises :class:`RelayStopped`."""
    while not started() and not stop.is_set():
        try:
            begin()
        except StreamsourceError as exc:
            if not exc.retriable:
                raise RelayStopped(f"relay {name} cannot start: {exc}", exc) from exc
            back_off(exc, stop)


def end_producing(name: str, end: Callable[[], None], stopping: BaseException | None) -> None:
    """Run ``end`` (flush, save the checkpoint) as a relay's loop ends; its fault raises
    :class:`RelayStopped` unless the loop already ends by ``stopping``, which then wins."""
    try:
        end()
    except StreamsourceError as exc:
        if stopping is None:
            raise RelayStopped(f"relay {name} stopped: {exc}", exc) from exc
        log.error("relay %s: the final checkpoint was not saved: %s", name, exc)


def wait_serving(producer: Callable[[], Any], delay: float, stop: threading.Event) -> None:
    """Wait ``delay`` seconds (less if ``stop``), serving the current producer's delivery
    callbacks meanwhile."""
    deadline = time.monotonic() + delay
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        current = producer()
        if current is None:
            stop.wait(left)
        else:
            current.poll(min(left, 0.1))


def new_producer(config: Mapping[str, Any], on_error: Callable[[Any], None]) -> Any:
    """A confluent-kafka producer with ``config``; bad settings raise KafkaClientError."""
    from confluent_kafka import KafkaException, Producer

    try:
        return Producer({**config, "error_cb": on_error})
    except KafkaException as exc:
        raise KafkaClientError(f"cannot create the Kafka producer: {exc}") from None
