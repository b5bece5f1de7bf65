"""Kafka's error codes, and the exceptions the codec raises.

``ErrorCode`` is the one table of wire error codes used by every part of the broker: a
handler answers ``ErrorCode.UNKNOWN_TOPIC_OR_PARTITION`` (an ``int``), and clients see the
same number a real Kafka broker would send. ``retriable`` follows Kafka's classification
(the client may simply retry); ``message`` is a short human-readable explanation.

The exceptions below are raised by the frame and request decoders. All are
``streamsource.errors.KafkaProtocolError`` subclasses: decoding never lets a
``struct.error``/``IndexError`` escape.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

from streamsource.errors import KafkaProtocolError, StreamsourceError

if TYPE_CHECKING:
    from streamsource.kafka.protocol.header import RequestHeader


class ErrorCode(IntEnum):
    """A Kafka protocol error code (``int``), with ``retriable`` and ``message``."""

    retriable: bool

    def __new__(cls, code: int, retriable: bool) -> ErrorCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.retriable = retriable
        return member

    @property
    def message(self) -> str:
        """A short explanation of the error, for logs and exception texts."""
        return _MESSAGES.get(self, self.name.lower().replace("_", " "))

    UNKNOWN_SERVER_ERROR = (-1, False)
    NONE = (0, False)
    OFFSET_OUT_OF_RANGE = (1, False)
    CORRUPT_MESSAGE = (2, True)
    UNKNOWN_TOPIC_OR_PARTITION = (3, True)
    INVALID_FETCH_SIZE = (4, False)
    LEADER_NOT_AVAILABLE = (5, True)
    NOT_LEADER_OR_FOLLOWER = (6, True)
    REQUEST_TIMED_OUT = (7, True)
    BROKER_NOT_AVAILABLE = (8, False)
    REPLICA_NOT_AVAILABLE = (9, True)
    MESSAGE_TOO_LARGE = (10, False)
    STALE_CONTROLLER_EPOCH = (11, False)
    OFFSET_METADATA_TOO_LARGE = (12, False)
    NETWORK_EXCEPTION = (13, True)
    COORDINATOR_LOAD_IN_PROGRESS = (14, True)
    COORDINATOR_NOT_AVAILABLE = (15, True)
    NOT_COORDINATOR = (16, True)
    INVALID_TOPIC_EXCEPTION = (17, False)
    RECORD_LIST_TOO_LARGE = (18, False)
    NOT_ENOUGH_REPLICAS = (19, True)
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = (20, True)
    INVALID_REQUIRED_ACKS = (21, False)
    ILLEGAL_GENERATION = (22, False)
    INCONSISTENT_GROUP_PROTOCOL = (23, False)
    INVALID_GROUP_ID = (24, False)
    UNKNOWN_MEMBER_ID = (25, False)
    INVALID_SESSION_TIMEOUT = (26, False)
    REBALANCE_IN_PROGRESS = (27, False)
    INVALID_COMMIT_OFFSET_SIZE = (28, False)
    TOPIC_AUTHORIZATION_FAILED = (29, False)
    GROUP_AUTHORIZATION_FAILED = (30, False)
    CLUSTER_AUTHORIZATION_FAILED = (31, False)
    INVALID_TIMESTAMP = (32, False)
    UNSUPPORTED_SASL_MECHANISM = (33, False)
    ILLEGAL_SASL_STATE = (34, False)
    UNSUPPORTED_VERSION = (35, False)
    TOPIC_ALREADY_EXISTS = (36, False)
    INVALID_PARTITIONS = (37, False)
    INVALID_REPLICATION_FACTOR = (38, False)
    INVALID_REPLICA_ASSIGNMENT = (39, False)
    INVALID_CONFIG = (40, False)
    NOT_CONTROLLER = (41, True)
    INVALID_REQUEST = (42, False)
    UNSUPPORTED_FOR_MESSAGE_FORMAT = (43, False)
    POLICY_VIOLATION = (44, False)
    OUT_OF_ORDER_SEQUENCE_NUMBER = (45, False)
    DUPLICATE_SEQUENCE_NUMBER = (46, False)
    INVALID_PRODUCER_EPOCH = (47, False)
    INVALID_TXN_STATE = (48, False)
    INVALID_PRODUCER_ID_MAPPING = (49, False)
    INVALID_TRANSACTION_TIMEOUT = (50, False)
    CONCURRENT_TRANSACTIONS = (51, True)
    TRANSACTION_COORDINATOR_FENCED = (52, False)
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = (53, False)
    SECURITY_DISABLED = (54, False)
    OPERATION_NOT_ATTEMPTED = (55, False)
    KAFKA_STORAGE_ERROR = (56, True)
    LOG_DIR_NOT_FOUND = (57, False)
    SASL_AUTHENTICATION_FAILED = (58, False)
    UNKNOWN_PRODUCER_ID = (59, False)
    REASSIGNMENT_IN_PROGRESS = (60, False)
    DELEGATION_TOKEN_AUTH_DISABLED = (61, False)
    DELEGATION_TOKEN_NOT_FOUND = (62, False)
    DELEGATION_TOKEN_OWNER_MISMATCH = (63, False)
    DELEGATION_TOKEN_REQUEST_NOT_ALLOWED = (64, False)
    DELEGATION_TOKEN_AUTHORIZATION_FAILED = (65, False)
    DELEGATION_TOKEN_EXPIRED = (66, False)
    INVALID_PRINCIPAL_TYPE = (67, False)
    NON_EMPTY_GROUP = (68, False)
    GROUP_ID_NOT_FOUND = (69, False)
    FETCH_SESSION_ID_NOT_FOUND = (70, True)
    INVALID_FETCH_SESSION_EPOCH = (71, True)
    LISTENER_NOT_FOUND = (72, True)
    TOPIC_DELETION_DISABLED = (73, False)
    FENCED_LEADER_EPOCH = (74, True)
    UNKNOWN_LEADER_EPOCH = (75, True)
    UNSUPPORTED_COMPRESSION_TYPE = (76, False)
    STALE_BROKER_EPOCH = (77, False)
    OFFSET_NOT_AVAILABLE = (78, True)
    MEMBER_ID_REQUIRED = (79, False)
    PREFERRED_LEADER_NOT_AVAILABLE = (80, True)
    GROUP_MAX_SIZE_REACHED = (81, False)
    FENCED_INSTANCE_ID = (82, False)
    ELIGIBLE_LEADERS_NOT_AVAILABLE = (83, True)
    ELECTION_NOT_NEEDED = (84, True)
    NO_REASSIGNMENT_IN_PROGRESS = (85, False)
    GROUP_SUBSCRIBED_TO_TOPIC = (86, False)
    INVALID_RECORD = (87, False)
    UNSTABLE_OFFSET_COMMIT = (88, True)
    THROTTLING_QUOTA_EXCEEDED = (89, True)
    PRODUCER_FENCED = (90, False)
    RESOURCE_NOT_FOUND = (91, False)
    DUPLICATE_RESOURCE = (92, False)
    UNACCEPTABLE_CREDENTIAL = (93, False)
    INCONSISTENT_VOTER_SET = (94, False)
    INVALID_UPDATE_VERSION = (95, False)
    FEATURE_UPDATE_FAILED = (96, False)
    PRINCIPAL_DESERIALIZATION_FAILURE = (97, False)
    SNAPSHOT_NOT_FOUND = (98, False)
    UNKNOWN_TOPIC_ID = (100, True)
    DUPLICATE_BROKER_REGISTRATION = (101, False)
    BROKER_ID_NOT_REGISTERED = (102, False)
    INCONSISTENT_TOPIC_ID = (103, True)
    INCONSISTENT_CLUSTER_ID = (104, False)
    TRANSACTIONAL_ID_NOT_FOUND = (105, False)
    FETCH_SESSION_TOPIC_ID_ERROR = (106, True)
    INELIGIBLE_REPLICA = (107, False)
    NEW_LEADER_ELECTED = (108, False)
    OFFSET_MOVED_TO_TIERED_STORAGE = (109, False)
    FENCED_MEMBER_EPOCH = (110, False)
    UNRELEASED_INSTANCE_ID = (111, False)
    UNSUPPORTED_ASSIGNOR = (112, False)
    STALE_MEMBER_EPOCH = (113, False)
    MISMATCHED_ENDPOINT_TYPE = (114, False)
    UNSUPPORTED_ENDPOINT_TYPE = (115, False)
    UNKNOWN_CONTROLLER_ID = (116, False)
    UNKNOWN_SUBSCRIPTION_ID = (117, False)
    TELEMETRY_TOO_LARGE = (118, False)
    INVALID_REGISTRATION = (119, False)
    TRANSACTION_ABORTABLE = (120, False)
    INVALID_RECORD_STATE = (121, False)
    SHARE_SESSION_NOT_FOUND = (122, True)
    INVALID_SHARE_SESSION_EPOCH = (123, True)
    FENCED_STATE_EPOCH = (124, False)
    INVALID_VOTER_KEY = (125, False)
    DUPLICATE_VOTER = (126, False)
    VOTER_NOT_FOUND = (127, False)
    INVALID_REGULAR_EXPRESSION = (128, False)


_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.UNKNOWN_SERVER_ERROR: "the broker hit an unexpected error handling the request",
    ErrorCode.NONE: "no error",
    ErrorCode.OFFSET_OUT_OF_RANGE: "the offset is outside the partition's log",
    ErrorCode.CORRUPT_MESSAGE: "a record batch failed its checksum or is malformed",
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: "this broker does not host the topic-partition",
    ErrorCode.MESSAGE_TOO_LARGE: "a record batch is larger than the broker accepts",
    ErrorCode.NOT_COORDINATOR: "this broker is not the group's coordinator",
    ErrorCode.INVALID_TOPIC_EXCEPTION: "the topic name is invalid",
    ErrorCode.INVALID_REQUIRED_ACKS: "acks must be -1, 0 or 1",
    ErrorCode.ILLEGAL_GENERATION: "the group generation is not the current one",
    ErrorCode.INCONSISTENT_GROUP_PROTOCOL: "the member's protocols do not match the group's",
    ErrorCode.UNKNOWN_MEMBER_ID: "the coordinator does not know this member",
    ErrorCode.REBALANCE_IN_PROGRESS: "the group is rebalancing; rejoin it",
    ErrorCode.UNSUPPORTED_VERSION: "the broker does not support this API version",
    ErrorCode.TOPIC_ALREADY_EXISTS: "a topic with this name already exists",
    ErrorCode.INVALID_REQUEST: "the request is malformed",
    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER: "the producer sequence number is out of order",
    ErrorCode.DUPLICATE_SEQUENCE_NUMBER: "the producer sequence number is a duplicate",
    ErrorCode.INVALID_PRODUCER_EPOCH: "the producer epoch is older than the current one",
    ErrorCode.UNKNOWN_PRODUCER_ID: "the broker has no state for this producer id",
    ErrorCode.MEMBER_ID_REQUIRED: "the member must rejoin with the member id it was given",
    ErrorCode.UNSUPPORTED_COMPRESSION_TYPE: "the compression type is not supported",
    ErrorCode.INVALID_RECORD: "a record failed validation",
}


class CodedError(StreamsourceError):
    """An error the broker answers with a Kafka error code rather than a closed connection.

    Subclasses set ``error_code``; ``retriable`` then follows Kafka's classification of that
    code, so one condition (a full disk: KAFKA_STORAGE_ERROR) is retriable, or not, in
    every part of the broker alike.
    """

    error_code: ErrorCode = ErrorCode.UNKNOWN_SERVER_ERROR

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.retriable = cls.error_code.retriable


class FrameError(KafkaProtocolError):
    """The byte stream is not a sequence of valid size-prefixed frames."""


class FrameTooLarge(FrameError):
    """A frame's size prefix exceeds the configured maximum."""

    def __init__(self, size: int, max_size: int) -> None:
        self.size = size
        self.max_size = max_size
        super().__init__(f"frame of {size} bytes exceeds the maximum of {max_size} bytes")


class InvalidFrame(FrameError):
    """A frame's size prefix is negative."""


class InvalidRequest(KafkaProtocolError):
    """A request could not be decoded; ``header`` is set when the header itself was readable.

    The broker closes only the connection that sent it.
    """

    def __init__(self, header: RequestHeader | None, reason: str) -> None:
        self.header = header
        self.reason = reason
        super().__init__(reason if header is None else f"{header}: {reason}")


class UnsupportedVersion(KafkaProtocolError):
    """The API key or version of a request is not one the broker implements.

    The header was decoded, so the broker can answer (error 35; an ApiVersions request is
    answered with a version-0 body listing what is supported).
    """

    def __init__(self, header: RequestHeader) -> None:
        self.header = header
        super().__init__(f"unsupported API key {header.api_key} version {header.api_version}")


class InvalidResponse(KafkaProtocolError):
    """A response could not be decoded (client side, used by tests and tools)."""


class EncodeError(KafkaProtocolError):
    """A message could not be encoded: a field value does not fit its wire type."""
