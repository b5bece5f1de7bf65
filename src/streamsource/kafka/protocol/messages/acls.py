"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31), as Kafka declares them.

Codes (resource type, pattern type, operation, permission) are those of
``streamsource.kafka.security.acl``. Version 0 has no pattern type: LITERAL.
"""

from __future__ import annotations

from streamsource.kafka.protocol.schema import (
    ARRAY,
    INT8,
    INT16,
    INT32,
    STRING,
    Message,
    Struct,
    field,
)

LITERAL = 3


class DescribeAclsRequest(Message, api_key=29, versions="0-3", flexible="2+"):
    """DescribeAcls request, versions 0-3 (API key 29): one filter."""

    resource_type_filter: int = field(INT8)
    resource_name_filter: str | None = field(STRING, nullable="0+", default=None)
    pattern_type_filter: int = field(INT8, "1+", default=LITERAL)
    principal_filter: str | None = field(STRING, nullable="0+", default=None)
    host_filter: str | None = field(STRING, nullable="0+", default=None)
    operation: int = field(INT8)
    permission_type: int = field(INT8)


class DescribeAclsResponse(Message, api_key=29, versions="0-3", flexible="2+"):
    """DescribeAcls response: the matching bindings grouped by resource pattern."""

    class DescribeAclsResource(Struct):
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)
        pattern_type: int = field(INT8, "1+", default=LITERAL)
        acls: list[DescribeAclsResponse.AclDescription] = field(ARRAY)

    class AclDescription(Struct):
        principal: str = field(STRING)
        host: str = field(STRING)
        operation: int = field(INT8)
        permission_type: int = field(INT8)

    throttle_time_ms: int = field(INT32)
    error_code: int = field(INT16)
    error_message: str | None = field(STRING, nullable="0+", default=None)
    resources: list[DescribeAclsResponse.DescribeAclsResource] = field(ARRAY)


class CreateAclsRequest(Message, api_key=30, versions="0-3", flexible="2+"):
    """CreateAcls request, versions 0-3 (API key 30)."""

    class AclCreation(Struct):
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)
        resource_pattern_type: int = field(INT8, "1+", default=LITERAL)
        principal: str = field(STRING)
        host: str = field(STRING)
        operation: int = field(INT8)
        permission_type: int = field(INT8)

    creations: list[CreateAclsRequest.AclCreation] = field(ARRAY)


class CreateAclsResponse(Message, api_key=30, versions="0-3", flexible="2+"):
    """CreateAcls response: one result per creation, in order."""

    class AclCreationResult(Struct):
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)

    throttle_time_ms: int = field(INT32)
    results: list[CreateAclsResponse.AclCreationResult] = field(ARRAY)


class DeleteAclsRequest(Message, api_key=31, versions="0-3", flexible="2+"):
    """DeleteAcls request, versions 0-3 (API key 31): bindings matching any filter go."""

    class DeleteAclsFilter(Struct):
        resource_type_filter: int = field(INT8)
        resource_name_filter: str | None = field(STRING, nullable="0+", default=None)
        pattern_type_filter: int = field(INT8, "1+", default=LITERAL)
        principal_filter: str | None = field(STRING, nullable="0+", default=None)
        host_filter: str | None = field(STRING, nullable="0+", default=None)
        operation: int = field(INT8)
        permission_type: int = field(INT8)

    filters: list[DeleteAclsRequest.DeleteAclsFilter] = field(ARRAY)


class DeleteAclsResponse(Message, api_key=31, versions="0-3", flexible="2+"):
    """DeleteAcls response: per filter, the bindings it deleted."""

    class DeleteAclsFilterResult(Struct):
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)
        matching_acls: list[DeleteAclsResponse.DeleteAclsMatchingAcl] = field(ARRAY)

    class DeleteAclsMatchingAcl(Struct):
        error_code: int = field(INT16)
        error_message: str | None = field(STRING, nullable="0+", default=None)
        resource_type: int = field(INT8)
        resource_name: str = field(STRING)
        pattern_type: int = field(INT8, "1+", default=LITERAL)
        principal: str = field(STRING)
        host: str = field(STRING)
        operation: int = field(INT8)
        permission_type: int = field(INT8)

    throttle_time_ms: int = field(INT32)
    filter_results: list[DeleteAclsResponse.DeleteAclsFilterResult] = field(ARRAY)
