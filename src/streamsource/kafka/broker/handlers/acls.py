"""CreateAcls, DescribeAcls, DeleteAcls: the ACL bindings, kept in ``acls.json`` and in
force from the moment the response is sent (the authorizer's set is replaced at once)."""

from __future__ import annotations

from typing import Any, Protocol

from streamsource.kafka.broker.auth import AuthRuntime
from streamsource.kafka.broker.handlers.base import HasWriter
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.acls import (
    CreateAclsRequest,
    CreateAclsResponse,
    DeleteAclsRequest,
    DeleteAclsResponse,
    DescribeAclsRequest,
    DescribeAclsResponse,
)
from streamsource.kafka.security.acl import (
    AclBinding,
    AclFilter,
    InvalidAcl,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)


class AclContext(HasWriter, Protocol):
    @property
    def auth(self) -> AuthRuntime: ...


def _code(enum: Any, value: int) -> Any:
    try:
        return enum(value)
    except ValueError:
        return enum.UNKNOWN


def _filter(f: Any) -> AclFilter:
    """A request's filter; ``InvalidAcl`` if a code is unknown."""
    acl_filter = AclFilter(
        _code(ResourceType, f.resource_type_filter),
        f.resource_name_filter,
        _code(PatternType, f.pattern_type_filter),
        f.principal_filter,
        f.host_filter,
        _code(Operation, f.operation),
        _code(Permission, f.permission_type),
    )
    for value in (
        acl_filter.resource_type,
        acl_filter.pattern_type,
        acl_filter.operation,
        acl_filter.permission,
    ):
        if value.name == "UNKNOWN":
            raise InvalidAcl(f"the filter has an unknown {type(value).__name__} code")
    return acl_filter


async def handle_describe_acls(
    broker: AclContext, client: ClientInfo, header: RequestHeader, request: DescribeAclsRequest
) -> DescribeAclsResponse:
    try:
        acl_filter = _filter(request)
    except InvalidAcl as exc:
        return DescribeAclsResponse(error_code=ErrorCode.INVALID_REQUEST, error_message=str(exc))
    grouped: dict[tuple[int, str, int], list[DescribeAclsResponse.AclDescription]] = {}
    for b in broker.auth.authorizer.acls:
        if acl_filter.matches(b):
            grouped.setdefault((b.resource_type, b.name, b.pattern_type), []).append(
                DescribeAclsResponse.AclDescription(
                    principal=b.principal,
                    host=b.host,
                    operation=b.operation,
                    permission_type=b.permission,
                )
            )
    return DescribeAclsResponse(
        error_code=ErrorCode.NONE,
        resources=[
            DescribeAclsResponse.DescribeAclsResource(
                resource_type=rtype, resource_name=name, pattern_type=pattern, acls=acls
            )
            for (rtype, name, pattern), acls in grouped.items()
        ],
    )


async def handle_create_acls(
    broker: AclContext, client: ClientInfo, header: RequestHeader, request: CreateAclsRequest
) -> CreateAclsResponse:
    results = []
    new: list[AclBinding] = []
    for c in request.creations:
        try:
            binding = AclBinding(
                _code(ResourceType, c.resource_type),
                c.resource_name,
                _code(PatternType, c.resource_pattern_type),
                c.principal,
                c.host,
                _code(Operation, c.operation),
                _code(Permission, c.permission_type),
            ).validate()
        except InvalidAcl as exc:
            results.append(
                CreateAclsResponse.AclCreationResult(
                    error_code=ErrorCode.INVALID_REQUEST, error_message=str(exc)
                )
            )
            continue
        new.append(binding)
        results.append(CreateAclsResponse.AclCreationResult(error_code=ErrorCode.NONE))
    if new:
        await broker.auth.change_acls(broker.writer, lambda bindings: bindings.extend(new))
    return CreateAclsResponse(results=results)


async def handle_delete_acls(
    broker: AclContext, client: ClientInfo, header: RequestHeader, request: DeleteAclsRequest
) -> DeleteAclsResponse:
    filters: list[AclFilter | None] = []
    for f in request.filters:
        try:
            filters.append(_filter(f))
        except InvalidAcl:
            filters.append(None)
    matched: list[list[AclBinding]] = []

    def delete(bindings: list[AclBinding]) -> None:
        for acl_filter in filters:
            matched.append(
                [b for b in bindings if acl_filter is not None and acl_filter.matches(b)]
            )
        gone = {b for found in matched for b in found}
        bindings[:] = [b for b in bindings if b not in gone]

    if any(f is not None for f in filters):
        await broker.auth.change_acls(broker.writer, delete)
    else:
        matched = [[] for _ in filters]
    results = []
    for acl_filter, found in zip(filters, matched, strict=True):
        if acl_filter is None:
            results.append(
                DeleteAclsResponse.DeleteAclsFilterResult(
                    error_code=ErrorCode.INVALID_REQUEST,
                    error_message="the filter has an unknown code",
                )
            )
            continue
        results.append(
            DeleteAclsResponse.DeleteAclsFilterResult(
                error_code=ErrorCode.NONE,
                matching_acls=[
                    DeleteAclsResponse.DeleteAclsMatchingAcl(
                        error_code=ErrorCode.NONE,
                        resource_type=b.resource_type,
                        resource_name=b.name,
                        pattern_type=b.pattern_type,
                        principal=b.principal,
                        host=b.host,
                        operation=b.operation,
                        permission_type=b.permission,
                    )
                    for b in found
                ],
            )
        )
    return DeleteAclsResponse(filter_results=results)
