"""``streamsource relay``: publish the store's events to Kafka topics until SIGINT/SIGTERM.

The checkpoint (last position the broker acknowledged) is kept in the store's own database:
a table ``streamsource_relay_checkpoints`` in its SQLite file or PostgreSQL schema, one row
per ``--name``. Killing the relay (even with ``kill -9``) loses nothing: it resumes from there.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import click

import streamsource as ss
from streamsource.cli.kafka_security import (
    kafka_security_options,
    pop_security_options,
    resolve,
)
from streamsource.cli.metrics_option import metrics_options, start_metrics
from streamsource.kafka.client_security import redact_url


def _parse_config(values: tuple[str, ...]) -> dict[str, str]:
    config: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--producer-config")
        config[key.strip()] = value.strip()
    return config


@click.command(name="relay")
@click.option(
    "--store",
    "store_url",
    envvar="STREAMSOURCE_STORE",
    default="sqlite:///streamsource.db",
    show_default=True,
    help="Event store URL (default from $STREAMSOURCE_STORE).",
)
@click.option(
    "--bootstrap",
    default="localhost:9092",
    show_default=True,
    help="Kafka bootstrap servers, HOST:PORT[,HOST:PORT...], or a kafka://USER:PASSWORD@"
    "HOST:PORT?security.protocol=SASL_SSL&sasl.mechanism=... URL.",
)
@click.option(
    "--category", "categories", multiple=True, help="Publish only this category (repeatable)."
)
@click.option("--type", "types", multiple=True, help="Publish only this event type (repeatable).")
@click.option(
    "--topic", default=None, help="One topic for every event (default: one per category)."
)
@click.option("--topic-prefix", default="", help="Prefix of the per-category topic names.")
@click.option(
    "--name",
    default="default",
    show_default=True,
    help="The relay's name: its checkpoint is kept under it.",
)
@click.option(
    "--producer-config",
    "producer_config",
    multiple=True,
    metavar="KEY=VALUE",
    help="A librdkafka producer setting (repeatable), e.g. compression.type=lz4.",
)
@kafka_security_options
@metrics_options
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
)
def command(
    store_url: str,
    bootstrap: str,
    categories: tuple[str, ...],
    types: tuple[str, ...],
    topic: str | None,
    topic_prefix: str,
    name: str,
    producer_config: tuple[str, ...],
    metrics_port: int | None,
    metrics_host: str,
    log_level: str,
    **security_options: Any,
) -> None:
    """Publish recorded events to Kafka (idempotent producer, acks=all) until stopped."""
    from streamsource.bridge import OutboxRelay, TopicMapping, checkpoints_for

    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    shown = redact_url(bootstrap)  # what is printed: never a password
    config = {**_parse_config(producer_config), **pop_security_options(security_options)}
    bootstrap, config = resolve(bootstrap, config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    start_metrics(metrics_port, metrics_host)
    try:
        mapping = TopicMapping.of(categories, types, topic=topic, topic_prefix=topic_prefix)
        with ss.open_store(store_url) as store:
            checkpoints = checkpoints_for(store)
            try:
                relay = OutboxRelay(
                    store,
                    bootstrap,
                    mapping=mapping,
                    checkpoints=checkpoints,
                    name=name,
                    producer_config=config,
                )
                relay.open()  # loads the checkpoint, checks the client settings
                click.echo(
                    f"relaying {redact_url(store_url)} to {shown} after position {relay.checkpoint}"
                )
                relay.run(stop)
                click.echo(f"stopped; checkpoint {relay.saved_checkpoint}")
            finally:
                checkpoints.close()
    except ss.StreamsourceError as exc:
        click.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise SystemExit(1) from None
