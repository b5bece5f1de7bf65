"""Group membership metadata as values that survive a broker restart (Kafka's group
metadata records), and their bytes.

A classic group is recorded when a generation becomes Stable (the leader's SyncGroup), a
consumer-protocol group whenever its epochs or assignments change; a group without
members has no record. After a restart the coordinators restore these groups with fresh
session deadlines, so members carry on with their generation or member epoch instead of
re-joining with UNKNOWN_MEMBER_ID. Clocks are never recorded: deadlines are monotonic.
"""

from __future__ import annotations

import msgspec

from streamsource.errors import CorruptStoreError


class ClassicMemberSnapshot(msgspec.Struct, array_like=True, frozen=True):
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    protocol_type: str
    protocols: list[tuple[str, bytes]]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    assignment: bytes


class ClassicGroupSnapshot(msgspec.Struct, array_like=True, frozen=True, tag=1):
    group_id: str
    generation_id: int
    protocol_type: str | None
    protocol_name: str | None
    leader_id: str | None
    members: list[ClassicMemberSnapshot]


class ConsumerMemberSnapshot(msgspec.Struct, array_like=True, frozen=True):
    member_id: str
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    subscribed_topics: list[str]
    subscribed_regex: str | None
    server_assignor: str | None
    member_epoch: int
    previous_epoch: int
    assigned: list[tuple[str, int]]
    revoking: list[tuple[str, int]]
    left_static: bool


class ConsumerGroupSnapshot(msgspec.Struct, array_like=True, frozen=True, tag=2):
    group_id: str
    group_epoch: int
    assignment_epoch: int
    assignor: str
    members: list[ConsumerMemberSnapshot]
    target: dict[str, list[tuple[str, int]]]
    partition_counts: dict[str, int]


GroupSnapshot = ClassicGroupSnapshot | ConsumerGroupSnapshot

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(GroupSnapshot)


def encode_snapshot(snapshot: GroupSnapshot) -> bytes:
    return _encoder.encode(snapshot)


def decode_snapshot(data: bytes) -> GroupSnapshot:
    """The snapshot in ``data``; ``CorruptStoreError`` if it is not one."""
    try:
        snapshot: GroupSnapshot = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise CorruptStoreError(f"a group metadata record does not decode: {exc}") from exc
    return snapshot
