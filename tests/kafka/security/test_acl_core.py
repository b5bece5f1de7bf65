"""The authorizer as a pure function: Kafka's rules, one by one."""

from __future__ import annotations

import pytest

from streamsource.kafka.security.acl import (
    AclBinding,
    AclFilter,
    Authorizer,
    InvalidAcl,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    authorize,
)

T, G = ResourceType.TOPIC, ResourceType.GROUP
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED
ALLOW, DENY = Permission.ALLOW, Permission.DENY


def acl(
    name: str,
    op: Operation,
    perm: Permission = ALLOW,
    principal: str = "User:alice",
    host: str = "*",
    rtype: ResourceType = T,
    pattern: PatternType = LIT,
) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def may(acls: list[AclBinding], op: Operation, name: str, principal: str = "User:alice",
        host: str = "10.0.0.1", rtype: ResourceType = T, **kw: object) -> bool:  # fmt: skip
    return authorize(acls, principal, host, op, rtype, name, **kw)  # type: ignore[arg-type]


def test_literal_prefixed_and_wildcard_names() -> None:
    acls = [acl("orders", Operation.WRITE), acl("pay-", Operation.READ, pattern=PRE)]
    assert may(acls, Operation.WRITE, "orders")
    assert not may(acls, Operation.WRITE, "orders-eu")
    assert may(acls, Operation.READ, "pay-eu")
    assert not may(acls, Operation.READ, "payments")
    assert may([acl("*", Operation.READ)], Operation.READ, "anything")


def test_no_acl_means_deny_unless_allowed_everyone() -> None:
    acls = [acl("orders", Operation.WRITE)]
    assert not may(acls, Operation.READ, "payments")
    assert may(acls, Operation.READ, "payments", allow_if_no_acl=True)
    # a resource some ACL names is not "without ACLs", even for someone else
    assert not may(acls, Operation.WRITE, "orders", principal="User:bob", allow_if_no_acl=True)


def test_deny_wins_and_all_covers_every_operation() -> None:
    acls = [acl("orders", Operation.ALL), acl("orders", Operation.WRITE, DENY, "User:*")]
    assert may(acls, Operation.READ, "orders")
    assert not may(acls, Operation.WRITE, "orders")


def test_read_write_delete_alter_imply_describe() -> None:
    for op in (Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER):
        assert may([acl("t", op)], Operation.DESCRIBE, "t")
    assert not may([acl("t", Operation.CREATE)], Operation.DESCRIBE, "t")
    assert may([acl("t", Operation.ALTER_CONFIGS)], Operation.DESCRIBE_CONFIGS, "t")
    # a DENY of READ does not deny DESCRIBE
    assert may(
        [acl("t", Operation.DESCRIBE), acl("t", Operation.READ, DENY)], Operation.DESCRIBE, "t"
    )


def test_principal_host_and_resource_type_must_match() -> None:
    acls = [acl("g", Operation.READ, host="10.0.0.1", rtype=G)]
    assert may(acls, Operation.READ, "g", rtype=G)
    assert not may(acls, Operation.READ, "g", rtype=G, host="10.0.0.2")
    assert not may(acls, Operation.READ, "g", rtype=G, principal="User:bob")
    assert not may(acls, Operation.READ, "g")  # a topic named g is another resource


def test_super_users_may_do_anything() -> None:
    acls = [acl("t", Operation.ALL, DENY, "User:*")]
    assert may(acls, Operation.WRITE, "t", principal="User:root", super_users={"User:root"})


def test_authorizer_cache_follows_replacement() -> None:
    authorizer = Authorizer([acl("t", Operation.READ)])
    assert authorizer.allowed("User:alice", "h", Operation.READ, T, "t")
    authorizer.replace([])
    assert not authorizer.allowed("User:alice", "h", Operation.READ, T, "t")


def test_filters_and_match() -> None:
    prefixed = acl("pay-", Operation.READ, pattern=PRE)
    literal = acl("pay-eu", Operation.READ)
    assert AclFilter().matches(prefixed)
    assert AclFilter(T, "pay-eu", PatternType.MATCH).matches(prefixed)
    assert AclFilter(T, "pay-eu", PatternType.MATCH).matches(literal)
    assert not AclFilter(T, "pay-eu", PatternType.LITERAL).matches(prefixed)
    assert not AclFilter(principal="User:bob").matches(literal)


@pytest.mark.parametrize(
    ("binding", "complaint"),
    [
        (acl("t", Operation.ANY), "filter"),
        (acl("t", Operation.READ, Permission.ANY), "ALLOW or DENY"),
        (acl("t", Operation.READ, pattern=PatternType.MATCH), "LITERAL or PREFIXED"),
        (acl("t", Operation.READ, principal="alice"), "TYPE:NAME"),
        (acl("", Operation.READ), "empty"),
        (acl("c", Operation.ALTER, rtype=ResourceType.CLUSTER), "kafka-cluster"),
    ],
)
def test_invalid_bindings_say_why(binding: AclBinding, complaint: str) -> None:
    with pytest.raises(InvalidAcl, match=complaint):
        binding.validate()
