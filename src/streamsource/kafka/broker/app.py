"""``Broker``: the running broker, wiring the topics, coordinators, flusher and TCP server.

``Broker`` runs inside an existing event loop (``await start()`` / ``await stop()``);
``embedded.EmbeddedBroker`` runs one in a background thread for synchronous code.
Handlers take the ``Broker`` as the narrow view each declares (``handlers.base``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable
from functools import partial
from typing import Any

from streamsource.errors import BrokerError
from streamsource.kafka.broker.auth import AuthRuntime
from streamsource.kafka.broker.authz import authorized
from streamsource.kafka.broker.config import BrokerConfig
from streamsource.kafka.broker.flusher import GroupFlusher
from streamsource.kafka.broker.groups_runtime import GroupRuntime
from streamsource.kafka.broker.handlers import HANDLERS, unsupported_version_response
from streamsource.kafka.broker.handlers.quick_fetch import answer_quickly
from streamsource.kafka.broker.identity import DataDirLock, load_or_create_cluster_id
from streamsource.kafka.broker.log_writer import LogWriter
from streamsource.kafka.broker.producers import ProducerRegistry
from streamsource.kafka.broker.responses import Deferred
from streamsource.kafka.broker.server import BoundListener, ClientInfo, KafkaServer
from streamsource.kafka.broker.topics import TopicManager
from streamsource.kafka.broker.transactions import TransactionRuntime
from streamsource.kafka.log.cleaner import clean_log
from streamsource.kafka.log.errors import LogClosed
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.api import ApiKey
from streamsource.kafka.records import RecordError, iter_batch_records
from streamsource.observability import live, metrics, tracing

log = logging.getLogger(__name__)


class Broker:
    """A single-node Kafka-compatible broker serving the logs in ``config.data_dir``."""

    def __init__(self, config: BrokerConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else BrokerConfig()
        self.config = dataclasses.replace(base, **overrides) if overrides else base
        self.topics = TopicManager(self.config)
        self.flusher = GroupFlusher(self.config.flush_interval_ms / 1000)
        self.writer = LogWriter()
        self.producers = ProducerRegistry(self.config.data_dir / "producers")
        self.groups = GroupRuntime(self.config)
        self.auth = AuthRuntime(self.config)
        self.transactions = TransactionRuntime(
            topics=self.topics,
            groups=self.groups,
            flusher=self.flusher,
            writer=self.writer,
            fsync_always=self.config.fsync == "always",
            now_ms=self.now_ms,
        )
        self.cluster_id = ""
        self.host = self.config.host
        self.port = self.config.port
        self._lock = DataDirLock(self.config.data_dir)
        self._server: KafkaServer | None = None
        self._timers: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._running = False
        self._started_once = False
        self._trace = log.isEnabledFor(logging.DEBUG)  # every request logged: --log-level DEBUG

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        """Open the data dir (recovering every log), then listen; returns (host, port)."""
        if self._started_once:
            raise BrokerError("a Broker starts once; create a new one to restart on its data dir")
        self._started_once = True
        data_dir = self.config.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BrokerError(f"cannot create data dir {data_dir}: {exc}") from exc
        self._lock.acquire()
        try:
            # recovery reads every log's tail: not on the caller's event loop
            await asyncio.to_thread(self._open_storage)
            await self.transactions.recover()  # markers a crash left unwritten
            # where every request is logged or authorized, Fetch too takes the generic path
            quick = None if self._trace or self.config.authorizer else partial(answer_quickly, self)
            self._server = KafkaServer(
                self.config, self._handle, unsupported_version_response, quick
            )
            listeners = self._listeners()
            try:
                self.host, self.port = await self._server.start(listeners)
            except OSError as exc:
                where = ", ".join(str(entry.listener) for entry in listeners)
                raise BrokerError(f"cannot listen on {where}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(Exception):  # report why start failed, not this
                self.writer.close()
                self._close_storage()
            self._lock.release()
            raise
        self._running = True
        self._stopped.clear()
        self._timers = [asyncio.create_task(self.groups.run_timers())]
        self._timers.append(asyncio.create_task(self.transactions.run_timer()))
        self._timers.append(asyncio.create_task(self._enforce_retention_periodically()))
        if self.config.log_cleaner_enable:
            self._timers.append(asyncio.create_task(self._clean_periodically()))
        for entry in self.listeners:
            log.info(
                "%s listener on %s:%d (advertised as %s:%d)",
                entry.listener.protocol,
                entry.host,
                entry.port,
                *self._advertised(entry),
            )
        live.track("broker", self)
        log.info("broker serving, data in %s", data_dir)
        return self.host, self.port

    def _listeners(self) -> list[BoundListener]:
        tls = self.config.tls
        bound = []
        for listener in self.config.effective_listeners():
            context = None
            if listener.tls:
                assert tls is not None  # BrokerConfig checks
                context = tls.server_context(
                    require_client_cert=listener.protocol == "SSL" and tls.ca is not None
                )
            bound.append(BoundListener(listener, context))
        return bound

    async def stop(self) -> None:
        """Stop accepting, finish requests in progress, flush and close everything."""
        if not self._running:
            return
        self._running = False
        live.untrack("broker", self)
        for partition in self.topics.partitions():
            partition.wake_waiters()  # long-polling fetches answer now
        self.groups.release_waiting()  # and parked joins/syncs (NOT_COORDINATOR)
        if self._server is not None:
            await self._server.stop()
        self.flusher.stop()
        for task in self._timers:
            task.cancel()
        for task in self._timers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._timers = []
        try:
            await asyncio.to_thread(self.writer.close)  # what was accepted gets written
            self._close_storage()
        finally:
            self._lock.release()
            self._stopped.set()
        log.info("broker stopped")

    @property
    def running(self) -> bool:
        return self._running

    @property
    def listeners(self) -> list[BoundListener]:
        """Every listener as bound (empty before ``start``)."""
        return self._server.bound if self._server is not None else []

    @property
    def connection_count(self) -> int:
        """Open client connections."""
        return 0 if self._server is None else self._server.connection_count

    @property
    def bootstrap(self) -> str:
        """``host:port`` of the first listener, for a client's ``bootstrap_servers``."""
        return self.bootstrap_for(self.listeners[0].listener.protocol if self.listeners else "")

    def bootstrap_for(self, protocol: str) -> str:
        """``host:port`` of the listener of ``protocol`` (``"SASL_SSL"``...)."""
        host, port = self.endpoint(protocol)
        if ":" in host:
            host = f"[{host}]"  # an IPv6 address
        return f"{host}:{port}"

    def endpoint(self, protocol: str) -> tuple[str, int]:
        """The (host, port) clients of the ``protocol`` listener are told to connect to:
        Metadata, FindCoordinator and DescribeCluster answer with the listener the request
        came in on, as Kafka does."""
        for entry in self.listeners:
            if entry.listener.protocol == protocol:
                return self._advertised(entry)
        if self.listeners:
            return self._advertised(self.listeners[0])
        return self.config.advertised_host or self.host, self.config.advertised_port or self.port

    def _advertised(self, entry: BoundListener) -> tuple[str, int]:
        listener = entry.listener
        host = listener.advertised_host or entry.host
        if not listener.advertised_host and host in ("", "0.0.0.0", "::"):
            host = socket.getfqdn()
        return host, listener.advertised_port or entry.port

    @property
    def advertised_host(self) -> str:
        """The host clients of the first listener are told to connect to."""
        return self.endpoint("")[0]

    @property
    def advertised_port(self) -> int:
        return self.endpoint("")[1]

    @staticmethod
    def now_ms() -> int:
        """Wall-clock milliseconds: what record timestamps and retention compare against."""
        return time.time_ns() // 1_000_000

    # -- internals -------------------------------------------------------------------------

    async def _handle(self, client: ClientInfo, header: RequestHeader, request: Any) -> Any | None:
        handler = HANDLERS.get(header.api_key)
        if handler is None:
            raise BrokerError(f"no handler for API key {header.api_key}")
        if self._trace:
            log.debug("%s:%d %s %r", client.host, client.port, header, request)
        self.auth.check(client, header, self.now_ms())  # closes a connection out of turn
        if self.config.authorizer:
            call = partial(self._run, handler, client, header)
            return await authorized(
                self.auth.authorizer, self.topics, client, header, request, call
            )
        return await self._run(handler, client, header, request)

    async def _run(
        self, handler: Any, client: ClientInfo, header: RequestHeader, request: Any
    ) -> Any:
        instruments = metrics.INSTRUMENTS
        if instruments is None and tracing.TRACER is None:
            if header.api_key != ApiKey.PRODUCE:
                await self._settled(client)  # it sees this connection's earlier produces
            return await handler(self, client, header, request)
        return await self._handle_observed(handler, client, header, request, instruments)

    async def _settled(self, client: ClientInfo) -> None:
        """Once the connection's Produce requests so far are written (and those the log
        writer answers itself, answered)."""
        responses = client.responses
        if responses is not None and responses.lane_busy:
            await responses.settle_lane()
        await self.writer.settled(client)

    async def _handle_observed(
        self,
        handler: Any,
        client: ClientInfo,
        header: RequestHeader,
        request: Any,
        instruments: metrics.Instruments | None,
    ) -> Any | None:
        """``_handle`` timed (metrics) and in a span (tracing: produce and fetch), both
        until the answer is ready, deferred ones (fsync, long poll) included."""
        started = time.perf_counter()
        span = None
        if tracing.TRACER is not None and header.api_key in (ApiKey.PRODUCE, ApiKey.FETCH):
            produce = header.api_key == ApiKey.PRODUCE
            span = tracing.start_span(
                "streamsource.broker.produce" if produce else "streamsource.broker.fetch",
                parent=_produce_traceparent(request) if produce else None,
                kind="SERVER",
                attributes={"messaging.client_id": header.client_id or ""},
            )
        try:
            if header.api_key != ApiKey.PRODUCE:
                await self._settled(client)
            answer = await handler(self, client, header, request)
        except BaseException:
            _finish(instruments, header.api_key, started, span)
            raise
        if isinstance(answer, Deferred):
            return Deferred(
                _finished_later(answer.awaitable, instruments, header.api_key, started, span)
            )
        _finish(instruments, header.api_key, started, span)
        return answer

    def _open_storage(self) -> None:
        data_dir = self.config.data_dir
        self.cluster_id = load_or_create_cluster_id(data_dir)
        self.auth.open()
        self.topics.open()
        self.producers.open()
        self.groups.open(data_dir / "groups")
        self.transactions.open(data_dir / "transactions")

    def _close_storage(self) -> None:
        errors: list[BaseException] = []
        for step in (
            self.transactions.close,
            self.producers.close,
            self.groups.close,
            self.topics.close,
        ):
            try:
                step()
            except Exception as exc:  # keep closing the rest; report the first failure
                log.exception("error while closing the broker's storage")
                errors.append(exc)
        if errors:
            raise BrokerError(f"the broker did not close cleanly: {errors[0]}") from errors[0]

    async def _enforce_retention_periodically(self) -> None:
        interval = self.config.retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self.enforce_retention()
            expire = partial(
                self.producers.expire, self.now_ms(), self.config.producer_id_expiration_ms
            )
            await self.writer.run(expire)
            try:
                await self.groups.expire_offsets(self.now_ms())
            except Exception:
                log.exception("committed offsets could not be expired")

    async def enforce_retention(self) -> int:
        """Delete expired segments of every partition now (in a worker thread; the log is
        thread-safe); returns how many segments went."""
        now = self.now_ms()
        deleted = 0
        for partition in list(self.topics.partitions()):
            try:
                deleted += await asyncio.to_thread(partition.enforce_retention, now)
            except Exception:
                log.exception("retention failed for %s-%d", partition.topic, partition.index)
        return deleted

    async def _clean_periodically(self) -> None:
        interval = self.config.log_cleaner_backoff_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self.clean_logs()

    async def clean_logs(self, *, force: bool = False) -> int:
        """Compact every partition of a compacted topic whose dirty ratio calls for it (or
        all of them with ``force``), one at a time in a worker thread: produce and fetch go
        on meanwhile. Returns how many segments were rewritten or removed."""
        rewritten = 0
        for partition in list(self.topics.partitions()):
            if partition.closed or not partition.log.config.compacted:
                continue
            try:
                result = await asyncio.to_thread(
                    clean_log,
                    partition.log,
                    now_ms=self.now_ms(),
                    dedupe_buffer_bytes=self.config.log_cleaner_dedupe_buffer_bytes,
                    force=force,
                    forget_aborted=partition.txns.forget_aborted,
                )
            except LogClosed:  # deleted meanwhile
                continue
            except Exception:
                if not partition.closed:  # a topic deleted mid-cleaning took the files along
                    log.exception("cleaning failed for %s-%d", partition.topic, partition.index)
                continue
            if result.segments_rewritten:
                log.info(
                    "cleaned %s-%d: %d segment(s), %d -> %d bytes",
                    partition.topic,
                    partition.index,
                    result.segments_rewritten,
                    result.bytes_before,
                    result.bytes_after,
                )
            rewritten += result.segments_rewritten
        return rewritten


def _api_name(api_key: int) -> str:
    try:
        return ApiKey(api_key).name
    except ValueError:
        return str(api_key)


def _finish(
    instruments: metrics.Instruments | None, api_key: int, started: float, span: Any
) -> None:
    if instruments is not None:
        timer = instruments.child(instruments.broker_request_seconds, _api_name(api_key))
        timer.observe(time.perf_counter() - started)
    if span is not None:
        span.end()


async def _finished_later(
    awaitable: Awaitable[Any],
    instruments: metrics.Instruments | None,
    api_key: int,
    started: float,
    span: Any,
) -> Any:
    try:
        return await awaitable
    finally:
        _finish(instruments, api_key, started, span)


def _produce_traceparent(request: Any) -> str | None:
    """The traceparent header of a produce request's first record, if it has one (only
    with tracing on: it decodes that record's batch)."""
    for topic in request.topic_data:
        for partition in topic.partition_data:
            if partition.records:
                try:
                    first = next(iter_batch_records(partition.records), None)
                except (RecordError, ValueError):
                    return None  # the produce handler reports it
                return None if first is None else tracing.header_traceparent(first.headers)
    return None
