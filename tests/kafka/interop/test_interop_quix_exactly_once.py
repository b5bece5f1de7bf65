"""Quix Streams with ``processing_guarantee="exactly-once"`` against the broker, killed with
``kill -9`` while it processes.

The app (``tests/envs/quix/exactly_once_app.py``, in the pinned Quix environment) keeps a
running total per account in state and writes each payment's new total to an output topic
in transactions. The test kills it while a transaction holds records that are not
committed yet (the output's end is past its last stable offset), restarts it, and reads
the output as a downstream consumer would, with ``read_committed``: every payment exactly
once, and each account's totals counting 1, 2, 3, ... (the state did not count a payment
twice either). The read_uncommitted view holds more records than that: the aborted output
of the killed run, which read_committed hides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from changelog_apps import AppProcess
from confluent_kafka import IsolationLevel, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from interop_support import wait_until
from test_interop_transactions import read_all

from streamsource.kafka.broker.process import BrokerProcess

pytestmark = [pytest.mark.interop, pytest.mark.slow]

PAYMENTS = 1500
ACCOUNTS = [f"acct-{i}" for i in range(4)]
ATTEMPTS = 5  # kills until one lands inside an open transaction (nearly always the first)


def _offsets(admin: AdminClient, topic: str) -> tuple[int, int]:
    """(end, last stable offset) of the topic's partition 0."""
    tp = TopicPartition(topic, 0)
    found = []
    for isolation in (IsolationLevel.READ_UNCOMMITTED, IsolationLevel.READ_COMMITTED):
        futures = admin.list_offsets(
            {tp: OffsetSpec.latest()}, isolation_level=isolation, request_timeout=30
        )
        found.append(futures[tp].result(30).offset)
    return found[0], found[1]


def _committed_and_open(admin: AdminClient, topic: str, goal: int) -> bool:
    """Whether ``goal`` offsets are committed and more records wait in an open transaction."""
    end, stable = _offsets(admin, topic)
    return stable >= goal and end > stable


def test_quix_exactly_once_app_killed_mid_transaction_writes_each_result_once(
    broker_process: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    proc = broker_process()
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    source, output, group = "payments", "totals", "totals-eos"
    for name, partitions in ((source, 2), (output, 1)):
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    producer = Producer({"bootstrap.servers": proc.bootstrap, "linger.ms": 5})
    for i in range(PAYMENTS):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        payment = {"id": i, "account": account, "amount": 1}
        producer.produce(source, key=account.encode(), value=json.dumps(payment).encode())
    assert producer.flush(30) == 0

    def start() -> AppProcess:
        return AppProcess(
            "quix", "exactly_once_app.py", proc.bootstrap, source, output, group,
            str(tmp_path / "state"), log_path=tmp_path / "quix.log",
        )  # fmt: skip

    left_open = None
    for _ in range(ATTEMPTS):
        app = start()
        try:
            _, committed = _offsets(admin, output)
            wait_until(
                partial(_committed_and_open, admin, output, committed + 100),
                180,
                "the app committing output and writing more in an open transaction",
            )
        finally:
            app.kill()  # kill -9
        end, stable = _offsets(admin, output)
        if end > stable:  # the kill left a transaction open: its records are not committed
            left_open = (end, stable)
            break
    assert left_open is not None, f"no kill of {ATTEMPTS} landed inside a transaction"
    assert left_open[1] < PAYMENTS, "the app had finished before it was killed"

    app = start()
    try:

        def done() -> bool:
            _, stable = _offsets(admin, output)
            return stable >= PAYMENTS and len(read_all(proc.bootstrap, output)) >= PAYMENTS

        wait_until(done, 240, "the restarted app processing every payment")
    finally:
        app.kill()

    results = [json.loads(value) for value in read_all(proc.bootstrap, output)]
    ids = [r["id"] for r in results]
    assert len(ids) == len(set(ids)), "a payment's result was committed twice"
    assert sorted(ids) == list(range(PAYMENTS)), "a payment's result is missing"
    for account in ACCOUNTS:
        totals = [r["total"] for r in results if r["account"] == account]
        assert totals == list(range(1, len(totals) + 1)), f"{account}'s state counted wrongly"
    # the killed run's open transaction was aborted: its records are in the log, hidden
    uncommitted = read_all(proc.bootstrap, output, "read_uncommitted")
    assert len(uncommitted) > PAYMENTS
