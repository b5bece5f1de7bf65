"""The mall in one process: the chosen services, their stores, routes and consumers.

Each service owns its store: ``DIR/<service>.db`` on SQLite, or the schema ``mall_<service>``
of one PostgreSQL database. A service that runs in another process is still reachable as a
message source: its store is opened here only to follow its log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI

import streamsource as ss

from . import baskets, cosec, customers, depot, notifications, ordering, payments, search, stores
from .platform.http import install_error_handlers
from .platform.messaging import Consumer
from .platform.service import Background, Service, Wiring
from .platform.storage import ServiceStore

SERVICES: dict[str, Service] = {
    s.SERVICE.name: s.SERVICE
    for s in (stores, baskets, customers, ordering, payments, depot, notifications, search, cosec)
}


FOREIGN_POLL = 0.02  # seconds between reads of a store another process appends to


class UnknownService(ss.StreamsourceError, ValueError):
    pass


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


def check_services(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise UnknownService(
            f"unknown service(s) {', '.join(unknown)}; the mall has {', '.join(SERVICES)}"
        )
    return list(dict.fromkeys(names))


class Mall:
    """Services of the mall in this process (all by default), as one ASGI app."""

    def __init__(
        self,
        data_dir: Path,
        *,
        store: str | None = None,
        services: Sequence[str] = tuple(SERVICES),
        step_timeout: float = 30.0,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.names = check_services(services)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.own: dict[str, ServiceStore] = {}
        self.sources: dict[str, ss.EventStore] = {}
        self.consumers: list[Consumer] = []
        self.background: list[Background] = []
        self.app = FastAPI(
            title="streamsource mall",
            description="Intelli-Mall's services on streamsource",
            lifespan=self._lifespan,
        )
        install_error_handlers(self.app)
        for name in self.names:
            url = store_url(name, data_dir, store)
            self.own[name] = ServiceStore(name, url, SERVICES[name].tables)
        for name in self.names:
            wiring = Wiring(self.own[name], self.source_of, step_timeout)
            self.app.include_router(SERVICES[name].build(wiring))
            self.consumers.extend(wiring.consumers)
            self.background.extend(wiring.background)

    def source_of(self, service: str) -> tuple[ss.EventStore, float | None]:
        """``service``'s store; polled often when another process appends to it."""
        if service in self.own:
            return self.own[service].store, None
        if service not in self.sources:
            url = store_url(service, self.data_dir, self.store)
            self.sources[service] = ss.open_store(url)
        return self.sources[service], FOREIGN_POLL

    def start(self) -> None:
        for part in (*self.consumers, *self.background):
            part.start()

    def close(self) -> None:
        for part in (*self.background, *self.consumers):
            part.stop()
        for own in self.own.values():
            own.close()
        for source in self.sources.values():
            source.close()

    @asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.start()
        try:
            yield
        finally:
            self.close()
