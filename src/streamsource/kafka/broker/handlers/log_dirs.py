"""DescribeLogDirs: how many bytes each partition's log takes, for admin tools and consoles.

The broker has one log directory, its data dir. A partition's size is the bytes of record
batches in its segment files (what Kafka reports: indexes not counted); with one replica
there is no lag and never a future log (``AlterReplicaLogDirs`` does not exist here). As
in Kafka, topics or partitions the broker does not have are left out of the answer, and
``topics`` null asks for every partition.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Protocol

from streamsource.kafka.broker.handlers.base import HasConfig, HasTopics
from streamsource.kafka.broker.partition import Partition
from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.log.errors import LogError
from streamsource.kafka.protocol import RequestHeader
from streamsource.kafka.protocol.errors import ErrorCode
from streamsource.kafka.protocol.messages.log_dirs import (
    DescribeLogDirsRequest,
    DescribeLogDirsResponse,
)

_Result = DescribeLogDirsResponse.DescribeLogDirsResult
_Topic = DescribeLogDirsResponse.DescribeLogDirsTopic
_Partition = DescribeLogDirsResponse.DescribeLogDirsPartition


class LogDirsContext(HasConfig, HasTopics, Protocol):
    """The data dir and the partitions in it."""


async def handle_describe_log_dirs(
    broker: LogDirsContext,
    client: ClientInfo,
    header: RequestHeader,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse:
    # the volume's sizes are a statvfs of the data dir: in a worker thread, not on the loop
    return await asyncio.to_thread(_describe, broker, request)


def _describe(broker: LogDirsContext, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse:
    data_dir = os.path.abspath(broker.config.data_dir)
    result = _Result(log_dir=data_dir, topics=_topics(broker, request.topics))
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError:  # the data dir is gone or unreadable: the log dir is offline
        result.error_code = ErrorCode.KAFKA_STORAGE_ERROR
        result.topics = []
    else:
        result.total_bytes, result.usable_bytes = usage.total, usage.free
    return DescribeLogDirsResponse(results=[result])


def _topics(
    broker: LogDirsContext, wanted: list[DescribeLogDirsRequest.DescribableLogDirTopic] | None
) -> list[_Topic]:
    """Every requested partition the broker has, topics by name, partitions by index."""
    chosen: dict[str, set[int] | None]
    if wanted is None:
        chosen = dict.fromkeys(list(broker.topics.topics))  # a copy: topics change meanwhile
    else:
        asked: dict[str, set[int]] = {}
        for entry in wanted:  # a topic named twice asks for the union of its partitions
            asked.setdefault(entry.topic, set()).update(entry.partitions)
        chosen = dict(asked)
    answer: list[_Topic] = []
    for name in sorted(chosen):
        topic = broker.topics.get(name)
        if topic is None:
            continue
        indexes = chosen[name]
        partitions = [_size(p) for p in topic.partitions if indexes is None or p.index in indexes]
        described = [p for p in partitions if p is not None]
        if described:
            answer.append(_Topic(name=name, partitions=described))
    return answer


def _size(partition: Partition) -> _Partition | None:
    try:
        size = partition.log.size_bytes
    except LogError:  # deleted meanwhile
        return None
    return _Partition(
        partition_index=partition.index, partition_size=size, offset_lag=0, is_future_key=False
    )
