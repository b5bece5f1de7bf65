"""Group membership survives a broker restart: a live consumer's next commit succeeds.

The broker (a ``streamsource broker`` process) is killed with SIGKILL under a consumer
that has joined, consumed and committed, and started again on the same port and data. The
consumer, which never left, commits again without re-joining: no UNKNOWN_MEMBER_ID, no new
assignment. Both group protocols: classic (JoinGroup/SyncGroup, generations) and KIP-848
(ConsumerGroupHeartbeat, member epochs).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from interop_support import unique_topic, wait_until

from streamsource.kafka.broker.process import BrokerProcess

pytestmark = pytest.mark.interop

# what a commit may meet while the broker restarts (not UNKNOWN_MEMBER_ID, not a rebalance)
RECONNECTING = {
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
    KafkaError._WAIT_COORD,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.REQUEST_TIMED_OUT,
}


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_a_live_consumer_commits_after_a_broker_restart_without_rejoining(
    broker_process: Callable[..., BrokerProcess], protocol: str
) -> None:
    proc = broker_process(fsync="always")
    topic = unique_topic("restart-group")
    admin = AdminClient({"bootstrap.servers": proc.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": proc.bootstrap, "acks": "all"})
    for i in range(20):
        producer.produce(topic, value=f"m{i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0

    assignments: list[list[int]] = []
    config: dict[str, object] = {
        "bootstrap.servers": proc.bootstrap,
        "group.id": "survivor",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if protocol == "consumer":
        config["group.protocol"] = "consumer"
    else:
        config["heartbeat.interval.ms"] = 500
    consumer = Consumer(config)
    consumer.subscribe(
        [topic], on_assign=lambda c, ps: assignments.append([p.partition for p in ps])
    )
    try:
        seen: list[bytes] = []

        def consumed(count: int) -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                seen.append(message.value() or b"")
            return len(seen) >= count

        wait_until(lambda: consumed(10), what="10 messages before the restart")
        consumer.commit(asynchronous=False)
        group_assignments = list(assignments)

        proc.kill()  # no clean shutdown: what was recorded is what a crash leaves
        proc.start()

        def commit_succeeds() -> bool:
            consumed(10)  # polls keep the client's heartbeats and reconnects going
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as exc:
                error = exc.args[0]
                # the broker is still coming back; a membership error fails the test
                assert error.code() in RECONNECTING, error
                return False
            return True

        wait_until(commit_succeeds, what="a commit after the restart")
        wait_until(lambda: consumed(20), what="the rest after the restart")
        consumer.commit(asynchronous=False)
        # the same membership all along: no new assignment was handed out
        assert assignments == group_assignments
        committed = consumer.committed([TopicPartition(topic, p) for p in range(2)], 10)
        assert sum(tp.offset for tp in committed) == 20
    finally:
        consumer.close()
