"""Prometheus metrics as an operator scrapes them: real processes, real clients, real HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

import streamsource as ss
from deadline import Deadline, wait_until
from streamsource.kafka.broker.process import BrokerProcess
from streamsource.observability import enable_metrics, metrics_text, serve_metrics

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "grafana-streamsource.json"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def broker_with_metrics(tmp_path: Path) -> Iterator[tuple[BrokerProcess, str]]:
    proc = BrokerProcess(tmp_path / "data", tmp_path / "broker.log", metrics_port=0,
                         group_initial_rebalance_delay_ms=0)  # fmt: skip
    proc.start()
    try:
        found = wait_until(
            lambda: re.search(r"metrics on (http://\S+/metrics)", proc.output()),
            what="the metrics address in the broker's output",
        )
        assert found is not None
        url = found.group(1)
        yield proc, url
    finally:
        proc.kill()


def test_broker_metrics_follow_produce_fetch_and_group_lag(
    broker_with_metrics: tuple[BrokerProcess, str],
) -> None:
    proc, url = broker_with_metrics
    producer = Producer({"bootstrap.servers": proc.bootstrap, "linger.ms": 0})
    for i in range(30):
        producer.produce("orders", f"order-{i}".encode(), key=str(i).encode())
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": proc.bootstrap,
            "group.id": "billing",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe(["orders"])
        got: list[Any] = []
        deadline = Deadline(30, "the first 10 records")
        while len(got) < 10:
            deadline.check()
            got += [
                m for m in consumer.consume(10 - len(got), deadline.slice(0.5)) if not m.error()
            ]
        last = got[-1]
        consumer.commit(offsets=[TopicPartition("orders", last.partition(), last.offset() + 1)],
                        asynchronous=False)  # fmt: skip
        text = httpx.get(url, timeout=10).text
    finally:
        consumer.close()

    assert value(text, "streamsource_broker_produced_records_total", topic="orders") == 30
    assert value(text, "streamsource_broker_produced_bytes_total", topic="orders") > 30 * 7
    assert value(text, "streamsource_broker_fetched_records_total", topic="orders") >= 10
    assert value(text, "streamsource_broker_fetched_bytes_total", topic="orders") > 0
    assert value(text, "streamsource_broker_log_end_offset", topic="orders", partition="0") == 30
    assert value(text, "streamsource_broker_log_size_bytes", topic="orders", partition="0") > 0
    assert value(
        text,
        "streamsource_broker_consumer_group_lag",
        group="billing",
        topic="orders",
        partition="0",
    ) == 30 - (last.offset() + 1)
    assert value(text, "streamsource_broker_request_duration_seconds_count", api="PRODUCE") >= 1
    assert value(text, "streamsource_broker_request_duration_seconds_count", api="FETCH") >= 1
    assert value(text, "streamsource_broker_connections", listener=proc.bootstrap) >= 1


def test_store_appends_are_counted_and_timed_per_backend(tmp_path: Path) -> None:
    enable_metrics()
    before = metrics_text().decode()
    with ss.open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for i in range(4):
            store.append(
                f"account-{i}", [ss.NewEvent("Opened", {"n": i}), ss.NewEvent("Funded", {})]
            )
        with store.transaction() as tx:  # two appends committed together: one latency
            tx.append_many(
                [
                    ("order-1", [ss.NewEvent("Placed", {})], ss.ANY),
                    ("order-2", [ss.NewEvent("Placed", {}), ss.NewEvent("Paid", {})], ss.ANY),
                ]
            )
    after = metrics_text().decode()
    for name, grew in (
        ("streamsource_store_appends_total", 6),
        ("streamsource_store_appended_events_total", 11),
        ("streamsource_store_append_duration_seconds_count", 5),
    ):
        assert value(after, name, backend="sqlite") - value(before, name, backend="sqlite") == grew
    assert value(after, "streamsource_store_group_commit_batch_size_count", backend="sqlite") > (
        value(before, "streamsource_store_group_commit_batch_size_count", backend="sqlite")
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Any]:
    from streamsource.kafka import EmbeddedBroker

    started = EmbeddedBroker(data_dir=tmp_path / "broker", port=0)
    started.start()
    yield started
    started.stop()


def test_relay_lag_falls_to_zero_once_kafka_acknowledges(tmp_path: Path, broker: Any) -> None:
    from streamsource.bridge import OutboxRelay, TopicMapping

    enable_metrics()
    with ss.open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for i in range(12):
            store.append(f"order-{i}", ss.NewEvent("Placed", {"n": i}))
        relay = OutboxRelay(store, broker.bootstrap, mapping=TopicMapping.of((), ()),
                            name="metrics-test")  # fmt: skip
        relay.open()  # tracked from here; nothing sent yet
        text = metrics_text().decode()
        relay.close()
        assert value(text, "streamsource_relay_lag_events", relay="metrics-test") == 12
        published = value(text, "streamsource_relay_published_events_total", relay="metrics-test")
        with relay:  # publishes in a background thread
            assert relay.wait_for(store.head_position(), timeout=30), "the relay published"
            text = metrics_text().decode()
            assert value(text, "streamsource_relay_lag_events", relay="metrics-test") == 0
            grew = value(text, "streamsource_relay_published_events_total", relay="metrics-test")
            assert grew - published == 12
        gone = ("streamsource_relay_lag_events", frozenset({("relay", "metrics-test")}))
        assert gone not in samples(metrics_text().decode())  # a stopped relay is not reported


class InvoiceCount(ss.Projection):
    name = "invoice_count"
    tables = ("invoices",)
    category = "invoice"

    def create(self, db: Any) -> None:
        db.execute("CREATE TABLE {invoices} (n INTEGER)")

    def handle(self, event: ss.RecordedEvent, db: Any) -> None:
        db.execute("INSERT INTO {invoices} (n) VALUES (?)", (event.data["n"],))


def test_parked_messages_and_projection_lag_are_levels(tmp_path: Path) -> None:
    enable_metrics()
    with ss.open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        for i in range(3):
            store.append(f"invoice-{i}", ss.NewEvent("Issued", {"n": i}))
        with ss.PersistentSubscription(store, "invoices-mailer", category="invoice") as sub:
            first = sub.fetch(1, timeout=5)[0]
            sub.nack(first, "smtp refused", park=True)
            text = metrics_text().decode()
            assert (
                value(text, "streamsource_subscription_parked_messages", group="invoices-mailer")
                == 1
            )
            assert (
                value(text, "streamsource_subscription_in_flight_messages", group="invoices-mailer")
                >= 0
            )
            assert sub.replay_parked() == 1
            text = metrics_text().decode()
            assert (
                value(text, "streamsource_subscription_parked_messages", group="invoices-mailer")
                == 0
            )

        with ss.ProjectionRunner(store, [InvoiceCount()]) as runner:
            text = metrics_text().decode()
            assert (
                value(text, "streamsource_projection_lag_events", projection="invoice_count") == 3
            )
            runner.run_until_caught_up()
            text = metrics_text().decode()
            assert (
                value(text, "streamsource_projection_lag_events", projection="invoice_count") == 0
            )
            assert value(text, "streamsource_projection_failed", projection="invoice_count") == 0


async def test_asyncio_subscriptions_report_parked_and_in_flight(tmp_path: Path) -> None:
    """An asyncio consumer group's counts, scraped over HTTP while its loop runs."""
    server, port = serve_metrics(0)

    def scrape() -> str:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    def counts(text: str) -> tuple[float, float]:
        return (
            value(text, "streamsource_subscription_parked_messages", group="async-mailer"),
            value(text, "streamsource_subscription_in_flight_messages", group="async-mailer"),
        )

    try:
        async with await ss.open_async_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
            for i in range(3):
                await store.append(f"invoice-{i}", ss.NewEvent("Issued", {"n": i}))
            sub = ss.AsyncPersistentSubscription(store, "async-mailer", category="invoice")
            async with sub:
                first, second, third = await sub.fetch(3, timeout=5)
                await sub.ack(first)
                await sub.nack(second, "smtp refused", park=True)
                assert counts(await asyncio.to_thread(scrape)) == (1, 1)  # third unacked

                await sub.ack(third)
                assert await sub.replay_parked() == 1
                assert counts(await asyncio.to_thread(scrape)) == (0, 1)  # the replayed one

                # on the loop's own thread the counts cannot be awaited: left out, no hang
                text = metrics_text().decode()
                assert "streamsource_subscription_parked_messages" in text
                assert counts(text) == (0, 0)
            assert sub.closed
            gone = (
                "streamsource_subscription_parked_messages",
                frozenset({("group", "async-mailer")}),
            )
            assert gone not in samples(await asyncio.to_thread(scrape))  # a closed one is not
    finally:
        server.shutdown()


@pytest.mark.postgres
def test_postgresql_group_commits_report_their_batch_sizes(pg_url: str) -> None:
    """Every append of a PostgreSQL store goes in some batch: the sizes add up to them."""
    enable_metrics()
    sizes = "streamsource_store_group_commit_batch_size"

    def batches() -> tuple[float, float]:
        text = metrics_text().decode()
        return (
            value(text, f"{sizes}_count", backend="postgresql"),
            value(text, f"{sizes}_sum", backend="postgresql"),
        )

    count_before, sum_before = batches()
    writers, each = 4, 10
    with ss.open_store(pg_url) as store:

        def write(n: int) -> None:
            for i in range(each):
                store.append(f"ledger-{n}", ss.NewEvent("Posted", {"i": i}))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert store.head_position() is not None
    count_after, sum_after = batches()
    assert sum_after - sum_before == writers * each  # each append in exactly one batch
    assert 1 <= count_after - count_before <= writers * each


def test_metrics_endpoint_serves_the_exposition(tmp_path: Path) -> None:
    server, port = serve_metrics(0)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200
        assert "streamsource_store_appends_total" in answer.text
    finally:
        server.shutdown()


def test_every_dashboard_query_names_a_metric_that_exists(
    broker_with_metrics: tuple[BrokerProcess, str], tmp_path: Path
) -> None:
    """The dashboard's queries against the names a broker and this process expose."""
    proc, url = broker_with_metrics
    producer = Producer({"bootstrap.servers": proc.bootstrap})
    producer.produce("t", b"x")
    assert producer.flush(30) == 0
    enable_metrics()
    exposed = {
        family.name for family in text_string_to_metric_families(httpx.get(url, timeout=10).text)
    }
    exposed |= {family.name for family in text_string_to_metric_families(metrics_text().decode())}
    # histograms and counters are exposed as families without their sample suffixes
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(queries) >= 10
    named = {m for q in queries for m in re.findall(r"\bstreamsource_[a-z_]+", q)}
    base = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in named}
    missing = {n for n in base if n not in exposed and f"{n}_total" not in exposed}
    assert not missing, f"the dashboard names metrics nobody exposes: {sorted(missing)}"
