"""Messages between services: each service's event log is its outbox.

A service records its integration events, the commands it sends and the replies it gives
as events in its own store, in the same transaction as the state change that caused them
(so nothing is sent without its cause committed, and nothing committed goes unsent). A
consumer follows another service's log from a checkpoint kept in the consumer's own
database and advanced in the same transaction as the handler's writes: every message takes
effect once, across crashes. This is the durable in-process transport of issue 10, seen from
the mall; the services only use :class:`Consumer`, :func:`route`, :func:`reply_to` and
:func:`command_of`, so swapping in ``streamsource.messaging`` changes this module alone.

Commands and replies are ordinary events with routing in their metadata:
``mall.command = {to, replyTo, sagaId, commandId}`` on a command, and
``mall.reply = {to, sagaId, commandId, command, outcome, reason, data}`` on the event that
answers it (the aggregate's event when the command changed one, else a reply-only event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import streamsource as ss

from .storage import ServiceStore, Unit

COMMAND = "mall.command"
REPLY = "mall.reply"
log = logging.getLogger("streamsource.mall")

Handler = Callable[[ss.RecordedEvent], Unit | None]


@dataclass(frozen=True)
class CommandInfo:
    id: str
    name: str
    to: str
    reply_to: str
    saga_id: str


def route(*, to: str, reply_to: str, saga_id: str, command_id: str) -> dict[str, Any]:
    """The metadata making an event a command for service ``to`` (the sender appends it to
    its own log; ``command_id`` comes back in the reply)."""
    return {COMMAND: {"to": to, "replyTo": reply_to, "sagaId": saga_id, "commandId": command_id}}


def command_of(event: ss.RecordedEvent, service: str) -> CommandInfo | None:
    """The routing of ``event`` if it is a command addressed to ``service``."""
    route = event.metadata.get(COMMAND)
    if not isinstance(route, dict) or route.get("to") != service:
        return None
    id = str(route.get("commandId") or event.id)
    return CommandInfo(id, event.type, service, route["replyTo"], route["sagaId"])


def reply_to(
    unit: Unit,
    cmd: CommandInfo,
    *,
    failure: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Unit:
    """Answer ``cmd`` in ``unit``: on its last event, or as a reply-only event."""
    reply = {
        "to": cmd.reply_to,
        "sagaId": cmd.saga_id,
        "commandId": cmd.id,
        "command": cmd.name,
        "outcome": "failure" if failure else "success",
        "reason": failure,
        "data": dict(data or {}),
    }
    if unit.events:
        last = unit.events[-1]
        unit.events[-1] = ss.NewEvent(
            last.type, last.data, metadata={**last.metadata, REPLY: reply}, id=last.id
        )
    else:
        outcome = "Failed" if failure else "Succeeded"
        unit.append(
            f"reply-{cmd.id}",
            ss.NewEvent(f"{cmd.name}{outcome}", {"reason": failure}, metadata={REPLY: reply}),
            ss.NO_STREAM,
        )
    return unit


def reply_of(event: ss.RecordedEvent, service: str) -> dict[str, Any] | None:
    reply = event.metadata.get(REPLY)
    if isinstance(reply, dict) and reply.get("to") == service:
        return reply
    return None


class Consumer:
    """Follows ``source``'s log and commits what ``handle`` makes of each event to ``own``.

    A thread; ``handle`` returns None for events it ignores (the checkpoint still moves on,
    in one write per batch). Conflicts and faults worth retrying are retried with capped
    backoff; a handler bug is logged and the event recorded in ``mall_dead_letters``.
    """

    def __init__(
        self,
        name: str,
        own: ServiceStore,
        source: ss.EventStore,
        handle: Handler,
        poll_interval: float | None = None,
    ) -> None:
        self.name = name
        self.own = own
        self.source = source
        self.handle = handle
        self.poll_interval = poll_interval
        self.position = own.checkpoint(name)
        self._stop = threading.Event()
        self._moved = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"mall-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def wait_caught_up(self, timeout: float) -> bool:
        """Wait until everything the source had recorded when called has been handled."""
        head = self.source.head_position()
        deadline = time.monotonic() + timeout
        with self._moved:
            while (self.position or 0) < head:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._moved.wait(min(left, 0.1))
        return True

    def _moved_to(self, position: int) -> None:
        with self._moved:
            self.position = position
            self._moved.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with ss.subscribe(
                    self.source, after=self.position, poll_interval=self.poll_interval
                ) as sub:
                    while not self._stop.is_set():
                        self._handle_batch(sub.next_batch(200, timeout=0.25))
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("%s: consumer failed; restarting from its checkpoint", self.name)
                self.position = self.own.checkpoint(self.name)
                self._stop.wait(0.5)

    def _handle_batch(self, batch: list[ss.RecordedEvent]) -> None:
        skipped: int | None = None
        for event in batch:
            if self._handled(event):
                skipped = None
                self._moved_to(event.position)
            else:
                skipped = event.position
        if skipped is not None:
            self.own.commit(Unit(), checkpoint=(self.name, skipped))
            self._moved_to(skipped)

    def _handled(self, event: ss.RecordedEvent) -> bool:
        """Handle and commit ``event`` (False: ignored), again on fresh state after a conflict
        or a fault worth retrying; a handler bug becomes a dead letter."""
        delay = 0.01
        while True:
            try:
                unit = self.handle(event)
                if unit is None:
                    return False
                self.own.commit(unit, checkpoint=(self.name, event.position))
                return True
            except (ss.WrongExpectedVersion, ss.OperationalError) as retriable:
                log.debug("%s: retrying %s after %s", self.name, event.id, retriable)
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, 1.0)
            except Exception as bug:
                log.exception("%s: cannot handle %s %s", self.name, event.type, event.id)
                dead = Unit()
                dead.execute(
                    "INSERT INTO mall_dead_letters (consumer, event_id, type, error)"
                    " VALUES (?, ?, ?, ?)",
                    (self.name, str(event.id), event.type, repr(bug)[:1000]),
                )
                self.own.commit(dead, checkpoint=(self.name, event.position))
                return True
