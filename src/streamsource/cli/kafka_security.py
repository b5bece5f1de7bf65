"""``--security-protocol``, ``--sasl-*``, ``--ssl-*``: the same Kafka client security options
on every command that connects to Kafka (the relay now; stream apps and the console too).

Settings come, weakest first, from the environment (``STREAMSOURCE_KAFKA_SASL_PASSWORD``
and the like), these flags, and a ``kafka://user:password@host:port?...`` bootstrap URL
(``ClientSecurity.resolve``). There is no password flag: a password on a command line is
visible to every user of the machine; put it in the environment or the URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from streamsource.kafka.client_security import ClientSecurity

F = TypeVar("F", bound=Callable[..., Any])

_FLAGS = {
    "security_protocol": ("security.protocol", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    "sasl_mechanism": ("sasl.mechanism", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."),
    "sasl_username": ("sasl.username", "SASL user (password: $STREAMSOURCE_KAFKA_SASL_PASSWORD)."),
    "ssl_ca_location": ("ssl.ca.location", "CA file (PEM) that signed the broker's certificate."),
    "ssl_certificate_location": ("ssl.certificate.location", "Client certificate (mTLS)."),
    "ssl_key_location": ("ssl.key.location", "Key of the client certificate."),
}


def kafka_security_options(command: F) -> F:
    """Add the options; the command gets them as one ``kafka_security`` dict (Kafka names)."""
    for parameter, (_name, text) in reversed(_FLAGS.items()):
        command = click.option(
            "--" + parameter.replace("_", "-"), parameter, default=None, help=text
        )(command)
    return command


def pop_security_options(kwargs: dict[str, Any]) -> dict[str, str]:
    """The options' values as Kafka-named settings (the given ones only)."""
    return {
        name: value
        for parameter, (name, _text) in _FLAGS.items()
        if (value := kwargs.pop(parameter, None)) is not None
    }


def resolve(bootstrap: str, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(bootstrap servers, librdkafka config) from a bootstrap or URL, Kafka-named settings
    (flags, ``--producer-config``) and the environment; ``click.UsageError`` if they do
    not add up (the message never holds the password)."""
    from streamsource.errors import InterfaceError

    try:
        servers, security = ClientSecurity.resolve(bootstrap, config, os.environ)
    except InterfaceError as exc:
        raise click.UsageError(str(exc)) from exc
    return servers, {**config, **security.librdkafka()}
