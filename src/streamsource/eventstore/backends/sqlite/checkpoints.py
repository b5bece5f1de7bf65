"""WAL checkpoints off the commit path: a background checkpointer, and its bound.

SQLite's default auto-checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages:
with 1 KiB pages and about five pages an append, one writer in ~200 pays for copying the
whole WAL into the database file and two fsyncs. The writer connection turns that off
(``wal_autocheckpoint=0``) and this module keeps the WAL bounded instead:

* Every ``WAKE_COMMITS`` commits the leader wakes the checkpointer thread (a lock released,
  no polling while idle), which runs a PASSIVE checkpoint on a connection of its own: the
  copy runs beside the commits, SQLite releasing the GIL meanwhile.
* SQLite starts the WAL over from its beginning (overwriting it in place, whose fsyncs cost
  less than those of a growing file) only when a write transaction *begins* with every frame
  checkpointed. Under steady writes a background checkpoint always overlaps some transaction,
  so that moment never comes and the file grows. So after each background run the next
  leader checkpoints right after its COMMIT (its followers already woken), between two
  transactions: it copies only the frames committed since (nothing, no fsync, if none were),
  and the next transaction starts the WAL over.
* Should the thread fall behind (starved, or failing), a leader that sees ``HARD_COMMITS``
  commits since the last complete checkpoint checkpoints in its own thread, as SQLite's
  default would have.

An acknowledged commit is in the fsync'd WAL already, so a ``kill -9`` at any point loses
nothing: SQLite's WAL recovery at the next open replays what was not checkpointed. On close
the thread stops (finishing a checkpoint in progress) before the writer closes; the writer,
the last connection, checkpoints the whole WAL and removes it.
"""

from __future__ import annotations

import _thread
import logging
import sqlite3
import threading

from .schema import Durability, connect

WAKE_COMMITS = 100
"""Commits between two background checkpoints: ~500 pages of one-event appends."""

HARD_COMMITS = 5 * WAKE_COMMITS
"""Commits without a complete checkpoint after which a leader checkpoints itself."""

_log = logging.getLogger(__name__)


class Checkpointer:
    """The background checkpointer of one store's file; the group committer's leader calls
    :meth:`committed` after each COMMIT (one leader at a time, so no lock for its counters)."""

    def __init__(self, path: str, timeout: float, durability: Durability) -> None:
        self._path = path
        self._timeout = timeout
        self._durability: Durability = durability
        self._since_wake = 0
        # Commits since a checkpoint left nothing behind; reset by whoever completes one.
        self.since_complete = 0
        self._catch_up = False  # set by the thread: the leader completes its checkpoint
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.background = 0  # counters for stats() and tests
        self.in_writer = 0
        self.failures = 0

    def committed(self, writer: sqlite3.Connection) -> None:
        """After a COMMIT on ``writer`` (by the leader, outside any transaction)."""
        self.since_complete += 1
        if self._catch_up or self.since_complete >= HARD_COMMITS:
            self._catch_up = False
            self._in_writer(writer)
            return
        self._since_wake += 1
        if self._since_wake >= WAKE_COMMITS:
            self._since_wake = 0
            self._start_or_wake()

    def _in_writer(self, writer: sqlite3.Connection) -> None:
        try:
            busy, frames, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # the commit is durable; the next leader tries again
            self._failed(exc)
            return
        self.in_writer += 1
        if not busy and frames == copied:
            self.since_complete = 0
        elif self.since_complete >= HARD_COMMITS:
            # A reader's snapshot (maybe another process's) holds frames back: try again
            # WAKE_COMMITS commits later rather than at every commit meanwhile.
            self.since_complete = HARD_COMMITS - WAKE_COMMITS

    def _start_or_wake(self) -> None:
        if self._stopping:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="streamsource-checkpointer", daemon=True
            )
            self._thread.start()
        if self._wake.locked():
            self._wake.release()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(self._path, self._timeout, durability=self._durability, writer=False)
            while True:
                self._wake.acquire()
                if self._stopping:
                    return
                self._checkpoint(conn)
        except Exception as exc:  # could not even connect: the leaders' bound takes over
            self._failed(exc)
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self.background += 1
        if not busy:  # else another connection (another process) is checkpointing
            self._catch_up = True

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failures == 1:
            _log.warning("%s: WAL checkpoint failed (%s); commits go on", self._path, exc)

    def stop(self) -> None:
        """Stop the thread (after the checkpoint it may be running). Idempotent."""
        self._stopping = True
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._wake.locked():
            self._wake.release()
        thread.join()
