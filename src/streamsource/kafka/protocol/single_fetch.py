"""The Fetch a consumer sends all day, decoded and answered without the generic codec.

librdkafka (confluent-kafka, kcat, Go's confluent client) and the Java client, consuming one
partition per broker as most do, send Fetch v12 of one topic with one partition, no fetch
session, no forgotten topics, no tagged fields. The broker answers hundreds of these a
second per consumer, each a few fields around record data that goes out untouched; the
generic codec (``compiler``) builds a ``FetchRequest`` of three structs, then a
``FetchResponse`` of three more, and walks both field tables, which is most of the Python
a consumer costs the broker per fetch, run cache-cold after each ~1 MB ``sendfile``.

``parse`` reads that one shape straight from the frame (None for anything else, including
bytes the generic decoder would reject: it then decodes them and reports the error), and
``head`` packs the answer's bytes before its records from one precomputed layout; the
records follow, then ``TAIL``. The layout is this version's schema
(``messages.fetch``) for one topic with one partition, no aborted transactions and no
tagged fields; ``tests/kafka/protocol/test_single_fetch.py`` checks both against the
generic codec byte for byte.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from streamsource.kafka.protocol.primitives import Buffer, uvarint_bytes

VERSION = 12
READ_COMMITTED = 1
_FETCH = 1  # the API key
# request header v2: api_key, api_version, correlation_id, client_id length (-1: null)
_HEADER = struct.Struct(">hhih")
# replica_id, max_wait_ms, min_bytes, max_bytes, isolation_level, session_id, session_epoch
_FIXED = struct.Struct(">iiiibii")
# partition, current_leader_epoch, fetch_offset, last_fetched_epoch, log_start_offset,
# partition_max_bytes
_PARTITION = struct.Struct(">iiqiqi")
# size, correlation_id, header tags, throttle_time_ms, error_code, session_id, topic count
_ANSWER = struct.Struct(">iiBihiB")
# partition count, partition_index, error_code, high_watermark, last_stable_offset,
# log_start_offset, aborted_transactions (0: null, 1: empty), preferred_read_replica
_ANSWER_PARTITION = struct.Struct(">Bihqqqbi")
TAIL = b"\x00\x00\x00"  # the partition's, the topic's and the response's tagged fields
_ONE = 2  # a compact array's count of one element (count + 1)


class SingleFetch(NamedTuple):
    """The fields of a one-partition Fetch v12 the broker acts on."""

    correlation_id: int
    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    isolation_level: int
    topic: str
    topic_bytes: bytes  # as on the wire (the answer repeats it)
    partition: int
    fetch_offset: int
    partition_max_bytes: int


def parse(frame: Buffer) -> SingleFetch | None:
    """The request in ``frame`` (size prefix stripped) if it is a Fetch of that one shape
    (module docstring), else None."""
    try:
        api_key, version, correlation_id, client_id_length = _HEADER.unpack_from(frame, 0)
        if api_key != _FETCH or version != VERSION or client_id_length < -1:
            return None
        pos = _HEADER.size + max(client_id_length, 0)
        if frame[pos]:  # header tagged fields
            return None
        str(frame[_HEADER.size : pos], "utf-8")  # (as the generic decoder insists)
        _, max_wait, min_bytes, max_bytes, isolation, session_id, _ = _FIXED.unpack_from(
            frame, pos + 1
        )
        pos += 1 + _FIXED.size
        topic_end = pos + frame[pos + 1]  # one-byte compact length: names under 127 bytes
        if session_id or frame[pos] != _ONE or frame[pos + 1] & 0x80 or topic_end <= pos + 1:
            return None
        topic_bytes = bytes(frame[pos + 2 : topic_end + 1])
        pos = topic_end + 1
        if frame[pos] != _ONE:
            return None
        partition, _, offset, _, _, partition_max = _PARTITION.unpack_from(frame, pos + 1)
        pos += 1 + _PARTITION.size
        # partition and topic tags, no forgotten topics, then the rack id and the tags
        if frame[pos] or frame[pos + 1] or frame[pos + 2] != 1 or frame[pos + 3] & 0x80:
            return None
        end = pos + 3 + frame[pos + 3]
        if end != len(frame) - 1 or frame[end] or not frame[pos + 3]:
            return None
        str(frame[pos + 4 : end], "utf-8")  # the rack id
        topic = topic_bytes.decode()
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return SingleFetch(
        correlation_id,
        max_wait,
        min_bytes,
        max_bytes,
        isolation,
        topic,
        topic_bytes,
        partition,
        offset,
        partition_max,
    )


def head(
    request: SingleFetch,
    high_watermark: int,
    last_stable_offset: int,
    log_start_offset: int,
    records_size: int,
) -> bytes:
    """The answer's bytes before its ``records_size`` bytes of records (size prefix
    included): no error, no aborted transactions (an empty list for read_committed)."""
    topic = uvarint_bytes(len(request.topic_bytes) + 1) + request.topic_bytes
    partition = _ANSWER_PARTITION.pack(
        _ONE,
        request.partition,
        0,
        high_watermark,
        last_stable_offset,
        log_start_offset,
        1 if request.isolation_level == READ_COMMITTED else 0,  # an empty list, or null
        -1,
    )
    records_length = uvarint_bytes(records_size + 1)
    size = _ANSWER.size - 4 + len(topic) + len(partition) + len(records_length)
    size += records_size + len(TAIL)
    answer = _ANSWER.pack(size, request.correlation_id, 0, 0, 0, 0, _ONE)
    return b"".join((answer, topic, partition, records_length))
