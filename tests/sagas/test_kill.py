"""kill -9 of the process running the sagas, mid-stream: after a restart every saga ends
(completed or compensated), no command is sent twice, and every participant applied each
command once."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from deadline import wait_until
from streamsource.messaging import KafkaTransport
from streamsource.sagas import SagaEngine
from streamsource.sagas.admin import list_sagas

from .mall import PlaceOrder, orders_service, payments_service, rows, stock_service
from .test_kafka import broker  # noqa: F401  (the fixture)

TESTS = Path(__file__).resolve().parents[1]
SAGAS = 30


@pytest.fixture
def orders_process(tmp_path: Path) -> Iterator[Callable[[str, str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(store_url: str, bootstrap: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"orders-{len(started)}.log", "wb")  # noqa: SIM115
        path = f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
        process = subprocess.Popen(
            [sys.executable, str(TESTS / "sagas" / "orders_process.py"), store_url, bootstrap],
            env={**os.environ, "PYTHONPATH": path},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def finished(url: str) -> int:
    with ss.open_store(url) as store:
        states = list_sagas(store, limit=1000)
    return sum(s.status in ("completed", "compensated") for s in states)


@pytest.mark.slow
def test_kill_9_of_the_saga_process_leaves_no_saga_half_done(
    store_url_factory: Callable[[], str],
    open_store: Callable[..., Any],
    broker: Any,  # noqa: F811
    orders_process: Callable[[str, str], subprocess.Popen[bytes]],
) -> None:
    orders_url = store_url_factory()
    starter = SagaEngine(orders_service(open_store(orders_url)), [PlaceOrder])
    ids = {
        f"o-{n}": starter.start(
            PlaceOrder, f"o-{n}", {"order": f"o-{n}", "amount": 500 if n % 3 == 0 else 5,
                                   "quantity": 1}
        )
        for n in range(SAGAS)
    }  # fmt: skip
    stock, payments = stock_service(open_store()), payments_service(open_store())
    # Payments starts only after the kill, so no saga can end before it: the kill lands
    # mid-stream, while the engine turns stock replies into charge commands, however fast
    # the sagas run (racing a count of finished sagas, all 30 once finished in between).
    with KafkaTransport([stock], broker.bootstrap):
        first = orders_process(orders_url, broker.bootstrap)
        wait_until(lambda: len(rows(stock.store, "stock")) >= SAGAS // 3, 120, "a third reserved")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        assert finished(orders_url) == 0
        with KafkaTransport([payments], broker.bootstrap):
            orders_process(orders_url, broker.bootstrap)
            wait_until(lambda: finished(orders_url) == SAGAS, 180, "every saga to end")

    # never half done: a completed saga reserved, charged and confirmed; a compensated one
    # (refused, or timed out while its service was down) released and took no money
    reserved, charged = rows(stock.store, "stock"), rows(payments.store, "payments")
    confirmed = rows(starter.service.store, "orders")
    for n, saga_id in ids.items():
        state = starter.load(saga_id)
        if state.status == "completed":
            assert int(n[2:]) % 3 != 0
            assert (reserved[n], charged[n], confirmed[n]) == ("reserved", "charged", "confirmed")
        else:
            assert state.status == "compensated", state.history
            assert reserved[n] == "released" and charged.get(n) in (None, "refunded")
            assert n not in confirmed
    # every command in the outbox was decided by a committed transition, none lost, none
    # repeated by the crash: per saga, the commands sent are those its history records
    with ss.open_store(orders_url) as store:
        commands = [
            e for e in store.read_category("messages.orders") if e.metadata.get("kind") == "command"
        ]
    per_saga = collections.Counter(e.metadata["saga_id"] for e in commands)
    decided = {
        saga_id: sum(h.event.endswith(" sent") for h in starter.load(saga_id).history)
        for saga_id in ids.values()
    }
    assert per_saga == decided
    replies = collections.Counter(
        e.causation_id
        for service in (stock, payments)
        for e in service.store.read_category(f"messages.{service.name}")
        if e.metadata.get("kind") == "reply"
    )
    participant_commands = {
        str(e.id) for e in commands if e.metadata["channel"] != "mall.orders.commands"
    }
    assert replies == dict.fromkeys(participant_commands, 1)  # each applied and answered once
