"""The API table and the entry points: decode a request frame, encode a response.

``decode_request``/``encode_response`` are the broker side; ``encode_request``/
``decode_response`` are the client side (used by tests, tools and benchmarks).
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Any

from streamsource.kafka.protocol.compiler import codec
from streamsource.kafka.protocol.errors import (
    EncodeError,
    InvalidRequest,
    InvalidResponse,
    UnsupportedVersion,
)
from streamsource.kafka.protocol.header import (
    RequestHeader,
    read_request_header,
    write_request_header,
)
from streamsource.kafka.protocol.messages import (
    acls,
    api_versions,
    cluster,
    configs,
    consumer_groups,
    delete_groups,
    fetch,
    find_coordinator,
    groups,
    list_offsets,
    log_dirs,
    metadata,
    offsets,
    partitions,
    produce,
    producer_id,
    sasl,
    topics,
    transactions,
)
from streamsource.kafka.protocol.primitives import Buffer, DecodeError, read_tags
from streamsource.kafka.protocol.schema import Message

_SIZE = struct.Struct(">i")
_CORRELATION = struct.Struct(">i")

# Everything a malformed buffer can make the compiled decoders raise.
_DECODE_ERRORS = (
    DecodeError,
    struct.error,
    IndexError,
    ValueError,  # includes UnicodeDecodeError
    OverflowError,
    RecursionError,
    # Not expected from well-formed code paths; listed so that no decoder bug can turn a
    # hostile frame into an unhandled exception in the broker.
    TypeError,
    AttributeError,
    KeyError,
)


class ApiKey(IntEnum):
    """The Kafka APIs this codec implements."""

    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    SASL_HANDSHAKE = 17
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DELETE_RECORDS = 21
    INIT_PRODUCER_ID = 22
    ADD_PARTITIONS_TO_TXN = 24
    ADD_OFFSETS_TO_TXN = 25
    END_TXN = 26
    WRITE_TXN_MARKERS = 27
    TXN_OFFSET_COMMIT = 28
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    DESCRIBE_LOG_DIRS = 35
    SASL_AUTHENTICATE = 36
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    INCREMENTAL_ALTER_CONFIGS = 44
    DESCRIBE_USER_SCRAM_CREDENTIALS = 50
    ALTER_USER_SCRAM_CREDENTIALS = 51
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    CONSUMER_GROUP_HEARTBEAT = 68
    CONSUMER_GROUP_DESCRIBE = 69


_PAIRS: list[tuple[type[Message], type[Message]]] = [
    (produce.ProduceRequest, produce.ProduceResponse),
    (fetch.FetchRequest, fetch.FetchResponse),
    (list_offsets.ListOffsetsRequest, list_offsets.ListOffsetsResponse),
    (metadata.MetadataRequest, metadata.MetadataResponse),
    (offsets.OffsetCommitRequest, offsets.OffsetCommitResponse),
    (offsets.OffsetFetchRequest, offsets.OffsetFetchResponse),
    (find_coordinator.FindCoordinatorRequest, find_coordinator.FindCoordinatorResponse),
    (groups.JoinGroupRequest, groups.JoinGroupResponse),
    (groups.HeartbeatRequest, groups.HeartbeatResponse),
    (groups.LeaveGroupRequest, groups.LeaveGroupResponse),
    (groups.SyncGroupRequest, groups.SyncGroupResponse),
    (groups.DescribeGroupsRequest, groups.DescribeGroupsResponse),
    (groups.ListGroupsRequest, groups.ListGroupsResponse),
    (api_versions.ApiVersionsRequest, api_versions.ApiVersionsResponse),
    (topics.CreateTopicsRequest, topics.CreateTopicsResponse),
    (topics.DeleteTopicsRequest, topics.DeleteTopicsResponse),
    (producer_id.InitProducerIdRequest, producer_id.InitProducerIdResponse),
    (configs.DescribeConfigsRequest, configs.DescribeConfigsResponse),
    (configs.AlterConfigsRequest, configs.AlterConfigsResponse),
    (
        configs.IncrementalAlterConfigsRequest,
        configs.IncrementalAlterConfigsResponse,
    ),
    (partitions.DeleteRecordsRequest, partitions.DeleteRecordsResponse),
    (log_dirs.DescribeLogDirsRequest, log_dirs.DescribeLogDirsResponse),
    (partitions.CreatePartitionsRequest, partitions.CreatePartitionsResponse),
    (delete_groups.DeleteGroupsRequest, delete_groups.DeleteGroupsResponse),
    (cluster.DescribeClusterRequest, cluster.DescribeClusterResponse),
    (transactions.AddPartitionsToTxnRequest, transactions.AddPartitionsToTxnResponse),
    (transactions.AddOffsetsToTxnRequest, transactions.AddOffsetsToTxnResponse),
    (transactions.EndTxnRequest, transactions.EndTxnResponse),
    (transactions.WriteTxnMarkersRequest, transactions.WriteTxnMarkersResponse),
    (transactions.TxnOffsetCommitRequest, transactions.TxnOffsetCommitResponse),
    (transactions.DescribeProducersRequest, transactions.DescribeProducersResponse),
    (transactions.DescribeTransactionsRequest, transactions.DescribeTransactionsResponse),
    (transactions.ListTransactionsRequest, transactions.ListTransactionsResponse),
    (
        consumer_groups.ConsumerGroupHeartbeatRequest,
        consumer_groups.ConsumerGroupHeartbeatResponse,
    ),
    (
        consumer_groups.ConsumerGroupDescribeRequest,
        consumer_groups.ConsumerGroupDescribeResponse,
    ),
    (acls.DescribeAclsRequest, acls.DescribeAclsResponse),
    (acls.CreateAclsRequest, acls.CreateAclsResponse),
    (acls.DeleteAclsRequest, acls.DeleteAclsResponse),
    (sasl.SaslHandshakeRequest, sasl.SaslHandshakeResponse),
    (sasl.SaslAuthenticateRequest, sasl.SaslAuthenticateResponse),
    (
        sasl.DescribeUserScramCredentialsRequest,
        sasl.DescribeUserScramCredentialsResponse,
    ),
    (sasl.AlterUserScramCredentialsRequest, sasl.AlterUserScramCredentialsResponse),
]

#: Request and response classes by API key.
REQUESTS: dict[int, type[Message]] = {req.API_KEY: req for req, _ in _PAIRS}
RESPONSES: dict[int, type[Message]] = {resp.API_KEY: resp for _, resp in _PAIRS}

#: What ApiVersions advertises: (min, max) version per API.
SUPPORTED_VERSIONS: dict[ApiKey, tuple[int, int]] = {
    ApiKey(req.API_KEY): (req.VERSIONS.low, req.VERSIONS.high) for req, _ in _PAIRS
}


def request_class(api_key: int) -> type[Message]:
    """The request message class of ``api_key`` (KeyError if not implemented)."""
    return REQUESTS[api_key]


def response_class(api_key: int) -> type[Message]:
    """The response message class of ``api_key`` (KeyError if not implemented)."""
    return RESPONSES[api_key]


def precompile() -> None:
    """Compile every codec now (a few ms per message class) instead of on first use."""
    for request, response in _PAIRS:
        for version in range(request.VERSIONS.low, request.VERSIONS.high + 1):
            codec(request, version, version in request.FLEXIBLE)
            codec(response, version, version in response.FLEXIBLE)


# -- broker side -------------------------------------------------------------------------


def decode_request(frame: Buffer) -> tuple[RequestHeader, Message]:
    """Decode one request frame (size prefix already stripped) into its header and body.

    Raises ``UnsupportedVersion(header)`` for an API key or version not implemented, and
    ``InvalidRequest(header or None, reason)`` for bytes that do not decode.
    """
    try:
        api_key, api_version = struct.unpack_from(">hh", frame, 0)
    except struct.error:
        raise InvalidRequest(None, "frame too short for a request header") from None
    cls = REQUESTS.get(api_key)
    flexible = cls is not None and api_version in cls.FLEXIBLE
    try:
        header, pos = read_request_header(frame, flexible)
    except _DECODE_ERRORS as exc:
        if cls is None or api_version not in cls.VERSIONS:
            # Still answerable: the correlation id is all a reply needs.
            try:
                (correlation_id,) = struct.unpack_from(">i", frame, 4)
            except struct.error:
                raise InvalidRequest(None, f"bad request header: {exc}") from None
            raise UnsupportedVersion(RequestHeader(api_key, api_version, correlation_id)) from None
        raise InvalidRequest(None, f"bad request header: {exc}") from None
    if cls is None or api_version not in cls.VERSIONS:
        raise UnsupportedVersion(header)
    decode, _ = codec(cls, api_version, flexible)
    try:
        message, _end = decode(frame, pos)
    except _DECODE_ERRORS as exc:
        raise InvalidRequest(header, f"malformed {cls.__name__} v{api_version}: {exc}") from None
    return header, message


def encode_response_chunks(header: RequestHeader, message: Message) -> list[Any]:
    """Encode a response (size prefix included) as chunks to write in order.

    Chunks are bytes-like (``bytes``, ``bytearray``, or the caller's record buffers): pass
    them to ``transport.writelines``. Large record data is one of the chunks, not copied. The body version is the request's;
    an ApiVersions response to an unsupported version uses version 0 (as Kafka does).
    """
    cls = type(message)
    if header.api_key != cls.API_KEY or RESPONSES.get(cls.API_KEY) is not cls:
        raise EncodeError(f"{cls.__name__} is not a response to API key {header.api_key}")
    version = header.api_version
    if version not in cls.VERSIONS:
        if cls.API_KEY != ApiKey.API_VERSIONS:
            raise EncodeError(f"{cls.__name__} has no version {version}")
        version = 0
    flexible = version in cls.FLEXIBLE
    _, encode = codec(cls, version, flexible)
    out = bytearray(4)
    out += _CORRELATION.pack(header.correlation_id)
    if flexible and cls.API_KEY != ApiKey.API_VERSIONS:
        out += b"\x00"  # response header v1: no tagged fields
    chunks: list[Any] = []
    try:
        encode(message, out, chunks)
    except (DecodeError, struct.error, TypeError, AttributeError, ValueError) as exc:
        raise EncodeError(f"cannot encode {cls.__name__} v{version}: {exc}") from exc
    chunks.append(out)
    size = sum(len(c) for c in chunks) - 4
    first = chunks[0]
    if first is out:
        out[0:4] = _SIZE.pack(size)
        return chunks
    chunks[0] = _SIZE.pack(size) + first[4:]
    return chunks


def encode_response(header: RequestHeader, message: Message) -> bytes:
    """Encode a response as one ``bytes``, size prefix included."""
    chunks = encode_response_chunks(header, message)
    return bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)


# -- client side -------------------------------------------------------------------------


def encode_request(header: RequestHeader, message: Message) -> bytes:
    """Encode a request (size prefix included) at ``header.api_version``."""
    cls = type(message)
    if header.api_key != cls.API_KEY or REQUESTS.get(cls.API_KEY) is not cls:
        raise EncodeError(f"{cls.__name__} is not a request of API key {header.api_key}")
    if header.api_version not in cls.VERSIONS:
        raise EncodeError(f"{cls.__name__} has no version {header.api_version}")
    flexible = header.api_version in cls.FLEXIBLE
    _, encode = codec(cls, header.api_version, flexible)
    out = bytearray(4)
    write_request_header(out, header, flexible)
    try:
        encode(message, out, None)
    except (DecodeError, struct.error, TypeError, AttributeError, ValueError) as exc:
        raise EncodeError(f"cannot encode {cls.__name__} v{header.api_version}: {exc}") from exc
    out[0:4] = _SIZE.pack(len(out) - 4)
    return bytes(out)


def decode_response(api_key: int, api_version: int, frame: Buffer) -> tuple[int, Message]:
    """Decode a response frame (size prefix stripped) to a request of that key and version.

    Returns (correlation id, message); raises ``InvalidResponse`` for undecodable bytes.
    """
    cls = RESPONSES.get(api_key)
    if cls is None or api_version not in cls.VERSIONS:
        raise InvalidResponse(f"no response schema for API key {api_key} v{api_version}")
    flexible = api_version in cls.FLEXIBLE
    decode, _ = codec(cls, api_version, flexible)
    try:
        (correlation_id,) = _CORRELATION.unpack_from(frame, 0)
        pos = 4
        if flexible and api_key != ApiKey.API_VERSIONS:
            _, pos = read_tags(frame, pos, {})
        message, _end = decode(frame, pos)
    except _DECODE_ERRORS as exc:
        raise InvalidResponse(f"malformed {cls.__name__} v{api_version}: {exc}") from None
    return correlation_id, message
