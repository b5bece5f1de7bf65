"""single_fetch: the common consumer Fetch, read and answered as the generic codec does."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamsource.kafka.protocol import RequestHeader, decode_request, encode_request, single_fetch
from streamsource.kafka.protocol.api import encode_response_chunks
from streamsource.kafka.protocol.messages.fetch import FetchRequest, FetchResponse
from streamsource.kafka.protocol.messages.produce import ProduceRequest

_INT32 = st.integers(-(2**31), 2**31 - 1)
_INT64 = st.integers(-(2**63), 2**63 - 1)
_TOPIC = st.text("abcXYZ019._-", min_size=1, max_size=126)
_PARTITION_FIELDS = (
    "partition",
    "fetch_offset",
    "partition_max_bytes",
    "current_leader_epoch",
    "log_start_offset",
)


def _request(
    topic: str = "orders",
    partitions: int = 1,
    *,
    isolation_level: int = 1,
    session_id: int = 0,
    rack_id: str = "",
    cluster_id: str | None = None,
    forgotten: bool = False,
    **fields: Any,
) -> FetchRequest:
    partition = {
        "partition": 0,
        "fetch_offset": 7,
        "partition_max_bytes": 1_048_576,
        **{k: fields.pop(k) for k in _PARTITION_FIELDS if k in fields},
    }
    return FetchRequest(
        max_wait_ms=fields.pop("max_wait_ms", 500),
        min_bytes=fields.pop("min_bytes", 1),
        max_bytes=fields.pop("max_bytes", 52_428_800),
        isolation_level=isolation_level,
        session_id=session_id,
        topics=[
            FetchRequest.FetchTopic(
                topic=topic,
                partitions=[FetchRequest.FetchPartition(**partition) for _ in range(partitions)],
            )
        ],
        forgotten_topics_data=(
            [FetchRequest.ForgottenTopic(topic="old", partitions=[1])] if forgotten else []
        ),
        rack_id=rack_id,
        cluster_id=cluster_id,
        **fields,
    )


def _frame(request: FetchRequest, version: int = 12, client_id: str | None = "rdkafka") -> bytes:
    return encode_request(RequestHeader(1, version, 42, client_id), request)[4:]


@given(
    topic=_TOPIC,
    client_id=st.none() | st.text(max_size=40),
    rack_id=st.text(max_size=40),
    isolation_level=st.sampled_from([0, 1]),
    max_wait_ms=_INT32,
    min_bytes=_INT32,
    max_bytes=_INT32,
    partition=_INT32,
    fetch_offset=_INT64,
    partition_max_bytes=_INT32,
    replica_id=_INT32,
    current_leader_epoch=_INT32,
    log_start_offset=_INT64,
)
def test_parse_reads_what_the_generic_decoder_reads(
    topic: str, client_id: str | None, rack_id: str, isolation_level: int, **fields: Any
) -> None:
    frame = _frame(
        _request(topic, isolation_level=isolation_level, rack_id=rack_id, **fields),
        client_id=client_id,
    )
    header, generic = decode_request(frame)
    assert isinstance(generic, FetchRequest)
    parsed = single_fetch.parse(frame)
    assert parsed is not None
    wanted = generic.topics[0].partitions[0]
    assert parsed == single_fetch.SingleFetch(
        correlation_id=header.correlation_id,
        max_wait_ms=generic.max_wait_ms,
        min_bytes=generic.min_bytes,
        max_bytes=generic.max_bytes,
        isolation_level=generic.isolation_level,
        topic=generic.topics[0].topic,
        topic_bytes=topic.encode(),
        partition=wanted.partition,
        fetch_offset=wanted.fetch_offset,
        partition_max_bytes=wanted.partition_max_bytes,
    )


def test_parse_leaves_every_other_request_to_the_generic_decoder() -> None:
    others = [
        _frame(_request(), version=11),
        _frame(_request(), version=4),
        _frame(_request(partitions=2)),
        _frame(_request(session_id=5)),
        _frame(_request(forgotten=True)),
        _frame(_request(cluster_id="cluster")),  # a tagged field
        _frame(_request("t" * 127)),  # a two-byte name length
        _frame(_request(rack_id="r" * 127)),
        _frame(_request("")),
        encode_request(
            RequestHeader(0, 9, 1, "p"), ProduceRequest(acks=1, timeout_ms=1, topic_data=[])
        )[4:],
    ]
    two_topics = _request()
    two_topics.topics.append(two_topics.topics[0])
    others.append(_frame(two_topics))
    for frame in others:
        assert single_fetch.parse(frame) is None


def test_parse_refuses_what_the_generic_decoder_refuses() -> None:
    frame = _frame(_request())
    for end in range(len(frame)):  # every truncation
        assert single_fetch.parse(frame[:end]) is None
    assert single_fetch.parse(frame + b"\x00") is None  # a byte too many
    bad_topic = frame.replace(b"orders", b"order\xff")  # not UTF-8
    bad_client = frame.replace(b"rdkafka", b"rdkafk\xff")
    for bad in (bad_topic, bad_client):
        assert single_fetch.parse(bad) is None
    negative_client_id = frame[:8] + b"\xff\xfe" + frame[10:]
    assert single_fetch.parse(negative_client_id) is None


@given(
    topic=_TOPIC,
    isolation_level=st.sampled_from([0, 1, 2]),
    partition=_INT32,
    high_watermark=_INT64,
    last_stable_offset=_INT64,
    log_start_offset=_INT64,
    records_size=st.sampled_from([0, 1, 61, 127, 128, 16_383, 16_384, 1_048_576]),
)
def test_head_is_the_generic_answers_beginning(
    topic: str,
    isolation_level: int,
    partition: int,
    high_watermark: int,
    last_stable_offset: int,
    log_start_offset: int,
    records_size: int,
) -> None:
    request = single_fetch.parse(
        _frame(_request(topic, isolation_level=isolation_level, partition=partition))
    )
    assert request is not None
    records = b"r" * records_size
    answer = FetchResponse(
        session_id=0,
        responses=[
            FetchResponse.FetchableTopicResponse(
                topic=topic,
                partitions=[
                    FetchResponse.PartitionData(
                        partition_index=partition,
                        high_watermark=high_watermark,
                        last_stable_offset=last_stable_offset,
                        log_start_offset=log_start_offset,
                        aborted_transactions=[] if isolation_level == 1 else None,
                        records=records,
                    )
                ],
            )
        ],
    )
    header = RequestHeader(1, 12, request.correlation_id, "rdkafka")
    generic = b"".join(bytes(c) for c in encode_response_chunks(header, answer))
    head = single_fetch.head(
        request, high_watermark, last_stable_offset, log_start_offset, records_size
    )
    assert head + records + single_fetch.TAIL == generic
