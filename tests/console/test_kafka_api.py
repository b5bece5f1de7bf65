"""The Kafka pages' JSON twins, through confluent-kafka against a real broker process that
served the demo: topics, the message browser, consumer groups, lag and offset reset."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime

import httpx
import pytest
from confluent_kafka import Producer

from kafka import KafkaAdminClient

from .conftest import login
from .kafka_fill import BASE_MS, MESSAGES, ORDERS, PARTITIONS

# one worker runs the whole module: its tests share one console over one store
pytestmark = pytest.mark.xdist_group("console-kafka-api")

PER_PARTITION = MESSAGES // PARTITIONS


@pytest.fixture(scope="module")
def admin(kafka_console: str) -> Iterator[httpx.Client]:
    client, csrf = login(kafka_console, "ada")
    client.headers["X-CSRF-Token"] = csrf
    with closing(client):
        yield client


@pytest.fixture(scope="module")
def viewer(kafka_console: str) -> Iterator[httpx.Client]:
    client, csrf = login(kafka_console, "vic")
    client.headers["X-CSRF-Token"] = csrf
    with closing(client):
        yield client


def test_topics_with_partitions_and_messages(admin: httpx.Client) -> None:
    topics = {t["name"]: t for t in admin.get("/api/kafka/topics").json()}
    assert topics["my-topic"]["messages"] == 2  # the demo's key1/value1 and key2/value2
    assert topics["bank.account"]["messages"] > 0  # the demo's outbox relay
    assert (topics[ORDERS]["partitions"], topics[ORDERS]["messages"]) == (PARTITIONS, MESSAGES)
    searched = admin.get("/api/kafka/topics", params={"search": "ORDERS"}).json()
    assert [t["name"] for t in searched] == [ORDERS]


def test_topic_partitions_watermarks_and_configs(admin: httpx.Client) -> None:
    topic = admin.get("/api/kafka/topic", params={"name": ORDERS}).json()
    assert [(p["partition"], p["low"], p["high"]) for p in topic["partitions"]] == [
        (p, 0, PER_PARTITION) for p in range(PARTITIONS)
    ]
    assert topic["configs"]["cleanup.policy"] == "delete"
    missing = admin.get("/api/kafka/topic", params={"name": "no-such-topic"})
    assert missing.status_code == 404 and "no-such-topic" in missing.json()["error"]


def test_topic_sizes_are_the_brokers_bytes(
    admin: httpx.Client, kafka_demo: tuple[str, str]
) -> None:
    """What the console shows is what the broker answers to another client (kafka-python)."""
    client = KafkaAdminClient(bootstrap_servers=kafka_demo[1])
    try:
        (answer,) = client.describe_log_dirs()
    finally:
        client.close()
    on_broker = {
        (t["name"], p["partition_index"]): p["partition_size"]
        for log_dir in answer["log_dirs"]
        for t in log_dir["topics"]
        for p in t["partitions"]
    }
    by_partition = [on_broker[(ORDERS, p)] for p in range(PARTITIONS)]
    topics = {t["name"]: t for t in admin.get("/api/kafka/topics").json()}
    assert topics[ORDERS]["size_bytes"] == sum(by_partition)
    assert topics[ORDERS]["size_bytes"] > MESSAGES * 60  # each record's key, JSON value, headers
    assert topics["blobs"]["size_bytes"] == on_broker[("blobs", 0)] > 0
    topic = admin.get("/api/kafka/topic", params={"name": ORDERS}).json()
    assert [p["size_bytes"] for p in topic["partitions"]] == by_partition
    assert topic["size_bytes"] == sum(by_partition)


def test_sizes_read_as_a_person_reads_them() -> None:
    from streamsource.console.kafka_views import human_bytes

    assert [human_bytes(n) for n in (None, 0, 1023, 1536, 5 * 2**20, 3 * 2**40, 2**50)] == [
        "unknown", "0 B", "1023 B", "1.5 KiB", "5.0 MiB", "3.0 TiB", "1024.0 TiB"
    ]  # fmt: skip


def test_browsing_pages_by_offset(admin: httpx.Client) -> None:
    offsets: list[int] = []
    params: dict[str, str | int] = {"topic": ORDERS, "partition": 1, "offset": 0, "limit": 15}
    while True:
        page = admin.get("/api/kafka/messages", params=params).json()
        offsets += [m["offset"] for m in page["messages"]]
        if page["next_offset"] is None:
            break
        params["offset"] = page["next_offset"]
    assert offsets == list(range(PER_PARTITION))
    newest = admin.get("/api/kafka/messages", params={"topic": ORDERS, "limit": 5}).json()
    assert [m["offset"] for m in newest["messages"]] == list(
        range(PER_PARTITION - 5, PER_PARTITION)
    )
    message = newest["messages"][-1]
    n = 3 * (PER_PARTITION - 1)  # partition 0 holds orders 0, 3, 6, ...
    assert message["key"] == {
        "text": f"order-{n}",
        "format": "text",
        "size": len(f"order-{n}"),
        "truncated": False,
    }
    assert message["value"]["format"] == "json"
    assert message["value"]["text"].startswith('{\n  "lines": [\n    1,')  # pretty-printed
    assert ["region", "eu" if n % 2 == 0 else "us"] in message["headers"]


def test_browsing_from_a_time(admin: httpx.Client) -> None:
    when = datetime.fromtimestamp((BASE_MS + 60_500) / 1000, UTC).isoformat()
    page = admin.get(
        "/api/kafka/messages", params={"topic": ORDERS, "partition": 0, "time": when, "limit": 2}
    ).json()
    # order 63 is the first of partition 0 stamped after 60.5 s: offset 21
    assert [m["offset"] for m in page["messages"]] == [21, 22]
    assert page["messages"][0]["timestamp"] == "2026-01-01T00:01:03.000+00:00"


def test_search_by_key_value_and_header(admin: httpx.Client) -> None:
    def found(**search: str) -> list[str]:
        page = admin.get(
            "/api/kafka/messages",
            params={"topic": ORDERS, "partition": 2, "offset": 0, **search},
        ).json()
        assert page["scanned"] == PER_PARTITION and page["next_offset"] is None
        return [m["key"]["text"] for m in page["messages"]]

    assert found(key="ORDER-11") == [f"order-{n}" for n in (11, 110, 113, 116, 119)]
    assert found(value='"sku-47"') == ["order-47"]
    assert found(header="region=us", key="order-5") == ["order-5", "order-53", "order-59"]
    assert len(found(header="source")) == PER_PARTITION
    assert found(header="missing") == []


def test_binary_values_are_shown_as_base64(admin: httpx.Client) -> None:
    (message,) = admin.get("/api/kafka/messages", params={"topic": "blobs"}).json()["messages"]
    assert message["value"] == {
        "text": "AJ+Slv8=",
        "format": "base64",
        "size": 5,
        "truncated": False,
    }


def test_groups_members_assignments_and_lag(
    admin: httpx.Client, kafka_demo: tuple[str, str]
) -> None:
    groups = {g["group"]: g for g in admin.get("/api/kafka/groups").json()}
    assert {"demo-printer", "reset-me", "live-readers"} <= set(groups)
    assert groups["live-readers"]["state"] == "STABLE"
    live = admin.get("/api/kafka/group", params={"id": "live-readers"}).json()
    (member,) = live["members"]
    assert member["client_id"] == "live-reader-1"
    assert sorted(member["assignment"]) == [f"{ORDERS}[{p}]" for p in range(PARTITIONS)]
    resting = admin.get("/api/kafka/group", params={"id": "reset-me"}).json()
    assert resting["state"] == "EMPTY" and resting["members"] == []
    assert [(o["partition"], o["committed"], o["lag"]) for o in resting["offsets"]] == [
        (p, PER_PARTITION, 0) for p in range(PARTITIONS)
    ]
    # new messages show up as lag of the group that has not read them
    producer = Producer({"bootstrap.servers": kafka_demo[1]})
    for _ in range(4):
        producer.produce(ORDERS, value=b"{}", partition=1)
    assert producer.flush(30) == 0
    lagging = admin.get("/api/kafka/group", params={"id": "reset-me"}).json()
    assert [o["lag"] for o in lagging["offsets"]] == [0, 4, 0]


def test_offset_reset_of_an_empty_group(admin: httpx.Client) -> None:
    def reset(**body: object) -> dict[int, int]:
        response = admin.post("/api/kafka/group/reset", params={"id": "reset-me"}, json=body)
        assert response.status_code == 200, response.text
        return {o["partition"]: o["committed"] for o in response.json()["offsets"]}

    assert reset(topic=ORDERS, to="earliest") == {0: 0, 1: 0, 2: 0}
    assert reset(topic=ORDERS, to="offset", offset=10, partition=1) == {0: 0, 1: 10, 2: 0}
    when = datetime.fromtimestamp((BASE_MS + 60_500) / 1000, UTC).isoformat()
    assert reset(topic=ORDERS, to="timestamp", timestamp=when)[0] == 21
    latest = reset(topic=ORDERS, to="latest")
    assert latest[0] == PER_PARTITION and latest[1] >= PER_PARTITION
    group = admin.get("/api/kafka/group", params={"id": "reset-me"}).json()
    assert all(o["lag"] == 0 for o in group["offsets"])


def test_offset_reset_refuses_a_group_in_use_and_bad_input(admin: httpx.Client) -> None:
    busy = admin.post(
        "/api/kafka/group/reset",
        params={"id": "live-readers"},
        json={"topic": ORDERS, "to": "earliest"},
    )
    assert busy.status_code == 409 and "stop its consumers first" in busy.json()["error"]
    for body, status, reason in (
        ({"topic": ORDERS, "to": "yesterday"}, 422, "to"),
        ({"topic": ORDERS, "to": "offset"}, 400, "needs offset=N"),
        ({"topic": ORDERS, "to": "timestamp", "timestamp": "noon"}, 400, "invalid time"),
        ({"topic": ORDERS, "to": "earliest", "partition": 7}, 404, "has no partition 7"),
        ({"topic": "no-such-topic", "to": "earliest"}, 404, "no topic"),
    ):
        response = admin.post("/api/kafka/group/reset", params={"id": "reset-me"}, json=body)
        assert response.status_code == status, response.text
        assert reason in response.json()["error"]


def test_viewers_see_no_values_and_cannot_reset(viewer: httpx.Client) -> None:
    page = viewer.get("/api/kafka/messages", params={"topic": ORDERS, "limit": 3}).json()
    assert all(
        m["value"]["format"] == "masked" and "order" not in m["value"]["text"]
        for m in page["messages"]
    )
    assert all(m["key"]["text"].startswith("order-") for m in page["messages"])  # keys stay
    refused = viewer.get("/api/kafka/messages", params={"topic": ORDERS, "value": "sku"})
    assert refused.status_code == 403 and "masked" in refused.json()["error"]
    reset = viewer.post(
        "/api/kafka/group/reset",
        params={"id": "reset-me"},
        json={"topic": ORDERS, "to": "earliest"},
    )
    assert reset.status_code == 403 and "admin" in reset.json()["error"]


def test_bad_browser_input_is_a_4xx(admin: httpx.Client) -> None:
    cases: list[tuple[dict[str, str | int], int]] = [
        ({"topic": ORDERS, "partition": -1}, 422),
        ({"topic": ORDERS, "partition": 9}, 404),
        ({"topic": ORDERS, "offset": "x"}, 422),
        ({"topic": ORDERS, "time": "soon"}, 400),
        ({"topic": "", "partition": 0}, 422),
    ]
    for params, status in cases:
        response = admin.get("/api/kafka/messages", params=params)
        assert response.status_code == status, (params, response.text)
        assert response.json()["error"]
