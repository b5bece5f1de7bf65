"""What every handler module shares: the handler signature."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from streamsource.kafka.broker.server import ClientInfo
from streamsource.kafka.protocol import RequestHeader

if TYPE_CHECKING:
    from streamsource.kafka.broker.app import Broker

#: (broker, client, header, decoded request) -> response message, or None (acks=0 Produce)
Handler = Callable[["Broker", ClientInfo, RequestHeader, Any], Awaitable[Any | None]]
