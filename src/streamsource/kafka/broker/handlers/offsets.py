"""OffsetCommit and OffsetFetch: committed consumer offsets, durable across restarts.

The coordinator decides whether a commit is allowed (generation, member); the offset store
keeps it: the handler awaits the write (group-committed with every other commit of the
moment, on the store's writer thread), so only this connection waits for the disk. A
commit that cannot be written answers NOT_COORDINATOR, as Kafka does for a storage error
(the client finds the coordinator again and retries); nothing of it is kept. A partition
with no committed offset reads back as -1.
With ``require_stable`` (v7+, what read_committed consumers send), a partition for which an
open transaction holds an offset answers UNSTABLE_OFFSET_COMMIT (retriable) instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from streamsource.kafka.broker.handlers.base import (
    HasClock,
    HasGroups,
    HasTopics,
    HasTransactions,
)
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.coordinator.offsets import OffsetCommit
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.offsets import (
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
)
from streamsource.kafka.storage import StorageError


class OffsetsContext(HasTopics, HasGroups, HasClock, HasTransactions, Protocol):
    """The groups (commit checks, offsets), the topics committed to, the clock, and the
    transaction coordinator (offsets still pending in a transaction)."""


_CommitTopic = OffsetCommitResponse.OffsetCommitResponseTopic
_CommitPartition = OffsetCommitResponse.OffsetCommitResponsePartition


async def handle_offset_commit(
    broker: OffsetsContext, client: ClientInfo, header: RequestHeader, request: OffsetCommitRequest
) -> OffsetCommitResponse:
    version = header.api_version
    if version == 0:
        error = ErrorCode.NONE if request.group_id else ErrorCode.INVALID_GROUP_ID
    else:
        error = broker.groups.validate_commit(
            request.group_id,
            request.generation_id,
            request.member_id,
            request.group_instance_id,
        )
        if error is ErrorCode.STALE_MEMBER_EPOCH and version < 9:
            error = ErrorCode.ILLEGAL_GENERATION  # what clients before KIP-848 understand
    if version == 0 and error is ErrorCode.NONE:
        broker.groups.coordinator.note_group_with_offsets(request.group_id)
    now_ms = broker.now_ms()
    entries: list[OffsetCommit] = []
    slots: list[_CommitPartition] = []
    topics: list[_CommitTopic] = []
    for topic in request.topics:
        results: list[_CommitPartition] = []
        for p in topic.partitions:
            result = _CommitPartition(partition_index=p.partition_index, error_code=error)
            results.append(result)
            if error is not ErrorCode.NONE:
                continue
            if broker.topics.partition(topic.name, p.partition_index) is None:
                result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            timestamp = p.commit_timestamp if version == 1 and p.commit_timestamp >= 0 else now_ms
            entries.append(
                OffsetCommit(
                    topic.name,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata,
                    timestamp,
                )
            )
            slots.append(result)
        topics.append(_CommitTopic(name=topic.name, partitions=results))
    if entries:
        try:
            codes = await broker.groups.offsets.commit(request.group_id, entries)
        except StorageError:
            codes = [ErrorCode.NOT_COORDINATOR] * len(slots)
        for result, code in zip(slots, codes, strict=True):
            result.error_code = code
    return OffsetCommitResponse(topics=topics)


async def handle_offset_fetch(
    broker: OffsetsContext, client: ClientInfo, header: RequestHeader, request: OffsetFetchRequest
) -> OffsetFetchResponse:
    if header.api_version >= 8:
        groups = []
        for group in request.groups:
            wanted = None
            if group.topics is not None:
                wanted = [(t.name, list(t.partition_indexes)) for t in group.topics]
            groups.append(
                OffsetFetchResponse.OffsetFetchResponseGroup(
                    group_id=group.group_id,
                    error_code=ErrorCode.NONE,
                    topics=[
                        OffsetFetchResponse.OffsetFetchResponseTopics(
                            name=name,
                            partitions=[
                                OffsetFetchResponse.OffsetFetchResponsePartitions(
                                    partition_index=index,
                                    committed_offset=offset,
                                    committed_leader_epoch=epoch,
                                    metadata=metadata,
                                    error_code=error,
                                )
                                for index, offset, epoch, metadata, error in rows
                            ],
                        )
                        for name, rows in _committed(
                            broker, group.group_id, wanted, request.require_stable
                        )
                    ],
                )
            )
        return OffsetFetchResponse(groups=groups)
    wanted_old = None
    if request.topics is not None:
        wanted_old = [(t.name, list(t.partition_indexes)) for t in request.topics]
    return OffsetFetchResponse(
        error_code=ErrorCode.NONE,
        topics=[
            OffsetFetchResponse.OffsetFetchResponseTopic(
                name=name,
                partitions=[
                    OffsetFetchResponse.OffsetFetchResponsePartition(
                        partition_index=index,
                        committed_offset=offset,
                        committed_leader_epoch=epoch,
                        metadata=metadata,
                        error_code=error,
                    )
                    for index, offset, epoch, metadata, error in rows
                ],
            )
            for name, rows in _committed(
                broker, request.group_id, wanted_old, request.require_stable
            )
        ],
    )


_Row = tuple[int, int, int, str | None, ErrorCode]
_UNSTABLE: tuple[int, int, str, ErrorCode] = (-1, -1, "", ErrorCode.UNSTABLE_OFFSET_COMMIT)


def _committed(
    broker: OffsetsContext,
    group_id: str,
    wanted: Iterable[tuple[str, list[int]]] | None,
    require_stable: bool,
) -> list[tuple[str, list[_Row]]]:
    """(topic, [(partition, offset, leader epoch, metadata, error)]) for the asked ones.

    ``wanted=None`` means every partition the group has committed (OffsetFetch v2+).
    """
    store = broker.groups.offsets
    txns = broker.transactions.coordinator

    def pending(topic: str, index: int) -> bool:
        return require_stable and txns.pending_offset(group_id, (topic, index))

    if wanted is None:
        by_topic: dict[str, list[_Row]] = {}
        for (topic, index), c in sorted(store.fetch(group_id).items()):
            by_topic.setdefault(topic, []).append(
                (index, *_UNSTABLE)
                if pending(topic, index)
                else (index, c.offset, c.leader_epoch, c.metadata, ErrorCode.NONE)
            )
        return list(by_topic.items())
    out: list[tuple[str, list[_Row]]] = []
    for topic, indexes in wanted:
        rows: list[_Row] = []
        for index in indexes:
            found = store.get(group_id, topic, index)
            if pending(topic, index):
                rows.append((index, *_UNSTABLE))
            elif found is None:
                rows.append((index, -1, -1, "", ErrorCode.NONE))
            else:
                rows.append(
                    (index, found.offset, found.leader_epoch, found.metadata, ErrorCode.NONE)
                )
        out.append((topic, rows))
    return out
