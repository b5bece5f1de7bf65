"""Quix Streams and faust-streaming keep state in compacted changelog topics: an app that is
killed and restarted without its local state gets the state back from the changelog, after
the broker's cleaner compacted it.

Each app counts running totals per account. The test feeds payments, makes the changelog's
segments tiny so the cleaner has closed segments to compact, kills the app with ``kill -9``
once its offsets are committed, waits until the changelog holds fewer records than updates
were made (compacted), restarts the app with its local state wiped, feeds one more payment
per account and checks that the first total the app prints for each account counts every
payment: the state came back whole from the compacted changelog.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from changelog_apps import AppProcess
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from interop_support import wait_until

from streamsource.kafka.broker.process import BrokerProcess

pytestmark = [pytest.mark.interop, pytest.mark.slow]

ACCOUNTS = [f"acct-{i}" for i in range(5)]


def _pay(bootstrap: str, topic: str, amounts: list[tuple[str, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for account, amount in amounts:
        producer.produce(
            topic, key=account.encode(), value=json.dumps({"account": account, "amount": amount})
        )
    assert producer.flush(30) == 0


def _latest_totals(lines: list[dict[str, object]]) -> dict[str, object]:
    return {str(line["account"]): line["total"] for line in lines}


def _changelog(admin: AdminClient, marker: str) -> str:
    def find() -> str | None:
        names = [t for t in admin.list_topics(timeout=10).topics if marker in t]
        return names[0] if names else None

    return wait_until(find, 60, f"a changelog topic named like {marker!r}")


def _compact_quickly(admin: AdminClient, topic: str) -> None:
    """Tiny segments and any dirty ratio: the cleaner then has closed segments to clean."""
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("segment.bytes", "1024", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry(
                "min.cleanable.dirty.ratio", "0.01", incremental_operation=AlterConfigOpType.SET
            ),
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(30)


def _record_count(bootstrap: str, topic: str) -> int:
    """How many records a fresh consumer reads from the beginning of partition 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"count-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, 0)])
        count = 0

        def at_end() -> bool:
            nonlocal count
            count += sum(1 for m in consumer.consume(1000, 0.5) if m.error() is None)
            return consumer.position([TopicPartition(topic, 0)])[0].offset >= end

        wait_until(at_end, 60, f"reading {topic} to its end")
        return count
    finally:
        consumer.close()


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=30)
        return int(tp.offset)
    finally:
        consumer.close()


def _run_restore_scenario(
    proc: BrokerProcess,
    tmp_path: Path,
    start_app: Callable[[Path], AppProcess],
    group: str,
    topic: str,
    changelog_marker: str,
) -> None:
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    state_dir = tmp_path / "state"
    app = start_app(state_dir)
    try:
        app.wait_ready(180)
        expected = {a: 0 for a in ACCOUNTS}
        first = [(a, 1) for a in ACCOUNTS]
        _pay(proc.bootstrap, topic, first)
        for a, amount in first:
            expected[a] += amount
        app.wait_for(lambda s: _latest_totals(s) == expected, 120, "the first totals")
        changelog = _changelog(admin, changelog_marker)
        _compact_quickly(admin, changelog)
        more = [(a, r) for r in range(2, 40) for a in ACCOUNTS]
        _pay(proc.bootstrap, topic, more)
        for a, amount in more:
            expected[a] += amount
        app.wait_for(lambda s: _latest_totals(s) == expected, 120, "the totals of every payment")
        end = len(first) + len(more)
        wait_until(lambda: _committed(proc.bootstrap, group, topic) == end, 60, "the commit")
    finally:
        app.kill()  # kill -9
    updates = end
    wait_until(
        lambda: _record_count(proc.bootstrap, changelog) < updates // 2,
        120,
        "the cleaner compacting the changelog",
    )
    shutil.rmtree(state_dir, ignore_errors=True)  # a new machine: state only in Kafka
    app = start_app(state_dir)
    try:
        # payments made while a restarted faust worker still rebalances can be skipped or
        # processed twice by it: pay once it is ready, as its users wait for it to be
        app.wait_ready(180)
        _pay(proc.bootstrap, topic, [(a, 1000) for a in ACCOUNTS])
        lines = app.wait_for(
            lambda s: {line["account"] for line in s} >= set(ACCOUNTS), 180, "the restarted app"
        )
        # the first total each account shows after the restart adds the new payment to the
        # restored state (at-least-once apps may process a payment again after a rebalance)
        first_seen: dict[str, object] = {}
        for line in lines:
            first_seen.setdefault(str(line["account"]), line["total"])
        assert first_seen == {a: t + 1000 for a, t in expected.items()}
    finally:
        app.kill()


def test_quix_streams_restores_state_from_its_compacted_changelog(
    broker_process: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    proc = broker_process(log_cleaner_backoff_ms=200)
    topic, group = "payments", "totals"
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    def start(state_dir: Path) -> AppProcess:
        return AppProcess(
            "quix", "totals_app.py", proc.bootstrap, topic, group, str(state_dir),
            log_path=tmp_path / "quix.log",
        )  # fmt: skip

    _run_restore_scenario(proc, tmp_path, start, group, topic, "changelog__totals")


def test_faust_streaming_restores_its_table_from_its_compacted_changelog(
    broker_process: Callable[..., BrokerProcess], tmp_path: Path
) -> None:
    proc = broker_process(log_cleaner_backoff_ms=200)
    topic, app_id = "payments", "totals-app"
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    def start(state_dir: Path) -> AppProcess:
        return AppProcess(
            "faust", "totals_app.py", proc.bootstrap, topic, app_id, str(state_dir),
            log_path=tmp_path / "faust.log", ready="Worker ready",
        )  # fmt: skip

    _run_restore_scenario(proc, tmp_path, start, app_id, topic, "totals-app-totals-changelog")
