"""Sagas across a real broker: the commands and replies of a saga travel as Kafka messages
(each service's outbox relayed to its channel topics, consumed through its inbox)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.kafka_helpers import read_topic
from deadline import wait_until
from streamsource.messaging import KafkaTransport
from streamsource.sagas import SagaEngine

from .mall import PlaceOrder, orders_service, payments_service, rows, stock_service


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Any]:
    from streamsource.kafka import EmbeddedBroker

    started = EmbeddedBroker(
        data_dir=tmp_path / "broker",
        port=0,
        default_partitions=3,
        group_initial_rebalance_delay_ms=0,
    )
    started.start()
    yield started
    started.stop()


def test_sagas_complete_and_compensate_across_the_broker(
    open_store: Callable[..., Any], broker: Any
) -> None:
    orders = orders_service(open_store())
    engine = SagaEngine(orders, [PlaceOrder])
    stock, payments = stock_service(open_store()), payments_service(open_store())
    with KafkaTransport([orders, stock, payments], broker.bootstrap), engine:
        ok = engine.start(PlaceOrder, "o-1", {"order": "o-1", "amount": 50, "quantity": 1})
        refused = engine.start(PlaceOrder, "o-2", {"order": "o-2", "amount": 500, "quantity": 1})
        wait_until(
            lambda: (
                {engine.load(ok).status, engine.load(refused).status}
                == {"completed", "compensated"}
            ),
            90,
            "both sagas to finish",
        )
    assert engine.load(ok).status == "completed"
    assert engine.load(refused).reason == "step 'charge' refused: card limit is 100, 500 asked"
    assert rows(stock.store, "stock") == {"o-1": "reserved", "o-2": "released"}
    assert rows(payments.store, "payments") == {"o-1": "charged"}
    assert rows(orders.store, "orders") == {"o-1": "confirmed"}

    replies = read_topic(broker.bootstrap, "mall.orders.replies.PlaceOrder", 6)
    headers = [dict(m.headers()) for m in replies]
    assert {h["saga-name"] for h in headers} == {b"PlaceOrder"}
    assert {h["saga-id"] for h in headers} == {ok.encode(), refused.encode()}
