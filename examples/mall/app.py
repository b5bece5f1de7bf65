"""The mall in one process: the chosen services, their stores, routes and transports.

Each service owns its store: ``DIR/<service>.db`` on SQLite, or the schema ``mall_<service>``
of one PostgreSQL database. A service that runs in another process is still reachable as a
message sender: its store is opened here only to read its outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI

import streamsource as ss
from streamsource.messaging import KafkaTransport, LocalTransport
from streamsource.messaging import Service as MessageService
from streamsource.observability.web import add_metrics_route

from . import baskets, cosec, customers, depot, notifications, ordering, payments, search, stores
from .platform.http import install_error_handlers
from .platform.messaging import CHANNELS, registry
from .platform.service import Background, Service, Wiring
from .platform.storage import ServiceStore

SERVICES: dict[str, Service] = {
    s.SERVICE.name: s.SERVICE
    for s in (stores, baskets, customers, ordering, payments, depot, notifications, search, cosec)
}


# A service process that dies leaves its partitions to a restarted one after this long
# (librdkafka's default is 45 s; 6 s is the least a Kafka broker accepts by default).
FAILOVER = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
# Seconds a local transport rests when no outbox has anything new. An append in this process
# wakes it at once; appends of other processes (services run elsewhere on the same SQLite
# files) only show at its next look.
IDLE_WAIT = 1.0  # every sender runs here: a safety net only
FOREIGN_IDLE_WAIT = 0.02  # some sender runs in another process


class UnknownService(ss.StreamsourceError, ValueError):
    """A --services name the mall does not have."""


def store_url(service: str, data_dir: Path, store: str | None) -> str:
    """The store of ``service``: a file under ``data_dir`` (``store`` may be ``sqlite://?...``
    to give options), or a schema of a ``postgresql://`` store (named ``mall_<service>``, or
    ``<schema>_<service>`` when the URL names a schema)."""
    parts = urlsplit(store or "sqlite://")
    if parts.scheme == "sqlite":  # options such as ?durability=normal apply to every file
        options = f"?{parts.query}" if parts.query else ""
        return f"sqlite:///{data_dir / f'{service}.db'}{options}"
    given = parse_qsl(parts.query)
    prefix = next((v for k, v in given if k == "schema"), "mall")
    query = [(k, v) for k, v in given if k != "schema"]
    query.append(("schema", f"{prefix}_{service}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def senders_to(service: MessageService) -> list[str]:
    """The services whose messages ``service`` receives: the sources of the events it
    handles, cosec for commands (only the saga sends commands), the saga's participants for
    replies (only cosec receives replies)."""
    senders: set[str] = set()
    for channel in service.inbound_channels():
        if channel == CHANNELS.commands(service.name):
            senders.add("cosec")
        elif channel.startswith(CHANNELS.replies(service.name)):
            senders.update(("ordering", "customers", "depot", "payments"))
        else:
            senders.update(s for s in SERVICES if channel == CHANNELS.events(s))
    return sorted(senders)


def check_services(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise UnknownService(
            f"unknown service(s) {', '.join(unknown)}; the mall has {', '.join(SERVICES)}"
        )
    return list(dict.fromkeys(names))


class Mall:
    """Services of the mall in this process (all by default), as one ASGI app.

    Messages travel through Kafka with ``bootstrap`` (our broker or any cluster), else
    through the services' stores: a :class:`~streamsource.messaging.LocalTransport` reads
    the outbox of every service, this process's and the others' (their stores are opened
    here for it), and delivers to the services of this process.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        store: str | None = None,
        services: Sequence[str] = tuple(SERVICES),
        step_timeout: float = 30.0,
        bootstrap: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.names = check_services(services)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.own: dict[str, ServiceStore] = {}
        self.others: list[ss.EventStore] = []
        self.background: list[Background] = []
        self.app = FastAPI(
            title="streamsource mall",
            description="Intelli-Mall's services on streamsource",
            lifespan=self._lifespan,
        )
        install_error_handlers(self.app)
        add_metrics_route(self.app)
        for name in self.names:
            url = store_url(name, data_dir, store)
            self.own[name] = ServiceStore(name, url, SERVICES[name].tables)
        for name in self.names:
            wiring = Wiring(self.own[name], step_timeout)
            self.app.include_router(SERVICES[name].build(wiring))
            self.background.extend(wiring.background)
        mine = [own.messages for own in self.own.values()]
        self.transports: list[Background] = []
        if bootstrap is not None:
            self.transports.append(KafkaTransport(mine, bootstrap, consumer_config=FAILOVER))
        else:
            # one transport per receiving service, reading only the outboxes of the services
            # that send to it: deliveries to different services commit (and fsync) in
            # parallel instead of one after another
            for service in mine:
                names = senders_to(service)
                if not names:
                    continue
                senders = [self._sender(name) for name in names]
                foreign = any(name not in self.own for name in names)
                wait = FOREIGN_IDLE_WAIT if foreign else IDLE_WAIT
                self.transports.append(
                    LocalTransport([service, *senders], name=f"to.{service.name}", idle_wait=wait)
                )

    def _sender(self, name: str) -> MessageService:
        """Service ``name`` as a sender only (no handlers: it receives nothing here)."""
        if name in self.own:
            store = self.own[name].store
        else:
            store = ss.open_store(store_url(name, self.data_dir, self.store))
            self.others.append(store)
        return MessageService(name, store, registry=registry, channels=CHANNELS)

    def start(self) -> None:
        for part in (*self.transports, *self.background):
            part.start()

    def close(self) -> None:
        for part in (*self.background, *self.transports):
            part.stop()
        for own in self.own.values():
            own.close()
        for other in self.others:
            other.close()

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.close()
