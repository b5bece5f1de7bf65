"""DescribeCluster: what the admin clients (KIP-700) ask instead of Metadata for the cluster."""

from __future__ import annotations

from typing import Protocol

from streamsource.kafka.broker.handlers.base import Advertised
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.cluster import (
    ENDPOINT_BROKERS,
    ENDPOINT_CONTROLLERS,
    OPERATIONS_OMITTED,
    DescribeClusterRequest,
    DescribeClusterResponse,
)


class ClusterContext(Advertised, Protocol):
    """Who the broker is."""


# Kafka's AclOperation codes that apply to the cluster resource. There are no ACLs here,
# so every client may do all of them.
_CLUSTER_OPERATIONS = {
    "CREATE": 5,
    "ALTER": 7,
    "DESCRIBE": 8,
    "CLUSTER_ACTION": 9,
    "DESCRIBE_CONFIGS": 10,
    "ALTER_CONFIGS": 11,
    "IDEMPOTENT_WRITE": 12,
}
CLUSTER_AUTHORIZED_OPERATIONS = sum(1 << bit for bit in _CLUSTER_OPERATIONS.values())


async def handle_describe_cluster(
    broker: ClusterContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse:
    endpoint = request.endpoint_type
    if endpoint != ENDPOINT_BROKERS:
        mismatched = endpoint == ENDPOINT_CONTROLLERS
        return DescribeClusterResponse(
            error_code=(
                ErrorCode.MISMATCHED_ENDPOINT_TYPE
                if mismatched
                else ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
            ),
            error_message=(
                "this is a broker endpoint; there are no separate controllers"
                if mismatched
                else f"unknown endpoint type {endpoint}"
            ),
            endpoint_type=endpoint,
            cluster_id=broker.cluster_id,
        )
    node = broker.config.node_id
    host, port = broker.endpoint(client.listener)
    return DescribeClusterResponse(
        endpoint_type=ENDPOINT_BROKERS,
        cluster_id=broker.cluster_id,
        controller_id=node,  # the one broker is its own controller
        brokers=[
            DescribeClusterResponse.DescribeClusterBroker(broker_id=node, host=host, port=port)
        ],
        cluster_authorized_operations=(
            CLUSTER_AUTHORIZED_OPERATIONS
            if request.include_cluster_authorized_operations
            else OPERATIONS_OMITTED
        ),
    )
