"""Group commit for PostgreSQL: concurrent appends of one store share a round trip and a commit.

Measured before this module: 16 threads appending through one store reached about half of
what 16 raw connections doing INSERT + COMMIT reach, and exactly what the store's own
``append_event`` reached on 16 raw connections: the server's work per append (a function
call, its locks, a transaction, a commit record) was the cost, not the client. Sharing that
work is the fix: appends that meet go to the server as ONE call of ``append_batch``
(``sql/0003_append_batch.sql``) in one autocommit transaction.

The scheme is the leader/follower one of the SQLite committer (``sqlite/groupcommit.py``):
a lone append is sent at once on the caller's own thread (or task), by the one-append path,
so a single writer pays nothing for the sharing. Appends arriving while an append of the
store is in flight queue; when it returns, its caller hands the lead to the first of them,
which sends everything queued (its own append first) as one batch. At most :data:`LEADERS`
calls are in flight per store.

A batch never fails one append for another's sake: ``append_batch`` checks every append
before writing anything and returns a status per append, so a wrong expected version, a
tombstone or an id stored before refuses only its own append (its caller then does what
the one-append path does: look for an identical earlier append, else raise). Nor does it
wait for any one stream: a leader only *tries* the stream locks (``append_batch`` in its
non-atomic mode, ``try_append_event`` for a lone one-event append), and an append whose
stream another transaction holds (say a ``store.transaction()`` that appended to it and is
still writing its rows) is sent again by its own caller, outside the queue, so that only
it waits: appends to different streams never wait for each other's transactions. Appends that
name the same event id go to different batches. If the batch call fails as a whole, a
fault of the server or the connection is every append's outcome (the batch committed
entirely or not at all; appends are idempotent, so a retry of one that did commit finds
it); anything else (a concurrent writer took an id first) has each caller send its append
again on its own, so only the culprit fails.

This module holds the queue and the hand-over, without I/O: :class:`Queue` is driven by
the sync recorder under a lock and by the asyncio recorder on its event loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from streamsource.errors import OperationalError, StoreError
from streamsource.eventstore.events import AppendResult, ExpectedVersion
from streamsource.eventstore.recorder import EventRecord

from . import queries as q

LEADERS = 1
"""Batch calls in flight per store at once. One keeps batches largest: while it is in
flight the others queue, and the server does the least work per append."""

MAX_BATCH = 64
"""Appends in one batch call: bounds a leader's wait and the statement's size."""


GATHER = 0.001
"""Seconds at most a leader waits for writers woken by the last commit (only when that
commit carried several appends: a lone writer never waits)."""

GATHER_STALLS = 3
"""GIL yields in a row without a newcomer after which a leader stops waiting."""


def gathering(queue: Queue, last_batch: int) -> Iterator[None]:
    """A leader's wait for the writers woken by the last commit (as many as it carried): each
    item asks the caller to yield once (the GIL, or the event loop) so that more can queue.
    Ends after GATHER_STALLS yields in a row without a newcomer, or GATHER seconds."""
    count = len(queue.pending)
    deadline = time.monotonic() + GATHER
    stalls = 0
    wanted = min(last_batch, MAX_BATCH) - 1
    while stalls < GATHER_STALLS and count < wanted:
        yield
        now = len(queue.pending)
        if now == count:
            stalls += 1
        else:
            stalls, count = 0, now
        if time.monotonic() >= deadline:
            return


class _Alone:
    """The outcome asking the caller to send its append again by the one-append path."""

    def __repr__(self) -> str:
        return "ALONE"


ALONE = _Alone()


@dataclass(frozen=True, slots=True)
class Refused:
    """``append_batch`` refused this append (status WRONG_VERSION, DELETED, ID_IS_STORED);
    ``current``: the stream's version for WRONG_VERSION."""

    status: int
    current: int | None


Outcome = AppendResult | Refused | _Alone | BaseException


@dataclass(eq=False, slots=True)
class Job:
    """One append waiting in (or sent from) the queue."""

    stream: str
    records: Sequence[EventRecord]
    expected: ExpectedVersion
    outcome: Outcome | None = None
    waiter: Any = None  # the driver's: a lock (sync) or a future (asyncio)
    promoted: bool = False  # chosen to lead the next batch


class Queue:
    """Who leads, and what each batch carries. Not thread-safe: the driver serialises it."""

    def __init__(self, leaders: int = LEADERS, max_batch: int = MAX_BATCH) -> None:
        self._leaders = leaders
        self._max_batch = max_batch
        self.pending: list[Job] = []
        self.leading = 0
        self.batches = 0
        self.appends = 0

    def arrive(self, job: Job) -> bool:
        """Queue ``job``; True if its caller leads at once (fewer than LEADERS in flight)."""
        if self.leading < self._leaders:
            self.leading += 1
            return True
        self.pending.append(job)
        return False

    def take(self, own: Job) -> list[Job]:
        """The batch a leader sends: its own append, then the queued ones in order, up to
        MAX_BATCH, leaving for later any that names an event id already in the batch."""
        if own in self.pending:
            self.pending.remove(own)
        batch = [own]
        if not self.pending:
            return batch
        ids = {r.id for r in own.records}
        kept: list[Job] = []
        for job in self.pending:
            job_ids = {r.id for r in job.records}
            if len(batch) < self._max_batch and ids.isdisjoint(job_ids):
                batch.append(job)
                ids.update(job_ids)
            else:
                kept.append(job)
        self.pending = kept
        return batch

    def finish(self, batch: Sequence[Job]) -> Job | None:
        """A leader's batch is done: the queued job to lead next, or None (one leader less)."""
        self.batches += 1
        self.appends += len(batch)
        for successor in self.pending:
            if not successor.promoted:  # another leader's successor may not have taken yet
                successor.promoted = True
                return successor
        self.leading -= 1
        return None

    def withdraw(self, job: Job) -> Job | None:
        """Drop a job whose caller stopped waiting (if still queued, it is never sent). If it
        had been chosen to lead, the queued job to lead in its place (or None)."""
        if job in self.pending:
            self.pending.remove(job)
        if not job.promoted or job.outcome is not None:
            return None
        job.promoted = False
        for successor in self.pending:
            if not successor.promoted:
                successor.promoted = True
                return successor
        self.leading -= 1
        return None


def decide(job: Job) -> AppendResult | q.Refusal:
    """What a sent job's caller gets: its result, or the refusal to report (after looking
    for an identical earlier append when ``maybe_retry``); a fault is raised."""
    outcome = job.outcome
    if isinstance(outcome, AppendResult):
        return outcome
    if isinstance(outcome, Refused):
        return q.status_refusal(
            job.stream, job.expected, job.records, outcome.status, outcome.current
        )
    if isinstance(outcome, BaseException):
        refused = q.refusal(job.stream, job.expected, job.records, outcome)
        if refused is None:
            raise outcome
        return refused
    raise AssertionError(f"the append to {job.stream!r} has no outcome ({outcome!r})")


def batch_outcomes(
    batch: Sequence[Job], row: tuple[Sequence[int], Sequence[int | None], Sequence[int]]
) -> None:
    """Give each job of a sent batch its outcome from ``append_batch``'s row."""
    statuses, versions, positions = row
    for job, status, version, position in zip(batch, statuses, versions, positions, strict=True):
        if status == q.APPENDED:
            assert version is not None
            job.outcome = AppendResult(version=version, position=position)
        elif status == q.BUSY:
            job.outcome = ALONE
        else:
            job.outcome = Refused(status, version)


def batch_failed(batch: Sequence[Job], error: StoreError) -> None:
    """The batch call failed as a whole with ``error``. A fault of the server or the
    connection (an OperationalError: the batch committed entirely or not at all) is every
    append's outcome, as for a lone append: each caller may retry (appends are idempotent).
    Anything else may be one append's doing (a concurrent writer took one of its ids): each
    caller sends its append again alone, and only that one fails."""
    alone = len(batch) > 1 and not isinstance(error, OperationalError)
    for job in batch:
        job.outcome = ALONE if alone else error


def batch_call(batch: Sequence[Job]) -> tuple[str, tuple[Any, ...]]:
    """The statement sending ``batch``: each append gets its own status."""
    return q.batch_call([(j.stream, j.records, j.expected) for j in batch], atomic=False)
