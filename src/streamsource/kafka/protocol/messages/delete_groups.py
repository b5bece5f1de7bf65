"""DeleteGroups (key 42): remove empty consumer groups and their committed offsets."""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    INT16,
    INT32,
    STRING,
    Array,
    Message,
    Struct,
    field,
)


class DeleteGroupsRequest(Message, api_key=42, versions="0-2", flexible="2+"):
    """DeleteGroups request, versions 0-2 (API key 42)."""

    groups_names: list[str] = field(Array(STRING))


class DeleteGroupsResponse(Message, api_key=42, versions="0-2", flexible="2+"):
    """DeleteGroups response, versions 0-2 (API key 42): one result per named group."""

    class DeletableGroupResult(Struct):
        group_id: str = field(STRING)
        error_code: int = field(INT16)

    throttle_time_ms: int = field(INT32)
    results: list[DeleteGroupsResponse.DeletableGroupResult] = field(ARRAY)
