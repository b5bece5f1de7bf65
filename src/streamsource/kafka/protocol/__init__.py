"""The Kafka wire protocol, sans-I/O: frames, headers, and every request/response as data.

Broker side::

    frames = FrameDecoder(max_frame_size).feed(data)
    header, request = decode_request(frame)          # UnsupportedVersion / InvalidRequest
    transport.writelines(encode_response_chunks(header, response))

Messages live in ``streamsource.kafka.protocol.messages`` (``ProduceRequest``,
``FetchResponse``...) and are re-exported here; error codes are ``ErrorCode``.
"""

from streamsource.kafka.protocol.api import (
    REQUESTS,
    RESPONSES,
    SUPPORTED_VERSIONS,
    ApiKey,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    encode_response_chunks,
    precompile,
    request_class,
    response_class,
)
from streamsource.kafka.protocol.errors import (
    EncodeError,
    ErrorCode,
    FrameError,
    FrameTooLarge,
    InvalidFrame,
    InvalidRequest,
    InvalidResponse,
    UnsupportedVersion,
)
from streamsource.kafka.protocol.framing import DEFAULT_MAX_FRAME_SIZE, FrameDecoder
from streamsource.kafka.protocol.header import RequestHeader
from streamsource.kafka.protocol.messages.api_versions import (
    ApiVersionsRequest,
    ApiVersionsResponse,
)
from streamsource.kafka.protocol.messages.configs import (
    DescribeConfigsRequest,
    DescribeConfigsResponse,
)
from streamsource.kafka.protocol.messages.fetch import FetchRequest, FetchResponse
from streamsource.kafka.protocol.messages.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)
from streamsource.kafka.protocol.messages.groups import (
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListGroupsRequest,
    ListGroupsResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from streamsource.kafka.protocol.messages.list_offsets import (
    ListOffsetsRequest,
    ListOffsetsResponse,
)
from streamsource.kafka.protocol.messages.metadata import MetadataRequest, MetadataResponse
from streamsource.kafka.protocol.messages.offsets import (
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
)
from streamsource.kafka.protocol.messages.produce import ProduceRequest, ProduceResponse
from streamsource.kafka.protocol.messages.producer_id import (
    InitProducerIdRequest,
    InitProducerIdResponse,
)
from streamsource.kafka.protocol.messages.topics import (
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
)
from streamsource.kafka.protocol.schema import Message, Records, Struct

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "REQUESTS",
    "RESPONSES",
    "SUPPORTED_VERSIONS",
    "ApiKey",
    "ApiVersionsRequest",
    "ApiVersionsResponse",
    "CreateTopicsRequest",
    "CreateTopicsResponse",
    "DeleteTopicsRequest",
    "DeleteTopicsResponse",
    "DescribeConfigsRequest",
    "DescribeConfigsResponse",
    "DescribeGroupsRequest",
    "DescribeGroupsResponse",
    "EncodeError",
    "ErrorCode",
    "FetchRequest",
    "FetchResponse",
    "FindCoordinatorRequest",
    "FindCoordinatorResponse",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "InitProducerIdRequest",
    "InitProducerIdResponse",
    "InvalidFrame",
    "InvalidRequest",
    "InvalidResponse",
    "JoinGroupRequest",
    "JoinGroupResponse",
    "LeaveGroupRequest",
    "LeaveGroupResponse",
    "ListGroupsRequest",
    "ListGroupsResponse",
    "ListOffsetsRequest",
    "ListOffsetsResponse",
    "Message",
    "MetadataRequest",
    "MetadataResponse",
    "OffsetCommitRequest",
    "OffsetCommitResponse",
    "OffsetFetchRequest",
    "OffsetFetchResponse",
    "ProduceRequest",
    "ProduceResponse",
    "Records",
    "RequestHeader",
    "Struct",
    "SyncGroupRequest",
    "SyncGroupResponse",
    "UnsupportedVersion",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "encode_response_chunks",
    "precompile",
    "request_class",
    "response_class",
]
