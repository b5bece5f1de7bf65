"""Golden bytes of the transaction APIs: frames real clients sent to the broker.

Recorded with a forwarding proxy between each client and the broker while it ran a
transaction (init, produce, send offsets, commit): librdkafka 2.16 (confluent-kafka),
kafka-python 3.0.12 and aiokafka 0.14. Each frame must decode to what the client meant
and re-encode to exactly the same bytes.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamsource.kafka.protocol import (
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from streamsource.kafka.protocol.messages.producer_id import InitProducerIdRequest
from streamsource.kafka.protocol.messages.transactions import (
    AddOffsetsToTxnRequest,
    AddPartitionsToTxnRequest,
    EndTxnRequest,
    TxnOffsetCommitRequest,
    WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
)

# (client, frame without its size prefix)
FRAMES = {
    ("rdkafka", 22, 4): "0016000400000003000772646b61666b610007676f6c64656e0000ea60ffffffffffffffffffff00",
    ("rdkafka", 24, 0): "0018000000000005000772646b61666b610006676f6c64656e00000000000000000000000000010004676f6c640000000100000000",
    ("rdkafka", 25, 0): "0019000000000004000772646b61666b610006676f6c64656e00000000000000000000000167",
    ("rdkafka", 28, 3): "001c000300000006000772646b61666b610007676f6c64656e026700000000000000000000ffffffff01000205676f6c6402000000000000000000000001ffffffff01000000",
    ("rdkafka", 26, 1): "001a000100000006000772646b61666b610006676f6c64656e0000000000000000000001",
    ("kafka-python", 22, 4): "001600040000000200176b61666b612d707974686f6e2d70726f64756365722d31000a676f6c64656e2d6b700000ea60ffffffffffffffffffff00",
    ("kafka-python", 24, 3): "001800030000000400176b61666b612d707974686f6e2d70726f64756365722d31000a676f6c64656e2d6b70000000000000000100000205676f6c6402000000000000",
    ("kafka-python", 25, 3): "001900030000000300176b61666b612d707974686f6e2d70726f64756365722d31000a676f6c64656e2d6b7000000000000000010000026700",
    ("kafka-python", 28, 3): "001c00030000000500176b61666b612d707974686f6e2d70726f64756365722d31000a676f6c64656e2d6b70026700000000000000010000ffffffff01000205676f6c6402000000000000000000000001ffffffff01000000",
    ("kafka-python", 26, 3): "001a00030000000600176b61666b612d707974686f6e2d70726f64756365722d31000a676f6c64656e2d6b70000000000000000100000100",
    ("aiokafka", 22, 0): "0016000000000003001361696f6b61666b612d70726f64756365722d31000a676f6c64656e2d61696f0000ea60",
    ("aiokafka", 24, 0): "0018000000000002001361696f6b61666b612d70726f64756365722d31000a676f6c64656e2d61696f00000000000000020000000000010004676f6c640000000100000000",
    ("aiokafka", 25, 0): "0019000000000003001361696f6b61666b612d70726f64756365722d31000a676f6c64656e2d61696f00000000000000020000000167",
    ("aiokafka", 28, 0): "001c000000000004001361696f6b61666b612d70726f64756365722d31000a676f6c64656e2d61696f00016700000000000000020000000000010004676f6c64000000010000000000000000000000010000",
    ("aiokafka", 26, 0): "001a000000000005001361696f6b61666b612d70726f64756365722d31000a676f6c64656e2d61696f0000000000000002000001",
}  # fmt: skip

TXN_IDS = {"rdkafka": "golden", "kafka-python": "golden-kp", "aiokafka": "golden-aio"}
PRODUCER_IDS = {"rdkafka": 0, "kafka-python": 1, "aiokafka": 2}


def expected(client: str, api_key: int) -> tuple[type[Any], dict[str, Any]]:
    """The request class and the values the client meant to send."""
    txn, pid = TXN_IDS[client], PRODUCER_IDS[client]
    if api_key == 22:
        return InitProducerIdRequest, {"transactional_id": txn, "transaction_timeout_ms": 60_000}
    if api_key == 24:
        return AddPartitionsToTxnRequest, {"transactional_id": txn, "producer_id": pid}
    if api_key == 25:
        return AddOffsetsToTxnRequest, {"transactional_id": txn, "producer_id": pid,
                                        "group_id": "g"}  # fmt: skip
    if api_key == 28:
        return TxnOffsetCommitRequest, {"transactional_id": txn, "producer_id": pid,
                                        "group_id": "g"}  # fmt: skip
    return EndTxnRequest, {"transactional_id": txn, "producer_id": pid, "committed": True}


@pytest.mark.parametrize(("client", "api_key", "version"), list(FRAMES))
def test_transaction_requests_of_real_clients(client: str, api_key: int, version: int) -> None:
    frame = bytes.fromhex(FRAMES[(client, api_key, version)])
    header, message = decode_request(frame)
    assert (header.api_key, header.api_version) == (api_key, version)
    cls, values = expected(client, api_key)
    assert isinstance(message, cls)
    for name, value in values.items():
        assert getattr(message, name) == value, name
    if isinstance(message, AddPartitionsToTxnRequest):
        assert [(t.name, t.partitions) for t in message.topics] == [("gold", [0])]
    if isinstance(message, TxnOffsetCommitRequest):
        (topic,) = message.topics
        assert (topic.name, topic.partitions[0].committed_offset) == ("gold", 1)
    assert encode_request(header, message)[4:] == frame


# WriteTxnMarkers (27) as kafka-python 3.0.12's admin ``abort_transaction`` encodes it
# (its own schema tables): abort, producer 7 epoch 3, partitions 0 and 2 of "gold",
# coordinator epoch -1; v2 adds the int8 transaction version (0). The responses: partition
# 0 written, partition 2 INVALID_PRODUCER_EPOCH (47), after correlation id 5 and the
# flexible header's empty tag section.
WRITE_TXN_MARKERS = {
    1: "001b000100000005000c6b61666b612d707974686f6e000200000000000000070003000205676f6c6403000000000000000200ffffffff0000",
    2: "001b000200000005000c6b61666b612d707974686f6e000200000000000000070003000205676f6c6403000000000000000200ffffffff000000",
}  # fmt: skip
WRITE_TXN_MARKERS_RESPONSE = (
    "0000000500" + "0200000000000000070205676f6c64030000000000000000000002002f00000000"
)


@pytest.mark.parametrize("version", [1, 2])
def test_write_txn_markers_of_kafka_python_admin(version: int) -> None:
    frame = bytes.fromhex(WRITE_TXN_MARKERS[version])
    header, message = decode_request(frame)
    assert (header.api_key, header.api_version, header.client_id) == (27, version, "kafka-python")
    assert isinstance(message, WriteTxnMarkersRequest)
    (marker,) = message.markers
    assert (marker.producer_id, marker.producer_epoch, marker.transaction_result) == (7, 3, False)
    assert [(t.name, t.partition_indexes) for t in marker.topics] == [("gold", [0, 2])]
    assert (marker.coordinator_epoch, marker.transaction_version) == (-1, 0)
    assert encode_request(header, message)[4:] == frame


@pytest.mark.parametrize("version", [1, 2])
def test_write_txn_markers_response_as_kafka_python_reads_it(version: int) -> None:
    frame = bytes.fromhex(WRITE_TXN_MARKERS_RESPONSE)
    correlation_id, message = decode_response(27, version, frame)
    assert correlation_id == 5 and isinstance(message, WriteTxnMarkersResponse)
    (result,) = message.markers
    (topic,) = result.topics
    assert (result.producer_id, topic.name) == (7, "gold")
    assert [(p.partition_index, p.error_code) for p in topic.partitions] == [(0, 0), (2, 47)]
    header = RequestHeader(27, version, 5, "kafka-python")
    assert encode_response(header, message)[4:] == frame
