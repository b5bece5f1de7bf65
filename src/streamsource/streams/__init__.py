"""Stream processing: dataflows over Kafka topics and the event store, with windows, state
and exactly-once results.

>>> app = App("localhost:9092", group="deposits")
>>> deposits = app.stream(app.topic("bank-events", value=dict))
>>> (deposits.filter(lambda e: e["type"] == "Deposited")
...     .window(Tumbling(60)).count()
...     .to(app.topic("deposits-per-minute")))
>>> app.run()

Built on confluent-kafka's client and the store's catch-up subscriptions, never on the
broker package: an app runs unchanged against any Kafka cluster.
"""

from streamsource.streams.aggregations import Aggregator, aggregate
from streamsource.streams.app import App, Progress
from streamsource.streams.errors import (
    BadRecord,
    DataflowError,
    ProcessingFailed,
    SinkFailed,
    StreamsError,
)
from streamsource.streams.serde import Json, Raw, Serializer, Text
from streamsource.streams.stream import Stream, Table, Topic, WindowedStream
from streamsource.streams.windows import Hopping, Session, Sliding, Tumbling, Windowed

__all__ = [
    "Aggregator",
    "App",
    "BadRecord",
    "DataflowError",
    "Hopping",
    "Json",
    "ProcessingFailed",
    "Progress",
    "Raw",
    "Serializer",
    "Session",
    "SinkFailed",
    "Sliding",
    "Stream",
    "StreamsError",
    "Table",
    "Text",
    "Topic",
    "Tumbling",
    "Windowed",
    "WindowedStream",
    "aggregate",
]
