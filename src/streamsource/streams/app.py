"""The stream-processing app: one consumer-group member running the dataflow.

The loop: consume a batch (``consume(num_messages=batch_size)``), split it into runs of one
partition, push each run through the graph from its topic's node, and every
``checkpoint_interval`` seconds make a checkpoint:

* ``at-least-once``: send the stores' changes to their changelogs and go on processing;
  once the broker has acknowledged everything produced before the checkpoint (outputs and
  changelogs), write the stores' files and commit the offsets the checkpoint noted. A crash
  before that commit replays the records since the last one. One checkpoint is in flight at
  a time: if the previous one is still unanswered when the next is due, the loop waits.
* ``exactly-once``: everything since the last checkpoint is one Kafka transaction: outputs,
  changelog records and the consumer's offsets (``send_offsets_to_transaction``). Readers
  with ``isolation.level=read_committed`` see a checkpoint's outputs all or not at all; a
  member that restarts (same ``transactional_id``: by default derived from the group and the
  state directory) fences and aborts its predecessor's open transaction.

Partitions assigned to this member have their stores restored from the changelogs before
any record is processed (inside the assignment callback); partitions revoked are
checkpointed first. The event store can be a source too (:meth:`App.from_store`): it is read
through a catch-up subscription whose position is kept in the state directory, at least once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamsource.bridge.errors import kafka_error
from streamsource.extras import require
from streamsource.kafka.client_security import ClientSecurity
from streamsource.streams.dataflow import Node, Record
from streamsource.streams.errors import BadRecord, DataflowError, StreamsError
from streamsource.streams.kafka_io import DeliveryErrors, ensure_topics, restore
from streamsource.streams.sources import SourcePositions, StoreSource
from streamsource.streams.state import BACKENDS, StoreFile
from streamsource.streams.stream import Stream, Table, Topic, make_topic

log = logging.getLogger("streamsource.streams")
GUARANTEES = ("at-least-once", "exactly-once")


@dataclass
class Progress:
    """What ``run(progress=...)`` reports every ``progress_interval`` seconds."""

    records: int  # processed since the start
    records_per_second: float  # since the last report
    lag: dict[str, int]  # "topic[partition]" -> records not yet processed


class _Partition:
    """The context of one source partition (see dataflow.Context)."""

    def __init__(self, app: App, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.node_state: dict[int, Any] = {}
        self.produce = app._produce
        self._app = app

    def store(self, name: str) -> StoreFile:
        return self._app._store_file(name, self.partition)


class App:
    """A stream-processing app: declare topics and streams, then :meth:`run`.

    ``bootstrap`` is any Kafka cluster's address (``host:port,...``, or a
    ``kafka://user:password@host:port?sasl.mechanism=...`` URL for a secured one); ``group`` the consumer group (and the
    prefix of internal topics). ``state_dir`` holds this member's stores (one directory per
    member), in SQLite files or, with ``state_backend="rocksdict"`` (the ``streams`` extra),
    RocksDB. ``consumer_config``/``producer_config`` add librdkafka settings.
    """

    def __init__(
        self,
        bootstrap: str,
        group: str,
        *,
        state_dir: str | Path = ".streamsource-state",
        processing_guarantee: str = "at-least-once",
        checkpoint_interval: float = 1.0,
        batch_size: int = 10_000,
        poll_timeout: float = 0.1,
        auto_offset_reset: str = "earliest",
        transactional_id: str | None = None,
        consumer_config: dict[str, Any] | None = None,
        producer_config: dict[str, Any] | None = None,
        restore_timeout: float = 300.0,
        state_backend: str = "sqlite",
    ) -> None:
        if processing_guarantee not in GUARANTEES:
            raise DataflowError(
                f"processing_guarantee must be one of {GUARANTEES}, got {processing_guarantee!r}"
            )
        if not 1 <= batch_size <= 1_000_000:
            raise DataflowError("batch_size must be between 1 and 1,000,000")
        if checkpoint_interval <= 0:
            raise DataflowError("checkpoint_interval must be positive")
        self.bootstrap = bootstrap
        self.group = group
        self.state_dir = Path(state_dir) / group
        self.exactly_once = processing_guarantee == "exactly-once"
        self.checkpoint_interval = checkpoint_interval
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.restore_timeout = restore_timeout
        if state_backend not in BACKENDS:
            raise DataflowError(f"state_backend must be one of {BACKENDS}, got {state_backend!r}")
        self.state_backend = state_backend
        digest = hashlib.sha1(str(self.state_dir.resolve()).encode()).hexdigest()[:12]
        self.transactional_id = transactional_id or f"{group}-{digest}"
        # a kafka:// URL, or security.protocol/sasl.*/ssl.* among the consumer settings,
        # secures every client of the app: consumer, producer, admin, changelog restore
        servers, security = ClientSecurity.resolve(bootstrap, consumer_config)
        self._client: dict[str, Any] = {
            **security.librdkafka(),
            "bootstrap.servers": servers,
            "logger": log,
        }
        self._consumer_config = {
            **self._client,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": auto_offset_reset,
            "isolation.level": "read_committed" if self.exactly_once else "read_uncommitted",
            "fetch.wait.max.ms": 50,
            # once a partition's prefetch queue passes queued.min.messages, librdkafka 2.x
            # waits this long before fetching it again (default 1 s): a fast app drains the
            # queue in a fraction of that and then sits idle (measured: half the run time)
            "fetch.queue.backoff.ms": 10,
            **(consumer_config or {}),
        }
        self._producer_config = {
            **self._client,
            "linger.ms": 5,
            "acks": "all",
            "enable.idempotence": True,
            "queue.buffering.max.messages": 1_000_000,
            **(
                {"transactional.id": self.transactional_id, "transaction.timeout.ms": 10_000}
                if self.exactly_once
                else {}
            ),
            **(producer_config or {}),
        }
        self._topics: dict[str, tuple[Topic, Node]] = {}
        self._store_sources: list[StoreSource] = []
        self._internal: dict[str, Topic] = {}
        self._repartitions: list[tuple[Node, Topic]] = []
        self._outputs: list[Topic] = []
        self._store_names: set[str] = set()
        self._names = 0
        self._stop = threading.Event()
        # while running
        self._consumer: Any = None
        self._producer: Any = None
        self._partitions: dict[tuple[str, int], _Partition] = {}
        self._files: dict[tuple[str, int], StoreFile] = {}
        self._offsets: dict[tuple[str, int], int] = {}
        self._epoch = _Epoch()  # deliveries of what was produced since the last checkpoint
        self._pending: _Pending | None = None  # the at-least-once checkpoint in flight
        self._in_transaction = False
        self._changelogs: dict[str, str] = {}  # store name -> changelog topic
        self._store_topics: dict[str, list[str]] = {}  # store name -> source topics feeding it
        self._positions: SourcePositions | None = None
        self.processed = 0

    # -- declaring the dataflow --------------------------------------------------------------

    def topic(self, name: str, *, key: Any = str, value: Any = Any, partitions: int = 1,
              config: dict[str, str] | None = None) -> Topic:  # fmt: skip
        """A topic whose keys and values are read and written with ``key``/``value``: a
        serializer, ``str``, ``bytes`` or a type read as JSON (struct, dataclass, dict)."""
        return make_topic(name, key, value, partitions, config)

    def stream(self, topic: Topic | str) -> Stream:
        """The stream of a topic's records (``key``, ``value``, timestamp)."""
        if isinstance(topic, str):
            topic = self.topic(topic)
        if topic.name not in self._topics:
            self._topics[topic.name] = (topic, Node())
        return Stream(self, self._topics[topic.name][1])

    def table(self, topic: Topic | str) -> Table:
        """The latest value per key of a (compacted) topic, to join streams with."""
        return Table(self, self.topic(topic) if isinstance(topic, str) else topic)

    def from_store(self, store: Any, *, stream: str | None = None, category: str | None = None,
                   types: list[str] | None = None, name: str | None = None) -> Stream:  # fmt: skip
        """The events of the event store's ``$all`` (default), a category or a stream, history
        then live, as records keyed by stream name whose value is the ``RecordedEvent``."""
        source = StoreSource(store, stream=stream, category=category, types=types, name=name)
        if any(s.name == source.name for s in self._store_sources):
            raise DataflowError(f"the store source {source.name!r} is declared twice")
        self._store_sources.append(source)
        return Stream(self, source.node)

    def _next_name(self, operation: str) -> str:
        self._names += 1
        return f"{operation}-{self._names}"

    def _store_name(self, name: str | None, operation: str) -> str:
        name = name or self._next_name(operation)
        if name in self._store_names:
            raise DataflowError(f"the state store name {name!r} is used twice")
        self._store_names.add(name)
        return name

    def _internal_topic(self, kind: str, name: str, key: Any, value: Any) -> Topic:
        topic = make_topic(f"{self.group}-{kind}-{name}", key, value)
        if topic.name in self._internal:
            raise DataflowError(f"the {kind} name {name!r} is used twice")
        self._internal[topic.name] = topic
        return topic

    # -- running -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` (in another thread) to checkpoint, leave the group and return."""
        self._stop.set()

    def run(self, *, stop: threading.Event | None = None,
            progress: Callable[[Progress], None] | None = None,
            progress_interval: float = 5.0) -> None:  # fmt: skip
        """Process until :meth:`stop` (or ``stop`` is set); checkpoint on the way out."""
        require("confluent_kafka", "kafka", "a stream-processing app")
        stop = stop or self._stop
        if self.exactly_once and self._store_sources:
            raise DataflowError(
                "event-store sources are at-least-once; use processing_guarantee='at-least-once'"
            )
        self._start()
        last_checkpoint = last_report = time.monotonic()
        reported = 0
        clean = False
        try:
            while not stop.is_set():
                if self._consumer is not None:
                    self._poll_kafka()
                for source in self._store_sources:
                    self._poll_store(source, 0 if self._consumer is not None else self.poll_timeout)
                pending = self._pending
                if pending is not None:
                    if self._consumer is None:  # (_poll_kafka serves the callbacks)
                        self._producer.poll(0)
                    if pending.epoch.answered():
                        self._finish_checkpoint(wait=False)
                now = time.monotonic()
                if now - last_checkpoint >= self.checkpoint_interval:
                    self._checkpoint(wait=False)
                    last_checkpoint = now
                if progress is not None and now - last_report >= progress_interval:
                    rate = (self.processed - reported) / (now - last_report)
                    progress(Progress(self.processed, rate, self.lag()))
                    last_report, reported = now, self.processed
            self._checkpoint()
            clean = True
        finally:
            self._shutdown(clean)

    def lag(self) -> dict[str, int]:
        """Records not yet processed per assigned partition (from the last fetch's high watermark)."""
        from confluent_kafka import TopicPartition

        lags: dict[str, int] = {}
        consumer = self._consumer
        if consumer is None:
            return lags
        for topic, partition in list(self._partitions):
            if topic not in self._topics:
                continue
            tp = TopicPartition(topic, partition)
            try:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
                position = consumer.position([tp])[0].offset
            except Exception:  # a partition revoked meanwhile: no lag to report
                continue
            if high >= 0:
                lags[f"{topic}[{partition}]"] = max(0, high - max(position, 0))
        return lags

    def _start(self) -> None:
        from confluent_kafka import Consumer, Producer
        from confluent_kafka.admin import AdminClient

        self._stop.clear()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._positions = (
            SourcePositions(self.state_dir / "sources.sqlite") if self._store_sources else None
        )
        self._plan_stores()
        self._producer = Producer(self._producer_config)  # every produce names its _Epoch
        if self._topics or self._changelogs or self._outputs:
            admin = AdminClient(self._client)
            sources = {
                name: (t.partitions, t.config)
                for name, (t, _n) in self._topics.items()
                if name not in self._internal
            }
            sources.update(
                {
                    t.name: (t.partitions, t.config)
                    for t in self._outputs
                    if t.name not in self._internal
                }
            )
            counts = ensure_topics(admin, sources, 30.0) if sources else {}
            for node, topic in self._repartitions:  # as many partitions as what feeds it
                feeding = [
                    counts[n]
                    for n, (_t, root) in self._topics.items()
                    if n in counts and _reaches(root, node)
                ]
                counts.update(
                    ensure_topics(admin, {topic.name: (max(feeding, default=1), {})}, 30.0)
                )
            changelogs = {}
            for store, changelog in self._changelogs.items():
                feeding = [counts.get(t, 1) for t in self._store_topics[store]]
                changelogs[changelog] = (max(feeding, default=1), {"cleanup.policy": "compact"})
            ensure_topics(admin, changelogs, 30.0)
        if self.exactly_once:
            try:
                self._producer.init_transactions(30.0)
            except Exception as exc:
                raise _client_error(exc, "initialising transactions") from None
        for source in self._store_sources:
            assert self._positions is not None
            self._restore_partitions(
                [(s, 0) for s, feeding in self._store_topics.items() if source.name in feeding]
            )
            source.open(self._positions.get(source.name))
            self._partitions[(source.name, 0)] = _Partition(self, source.name, 0)
        if self._topics:
            self._consumer = Consumer(self._consumer_config)
            self._consumer.subscribe(list(self._topics), on_assign=self._on_assign,
                                     on_revoke=self._on_revoke, on_lost=self._on_lost)  # fmt: skip

    def _plan_stores(self) -> None:
        """Which stores each source feeds, and their changelog topics."""
        self._store_topics = {}
        roots = [(name, root) for name, (_t, root) in self._topics.items()]
        roots += [(s.name, s.node) for s in self._store_sources]
        for source, root in roots:
            for store in _stores_below(root):
                self._store_topics.setdefault(store, []).append(source)
        self._changelogs = {s: f"{self.group}-changelog-{s}" for s in self._store_topics}

    # -- the consumer's side -------------------------------------------------------------------

    def _poll_kafka(self) -> None:
        from confluent_kafka import KafkaError, KafkaException

        consumer = self._consumer
        try:
            # what is there now, up to a batch; if nothing, wait for one record and take
            # what came with it (consume(n, timeout) would wait the whole timeout for n)
            messages = consumer.consume(self.batch_size, 0)
            if not messages:
                first = consumer.poll(self.poll_timeout)
                if first is not None:
                    messages = [first, *consumer.consume(self.batch_size - 1, 0)]
        except KafkaException as exc:
            raise kafka_error(exc.args[0], f"app {self.group}") from None
        if not messages:
            self._producer.poll(0)
            return
        topics = self._topics
        run: list[Record] = []
        current: tuple[str, int] | None = None
        key_loads = value_loads = None
        last = -1
        try:
            for m in messages:
                error = m.error()
                if error is not None:
                    if error.fatal() or error.code() not in (
                        KafkaError._PARTITION_EOF,
                        KafkaError._TRANSPORT,
                    ):
                        raise kafka_error(error, f"app {self.group}")
                    continue
                tp = (m.topic(), m.partition())
                if tp != current:
                    if run:
                        self._process(current, run, last)  # type: ignore[arg-type]
                        run = []
                    current = tp
                    topic = topics[tp[0]][0]
                    key_loads, value_loads = topic.key.loads, topic.value.loads
                raw_key, raw_value, last = m.key(), m.value(), m.offset()
                run.append((
                    None if raw_key is None else key_loads(raw_key),  # type: ignore[misc]
                    None if raw_value is None else value_loads(raw_value),  # type: ignore[misc]
                    m.timestamp()[1],
                    last,
                ))  # fmt: skip
        except BadRecord as exc:
            raise BadRecord(f"{m.topic()}[{m.partition()}]@{m.offset()}: {exc}") from None
        if run:
            self._process(current, run, last)  # type: ignore[arg-type]
        self._producer.poll(0)

    def _process(self, tp: tuple[str, int], records: list[Record], last: int) -> None:
        if self.exactly_once and not self._in_transaction:
            try:
                self._producer.begin_transaction()
            except Exception as exc:
                raise _client_error(exc, "beginning a transaction") from None
            self._in_transaction = True
        context = self._partitions.get(tp)
        if context is None:  # assigned without the callback (should not happen): restore now
            self._assign([tp])
            context = self._partitions[tp]
        self._topics[tp[0]][1].push(records, context)
        self._offsets[tp] = last + 1
        self.processed += len(records)

    def _poll_store(self, source: StoreSource, timeout: float) -> None:
        records = source.read(self.batch_size, timeout)
        if records:
            source.node.push(records, self._partitions[(source.name, 0)])
            self.processed += len(records)

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, timestamp: int) -> None:
        producer, epoch = self._producer, self._epoch
        try:
            producer.produce(topic, value, key, timestamp=timestamp if timestamp > 0 else 0,
                             on_delivery=epoch)  # fmt: skip
        except BufferError:  # the queue is full: let deliveries drain, then once more
            producer.poll(1.0)
            producer.produce(topic, value, key, timestamp=timestamp if timestamp > 0 else 0,
                             on_delivery=epoch)  # fmt: skip
        epoch.produced += 1

    def _produce_changelog(self, topic: str, value: bytes | None, key: bytes, *, partition: int,
                           on_delivery: Any = None) -> None:  # fmt: skip
        producer, epoch = self._producer, self._epoch
        answer = epoch if on_delivery is None else epoch.then(on_delivery)
        try:
            producer.produce(topic, value, key, partition=partition, on_delivery=answer)
        except BufferError:
            producer.poll(1.0)
            producer.produce(topic, value, key, partition=partition, on_delivery=answer)
        epoch.produced += 1

    # -- checkpoints -------------------------------------------------------------------------

    def _checkpoint(self, wait: bool = True) -> None:
        """``wait=False`` (the periodic checkpoint, at least once) returns once the changelog
        records are sent (the run loop finishes it when they are acknowledged) and commits the
        offsets without waiting for the answer: a lost commit only replays records.
        ``wait=True`` (revocation, stop) returns with everything written and committed."""
        if self.exactly_once:
            if self._in_transaction:
                self._checkpoint_transaction()
            return
        carried: dict[tuple[str, int], int] = {}
        if self._pending is not None:  # still unanswered after a whole interval: wait
            # (when this checkpoint waits too, the two commit their offsets as one)
            carried = self._finish_checkpoint(wait=True, commit=not wait)
        files = dict(self._files)
        for f in files.values():
            f.send_changelog(self._produce_changelog)
        positions = {s.name: s.checkpoint for s in self._store_sources}
        self._pending = _Pending(self._epoch, files, {**carried, **self._offsets}, positions)
        self._epoch, self._offsets = _Epoch(), {}
        if wait:
            self._finish_checkpoint(wait=True)

    def _finish_checkpoint(self, wait: bool, commit: bool = True) -> dict[tuple[str, int], int]:
        """Complete the checkpoint in flight once all it covers is answered (``wait``: flush
        until it is); the offsets it noted, unless ``commit``ted here."""
        pending, producer = self._pending, self._producer
        assert pending is not None
        if wait and not pending.epoch.answered() and producer.flush(30.0):
            raise StreamsError("the producer could not deliver everything within 30 s")
        pending.epoch.check()
        self._pending = None
        for key, f in pending.files.items():
            if self._files.get(key) is f:  # not released meanwhile (a lost partition)
                f.write_checkpoint()
        if self._positions is not None:
            for name, position in pending.positions.items():
                self._positions.save(name, position)
        if not commit:
            return pending.offsets
        if pending.offsets:
            self._commit_offsets(pending.offsets, wait)
        return {}

    def _checkpoint_transaction(self) -> None:
        files = list(self._files.values())
        for f in files:
            f.send_changelog(self._produce_changelog)
        if self._producer.flush(30.0):
            raise StreamsError("the producer could not deliver everything within 30 s")
        self._epoch.check()
        self._commit_transaction()
        for f in files:
            f.write_checkpoint()
        self._offsets.clear()
        self._epoch = _Epoch()

    def _commit_transaction(self) -> None:
        from confluent_kafka import TopicPartition

        offsets = [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()]
        producer = self._producer
        try:
            if offsets:
                metadata = self._consumer.consumer_group_metadata()
                producer.send_offsets_to_transaction(offsets, metadata, 30.0)
            producer.commit_transaction(30.0)
        except Exception as exc:
            error = _client_error(exc, "committing a transaction")
            self._abort()
            raise error from None
        self._in_transaction = False

    def _abort(self) -> None:
        """Abort the open transaction and forget state changes made inside it."""
        if self._in_transaction:
            try:
                self._producer.abort_transaction(30.0)
            except Exception as exc:
                log.warning("app %s: could not abort the transaction: %s", self.group, exc)
            self._in_transaction = False
        self._epoch = _Epoch()  # the aborted messages' answers (purged) concern no checkpoint
        for f in self._files.values():
            f.drop_unsaved()
        for context in self._partitions.values():
            context.node_state.clear()

    def _commit_offsets(self, noted: dict[tuple[str, int], int], wait: bool) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(t, p, o) for (t, p), o in noted.items()]
        try:
            if not wait:
                self._consumer.commit(offsets=offsets, asynchronous=True)
                return
            answer = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # a rebalance took a partition: its new owner replays
            log.info("app %s: offsets not committed (%s)", self.group, exc)
            return
        refused = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in answer or () if tp.error]
        if refused:
            log.info("app %s: offsets not committed for %s", self.group, ", ".join(refused))

    # -- partitions come and go ------------------------------------------------------------------

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        self._assign([(tp.topic, tp.partition) for tp in partitions])

    def _assign(self, tps: list[tuple[str, int]]) -> None:
        wanted = [
            (store, p)
            for t, p in tps
            for store, feeding in self._store_topics.items()
            if t in feeding
        ]
        self._restore_partitions(wanted)
        for t, p in tps:
            self._partitions[(t, p)] = _Partition(self, t, p)
        log.info(
            "app %s: assigned %s", self.group, ", ".join(f"{t}[{p}]" for t, p in tps) or "nothing"
        )

    def _restore_partitions(self, stores: list[tuple[str, int]]) -> None:
        new = [(s, p) for s, p in dict.fromkeys(stores) if (s, p) not in self._files]
        opened = [self._open_file(s, p) for s, p in new]
        if opened:
            count = restore(self._client, opened, self.restore_timeout)
            log.info(
                "app %s: restored %d changelog records into %d stores",
                self.group,
                count,
                len(opened),
            )

    def _open_file(self, store: str, partition: int) -> StoreFile:
        path = self.state_dir / store / f"{partition}.sqlite"
        f = StoreFile(path, self._changelogs[store], partition, self.state_backend)
        self._files[(store, partition)] = f
        return f

    def _store_file(self, store: str, partition: int) -> StoreFile:
        f = self._files.get((store, partition))
        if f is None:  # a store no source was found to feed (cannot happen for a built graph)
            raise StreamsError(f"the state store {store}[{partition}] is not restored")
        return f

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        self._checkpoint()
        self._release([(tp.topic, tp.partition) for tp in partitions])

    def _on_lost(self, _consumer: Any, partitions: list[Any]) -> None:
        if self.exactly_once:
            self._abort()
        self._release([(tp.topic, tp.partition) for tp in partitions])

    def _release(self, tps: list[tuple[str, int]]) -> None:
        for tp in tps:
            self._partitions.pop(tp, None)
            self._offsets.pop(tp, None)
            if self._pending is not None:
                self._pending.offsets.pop(tp, None)
        held = {p for (_t, p) in self._partitions}
        for key in [k for k in self._files if k[1] not in held]:
            self._files.pop(key).close()

    def _shutdown(self, clean: bool) -> None:
        if not clean and self.exactly_once and self._producer is not None:
            self._abort()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except Exception as exc:
                log.warning("app %s: closing the consumer: %s", self.group, exc)
        if self._producer is not None:
            self._producer.flush(10.0)
            self._producer = None
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._partitions.clear()
        for source in self._store_sources:
            source.close()
        if self._positions is not None:
            self._positions.close()


class _Epoch:
    """The delivery callback of every message produced between two checkpoints: counts the
    answers, so a checkpoint knows when the broker has all it covers (answers of messages
    produced after it do not count, whatever their order)."""

    __slots__ = ("_answers", "_errors", "produced")

    def __init__(self) -> None:
        self.produced = 0
        self._answers = 0
        self._errors = DeliveryErrors()

    def __call__(self, error: Any, message: Any) -> None:
        self._answers += 1
        if error is not None:
            self._errors(error, message)

    def then(self, callback: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def both(error: Any, message: Any) -> None:
            self(error, message)
            callback(error, message)

        return both

    def answered(self) -> bool:
        """Every message produced in this epoch answered (delivered or failed)."""
        return self._answers >= self.produced

    def check(self) -> None:
        """Raise the first failed delivery of the epoch."""
        self._errors.check()


@dataclass
class _Pending:
    """An at-least-once checkpoint whose changelog records and outputs are in flight."""

    epoch: _Epoch
    files: dict[tuple[str, int], StoreFile]
    offsets: dict[tuple[str, int], int]  # to commit once ``epoch`` is answered
    positions: dict[str, int | None]  # event-store sources' positions, likewise


def _stores_below(node: Node) -> list[str]:
    seen: set[int] = set()
    found: list[str] = []
    todo = [node]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.extend(current.stores())
        todo.extend(current.children)
        todo.extend(getattr(current, "outputs", ()))
        out = getattr(current, "out", None)
        if out is not None:
            todo.append(out)
    return list(dict.fromkeys(found))


def _reaches(root: Node, target: Node) -> bool:
    todo, seen = [root], set()
    while todo:
        current = todo.pop()
        if current is target:
            return True
        if id(current) in seen:
            continue
        seen.add(id(current))
        todo.extend(current.children)
        todo.extend(getattr(current, "outputs", ()))
    return False


def _client_error(exc: Exception, doing: str) -> Exception:
    args = getattr(exc, "args", ())
    if args and hasattr(args[0], "name"):
        return kafka_error(args[0], doing)
    return StreamsError(f"{doing}: {exc}")
