"""``ClientSecurity``: one set of Kafka client security settings for every client we ship.

The relay, the inbox consumer, stream apps and the console all take the same settings,
named as Kafka names them (``security.protocol``, ``sasl.mechanism``, ``sasl.username``,
``sasl.password``, ``ssl.ca.location``, ``ssl.certificate.location``,
``ssl.key.location``), from any of:

- a mapping of those names (``--producer-config``-style flags): ``ClientSecurity.from_config``
- the environment, ``STREAMSOURCE_KAFKA_SECURITY_PROTOCOL``, ``STREAMSOURCE_KAFKA_SASL_PASSWORD``
  ... (the name upper-cased, dots as underscores): ``ClientSecurity.from_env``
- a URL, ``kafka://user:password@host:9094?security.protocol=SASL_SSL&sasl.mechanism=SCRAM-SHA-256``:
  ``ClientSecurity.from_url`` (returns the bootstrap servers too)

and hands them to a client: ``librdkafka()`` (confluent-kafka, kcat's ``-X``),
``kafka_python()`` and ``aiokafka()`` (keyword arguments). The password never appears in a
``repr``, in ``describe()`` (what to log) or in an error; ``redact`` does the same for a
whole librdkafka config.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from streamsource.errors import InterfaceError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
ENV_PREFIX = "STREAMSOURCE_KAFKA_"
SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret"})
_REDACTED = "[redacted]"

# setting name -> attribute
_NAMES = {
    "security.protocol": "protocol",
    "sasl.mechanism": "mechanism",
    "sasl.mechanisms": "mechanism",  # librdkafka's older spelling
    "sasl.username": "username",
    "sasl.password": "password",
    "ssl.ca.location": "ca_location",
    "ssl.certificate.location": "certificate_location",
    "ssl.key.location": "key_location",
    "ssl.key.password": "key_password",
}


@dataclass(frozen=True)
class ClientSecurity:
    """How a client authenticates to the broker and checks it; the default is PLAINTEXT."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_location: str | None = None  # CA that signed the broker's certificate (PEM)
    certificate_location: str | None = None  # client certificate (mTLS)
    key_location: str | None = None
    key_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        protocol = self.protocol.upper()
        object.__setattr__(self, "protocol", protocol)
        if protocol not in PROTOCOLS:
            raise InterfaceError(
                f"security.protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}"
            )
        if self.sasl:
            mechanism = (self.mechanism or "PLAIN").upper()
            object.__setattr__(self, "mechanism", mechanism)
            if mechanism not in MECHANISMS:
                raise InterfaceError(
                    f"sasl.mechanism {self.mechanism!r} is not one of {', '.join(MECHANISMS)}"
                )
            if not self.username or self.password is None:
                raise InterfaceError(
                    f"security.protocol {protocol} needs sasl.username and sasl.password"
                )
        if (self.certificate_location is None) != (self.key_location is None):
            raise InterfaceError("ssl.certificate.location and ssl.key.location go together")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    # -- sources ---------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClientSecurity:
        """From Kafka-named settings; names that are not security settings are ignored."""
        values: dict[str, str] = {}
        for key, value in config.items():
            attribute = _NAMES.get(key)
            if attribute is not None and value is not None:
                values[attribute] = str(value)
        return cls(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSecurity:
        """From ``STREAMSOURCE_KAFKA_SECURITY_PROTOCOL``, ``..._SASL_USERNAME`` and so on."""
        env = os.environ if environ is None else environ
        config = {}
        for name in _NAMES:
            value = env.get(ENV_PREFIX + name.upper().replace(".", "_"))
            if value:
                config[name] = value
        return cls.from_config(config)

    @classmethod
    def from_url(cls, url: str) -> tuple[str, ClientSecurity]:
        """``(bootstrap, settings)`` from ``kafka://[user:password@]host:port[,host:port]
        [?security.protocol=...&sasl.mechanism=...&ssl.ca.location=...]``."""
        parts = urlsplit(url)
        if parts.scheme != "kafka":
            raise InterfaceError(f"a Kafka URL starts with kafka://, not {parts.scheme or '?'}://")
        userinfo, _, hosts = parts.netloc.rpartition("@")
        if not hosts:
            raise InterfaceError("the Kafka URL names no host:port")
        config: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=False))
        unknown = sorted(set(config) - set(_NAMES))
        if unknown:
            raise InterfaceError(f"unknown Kafka URL setting(s): {', '.join(unknown)}")
        if userinfo:
            user, _, password = userinfo.partition(":")
            config["sasl.username"] = unquote(user)
            config["sasl.password"] = unquote(password)
            config.setdefault("security.protocol", "SASL_SSL")
        return hosts, cls.from_config(config)

    @classmethod
    def resolve(
        cls,
        bootstrap: str,
        config: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> tuple[str, ClientSecurity]:
        """``(bootstrap servers, settings)`` from what a component was given: a plain
        ``host:port`` list or a ``kafka://`` URL, Kafka-named ``config``, and (when
        ``environ`` is passed, as commands pass ``os.environ``) the environment. The URL's
        settings win over ``config``, which wins over the environment."""
        merged: dict[str, Any] = {}
        if environ is not None:
            for name in _NAMES:
                value = environ.get(ENV_PREFIX + name.upper().replace(".", "_"))
                if value:
                    merged[name] = value
        merged.update({k: v for k, v in (config or {}).items() if k in _NAMES})
        if bootstrap.startswith("kafka://"):
            bootstrap, from_url = cls.from_url(bootstrap)
            merged.update(from_url.librdkafka())
        return bootstrap, cls.from_config(merged)

    def merged_with_env(self, environ: Mapping[str, str] | None = None) -> ClientSecurity:
        """These settings, with the password (and key password) taken from the
        environment where not given: a secret need not appear on a command line."""
        env = os.environ if environ is None else environ
        password = self.password or env.get(ENV_PREFIX + "SASL_PASSWORD")
        key_password = self.key_password or env.get(ENV_PREFIX + "SSL_KEY_PASSWORD")
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(password=password, key_password=key_password)
        return ClientSecurity(**values)

    # -- what clients take -----------------------------------------------------------------

    def librdkafka(self) -> dict[str, str]:
        """Settings for confluent-kafka (and kcat ``-X``)."""
        config = {"security.protocol": self.protocol}
        if self.sasl:
            assert self.mechanism and self.username and self.password is not None
            config.update(
                {
                    "sasl.mechanism": self.mechanism,
                    "sasl.username": self.username,
                    "sasl.password": self.password,
                }
            )
        for name, attribute in (
            ("ssl.ca.location", "ca_location"),
            ("ssl.certificate.location", "certificate_location"),
            ("ssl.key.location", "key_location"),
            ("ssl.key.password", "key_password"),
        ):
            value = getattr(self, attribute)
            if value is not None and self.tls:
                config[name] = value
        return config

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's clients."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            kwargs.update(
                sasl_mechanism=self.mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's clients (the same names as kafka-python's)."""
        return self.kafka_python()

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that checks the broker against ``ca_location`` (or the system
        CAs) and presents the client certificate when there is one."""
        try:
            context = ssl.create_default_context(cafile=self.ca_location)
            if self.certificate_location and self.key_location:
                context.load_cert_chain(
                    self.certificate_location, self.key_location, self.key_password
                )
        except (OSError, ssl.SSLError) as exc:
            raise InterfaceError(f"cannot load the client's TLS files: {exc}") from exc
        return context

    def describe(self) -> str:
        """What to log: protocol, mechanism and user, never a password."""
        text = self.protocol
        if self.sasl:
            text += f" {self.mechanism} as {self.username}"
        if self.certificate_location:
            text += f" with certificate {self.certificate_location}"
        return text


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every secret replaced, for logs and error messages."""
    return {k: (_REDACTED if k in SECRET_KEYS else v) for k, v in config.items()}


def redact_url(text: str) -> str:
    """A bootstrap string, ``kafka://`` or store URL (``postgresql://``) without its
    password, for logs and output; a URL without a password comes back unchanged."""
    if "://" not in text:
        return text
    parts = urlsplit(text)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:{_REDACTED}@{hosts}").geturl()
