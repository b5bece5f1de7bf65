"""ACLs as Kafka has them, and the authorizer as a pure function over a set of them.

A binding says: *principal* from *host* is ALLOWed or DENYed *operation* on resources of
one *type* whose name is *name* (LITERAL; ``*`` is every name) or starts with it
(PREFIXED). ``authorize`` follows Kafka's AclAuthorizer: super users may do anything; a
matching DENY wins over any ALLOW; READ, WRITE, DELETE and ALTER imply DESCRIBE, and
ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL matches every operation; ``User:*`` every
principal and ``*`` every host; a resource no binding names at all is allowed only with
``allow_if_no_acl``. Codes are Kafka's wire values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12


class Permission(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


CLUSTER_NAME = "kafka-cluster"  # the one cluster resource's name, as in Kafka
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"

_IMPLIED = {
    Operation.DESCRIBE: (Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER),
    Operation.DESCRIBE_CONFIGS: (Operation.ALTER_CONFIGS,),
}
_CONCRETE_TYPES = (
    ResourceType.TOPIC,
    ResourceType.GROUP,
    ResourceType.CLUSTER,
    ResourceType.TRANSACTIONAL_ID,
)


class InvalidAcl(ValueError):
    """A binding CreateAcls cannot store (Kafka: INVALID_REQUEST with this message)."""


@dataclass(frozen=True)
class AclBinding:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: Operation
    permission: Permission

    def validate(self) -> AclBinding:
        """This binding if it can be stored; ``InvalidAcl`` naming what is wrong."""
        if self.resource_type not in _CONCRETE_TYPES:
            raise InvalidAcl(f"resource type {self.resource_type.name} cannot have ACLs")
        if self.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            raise InvalidAcl(f"pattern type {self.pattern_type.name} is not LITERAL or PREFIXED")
        if self.operation in (Operation.ANY, Operation.UNKNOWN):
            raise InvalidAcl(f"operation {self.operation.name} is a filter, not an operation")
        if self.permission not in (Permission.ALLOW, Permission.DENY):
            raise InvalidAcl(f"permission {self.permission.name} is not ALLOW or DENY")
        if not self.name:
            raise InvalidAcl("the resource name is empty")
        if self.resource_type == ResourceType.CLUSTER and self.name != CLUSTER_NAME:
            raise InvalidAcl(f"the cluster resource is named {CLUSTER_NAME!r}")
        if ":" not in self.principal:
            raise InvalidAcl(f"principal {self.principal!r} is not TYPE:NAME (User:alice)")
        if not self.host:
            raise InvalidAcl("the host is empty (use * for any host)")
        return self

    def to_document(self) -> list[object]:
        return [
            self.resource_type.name,
            self.name,
            self.pattern_type.name,
            self.principal,
            self.host,
            self.operation.name,
            self.permission.name,
        ]

    @classmethod
    def from_document(cls, row: list[str]) -> AclBinding:
        rtype, name, pattern, principal, host, operation, permission = row
        return cls(
            ResourceType[rtype],
            name,
            PatternType[pattern],
            principal,
            host,
            Operation[operation],
            Permission[permission],
        ).validate()


@dataclass(frozen=True)
class AclFilter:
    """DescribeAcls/DeleteAcls' filter: ANY codes and None strings match everything;
    pattern MATCH matches the bindings that would apply to the named resource."""

    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: Operation = Operation.ANY
    permission: Permission = Permission.ANY

    def matches(self, binding: AclBinding) -> bool:
        if self.resource_type not in (ResourceType.ANY, binding.resource_type):
            return False
        if self.pattern_type == PatternType.MATCH:
            if self.name is not None and not _names(binding, self.name):
                return False
        else:
            if self.pattern_type not in (PatternType.ANY, binding.pattern_type):
                return False
            if self.name is not None and self.name != binding.name:
                return False
        return (
            self.principal in (None, binding.principal)
            and self.host in (None, binding.host)
            and self.operation in (Operation.ANY, binding.operation)
            and self.permission in (Permission.ANY, binding.permission)
        )


def _names(binding: AclBinding, name: str) -> bool:
    """Whether ``binding``'s resource pattern covers resource ``name``."""
    if binding.pattern_type == PatternType.LITERAL:
        return binding.name in (name, WILDCARD)
    return name.startswith(binding.name)


def authorize(
    acls: Iterable[AclBinding],
    principal: str,
    host: str,
    operation: Operation,
    resource_type: ResourceType,
    name: str,
    *,
    super_users: frozenset[str] = frozenset(),
    allow_if_no_acl: bool = False,
) -> bool:
    """Whether ``principal`` connecting from ``host`` may do ``operation`` on the resource."""
    if principal in super_users:
        return True
    relevant = [a for a in acls if a.resource_type == resource_type and _names(a, name)]
    if not relevant:
        return allow_if_no_acl
    mine = [
        a
        for a in relevant
        if a.principal in (principal, WILDCARD_PRINCIPAL) and a.host in (host, WILDCARD)
    ]
    if any(
        a.permission == Permission.DENY and a.operation in (operation, Operation.ALL) for a in mine
    ):
        return False
    granting = (operation, Operation.ALL, *_IMPLIED.get(operation, ()))
    return any(a.permission == Permission.ALLOW and a.operation in granting for a in mine)


class Authorizer:
    """The bindings in force and the settings ``authorize`` takes; answers are cached until
    the bindings change (a Produce checks its topics on every request)."""

    MAX_CACHED = 50_000

    def __init__(
        self,
        acls: Iterable[AclBinding] = (),
        *,
        super_users: Iterable[str] = (),
        allow_if_no_acl: bool = False,
    ) -> None:
        self.acls: tuple[AclBinding, ...] = tuple(dict.fromkeys(acls))
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._cache: dict[tuple[str, str, Operation, ResourceType, str], bool] = {}

    def replace(self, acls: Iterable[AclBinding]) -> None:
        self.acls = tuple(dict.fromkeys(acls))
        self._cache.clear()

    def allowed(
        self,
        principal: str,
        host: str,
        operation: Operation,
        resource_type: ResourceType,
        name: str,
    ) -> bool:
        key = (principal, host, operation, resource_type, name)
        answer = self._cache.get(key)
        if answer is None:
            answer = authorize(
                self.acls,
                principal,
                host,
                operation,
                resource_type,
                name,
                super_users=self.super_users,
                allow_if_no_acl=self.allow_if_no_acl,
            )
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            self._cache[key] = answer
        return answer
