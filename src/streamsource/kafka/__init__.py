"""Kafka-compatible event streaming: a single-node broker speaking the Kafka protocol.

``Broker`` runs in your event loop (``await broker.start()`` / ``await broker.stop()``);
``EmbeddedBroker`` runs one in a background thread (``start() -> (host, port)``,
``stop()``, context manager). Both take a ``BrokerConfig`` and/or its fields as keywords::

    from streamsource.kafka import EmbeddedBroker

    with EmbeddedBroker(port=0, data_dir="/tmp/broker") as broker:
        print(broker.bootstrap)  # "127.0.0.1:54321", for any Kafka client

The names are imported lazily so that importing a sub-package (the codec, the log) does not
start importing the whole broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamsource.kafka.broker.app import Broker
    from streamsource.kafka.broker.config import BrokerConfig
    from streamsource.kafka.broker.embedded import EmbeddedBroker

__all__ = ["Broker", "BrokerConfig", "EmbeddedBroker"]


def __getattr__(name: str) -> Any:
    if name == "Broker":
        from streamsource.kafka.broker.app import Broker

        return Broker
    if name == "EmbeddedBroker":
        from streamsource.kafka.broker.embedded import EmbeddedBroker

        return EmbeddedBroker
    if name == "BrokerConfig":
        from streamsource.kafka.broker.config import BrokerConfig

        return BrokerConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
