"""Per-key state without windows, joins, and the event store as source and sink."""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from streams_support import Reader, create_topic, produce, read_all

import streamsource as ss
from deadline import Deadline
from streamsource.streams import App, StreamsError, aggregate


def test_running_aggregates_per_key(broker: Any, tmp_path: Path, run_app: Any) -> None:
    create_topic(broker.bootstrap, "trades", 2)
    trades = [(f"s{i % 4}", {"price": (i * 37) % 101, "qty": i % 5 + 1}, None) for i in range(400)]
    produce(broker.bootstrap, "trades", trades)
    app = App(broker.bootstrap, "aggs", state_dir=tmp_path, checkpoint_interval=0.2)
    stream = app.stream(app.topic("trades", value=dict))
    stream.sum(lambda v: v["qty"]).to(app.topic("volume", value=int))
    stream.min(lambda v: v["price"]).to(app.topic("low", value=int))
    stream.max(lambda v: v["price"]).to(app.topic("high", value=int))
    stream.mean(lambda v: v["price"]).to(app.topic("avg", value=float))
    stream.latest(lambda v: v["price"]).to(app.topic("last", value=int))
    stream.reduce(lambda a, b: {"price": a["price"] + b["price"], "qty": 0}).map(
        lambda v: v["price"]
    ).to(app.topic("total", value=int))
    vwap = aggregate(
        lambda: [0, 0],
        lambda s, v: [s[0] + v["price"] * v["qty"], s[1] + v["qty"]],
        lambda s: s[0] / s[1],
    )
    stream.aggregate(vwap).to(app.topic("vwap", value=float))
    running = run_app(app)
    Reader(broker.bootstrap, "vwap").until(lambda got: len(got) >= 400, "400 updates")
    running.stop()

    by_key: dict[str, list[dict[str, int]]] = defaultdict(list)
    for k, v, _t in trades:
        by_key[str(k)].append(v)

    def final(topic: str) -> dict[str, Any]:
        return {str(k): v for k, v in read_all(broker.bootstrap, topic)}  # the last update wins

    assert final("volume") == {k: sum(v["qty"] for v in vs) for k, vs in by_key.items()}
    assert final("low") == {k: min(v["price"] for v in vs) for k, vs in by_key.items()}
    assert final("high") == {k: max(v["price"] for v in vs) for k, vs in by_key.items()}
    assert final("avg") == {k: sum(v["price"] for v in vs) / len(vs) for k, vs in by_key.items()}
    assert final("last") == {k: vs[-1]["price"] for k, vs in by_key.items()}
    assert final("total") == {k: sum(v["price"] for v in vs) for k, vs in by_key.items()}
    assert final("vwap") == {
        k: sum(v["price"] * v["qty"] for v in vs) / sum(v["qty"] for v in vs)
        for k, vs in by_key.items()
    }
    assert len(read_all(broker.bootstrap, "volume")) == 400  # an update per record


def test_stream_table_join_and_windowed_stream_join(
    broker: Any, tmp_path: Path, run_app: Any
) -> None:
    create_topic(broker.bootstrap, "customers", 2, **{"cleanup.policy": "compact"})
    create_topic(broker.bootstrap, "orders", 2)
    create_topic(broker.bootstrap, "shipments", 2)
    produce(
        broker.bootstrap,
        "customers",
        [("c1", {"name": "Ann"}, None), ("c2", {"name": "Bob"}, None)],
    )
    app = App(broker.bootstrap, "joins", state_dir=tmp_path, checkpoint_interval=0.2)
    customers = app.table(app.topic("customers", value=dict))
    orders = app.stream(app.topic("orders", value=dict))
    orders.join(customers, lambda order, customer: {**order, "name": customer["name"]}).to(
        app.topic("named", value=dict)
    )
    shipments = app.stream(app.topic("shipments", value=dict))
    orders.join_window(shipments, 10, lambda o, s: {"order": o["id"], "carrier": s["carrier"]}).to(
        app.topic("shipped", value=dict)
    )
    running = run_app(app)
    Reader(broker.bootstrap, "customers").until(lambda got: len(got) >= 2, "customers")
    # the table is read before the orders that need it (the app is running and caught up)
    deadline = Deadline(30, "the app to read the customers table")
    while running.app.processed < 2:
        deadline.check()
        running.thread.join(0.05)
    produce(
        broker.bootstrap,
        "orders",
        [("c1", {"id": 1}, 1_000_000), ("c2", {"id": 2}, 1_000_000), ("c3", {"id": 3}, 1_000_000)],
    )
    produce(
        broker.bootstrap,
        "shipments",
        [("c1", {"carrier": "UPS"}, 1_005_000), ("c2", {"carrier": "DHL"}, 1_020_000)],
    )
    Reader(broker.bootstrap, "shipped").until(lambda got: len(got) >= 1, "a shipped order")
    Reader(broker.bootstrap, "named").until(lambda got: len(got) >= 2, "named orders")
    running.stop()
    assert sorted(read_all(broker.bootstrap, "named"), key=str) == [
        ("c1", {"id": 1, "name": "Ann"}),
        ("c2", {"id": 2, "name": "Bob"}),
    ]  # c3 has no customer row: an inner join drops it
    # c2's shipment came 20 s after its order: outside the 10 s window
    assert read_all(broker.bootstrap, "shipped") == [("c1", {"order": 1, "carrier": "UPS"})]


def test_event_store_source_across_an_append_burst(broker: Any, tmp_path: Path) -> None:
    store = ss.open_store(f"sqlite:///{tmp_path / 'bank.db'}?durability=normal")
    for n in range(50):
        store.append(f"account-{n % 5}", [ss.NewEvent("Deposited", {"amount": n})])
    app = App(broker.bootstrap, "ledger", state_dir=tmp_path / "state", checkpoint_interval=0.2)
    deposits = app.from_store(store, category="account")
    totals = deposits.map(lambda e: e.data["amount"]).sum()
    totals.to(app.topic("balances", value=int))
    audit = ss.open_store(f"sqlite:///{tmp_path / 'audit.db'}?durability=normal")
    deposits.filter(lambda e: e.data["amount"] >= 100).to_store(
        audit, stream=lambda k, e: f"large-{k}", type="LargeDeposit", data=lambda e: e.data
    )
    projection = tmp_path / "projection.db"
    with sqlite3.connect(projection) as db:
        db.execute("CREATE TABLE balance (account TEXT PRIMARY KEY, total INTEGER)")
    totals.to_sql(
        lambda: sqlite3.connect(projection, check_same_thread=False),
        "INSERT INTO balance VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET total = excluded.total",
        lambda k, total: (k, total),
    )
    thread = threading.Thread(target=app.run, daemon=True)
    thread.start()
    try:
        Reader(broker.bootstrap, "balances").until(lambda got: len(got) >= 50, "history")

        def burst(start: int) -> None:  # appends from several threads at once while live
            for n in range(start, start + 500):
                store.append(f"account-{n % 5}", [ss.NewEvent("Deposited", {"amount": n})])

        writers = [threading.Thread(target=burst, args=(50 + 500 * w,)) for w in range(4)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(60)
        Reader(broker.bootstrap, "balances").until(
            lambda got: len(got) >= 2050, "every event of the burst"
        )
    finally:
        app.stop()
        thread.join(60)
    amounts: dict[str, int] = defaultdict(int)
    for event in store.read_all():
        amounts[event.stream] += event.data["amount"]
    assert {str(k): v for k, v in read_all(broker.bootstrap, "balances")} == amounts
    assert len(read_all(broker.bootstrap, "balances")) == 2050  # each event once
    with sqlite3.connect(projection) as db:
        assert dict(db.execute("SELECT account, total FROM balance").fetchall()) == amounts
    large = [e for e in audit.read_all()]
    assert sorted(e.data["amount"] for e in large) == list(range(100, 2050))
    assert {e.stream for e in large} == {f"large-account-{n}" for n in range(5)}

    # a restart resumes after its checkpoint; the idempotent sink writes nothing twice
    store.append("account-0", [ss.NewEvent("Deposited", {"amount": 5000})])
    again = App(broker.bootstrap, "ledger", state_dir=tmp_path / "state", checkpoint_interval=0.2)
    again.from_store(store, category="account").filter(lambda e: e.data["amount"] >= 100).to_store(
        audit, stream=lambda k, e: f"large-{k}", type="LargeDeposit", data=lambda e: e.data
    )
    thread = threading.Thread(target=again.run, daemon=True)
    thread.start()
    deadline = Deadline(30, "the new deposit")
    while again.processed < 1:
        deadline.check()
        thread.join(0.05)
    again.stop()
    thread.join(60)
    assert again.processed == 1
    assert len(list(audit.read_all())) == len(large) + 1
    store.close()
    audit.close()


def test_store_checkpoint_in_flight(broker: Any, tmp_path: Path) -> None:
    """While a checkpoint's changelog records are unacknowledged, processing goes on: the
    store reads its newest values, and its file stays at the previous checkpoint (never
    ahead of the changelog) until the checkpoint is written."""
    from confluent_kafka import Producer

    from streamsource.streams.state import StoreFile

    create_topic(broker.bootstrap, "changelog", 1)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50})
    path = tmp_path / "store.sqlite"
    store = StoreFile(path, "changelog", 0)
    store.set("a", 1)
    store.set("gone", 0)
    store.send_changelog(producer.produce)

    store.set("a", 2)
    store.delete("gone")
    store.set("b", 3)
    assert (store.get("a"), store.get("gone"), store.get("b")) == (2, None, 3)
    assert dict(store.items()) == {"a": 2, "b": 3}
    on_disk = StoreFile(path, "changelog", 0)
    assert (on_disk.restore_from(), on_disk.get("a")) == (0, None)
    on_disk.close()
    with pytest.raises(StreamsError, match="already in flight"):
        store.send_changelog(producer.produce)

    assert producer.flush(30) == 0
    store.write_checkpoint()
    on_disk = StoreFile(path, "changelog", 0)
    assert (on_disk.restore_from(), on_disk.get("a"), on_disk.get("gone")) == (2, 1, 0)
    on_disk.close()
    assert dict(store.items()) == {"a": 2, "b": 3}

    store.send_changelog(producer.produce)
    assert producer.flush(30) == 0
    store.write_checkpoint()
    store.close()
    on_disk = StoreFile(path, "changelog", 0)
    assert on_disk.restore_from() == 5
    assert dict(on_disk.items()) == {"a": 2, "b": 3}
    on_disk.close()
