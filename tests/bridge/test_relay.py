"""The outbox relay against the embedded broker, read back with a plain Kafka consumer."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import streamsource as ss
from streamsource.bridge import DatabaseCheckpoints, OutboxRelay, TopicMapping, checkpoints_for

from .kafka_helpers import read_topic, wait_until


def _append_accounts(store: ss.EventStore, streams: int, per_stream: int) -> int:
    last = 0
    for version in range(per_stream):
        for index in range(streams):
            result = store.append(
                f"account-{index}",
                [ss.NewEvent("Deposited", {"amount": version}, metadata={"n": version})],
            )
            last = result.position
    return last


def test_events_reach_one_topic_per_category_in_stream_order(
    store: ss.EventStore, broker: Any
) -> None:
    last = _append_accounts(store, streams=5, per_stream=20)
    store.append("product-1", [ss.NewEvent("PriceChanged", {"price": 3})])
    with OutboxRelay(store, broker.bootstrap) as relay:
        assert relay.wait_for(last + 1)
    accounts = read_topic(broker.bootstrap, "account", 100)
    products = read_topic(broker.bootstrap, "product", 1)
    assert len(accounts) == 100 and len(products) == 1
    versions: dict[bytes, list[int]] = defaultdict(list)
    partitions: dict[bytes, set[int]] = defaultdict(set)
    for message in accounts:
        headers = dict(message.headers())
        assert headers["stream"] == message.key()
        assert headers["event-type"] == b"Deposited"
        assert json.loads(headers["metadata"]) == {"n": json.loads(message.value())["amount"]}
        versions[message.key()].append(int(headers["version"]))
        partitions[message.key()].add(message.partition())
    assert all(v == list(range(20)) for v in versions.values())  # per-stream order holds
    assert all(len(p) == 1 for p in partitions.values())  # one stream, one partition
    assert json.loads(products[0].value()) == {"price": 3}


def test_only_the_chosen_categories_and_types_are_published(
    store: ss.EventStore, broker: Any
) -> None:
    store.append("account-1", [ss.NewEvent("Opened", {}), ss.NewEvent("Deposited", {"amount": 1})])
    store.append("order-1", [ss.NewEvent("Deposited", {"amount": 2})])
    last = store.append("cart-1", [ss.NewEvent("Deposited", {"amount": 3})]).position
    mapping = TopicMapping.of(["account", "cart"], ["Deposited"], topic="chosen")
    with OutboxRelay(store, broker.bootstrap, mapping=mapping) as relay:
        assert relay.wait_for(last)
    messages = read_topic(broker.bootstrap, "chosen", 2)
    assert sorted(json.loads(m.value())["amount"] for m in messages) == [1, 3]
    # the checkpoint covers the events it skipped, too
    assert relay.saved_checkpoint == last


def test_a_restarted_relay_resumes_from_its_saved_checkpoint(
    store: ss.EventStore, store_url: str, broker: Any
) -> None:
    checkpoints = checkpoints_for(store)
    first = _append_accounts(store, streams=2, per_stream=5)
    with OutboxRelay(store, broker.bootstrap, checkpoints=checkpoints) as relay:
        assert relay.wait_for(first)
    assert isinstance(checkpoints, DatabaseCheckpoints)
    assert checkpoints.load("default") == first
    second = _append_accounts(store, streams=2, per_stream=5)
    with OutboxRelay(store, broker.bootstrap, checkpoints=checkpoints) as relay:
        assert relay.wait_for(second)
        assert relay.published == 10  # only the new ones
    ids = [dict(m.headers())["event-id"] for m in read_topic(broker.bootstrap, "account", 20)]
    assert len(set(ids)) == 20
    checkpoints.close()


def test_named_relays_keep_separate_checkpoints(
    store: ss.EventStore, store_url: str, broker: Any
) -> None:
    last = _append_accounts(store, streams=1, per_stream=3)
    checkpoints = checkpoints_for(store)
    with OutboxRelay(store, broker.bootstrap, checkpoints=checkpoints, name="a") as relay:
        assert relay.wait_for(last)
    assert checkpoints.load("a") == last
    assert checkpoints.load("b") == 0
    checkpoints.close()


def test_the_checkpoint_waits_while_the_broker_is_down(
    store: ss.EventStore, broker_factory: Any, tmp_path: Path
) -> None:
    broker = broker_factory(default_partitions=2, data_dir=tmp_path / "b")
    port = broker.port
    first = _append_accounts(store, streams=3, per_stream=2)
    relay = OutboxRelay(store, broker.bootstrap).start()
    try:
        assert relay.wait_for(first)
        broker.stop()
        last = _append_accounts(store, streams=3, per_stream=2)
        # nothing is acknowledged while the broker is away: the checkpoint stays put
        assert not relay.wait_for(last, timeout=1.0)
        assert relay.saved_checkpoint == first
        back = broker_factory(default_partitions=2, data_dir=tmp_path / "b", port=port)
        assert relay.wait_for(last)
        ids = [dict(m.headers())["event-id"] for m in read_topic(back.bootstrap, "account", 12)]
        assert len(set(ids)) == 12
    finally:
        relay.stop()


def test_a_postgresql_store_keeps_the_checkpoint_in_its_schema(pg_url: str, broker: Any) -> None:
    with ss.open_store(pg_url) as store:
        last = _append_accounts(store, streams=3, per_stream=4)
        checkpoints = checkpoints_for(store)
        mapping = TopicMapping(topic_prefix="pg.")
        with OutboxRelay(
            store, broker.bootstrap, mapping=mapping, checkpoints=checkpoints
        ) as relay:
            assert relay.wait_for(last)
        assert checkpoints.load("default") == last
        checkpoints.close()
    messages = read_topic(broker.bootstrap, "pg.account", 12)
    assert len({dict(m.headers())["event-id"] for m in messages}) == 12


def test_deliveries_that_time_out_are_sent_again_from_the_checkpoint(
    store: ss.EventStore, broker_factory: Any, tmp_path: Path
) -> None:
    broker = broker_factory(data_dir=tmp_path / "b")
    port = broker.port
    first = _append_accounts(store, streams=2, per_stream=3)
    relay = OutboxRelay(store, broker.bootstrap, producer_config={"message.timeout.ms": 500})
    relay.start()
    try:
        assert relay.wait_for(first)
        broker.stop()
        last = _append_accounts(store, streams=2, per_stream=3)
        # the client gives up on those deliveries: the relay starts a new producer
        assert wait_until(lambda: relay.restarts >= 1)
        assert relay.saved_checkpoint == first
        back = broker_factory(data_dir=tmp_path / "b", port=port)
        assert relay.wait_for(last)
    finally:
        relay.stop()
    ids = [dict(m.headers())["event-id"] for m in read_topic(back.bootstrap, "account", 12)]
    assert len(set(ids)) == 12


async def test_the_relay_runs_as_an_asyncio_task(store_url: str, broker: Any) -> None:
    import asyncio

    store = await ss.open_async_store(store_url)
    result = await store.append("account-1", [ss.NewEvent("Deposited", {"amount": 1})])
    await store.close()
    with ss.open_store(store_url) as sync_store:
        checkpoints = checkpoints_for(sync_store)
        relay = OutboxRelay(sync_store, broker.bootstrap, checkpoints=checkpoints)
        task = asyncio.create_task(relay.run_async())

        async def caught_up() -> None:
            while relay.checkpoint < result.position:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(caught_up(), 30)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert checkpoints.load("default") == result.position
        checkpoints.close()


def test_settings_that_would_break_the_checkpoint_are_refused(store: ss.EventStore) -> None:
    with pytest.raises(ss.InterfaceError, match="acks=all"):
        OutboxRelay(store, "127.0.0.1:1", producer_config={"acks": "1"})
    with pytest.raises(ss.InterfaceError, match=r"enable\.idempotence=true"):
        OutboxRelay(store, "127.0.0.1:1", producer_config={"enable.idempotence": "false"})
