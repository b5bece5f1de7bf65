"""What handlers share: the handler signature and the narrow views of the broker they take.

A handler does not get the whole ``Broker``: each declares, as a ``Protocol`` combined from
the small pieces below, exactly the parts it uses (the topics, the group runtime, the
producer registry, the clock...). ``Broker`` satisfies them all structurally, so the
dispatch table still passes the broker itself, and mypy checks at the table that it does.
A test or a new handler sees from the signature what state a request can touch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader

if TYPE_CHECKING:
    from streamsource.kafka.broker.app import Broker
    from streamsource.kafka.broker.config import BrokerConfig
    from streamsource.kafka.broker.flusher import GroupFlusher
    from streamsource.kafka.broker.groups_runtime import GroupRuntime
    from streamsource.kafka.broker.log_writer import LogWriter
    from streamsource.kafka.broker.producers import ProducerRegistry
    from streamsource.kafka.broker.topics import TopicManager
    from streamsource.kafka.broker.transactions import TransactionRuntime

#: (broker, client, header, decoded request) -> response message, or None (acks=0 Produce)
Handler = Callable[["Broker", ClientInfo, RequestHeader, Any], Awaitable[Any | None]]


class HasConfig(Protocol):
    @property
    def config(self) -> BrokerConfig: ...


class HasTopics(Protocol):
    @property
    def topics(self) -> TopicManager: ...


class HasGroups(Protocol):
    """The consumer groups: coordinator and committed offsets."""

    @property
    def groups(self) -> GroupRuntime: ...


class HasProducers(Protocol):
    """Producer ids and per-partition idempotence state."""

    @property
    def producers(self) -> ProducerRegistry: ...


class HasTransactions(Protocol):
    """The transaction coordinator and the runtime that carries out its effects."""

    @property
    def transactions(self) -> TransactionRuntime: ...


class HasWriter(Protocol):
    """The thread every change to the logs and the topic list runs on (never the loop)."""

    @property
    def writer(self) -> LogWriter: ...


class HasFlusher(Protocol):
    @property
    def flusher(self) -> GroupFlusher: ...


class HasClock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds (record timestamps, retention)."""
        ...


class Advertised(HasConfig, Protocol):
    """Who this broker is to clients: Metadata, FindCoordinator and DescribeCluster."""

    @property
    def cluster_id(self) -> str: ...

    def endpoint(self, protocol: str) -> tuple[str, int]:
        """The (host, port) advertised to clients of the ``protocol`` listener."""
        ...
