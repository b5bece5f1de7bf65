"""Group coordinator, committed offsets and idempotent-producer state (sans-I/O cores).

``GroupCoordinator`` runs the classic consumer-group protocol, ``OffsetTable`` holds
committed offsets, ``ProducerIdManager`` and ``PartitionProducerState`` make the
idempotent producer work. None of them touches a file: each hands the broker the bytes to
make durable (``kafka.storage``) and takes its state back from them. The broker converts
protocol messages to and from the plain values defined in ``group_messages``.
"""

from streamsource.kafka.coordinator.group_messages import (
    GroupConfig,
    GroupDescription,
    GroupState,
    JoinMember,
    JoinRequest,
    JoinResult,
    LeaveResult,
    LeavingMember,
    LeftMember,
    ListedGroup,
    MemberDescription,
    Protocol,
    Reply,
    SyncRequest,
    SyncResult,
)
from streamsource.kafka.coordinator.groups import GroupCoordinator
from streamsource.kafka.coordinator.offsets import (
    Change,
    CommittedOffset,
    OffsetCommit,
    OffsetTable,
)
from streamsource.kafka.coordinator.producers import (
    BatchMetadata,
    IdAllocation,
    InitProducerIdResult,
    PartitionProducerState,
    ProducerIdManager,
    SequenceCheck,
    SequenceOutcome,
)

__all__ = [
    "BatchMetadata",
    "Change",
    "CommittedOffset",
    "GroupConfig",
    "GroupCoordinator",
    "GroupDescription",
    "GroupState",
    "IdAllocation",
    "InitProducerIdResult",
    "JoinMember",
    "JoinRequest",
    "JoinResult",
    "LeaveResult",
    "LeavingMember",
    "LeftMember",
    "ListedGroup",
    "MemberDescription",
    "OffsetCommit",
    "OffsetTable",
    "PartitionProducerState",
    "ProducerIdManager",
    "Protocol",
    "Reply",
    "SequenceCheck",
    "SequenceOutcome",
    "SyncRequest",
    "SyncResult",
]
