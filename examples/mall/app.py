"""The mall in one process: the chosen services, their stores, routes and transports.

Each service owns its store: ``DIR/<service>.db`` on SQLite, or the schema ``mall_<service>``
of one PostgreSQL database.

Messages travel through Kafka by default: the broker at ``bootstrap`` (any Kafka, or the
broker another ``mall serve`` started), else streamsource's broker started by this process
as a child process that ends with it (:mod:`.platform.broker`; data under ``DIR/broker``,
on a free port unless ``broker_port`` names one). Other
``mall serve`` processes with ``--bootstrap`` set to its address share it. With
``transport="local"`` they travel through the services' stores instead: a service that runs
in another process is then still reachable as a message sender, its store opened here only
to read its outbox.
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
from .platform.broker import BrokerStartFailed, ChildBroker
from .platform.http import install_error_handlers, serve_routes
from .platform.messaging import CHANNELS, registry
from .platform.routes import Front
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
IDLE_WAIT = 1.0  # the sender runs here: a safety net only
FOREIGN_IDLE_WAIT = 0.02  # the sender runs in another process


TRANSPORTS = ("broker", "local")


class UnknownService(ss.StreamsourceError, ValueError):
    """A --services name the mall does not have."""


class BadTransport(ss.StreamsourceError, ValueError):
    """A transport the mall does not have, or options that do not go together."""


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

    ``transport="broker"`` (the default): messages travel through Kafka, the cluster at
    ``bootstrap`` or else a broker process started here (:attr:`broker_address`). ``"local"``:
    through the services' stores, a :class:`~streamsource.messaging.LocalTransport` per
    service that sends to this process's, reading its outbox (the store of a service run
    elsewhere is opened here for it).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        store: str | None = None,
        services: Sequence[str] = tuple(SERVICES),
        step_timeout: float = 30.0,
        transport: str = "broker",
        bootstrap: str | None = None,
        broker_port: int = 0,
    ) -> None:
        if transport not in TRANSPORTS:
            raise BadTransport(f"unknown transport {transport!r}; the mall has {TRANSPORTS}")
        if transport == "local" and bootstrap is not None:
            raise BadTransport("--bootstrap names a broker: it needs the broker transport")
        self.data_dir = data_dir
        self.store = store
        self.names = check_services(services)
        self.transport = transport
        data_dir.mkdir(parents=True, exist_ok=True)
        self.broker: ChildBroker | None = None
        self.broker_address: str | None = None  # of the broker started here, if any
        self.own: dict[str, ServiceStore] = {}
        self.others: list[ss.EventStore] = []
        self.background: list[Background] = []
        self.transports: list[Background] = []
        self.app = FastAPI(
            title="streamsource mall",
            description="Intelli-Mall's services on streamsource",
            lifespan=self._lifespan,
        )
        install_error_handlers(self.app)
        add_metrics_route(self.app)
        try:
            self._build(step_timeout, bootstrap, broker_port)
        except BaseException:
            self.close()
            raise
        self.asgi = Front(self.app)  # what a server serves: the app's plain routes taken first

    def _build(self, step_timeout: float, bootstrap: str | None, broker_port: int) -> None:
        for name in self.names:
            url = store_url(name, self.data_dir, self.store)
            self.own[name] = ServiceStore(name, url, SERVICES[name].tables)
        for name in self.names:
            wiring = Wiring(self.own[name], step_timeout)
            serve_routes(self.app, SERVICES[name].build(wiring))
            self.background.extend(wiring.background)
        mine = [own.messages for own in self.own.values()]
        if self.transport == "broker":
            if bootstrap is None:
                bootstrap = self._start_broker(broker_port)
            # one relay thread and producer for all of them (about 10% less CPU per order),
            # and one consumer instead of one per service
            self.transports.append(
                KafkaTransport(
                    mine,
                    bootstrap,
                    consumer_config=FAILOVER,
                    shared_relay=True,
                    shared_consumer=True,
                )
            )
        else:
            self._local_transports(mine)

    def _local_transports(self, mine: list[MessageService]) -> None:
        """One transport reading the outbox of every sending service here, delivering to
        the services here; and one per sender run in another process, whose appends no
        signal announces (each looks at that outbox every FOREIGN_IDLE_WAIT, and saves its
        position in that store, whose write lock the other process holds at times: one
        transport for all of them made every foreign hop wait out such a save, p99 at 20
        orders/s split in two processes 330 -> 540 ms on a busy machine).

        Its handlers run on its thread, the receivers' commits overlap on its pool (see
        :mod:`streamsource.messaging.local`). Before, a transport per sending service (seven
        threads running handlers, each SQLite statement a GIL hand-off between them): 400-500
        thread switches and 24-26 ms of CPU per order flat out, against 200-260 and 17 ms
        this way. A transport's name says whose deliveries its positions track: a process
        running other services has other positions (the inboxes make a redelivery
        harmless, never a loss)."""
        receivers = [service for service in mine if senders_to(service)]
        senders = sorted({name for service in receivers for name in senders_to(service)})
        groups = [([n for n in senders if n in self.own], IDLE_WAIT)]
        groups += [([n], FOREIGN_IDLE_WAIT) for n in senders if n not in self.own]
        for group, idle in groups:
            if not group:
                continue
            to = [service for service in receivers if set(senders_to(service)) & set(group)]
            self.transports.append(
                LocalTransport(
                    to,
                    senders=[self._sender(name) for name in group],
                    name="to." + "+".join(sorted(service.name for service in to)),
                    idle_wait=idle,
                )
            )

    def _start_broker(self, port: int) -> str:
        """Start streamsource's broker as a child process; its ``host:port``."""
        self.broker = ChildBroker(self.data_dir / "broker", "127.0.0.1", port)
        try:
            self.broker_address = self.broker.start()
        except BrokerStartFailed as exc:
            self.broker = None
            raise BadTransport(f"cannot start the broker on 127.0.0.1:{port}: {exc}") from None
        return self.broker_address

    def _sender(self, name: str) -> MessageService:
        """Service ``name`` as a sender: its own service here, else one over its store opened
        only to read its outbox (no handlers: it receives nothing here)."""
        if name in self.own:
            return self.own[name].messages
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
        if self.broker is not None:  # last: the relays flush to it while they stop
            self.broker.stop()
            self.broker = None

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.close()
