"""DescribeCluster (key 60): the cluster id, the controller and the brokers (KIP-700).

Always flexible. ``endpoint_type`` (v1+) is 1 for brokers, 2 for controllers.
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    BOOL,
    INT8,
    INT16,
    INT32,
    STRING,
    Message,
    Struct,
    field,
)

ENDPOINT_BROKERS = 1
ENDPOINT_CONTROLLERS = 2
#: "Authorized operations were not asked for" (Kafka's Integer.MIN_VALUE sentinel).
OPERATIONS_OMITTED = -2147483648


class DescribeClusterRequest(Message, api_key=60, versions="0-2", flexible="0+"):
    """DescribeCluster request, versions 0-2 (API key 60)."""

    include_cluster_authorized_operations: bool = field(BOOL)
    endpoint_type: int = field(INT8, "1+", default=ENDPOINT_BROKERS)
    include_fenced_brokers: bool = field(BOOL, "2+")


class DescribeClusterResponse(Message, api_key=60, versions="0-2", flexible="0+"):
    """DescribeCluster response, versions 0-2 (API key 60)."""

    class DescribeClusterBroker(Struct):
        broker_id: int = field(INT32)
        host: str = field(STRING)
        port: int = field(INT32)
        rack: str | None = field(STRING, nullable="0+", default=None)
        is_fenced: bool = field(BOOL, "2+")

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)
    error_message: str | None = field(STRING, nullable="0+", default=None)
    endpoint_type: int = field(INT8, "1+", default=ENDPOINT_BROKERS)
    cluster_id: str = field(STRING)
    controller_id: int = field(INT32, default=-1)
    brokers: list[DescribeClusterResponse.DescribeClusterBroker] = field(ARRAY)
    cluster_authorized_operations: int = field(INT32, default=OPERATIONS_OMITTED)
