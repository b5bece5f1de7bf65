"""DeleteGroups: remove empty consumer groups together with their committed offsets."""

from __future__ import annotations

from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasGroups
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.delete_groups import (
    DeleteGroupsRequest,
    DeleteGroupsResponse,
)
from streamsource.kafka.storage import StorageError


class DeleteGroupsContext(HasGroups, Protocol):
    """The consumer groups."""


_Deleted = DeleteGroupsResponse.DeletableGroupResult


async def handle_delete_groups(
    broker: DeleteGroupsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse:
    # A group named twice is answered once, as Kafka does.
    wanted = list(dict.fromkeys(request.groups_names))
    return DeleteGroupsResponse(
        results=[_Deleted(group_id=g, error_code=await delete_group(broker, g)) for g in wanted]
    )


async def delete_group(broker: DeleteGroupsContext, group_id: str) -> ErrorCode:
    """Delete one group: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP (members), or NONE.

    The empty group id is a valid group here: Kafka allows it for DeleteGroups so that
    offsets committed under "" can be removed, and answers INVALID_GROUP_ID only to a null
    id, which the schema (an array of non-null strings) does not let through. The offsets' removal is durable before the
    answer; if it cannot be written the group is kept and the error is retriable.
    """
    groups = broker.groups
    error = groups.consumer_groups.delete_group(group_id)
    if error is ErrorCode.NON_EMPTY_GROUP:
        return error
    found_consumer_group = error is ErrorCode.NONE
    error = groups.coordinator.delete_group(group_id)
    if found_consumer_group and error is ErrorCode.GROUP_ID_NOT_FOUND:
        error = ErrorCode.NONE
    if error is ErrorCode.NON_EMPTY_GROUP:
        return error
    has_offsets = group_id in groups.offsets.groups()
    if error is ErrorCode.GROUP_ID_NOT_FOUND and not has_offsets:
        return error
    if has_offsets:
        try:
            await groups.offsets.delete_group(group_id)
        except StorageError:
            groups.coordinator.note_group_with_offsets(group_id)  # it still has them
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
    return ErrorCode.NONE
