"""Several stores' relays in one thread through one producer (RelayGroup), against the
embedded broker, read back with a plain Kafka consumer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

import streamsource as ss
from streamsource.bridge import Backoff, OutboxRelay, RelayGroup, TopicMapping, checkpoints_for
from streamsource.errors import InterfaceError

from .kafka_helpers import read_topic, wait_until

FAST = Backoff(base=0.01, cap=0.05)


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[list[ss.EventStore]]:
    opened = [ss.open_store(f"sqlite:///{tmp_path / f'{n}.db'}?durability=normal") for n in "ab"]
    yield opened
    for store in opened:
        store.close()


def _relays(stores: list[ss.EventStore], bootstrap: str, **options: Any) -> list[OutboxRelay]:
    return [
        OutboxRelay(
            store,
            bootstrap,
            mapping=TopicMapping.of(categories="account", topic=f"accounts-{name}"),
            checkpoints=checkpoints_for(store),
            name=f"to-{name}",
            **options,
        )
        for name, store in zip("ab", stores, strict=True)
    ]


def _deposit(store: ss.EventStore, amounts: range) -> int:
    position = 0
    for amount in amounts:
        result = store.append(f"account-{amount % 3}", [ss.NewEvent("Deposited", {"n": amount})])
        position = result.position
    return position


def test_each_store_reaches_its_topic_and_keeps_its_own_checkpoint(
    stores: list[ss.EventStore], broker: Any
) -> None:
    a, b = stores
    before = _deposit(a, range(5))
    relays = _relays(stores, broker.bootstrap, idle_wait=60.0)  # only appends wake it
    with RelayGroup(relays, name="both"):
        assert relays[0].wait_for(before)
        # appended while the group rests: the append wakes it, not the 60 s rest
        last_a = _deposit(a, range(5, 10))
        last_b = _deposit(b, range(100, 104))
        assert relays[0].wait_for(last_a, timeout=20)
        assert relays[1].wait_for(last_b, timeout=20)
    amounts = [json.loads(m.value())["n"] for m in read_topic(broker.bootstrap, "accounts-a", 10)]
    assert sorted(amounts) == list(range(10))
    amounts = [json.loads(m.value())["n"] for m in read_topic(broker.bootstrap, "accounts-b", 4)]
    assert sorted(amounts) == list(range(100, 104))
    # each checkpoint lives in its own store, under its relay's name
    assert checkpoints_for(a).load("to-a") == last_a
    assert checkpoints_for(b).load("to-b") == last_b
    assert checkpoints_for(a).load("to-b") == 0  # none of b's in a's store


def test_a_broker_that_comes_back_gets_every_store_s_events(
    stores: list[ss.EventStore], broker_factory: Any, tmp_path: Path
) -> None:
    broker = broker_factory(default_partitions=2, data_dir=tmp_path / "broker")
    port = broker.port
    a, b = stores
    relays = _relays(
        stores, broker.bootstrap, backoff=FAST, producer_config={"message.timeout.ms": 500}
    )
    group = RelayGroup(relays).start()
    try:
        assert relays[0].wait_for(_deposit(a, range(3)))
        broker.stop()
        last_a, last_b = _deposit(a, range(3, 6)), _deposit(b, range(10, 13))
        # deliveries time out: the group backs off and starts a new producer for both
        assert wait_until(lambda: relays[1].restarts >= 2)
        back = broker_factory(default_partitions=2, data_dir=tmp_path / "broker", port=port)
        assert relays[0].wait_for(last_a) and relays[1].wait_for(last_b)
    finally:
        group.stop()
    # nothing lost; what was in flight when the broker went may be there twice (the
    # inboxes downstream skip it)
    assert _amounts(back.bootstrap, "accounts-a") == set(range(6))
    assert _amounts(back.bootstrap, "accounts-b") == set(range(10, 13))


def _amounts(bootstrap: str, topic: str) -> set[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "counter"})
    try:
        count = 0
        for partition in range(2):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            count += high - low
    finally:
        consumer.close()
    return {json.loads(m.value())["n"] for m in read_topic(bootstrap, topic, count)}


def test_relays_with_different_producer_settings_are_refused(
    stores: list[ss.EventStore], broker: Any
) -> None:
    first, second = _relays(stores, broker.bootstrap)
    other = OutboxRelay(stores[1], broker.bootstrap, producer_config={"linger.ms": 50})
    with pytest.raises(InterfaceError, match="same producer settings"):
        RelayGroup([first, other])
    with pytest.raises(InterfaceError, match="at least one relay"):
        RelayGroup([])
    assert RelayGroup([first, second]).name == "to-a+to-b"
