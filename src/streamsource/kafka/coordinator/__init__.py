"""Group coordinator, committed offsets and idempotent-producer state (sans-I/O cores).

``GroupCoordinator`` runs the classic consumer-group protocol, ``OffsetStore`` keeps
committed offsets durable, ``ProducerIdManager`` and ``PartitionProducerState`` make the
idempotent producer work. The broker converts protocol messages to and from the plain
values defined in ``group_messages``.
"""

from streamsource.kafka.coordinator.errors import CoordinatorStorageError
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
from streamsource.kafka.coordinator.offsets import CommittedOffset, OffsetCommit, OffsetStore
from streamsource.kafka.coordinator.producers import (
    BatchMetadata,
    InitProducerIdResult,
    PartitionProducerState,
    ProducerIdManager,
    SequenceCheck,
    SequenceOutcome,
)

__all__ = [
    "BatchMetadata",
    "CommittedOffset",
    "CoordinatorStorageError",
    "GroupConfig",
    "GroupCoordinator",
    "GroupDescription",
    "GroupState",
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
    "OffsetStore",
    "PartitionProducerState",
    "ProducerIdManager",
    "Protocol",
    "Reply",
    "SequenceCheck",
    "SequenceOutcome",
    "SyncRequest",
    "SyncResult",
]
