"""Scrape-time metrics: levels read from the running objects of :mod:`.live`.

Lag, log sizes, connection counts and parked messages are states, not events: reading them
when Prometheus asks costs nothing between scrapes and cannot drift from the truth. A
reading that fails (a database away, a topic deleted mid-scrape) leaves its samples out of
this scrape instead of failing the whole ``/metrics`` answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from streamsource.observability.live import live

log = logging.getLogger(__name__)


class LiveObjects(Collector):
    """Every level metric of the process's brokers, relays, projections and subscriptions."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from _brokers(live("broker"))
        yield from _relays(live("relay"))
        yield from _projections(live("projections"))
        yield from _subscriptions(live("subscription"))


def _brokers(brokers: list[Any]) -> Iterator[GaugeMetricFamily]:
    connections = GaugeMetricFamily(
        "streamsource_broker_connections", "Open client connections.", labels=["listener"]
    )
    size = GaugeMetricFamily(
        "streamsource_broker_log_size_bytes",
        "Bytes of record batches in a partition's log segments.",
        labels=["topic", "partition"],
    )
    end = GaugeMetricFamily(
        "streamsource_broker_log_end_offset",
        "The offset the next record of a partition gets.",
        labels=["topic", "partition"],
    )
    lag = GaugeMetricFamily(
        "streamsource_broker_consumer_group_lag",
        "Records between a group's committed offset and the partition's end.",
        labels=["group", "topic", "partition"],
    )
    seen: set[tuple[str, int]] = set()
    for broker in brokers:
        if not broker.running:
            continue
        connections.add_metric([broker.bootstrap], broker.connection_count)
        ends: dict[tuple[str, int], int] = {}
        for partition in list(broker.topics.partitions()):
            key = (partition.topic, partition.index)
            if key in seen or partition.closed:
                continue  # two brokers in one process serve different data dirs, same names
            seen.add(key)
            try:
                high = partition.high_watermark
                bytes_ = partition.log.size_bytes
            except Exception:  # closed meanwhile
                continue
            ends[key] = high
            labels = [partition.topic, str(partition.index)]
            size.add_metric(labels, bytes_)
            end.add_metric(labels, high)
        offsets = broker.groups.offsets
        for group in offsets.groups():
            for (topic, index), committed in offsets.fetch(group).items():
                high = ends.get((topic, index))
                if high is not None and committed.offset >= 0:
                    lag.add_metric([group, topic, str(index)], max(0, high - committed.offset))
    yield from (connections, size, end, lag)


def _relays(relays: list[Any]) -> Iterator[GaugeMetricFamily]:
    lag = GaugeMetricFamily(
        "streamsource_relay_lag_events",
        "Events recorded in the store and not yet acknowledged by Kafka.",
        labels=["relay"],
    )
    for relay in relays:
        try:
            behind = relay.lag()
        except Exception as exc:
            log.debug("relay %s: lag not read: %s", relay.name, exc)
            continue
        lag.add_metric([relay.name], behind)
    yield lag


def _projections(runners: list[Any]) -> Iterator[GaugeMetricFamily]:
    lag = GaugeMetricFamily(
        "streamsource_projection_lag_events",
        "Events of a projection's selection not handled yet.",
        labels=["projection"],
    )
    age = GaugeMetricFamily(
        "streamsource_projection_lag_seconds",
        "Age of the oldest event a projection has not handled yet (0 when caught up).",
        labels=["projection"],
    )
    failed = GaugeMetricFamily(
        "streamsource_projection_failed",
        "1 when the runner stopped feeding a projection after its handler failed.",
        labels=["projection"],
    )
    for runner in runners:
        try:
            statuses = runner.status()
        except Exception as exc:
            log.debug("projection status not read: %s", exc)
            continue
        for status in statuses:
            lag.add_metric([status.name], status.lag_events)
            age.add_metric([status.name], status.lag_seconds)
            failed.add_metric([status.name], 0 if status.error is None else 1)
    yield from (lag, age, failed)


def _subscriptions(subscriptions: list[Any]) -> Iterator[GaugeMetricFamily]:
    parked = GaugeMetricFamily(
        "streamsource_subscription_parked_messages",
        "Messages a persistent-subscription group parked and has not replayed.",
        labels=["group"],
    )
    in_flight = GaugeMetricFamily(
        "streamsource_subscription_in_flight_messages",
        "Messages handed out to a group's consumers and not acknowledged yet.",
        labels=["group"],
    )
    seen: set[str] = set()
    for subscription in subscriptions:
        if subscription.group in seen or subscription.closed:
            continue  # consumers of one group share its counts
        seen.add(subscription.group)
        try:
            parked_now, flying = subscription.levels()  # sync and asyncio subscriptions
        except Exception as exc:
            log.debug("group %s: counts not read: %s", subscription.group, exc)
            continue
        parked.add_metric([subscription.group], parked_now)
        in_flight.add_metric([subscription.group], flying)
    yield from (parked, in_flight)
