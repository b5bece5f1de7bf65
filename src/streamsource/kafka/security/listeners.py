"""Listeners (``SASL_SSL://0.0.0.0:9094``), the broker's TLS files, and TLS principals.

A listener is named by its security protocol, as Kafka's default
``listener.security.protocol.map`` does: one listener per protocol. The TLS layer is the
stdlib's ``ssl`` module under asyncio (the maintained library for it); this module only
builds the ``SSLContext`` and turns a verified client certificate into a principal the
way Kafka's default ``ssl.principal.mapping.rules`` do (``User:`` + the RFC 2253 subject).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from streamsource.errors import BrokerError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
PROTOCOLS: tuple[SecurityProtocol, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
ANONYMOUS = "User:ANONYMOUS"

# Kafka (Java's X500Principal) writes these attributes by their short names
_SHORT_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


@dataclass(frozen=True)
class Listener:
    """Where the broker accepts connections of one security protocol, and what it tells
    clients to connect to (``advertised_*``; default: the bound address)."""

    protocol: SecurityProtocol
    host: str
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @classmethod
    def parse(cls, spec: str) -> Listener:
        """``PROTOCOL://host:port`` (``[::1]:9092`` for IPv6; an empty host: all interfaces)."""
        protocol, host, port = _split(spec)
        return cls(protocol, host or "0.0.0.0", port)

    def advertise(self, spec: str) -> Listener:
        """This listener with the address clients are told (``PROTOCOL://host:port``)."""
        protocol, host, port = _split(spec)
        if protocol != self.protocol:
            raise BrokerError(f"advertised listener {spec!r} is not a {self.protocol} listener")
        if not host or port == 0:
            raise BrokerError(f"advertised listener {spec!r} needs a host and a port")
        return Listener(self.protocol, self.host, self.port, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}://{host}:{self.port}"


def _split(spec: str) -> tuple[SecurityProtocol, str, int]:
    protocol, sep, address = spec.partition("://")
    protocol = protocol.strip().upper()
    if not sep or protocol not in PROTOCOLS:
        raise BrokerError(
            f"listener {spec!r} must look like PROTOCOL://HOST:PORT with PROTOCOL one of "
            + ", ".join(PROTOCOLS)
        )
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise BrokerError(f"listener {spec!r}: an IPv6 address is written [ADDR]:PORT")
        port_text = rest[1:]
    else:
        host, colon, port_text = address.rpartition(":")
        if not colon:
            raise BrokerError(f"listener {spec!r} has no port")
    try:
        port = int(port_text)
    except ValueError:
        raise BrokerError(f"listener {spec!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise BrokerError(f"listener {spec!r}: port {port} is out of range")
    return protocol, host, port  # type: ignore[return-value]  # checked against PROTOCOLS


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (a name other than localhost: no)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TlsFiles:
    """The broker's certificate chain and key (PEM), and the CA that signs client
    certificates: with ``ca``, SSL listeners require a client certificate (mTLS)."""

    cert: Path
    key: Path
    ca: Path | None = None

    def server_context(self, *, require_client_cert: bool) -> ssl.SSLContext:
        """A server context for asyncio; raises ``BrokerError`` naming a file it cannot use."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(
                f"cannot use TLS certificate {self.cert} with key {self.key}: {exc}"
            ) from exc
        if self.ca is not None:
            try:
                context.load_verify_locations(cafile=str(self.ca))
            except (OSError, ssl.SSLError) as exc:
                raise BrokerError(f"cannot use TLS CA file {self.ca}: {exc}") from exc
        if require_client_cert:
            if self.ca is None:
                raise BrokerError("client certificates need a CA to check them: --tls-ca")
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def certificate_principal(peercert: dict[str, Any] | None) -> str:
    """``User:CN=writer,O=acme`` from a verified certificate (``getpeercert()``), as Kafka
    names it by default: the subject in RFC 2253 order (last RDN first)."""
    if not peercert or not peercert.get("subject"):
        return ANONYMOUS
    rdns = []
    for rdn in reversed(peercert["subject"]):
        rdns.append("+".join(f"{_SHORT_NAMES.get(k, k)}={_escape(v)}" for k, v in rdn))
    return "User:" + ",".join(rdns)


def _escape(value: str) -> str:
    out = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out
