"""The in-process transport: services of one process exchange messages through their stores.

Same semantics as Kafka, and as durable: for each sending service, :class:`LocalTransport`
reads the service's outbox streams (category ``messages.{service}``) from its store's log
after a checkpoint kept in that store (``streamsource_relay_checkpoints``, name
``messages.{name}.{service}``), hands every message to the services that receive on its
channel, and only then moves the checkpoint, saved at most every ``checkpoint_every``
seconds (a save is a write transaction of the sender's store: saving whenever the outboxes
ran dry cost one per message when messages trickle in). A crash in between delivers those
messages again and the receivers' inboxes skip them; nothing is held in Python lists
between the two.

It delivers in rounds: one page of each sender's outbox that changed, then each receiver's
share of all of them in one transaction of the receiver's store on SQLite (inbox, handlers
and effects: :meth:`Service.prepare_batch <streamsource.messaging.Service.prepare_batch>`),
integration events the receiver has no handler for left out. Every handler runs on the
transport's thread; the commits (each an fsync) run on a small pool, overlapping each other
and the next receiver's handlers. One thread of Python instead of one per sender: in the
reference mall, with its nine services, that cut the thread switches per order by a third (each
SQLite statement hands the GIL over when several threads want it) and cut its CPU per
order by a sixth, without commits waiting behind each other.

A transport sleeps while there is nothing to deliver: an append to a sender's store made in
this process wakes it at once (the store's append signal,
:mod:`streamsource.eventstore.appended`); ``idle_wait`` bounds the sleep for appends made by
other processes, which no signal reaches (several processes sharing SQLite files).

The senders are the services themselves unless ``senders=`` names them: a transport reads
only the outboxes that have something for its services (each read is a query per append to
that store). Run one transport per set of services (two would deliver everything twice,
harmlessly but for nothing): :meth:`LocalTransport.drain` (tests, scripts), :meth:`~LocalTransport.start` /
:meth:`~LocalTransport.stop` (a thread) or :meth:`LocalTransport.run_async` (an asyncio task).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from streamsource.bridge.background import BackgroundLoop
from streamsource.bridge.backoff import Backoff
from streamsource.bridge.checkpoints import CheckpointStore, checkpoints_for
from streamsource.errors import InterfaceError, StreamsourceError
from streamsource.eventstore.appended import signal_for
from streamsource.eventstore.events import RecordedEvent
from streamsource.messaging.context import channel_of, outbox_category
from streamsource.messaging.service import Service, deliver_shares

log = logging.getLogger("streamsource.messaging.local")


class LocalTransport(BackgroundLoop):
    """Delivers the outbox messages of ``senders`` (default: ``services``) to those of
    ``services`` that receive them."""

    thread_kind = "messaging"

    def __init__(
        self,
        services: Sequence[Service],
        *,
        senders: Sequence[Service] | None = None,
        name: str = "local",
        batch_size: int = 500,
        idle_wait: float = 0.005,
        checkpoint_every: float = 0.5,
        backoff: Backoff | None = None,
    ) -> None:
        self.services = _distinct(services)
        # Reading an outbox costs a query per append to its store: read only the stores
        # of the services that send something to these (all of them by default).
        self.senders = self.services if senders is None else _distinct(senders)
        self.name = name
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self.backoff = backoff or Backoff()
        self._checkpoints: dict[str, CheckpointStore] = {
            sender.name: checkpoints_for(sender.store) for sender in self.senders
        }
        self._checkpoint_every = checkpoint_every
        self._positions: dict[str, int] = {}  # where each outbox was read up to
        self._unsaved: set[str] = set()  # senders whose position is not saved yet
        self._saved_at = time.monotonic()
        self.delivered = 0  # messages handed to a receiver (duplicates included; not the
        # integration events it has no handler for)
        self._signals = {s.name: signal_for(s.store.recorder) for s in self.senders}
        self._seen: dict[str, int] = {}  # each sender's signal count when last read
        self._full: set[str] = set()  # senders whose last read filled a batch: more to come
        self._wake = threading.Event()  # set by an append to a sender's store (and by stop)
        self._pool: ThreadPoolExecutor | None = None
        super().__init__()

    def _checkpoint_name(self, service: Service) -> str:
        return f"messages.{self.name}.{service.name}"

    def pump(self) -> int:
        """Deliver one batch of each service's outbox; the number of messages read (the
        positions are saved when it has nothing to read)."""
        return self._pump(self.senders, save_when_dry=True)

    def _pump(self, senders: Sequence[Service], *, save_when_dry: bool) -> int:
        moved = 0
        try:
            pages = [(sender, self._read(sender)) for sender in senders]
            self._deliver(pages)
            for sender, events in pages:
                moved += len(events)
                if events:
                    self._positions[sender.name] = events[-1].position
                    self._unsaved.add(sender.name)
        finally:
            # A position saved late only means redeliveries after a crash, which the
            # receivers' inboxes skip; saving it after every delivery (or every time the
            # outboxes ran dry, which in a trickle of messages is after every one) cost a
            # write transaction (an fsync) per message.
            if self._unsaved and ((save_when_dry and not moved) or self._checkpoint_due() <= 0):
                self.save_checkpoints()
        return moved

    def _read(self, sender: Service) -> list[RecordedEvent]:
        """The next page of ``sender``'s outbox (at most batch_size messages)."""
        self._seen[sender.name] = self._signals[sender.name].seq  # before reading
        after = self._positions.get(sender.name)
        if after is None:
            after = self._positions[sender.name] = self._checkpoints[sender.name].load(
                self._checkpoint_name(sender)
            )
        events = list(
            sender.store.read_category(
                outbox_category(sender.name), after=after, limit=self._batch_size
            )
        )
        if len(events) >= self._batch_size:
            self._full.add(sender.name)
        else:
            self._full.discard(sender.name)
        return events

    def _deliver(self, pages: Sequence[tuple[Service, list[RecordedEvent]]]) -> None:
        """Each receiver's share of all the pages read, batch_size messages a transaction:
        a message chain (a saga's command, its reply, the next command) moves one hop per
        round, and the hops of all chains in flight that reach one receiver in a round
        share its commit. The positions move only once every receiver committed its share,
        so a failure redelivers the pages and the inboxes skip what was applied."""
        routed = [
            (event, channel_of(event.stream)) for _sender, events in pages for event in events
        ]
        shares = []
        for receiver in self.services:
            batch = [
                (event, channel)
                for event, channel in routed
                if receiver.wants(channel) and not receiver.ignores(event, channel)
            ]
            if batch:
                shares.append((receiver, batch))
        parts = [
            (receiver, batch[start : start + self._batch_size])
            for receiver, batch in shares
            for start in range(0, len(batch), self._batch_size)
        ]
        # every handler here, the commits (their fsyncs) overlapping on the pool
        self.delivered += deliver_shares(parts, self._committers)

    def _committers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(len(self.services), f"commit-{self.name}")
        return self._pool

    def _close_committers(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    def _checkpoint_due(self) -> float:
        """Seconds until the read positions are due to be saved."""
        return self._saved_at + self._checkpoint_every - time.monotonic()

    def _changed(self) -> list[Service]:
        """The senders whose store saw an append in this process since they were read."""
        return [
            s
            for s in self.senders
            if s.name in self._full or self._signals[s.name].seq != self._seen.get(s.name)
        ]

    def save_checkpoints(self) -> None:
        """Save where each outbox was read up to (done every ``checkpoint_every`` seconds
        while there is something to save, on stop, and by ``pump`` when it runs dry)."""
        for name in sorted(self._unsaved):
            sender = next(s for s in self.senders if s.name == name)
            self._checkpoints[name].save(self._checkpoint_name(sender), self._positions[name])
            self._unsaved.discard(name)
        self._saved_at = time.monotonic()

    def drain(self, timeout: float = 30.0) -> None:
        """Deliver until no service has an undelivered message (each delivery may send
        more); TimeoutError if that takes longer than ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        try:
            while self.pump():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"messages still flowing after {timeout}s")
        finally:
            self._close_committers()

    def run(self, stop: threading.Event | None = None) -> None:
        """Deliver until ``stop`` is set; store faults that may pass are retried with backoff."""
        stop = stop or self._stop
        for signal in self._signals.values():
            signal.watch(self._wake)
        try:
            self._run(stop)
            self.save_checkpoints()
        finally:
            for signal in self._signals.values():
                signal.unwatch(self._wake)
            self._close_committers()

    def _run(self, stop: threading.Event) -> None:
        attempt = 0
        woken = False
        read_all_at = 0.0
        while not stop.is_set():
            self._wake.clear()  # before reading: an append from now on wakes the wait below
            try:
                # Woken by an append in this process: read the stores that had one; all of
                # them at least every idle_wait, for appends made by other processes.
                if not woken or time.monotonic() - read_all_at >= self._idle_wait:
                    read_all_at = time.monotonic()
                    self._pump(self.senders, save_when_dry=False)
                else:
                    self._pump(self._changed(), save_when_dry=False)
                attempt = 0
            except StreamsourceError as exc:
                if not exc.retriable:
                    raise
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.warning("transport %s: %s; retrying in %.2fs", self.name, exc, delay)
                stop.wait(delay)
                continue
            if self._full:
                woken = True  # a sender has more than one batch waiting: read on at once
                continue
            # Every sender read to its end as of its signal count taken before the read: an
            # append since (a delivery's own replies included) has set _wake already.
            wait = self._idle_wait
            if self._unsaved:
                wait = max(0.0, min(wait, self._checkpoint_due()))
            woken = self._wake.wait(wait)
            if self._unsaved and self._checkpoint_due() <= 0:
                self._save_quietly()

    def _save_quietly(self) -> None:
        """Save the positions; a store fault that may pass is retried at the next save."""
        try:
            self.save_checkpoints()
        except StreamsourceError as exc:
            if not exc.retriable:
                raise
            log.warning("transport %s: positions not saved (%s); trying again", self.name, exc)

    def stop(self, timeout: float | None = 30) -> None:
        self._stop.set()
        self._wake.set()
        super().stop(timeout)

    async def run_async(self) -> None:
        """Deliver in a worker thread until this task is cancelled."""
        stop = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self.run, stop))
        try:
            await asyncio.shield(worker)
        except asyncio.CancelledError:
            stop.set()
            self._wake.set()
            await worker
            raise

    def __enter__(self) -> LocalTransport:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _distinct(services: Sequence[Service]) -> list[Service]:
    names = [service.name for service in services]
    if len(set(names)) != len(names):
        raise InterfaceError(f"two services share a name: {sorted(names)}")
    return list(services)
