"""Request handlers, one module per API family, and the dispatch table keyed by API key."""

from __future__ import annotations

from streamsource.kafka.broker.handlers.acls import (
    handle_create_acls,
    handle_delete_acls,
    handle_describe_acls,
)
from streamsource.kafka.broker.handlers.admin import handle_create_topics, handle_delete_topics
from streamsource.kafka.broker.handlers.base import Handler
from streamsource.kafka.broker.handlers.cluster import handle_describe_cluster
from streamsource.kafka.broker.handlers.configs import (
    handle_alter_configs,
    handle_describe_configs,
    handle_incremental_alter_configs,
)
from streamsource.kafka.broker.handlers.consumer_groups import (
    handle_consumer_group_describe,
    handle_consumer_group_heartbeat,
)
from streamsource.kafka.broker.handlers.delete_groups import handle_delete_groups
from streamsource.kafka.broker.handlers.fetch import handle_fetch
from streamsource.kafka.broker.handlers.groups import (
    handle_describe_groups,
    handle_find_coordinator,
    handle_heartbeat,
    handle_join_group,
    handle_leave_group,
    handle_list_groups,
    handle_sync_group,
)
from streamsource.kafka.broker.handlers.list_offsets import handle_list_offsets
from streamsource.kafka.broker.handlers.log_dirs import handle_describe_log_dirs
from streamsource.kafka.broker.handlers.metadata import (
    advertised_versions,
    handle_api_versions,
    handle_metadata,
)
from streamsource.kafka.broker.handlers.offsets import handle_offset_commit, handle_offset_fetch
from streamsource.kafka.broker.handlers.partitions import (
    handle_create_partitions,
    handle_delete_records,
)
from streamsource.kafka.broker.handlers.produce import handle_produce
from streamsource.kafka.broker.handlers.producer import handle_init_producer_id
from streamsource.kafka.broker.handlers.sasl import (
    handle_alter_user_scram_credentials,
    handle_describe_user_scram_credentials,
    handle_sasl_authenticate,
    handle_sasl_handshake,
)
from streamsource.kafka.broker.handlers.transactions import (
    handle_add_offsets_to_txn,
    handle_add_partitions_to_txn,
    handle_describe_producers,
    handle_describe_transactions,
    handle_end_txn,
    handle_list_transactions,
    handle_txn_offset_commit,
)
from streamsource.kafka.broker.handlers.txn_markers import handle_write_txn_markers
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.api import ApiKey
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.api_versions import ApiVersionsResponse

#: What answers each API; ApiVersions advertises exactly these keys.
HANDLERS: dict[int, Handler] = {
    ApiKey.PRODUCE: handle_produce,
    ApiKey.FETCH: handle_fetch,
    ApiKey.LIST_OFFSETS: handle_list_offsets,
    ApiKey.METADATA: handle_metadata,
    ApiKey.OFFSET_COMMIT: handle_offset_commit,
    ApiKey.OFFSET_FETCH: handle_offset_fetch,
    ApiKey.FIND_COORDINATOR: handle_find_coordinator,
    ApiKey.JOIN_GROUP: handle_join_group,
    ApiKey.HEARTBEAT: handle_heartbeat,
    ApiKey.LEAVE_GROUP: handle_leave_group,
    ApiKey.SYNC_GROUP: handle_sync_group,
    ApiKey.DESCRIBE_GROUPS: handle_describe_groups,
    ApiKey.LIST_GROUPS: handle_list_groups,
    ApiKey.API_VERSIONS: handle_api_versions,
    ApiKey.CREATE_TOPICS: handle_create_topics,
    ApiKey.DELETE_TOPICS: handle_delete_topics,
    ApiKey.INIT_PRODUCER_ID: handle_init_producer_id,
    ApiKey.ADD_PARTITIONS_TO_TXN: handle_add_partitions_to_txn,
    ApiKey.ADD_OFFSETS_TO_TXN: handle_add_offsets_to_txn,
    ApiKey.END_TXN: handle_end_txn,
    ApiKey.WRITE_TXN_MARKERS: handle_write_txn_markers,
    ApiKey.TXN_OFFSET_COMMIT: handle_txn_offset_commit,
    ApiKey.DESCRIBE_CONFIGS: handle_describe_configs,
    ApiKey.ALTER_CONFIGS: handle_alter_configs,
    ApiKey.INCREMENTAL_ALTER_CONFIGS: handle_incremental_alter_configs,
    ApiKey.DELETE_RECORDS: handle_delete_records,
    ApiKey.CREATE_PARTITIONS: handle_create_partitions,
    ApiKey.DELETE_GROUPS: handle_delete_groups,
    ApiKey.DESCRIBE_CLUSTER: handle_describe_cluster,
    ApiKey.DESCRIBE_LOG_DIRS: handle_describe_log_dirs,
    ApiKey.DESCRIBE_PRODUCERS: handle_describe_producers,
    ApiKey.DESCRIBE_TRANSACTIONS: handle_describe_transactions,
    ApiKey.LIST_TRANSACTIONS: handle_list_transactions,
    ApiKey.CONSUMER_GROUP_HEARTBEAT: handle_consumer_group_heartbeat,
    ApiKey.CONSUMER_GROUP_DESCRIBE: handle_consumer_group_describe,
    ApiKey.DESCRIBE_ACLS: handle_describe_acls,
    ApiKey.CREATE_ACLS: handle_create_acls,
    ApiKey.DELETE_ACLS: handle_delete_acls,
    ApiKey.SASL_HANDSHAKE: handle_sasl_handshake,
    ApiKey.SASL_AUTHENTICATE: handle_sasl_authenticate,
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: handle_describe_user_scram_credentials,
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: handle_alter_user_scram_credentials,
}


def unsupported_version_response(header: RequestHeader) -> ApiVersionsResponse | None:
    """The answer to a request in a version we do not speak, or None to close the connection.

    ApiVersions gets error 35 with a v0 body listing what we support (the client then retries
    with a version from the list); any other API cannot be answered in a version we do not
    know, so its connection is closed, as Kafka does.
    """
    if header.api_key != ApiKey.API_VERSIONS:
        return None
    return ApiVersionsResponse(
        error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=advertised_versions(set(HANDLERS))
    )


__all__ = ["HANDLERS", "Handler", "unsupported_version_response"]
