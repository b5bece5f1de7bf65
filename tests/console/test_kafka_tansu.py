"""The console's Kafka pages against Tansu, another Kafka-compatible broker, which does not
implement DescribeLogDirs: topics and messages show, the size says unknown, nothing fails."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tansu import tansu_broker

from .console_process import console_process

pytestmark = [pytest.mark.slow, pytest.mark.interop]


def test_a_broker_without_describe_log_dirs_shows_size_unknown(tmp_path: Path) -> None:
    with tansu_broker(tmp_path) as bootstrap:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic("ledger", 2, 1)]).values():
            future.result(30)
        producer = Producer({"bootstrap.servers": bootstrap})
        for n in range(3):
            producer.produce("ledger", f"entry-{n}".encode(), partition=n % 2)
        assert producer.flush(30) == 0
        with console_process(["--bootstrap", bootstrap]) as url:
            topics = {t["name"]: t for t in httpx.get(f"{url}/api/kafka/topics", timeout=30).json()}
            detail = httpx.get(f"{url}/api/kafka/topic", params={"name": "ledger"}, timeout=30)
            page = httpx.get(f"{url}/kafka/topics", timeout=30)
    # (Tansu 0.6's watermarks are its own business: the count is not checked here)
    assert (topics["ledger"]["partitions"], topics["ledger"]["size_bytes"]) == (2, None)
    assert detail.status_code == 200
    assert [p["size_bytes"] for p in detail.json()["partitions"]] == [None, None]
    assert page.status_code == 200
    assert 'title="the cluster does not answer DescribeLogDirs">unknown</td>' in page.text
