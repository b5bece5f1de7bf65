"""Running the create-order saga: start it on OrderCreated, feed it replies and timeouts.

Deadlines live in ``saga_deadlines`` (one row per saga awaiting a reply), written in the
same transaction as the saga's events, so they survive restarts; :class:`Timeouts` fires
each at most once (the saga ignores a timeout for a command it no longer awaits).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import streamsource as ss

from ..platform.http import NotFound
from ..platform.storage import ServiceStore, Unit
from .domain import NAME, STEPS, CreateOrderSaga

TABLES = (
    "CREATE TABLE IF NOT EXISTS saga_deadlines (saga_id TEXT PRIMARY KEY, command_id TEXT,"
    " deadline DOUBLE PRECISION)",
)
log = logging.getLogger("streamsource.mall")


class Sagas:
    def __init__(self, own: ServiceStore, step_timeout: float) -> None:
        self.own = own
        self.step_timeout = step_timeout
        self.repository = ss.Repository(own.store, CreateOrderSaga)

    def load(self, id: str) -> CreateOrderSaga:
        try:
            return self.repository.load(id)
        except ss.AggregateNotFound:
            raise NotFound(f"no saga for order {id}") from None

    def start(self, event: ss.RecordedEvent) -> Unit | None:
        order_id = event.stream.partition("-")[2]
        if self.repository.exists(order_id):  # one saga per order, even if OrderCreated comes again
            return None
        saga = self.repository.create(order_id)
        d = event.data
        saga.start(str(d["customerId"]), str(d["paymentId"]), list(d["items"]), int(d["total"]))
        return self._unit(saga, event)

    def advance(
        self, id: str, step: Callable[[CreateOrderSaga], None], cause: ss.RecordedEvent | None
    ) -> Unit | None:
        saga = self.load(id)
        step(saga)
        return self._unit(saga, cause) if saga.pending_events else None

    def _unit(self, saga: CreateOrderSaga, cause: ss.RecordedEvent | None) -> Unit:
        unit = Unit(cause=cause)
        unit.save(saga)
        if saga.awaiting is None:
            unit.execute("DELETE FROM saga_deadlines WHERE saga_id = ?", (saga.id,))
        else:
            unit.execute(
                "INSERT INTO saga_deadlines VALUES (?, ?, ?) ON CONFLICT (saga_id) DO UPDATE"
                " SET command_id = excluded.command_id, deadline = excluded.deadline",
                (saga.id, saga.awaiting, time.time() + self.step_timeout),
            )
        return unit

    def view(self, id: str) -> dict[str, Any]:
        saga = self.load(id)
        history = [
            {"version": e.version, "type": e.type, "at": e.recorded_at.isoformat(), **_brief(e)}
            for e in self.own.store.read_stream(saga.stream)
        ]
        return {
            "id": saga.id,
            "name": NAME,
            "step": STEPS[saga.step].name,
            "direction": saga.direction,
            "status": saga.status,
            "reason": saga.reason,
            "history": history,
        }


def _brief(event: ss.RecordedEvent) -> dict[str, Any]:
    d = event.data
    if "commandId" in d and "step" in d:
        return {"command": event.type, "direction": d["direction"], "attempt": d["attempt"]}
    if event.type == "CreateOrderSagaReplied":
        return {
            "command": d["command"],
            "outcome": d["outcome"],
            "reason": d["reason"],
            "data": d["data"],
        }
    if event.type == "CreateOrderSagaStepTimedOut":
        return {"command": d["command"], "outcome": "timeout"}
    if event.type == "CreateOrderSagaEnded":
        return {"status": d["status"], "reason": d["reason"]}
    return {}


class Timeouts:
    """A thread firing due step deadlines (checked twice a second)."""

    def __init__(self, sagas: Sagas, interval: float = 0.5) -> None:
        self.sagas = sagas
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mall-cosec-timeouts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fire_due()
            except Exception:
                log.exception("cosec: firing step timeouts failed; trying again")

    def fire_due(self) -> int:
        due = self.sagas.own.query(
            "SELECT saga_id FROM saga_deadlines WHERE deadline < ?", (time.time(),)
        )
        for (saga_id,) in due:
            self.sagas.own.run(partial(self._timed_out, str(saga_id)))
        return len(due)

    def _timed_out(self, saga_id: str) -> Unit:
        return self.sagas.advance(saga_id, CreateOrderSaga.on_timeout, None) or Unit()
