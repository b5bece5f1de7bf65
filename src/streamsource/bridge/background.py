"""Running a blocking ``run(stop)`` loop in a background thread, for the relay and consumer."""

from __future__ import annotations

import logging
import threading
from typing import ClassVar, Self

from streamsource.errors import InterfaceError

log = logging.getLogger("streamsource.bridge")


class BackgroundLoop:
    """``start()`` runs ``run(stop)`` in a daemon thread; ``stop()`` ends it and re-raises the
    error that stopped it, so a failure in the thread is never silently lost."""

    thread_kind: ClassVar[str]  # names the thread and the log line: "relay", "inbox"
    name: str

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def run(self, stop: threading.Event | None = None) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Run in a background thread until :meth:`stop`."""
        if self._thread is not None:
            raise InterfaceError(f"the {self.thread_kind} {self.name} is already running")
        self._stop.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._thread_main, name=f"{self.thread_kind}-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the thread to end without waiting (then :meth:`stop` to wait): stopping several
        loops this way first lets their last waits (a poll, an idle rest) overlap."""
        self._stop.set()

    def stop(self, timeout: float | None = 30) -> None:
        """Stop the background thread (``run`` finishes its own clean-up); re-raise its error."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    @property
    def failed(self) -> BaseException | None:
        """The error that stopped the background thread, if any."""
        return self._error

    def _thread_main(self) -> None:
        try:
            self.run(self._stop)
        except BaseException as exc:
            self._error = exc
            log.exception("%s %s stopped on an error", self.thread_kind, self.name)
