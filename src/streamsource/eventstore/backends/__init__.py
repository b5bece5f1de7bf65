"""Backends by URL scheme: ``memory://``, ``sqlite:///path``, ``postgresql://...``.

Each backend module exposes ``open_recorder(url: str, **options) -> Recorder`` and may expose
``open_async_recorder(url: str, **options) -> AsyncRecorder`` (a coroutine function) for a
native asyncio driver. A backend without one runs its sync recorder in worker threads
(:class:`~streamsource.eventstore.backends.threaded.ThreadedAsyncRecorder`).

Adding a backend is one entry in :data:`BACKENDS`.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import Any, cast

from streamsource.errors import InterfaceError, NotSupportedError
from streamsource.eventstore.recorder import AsyncRecorder, Recorder

BACKENDS: dict[str, str] = {
    "memory": "streamsource.eventstore.backends.memory",
    "sqlite": "streamsource.eventstore.backends.sqlite",
    "postgresql": "streamsource.eventstore.backends.postgres",
    "postgres": "streamsource.eventstore.backends.postgres",
}
"""URL scheme -> module implementing that backend."""


def scheme_of(url: str) -> str:
    """The scheme of a store URL (``sqlite`` for ``sqlite:///x.db``); raise if it has none."""
    if not isinstance(url, str):
        raise InterfaceError(f"a store URL must be a str, got {type(url).__name__}")
    scheme, separator, _ = url.partition("://")
    if not separator or not scheme:
        raise InterfaceError(
            f"store URL {url!r} has no scheme; use memory://, sqlite:///PATH or postgresql://..."
        )
    return scheme.lower()


def backend_module(url: str) -> ModuleType:
    """Import the module of the backend that ``url`` names."""
    scheme = scheme_of(url)
    name = BACKENDS.get(scheme)
    if name is None:
        known = ", ".join(f"{s}://" for s in sorted(BACKENDS))
        raise InterfaceError(f"unknown store URL scheme {scheme!r} in {url!r}; known: {known}")
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # also a driver that is installed but cannot load its library
        missing = exc.name or ""
        if isinstance(exc, ModuleNotFoundError) and (
            name == missing or name.startswith(missing + ".")
        ):
            raise NotSupportedError(
                f"the {scheme}:// backend is not available in this installation"
            ) from None
        raise NotSupportedError(
            f"the {scheme}:// backend cannot load its driver ({exc});"
            " pip install 'streamsource[postgres]' (psycopg with libpq included)"
        ) from exc


def open_recorder(url: str, **options: Any) -> Recorder:
    """Open the synchronous recorder that ``url`` names."""
    module = backend_module(url)
    return cast(Recorder, module.open_recorder(url, **options))


async def open_async_recorder(url: str, **options: Any) -> AsyncRecorder:
    """Open the asyncio recorder that ``url`` names (native, or a sync one in threads)."""
    module = backend_module(url)
    native = getattr(module, "open_async_recorder", None)
    if native is not None:
        return cast(AsyncRecorder, await native(url, **options))
    from streamsource.eventstore.backends.threaded import ThreadedAsyncRecorder

    # opening may touch the disk (SQLite creates and checks its file): keep the loop free
    recorder = await asyncio.to_thread(module.open_recorder, url, **options)
    return ThreadedAsyncRecorder(cast(Recorder, recorder))
