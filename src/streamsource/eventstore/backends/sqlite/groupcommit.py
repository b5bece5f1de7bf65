"""Group commit: concurrent writes share one transaction and one fsync.

A leader/follower scheme rather than a dedicated writer thread: a lone writer runs its own
transaction on its own thread (no hand-off, so a single writer pays what a plain sqlite3
loop pays), while writers that arrive during a commit queue up and the next leader runs them
all in one ``BEGIN IMMEDIATE`` ... ``COMMIT``. Each write of a shared transaction runs inside
its own SAVEPOINT, so one write's failure (say a WrongExpectedVersion) is rolled back alone
and only its caller sees it. A batch of plain appends may instead be planned as a whole (see
:mod:`.batch_append`), falling back to the one-by-one path when needed.

``BEGIN IMMEDIATE`` takes SQLite's write lock up front, so writers in other processes queue
on the busy timeout, and every check a write makes (expected version, tombstones, ids) reads
state no one else can change before the COMMIT.

A caller that needs the connection on its own thread for a while (``database.transaction()``)
takes the lead the same way when nobody leads, and hands it over when done, as a leader does
after its batch; when somebody leads, it queues one job that lends it the connection in its
turn of the next batch (:meth:`GroupCommitter.lend`), waiting on that job's own lock. After
each COMMIT the leader tells the checkpointer (:mod:`.checkpoints`), which keeps WAL checkpoints off the commit path.
"""

from __future__ import annotations

import _thread
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

from streamsource.errors import InterfaceError, StoreError
from streamsource.observability import metrics

from .checkpoints import Checkpointer
from .faults import translate

T = TypeVar("T")

Work = Callable[[sqlite3.Connection], T]

Together = Callable[[sqlite3.Connection, list[Any]], "list[Any] | None"]
"""Runs the items of a whole batch at once: each one's result or StoreError, in order, or
None to have the batch run job by job instead (raising a sqlite3.Error has the same effect,
unless SQLite rolled back the whole transaction). Returning None or raising, it must leave
nothing of the batch written."""

# Bounds the time the leader's own caller waits for the others' work.
MAX_BATCH = 256

# How long a leader waits for one more writer of the previous commit to queue: a few times
# what one writer's Python work between two appends takes, far below an fsync. A step that
# brings nobody ends the wait, so a writer that stopped writing costs this once.
_STRAGGLER_WAIT = 0.0001


class _Job(Generic[T]):
    __slots__ = ("done", "error", "item", "result", "wake", "woken", "work")

    def __init__(self, work: Work[T], item: Any) -> None:
        self.work = work
        self.item = item
        # Only a job that waits needs one: a plain lock, taken here and released by whoever
        # wakes it. A threading.Event costs a Condition, a deque and a second lock per wait:
        # measured a large share of the GIL time of 8 concurrent writers.
        self.wake: _thread.LockType | None = None
        self.woken = False  # wake was released: done, or promoted to lead
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class LentRolledBack(StoreError):
    """Raised inside a lent job to roll back its savepoint: the caller's block failed."""


class Lent:
    """A transaction's turn on the write connection, for a block that runs on the caller's
    own thread (see :meth:`GroupCommitter.lend`)."""

    __slots__ = ("commit", "conn", "finished", "job", "leads")

    def __init__(self) -> None:
        self.leads = False  # the caller leads alone: BEGIN ... COMMIT are its own
        self.conn: sqlite3.Connection | None = None  # lent within a leader's batch
        self.commit = False
        self.finished = _thread.allocate_lock()  # released when the caller's block ended
        self.finished.acquire()
        self.job: _Job[None] = _Job(self._hold, None)

    def _hold(self, conn: sqlite3.Connection) -> None:
        """The job's work, on the leader's thread: lend ``conn`` until the block ends."""
        self.conn = conn
        cast(_thread.LockType, self.job.wake).release()  # the caller's block runs now
        self.finished.acquire()
        if not self.commit:
            raise LentRolledBack("rolled back")


class GroupCommitter:
    """Runs write functions on one connection, batching concurrent ones into one commit."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        together: Together | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self._conn = conn
        self._path = path
        self._together = together
        self._checkpointer = checkpointer
        self._lock = threading.Lock()  # guards _pending, _leading and _closed
        self._pending: list[_Job[Any]] = []
        self._leading = False
        self._closed = False
        self._idle = threading.Condition(self._lock)
        self.writes = 0
        self.commits = 0
        self.largest_batch = 0
        self.batches_together = 0
        self._last_batch = 0  # only the leader reads and writes it
        # Set while a leader waits for the writers of the previous commit (see
        # _wait_for_writers); released by the one that makes ``_expected`` jobs queued.
        self._filled: _thread.LockType | None = None
        self._expected = 0

    def run(self, work: Work[T], item: Any = None) -> T:
        """Run ``work(conn)`` inside a write transaction, committed before this returns.

        ``work`` raises to abandon its own changes; the exception is re-raised here. If every
        job of a batch has an ``item``, the ``together`` function may run them all at once.
        """
        (job,) = self._submit([_Job(work, item)])
        if job.error is not None:
            raise job.error
        return cast(T, job.result)

    def run_each(self, works: list[tuple[Work[T], Any]]) -> list[T | Exception]:
        """Run several ``(work, item)`` pairs as :meth:`run` would, queued in one go.

        Each one's result or exception, in order: one failing does not stop the others. The
        caller waits once for all of them (one thread hand-off for many writes; the asyncio
        adapter sends its tasks' appends this way). At most MAX_BATCH pairs.
        """
        if not 0 < len(works) <= MAX_BATCH:
            raise InterfaceError(f"run_each takes 1 to {MAX_BATCH} writes, not {len(works)}")
        jobs = self._submit([_Job(work, item) for work, item in works])
        outcomes: list[T | Exception] = []
        for job in jobs:
            if job.error is None:
                outcomes.append(cast(T, job.result))
            elif isinstance(job.error, Exception):
                outcomes.append(job.error)
            else:
                raise job.error  # KeyboardInterrupt and the like are not one write's outcome
        return outcomes

    def _submit(self, jobs: list[_Job[Any]]) -> list[_Job[Any]]:
        """Queue ``jobs`` and return once all of them ran (leading a batch if it falls to us).

        Only the last job of a submission has a wake lock: batches take jobs in queue order,
        so it is done last. A leader promotes the first job that has one.
        """
        last = jobs[-1]
        with self._lock:
            if self._closed:
                raise InterfaceError(f"{self._path}: the store is closed")
            lead = not self._leading
            if not lead:
                last.wake = _thread.allocate_lock()
                last.wake.acquire()
            self._pending += jobs
            self._leading = True
            filled = self._filled
            if filled is not None and len(self._pending) >= self._expected:
                self._filled = None
                filled.release()  # the leader waits for us: the batch is complete
        if last.wake is not None:
            try:
                last.wake.acquire()
            except BaseException:  # e.g. KeyboardInterrupt while queued
                self._abandon(jobs)
                raise
        if not last.done:  # we are the leader, first or promoted by the previous one
            self._lead()
        return jobs

    def close(self) -> None:
        """Refuse new work and wait until the current leader finished its batch."""
        with self._lock:
            self._closed = True
            while self._leading:
                self._idle.wait()

    def _abandon(self, jobs: list[_Job[Any]]) -> None:
        """Withdraw the jobs of a caller that stopped waiting, without stranding the queue."""
        last = jobs[-1]
        with self._lock:
            promoted = last.woken and not last.done
            if not promoted:
                queued = set(map(id, jobs))
                # Those still queued never ran: nothing of them is written.
                self._pending = [job for job in self._pending if id(job) not in queued]
                return
        if promoted:
            self._lead()  # the others wait for a leader: lead, then let the interrupt through
        # Otherwise a leader is running it: its outcome is decided, nobody waits on us.

    def _lead(self) -> None:
        if self._last_batch > 1:
            self._wait_for_writers(self._last_batch)
        with self._lock:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
        self._last_batch = len(batch)
        instruments = metrics.INSTRUMENTS
        if instruments is not None:
            instruments.child(instruments.store_batch_size, "sqlite").observe(len(batch))
        commits = self.commits
        try:
            self._run_batch(batch)
        finally:
            for job in batch:
                job.done = True
                if job.wake is not None and not job.woken:  # not the promoted leader
                    job.woken = True
                    job.wake.release()
            self._step_down(self.commits != commits)

    def lend(self, spawn: Callable[[Callable[[], None]], object]) -> Lent:
        """The connection for a block on the caller's thread: led alone when nobody leads
        (``leads``: the caller runs BEGIN ... COMMIT and calls :meth:`step_down`), else lent
        (``conn``) as one job of the next batch, in its savepoint, once the leader reaches
        it; the caller then ends its turn with :meth:`give_back`.

        The caller waits on its job's own lock: no thread of its own in the queue. When its
        job is the one to lead the next batch, the caller leads alone if nobody else waits;
        otherwise a thread from ``spawn`` leads the batch (which includes the job, lent back
        to the caller in its turn), the caller's thread being busy with its block meanwhile.
        Raises the batch's error if it failed before the job's turn.
        """
        lent = Lent()
        job = lent.job
        with self._lock:
            if self._closed:
                raise InterfaceError(f"{self._path}: the store is closed")
            if not self._leading:
                self._leading = True
                self._last_batch = 1  # the next leader has no writers of ours to wait for
                lent.leads = True
                return lent
            job.wake = _thread.allocate_lock()
            job.wake.acquire()
            self._pending.append(job)
            filled = self._filled
            if filled is not None and len(self._pending) >= self._expected:
                self._filled = None
                filled.release()
        while True:
            job.wake.acquire()
            if lent.conn is not None:
                return lent
            if job.done:  # the batch failed before the job's turn (BEGIN failed)
                raise job.error or InterfaceError(f"{self._path}: the transaction never ran")
            with self._lock:  # promoted to lead the next batch
                alone = self._last_batch <= 1 and self._pending == [job]
                if alone:
                    self._pending.clear()
            if alone:  # nobody to share it with: lead it here, as when nobody led
                self._last_batch = 1
                lent.leads = True
                return lent
            job.woken = False  # a helper leads the batch, whose end wakes the job once more
            try:
                spawn(self._lead)
            except BaseException:
                with self._lock:
                    self._pending.remove(job)
                self._hand_over()
                raise

    def give_back(self, lent: Lent, commit: bool) -> None:
        """End a lent turn (``commit``: the block succeeded) and wait for the batch's end;
        raises what failed its COMMIT."""
        lent.commit = commit
        lent.finished.release()
        cast(_thread.LockType, lent.job.wake).acquire()
        if commit and lent.job.error is not None:
            raise lent.job.error

    @property
    def connection(self) -> sqlite3.Connection:
        """The write connection: only for the leader (see :meth:`lend`)."""
        return self._conn

    def step_down(self, committed: bool) -> None:
        """End a lead taken with :meth:`lend` (``committed``: it ended with a COMMIT)."""
        if committed:
            self.commits += 1
            self.writes += 1
        self._step_down(committed)

    def _step_down(self, committed: bool) -> None:
        """Tell the checkpointer about a COMMIT, then hand the lead over or give it up."""
        try:
            if committed and self._checkpointer is not None:
                self._checkpointer.committed(self._conn)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        with self._lock:
            if self._pending:
                # Hand over rather than keep leading: measured faster, and fair to our caller.
                # The first waiting job ends the first submission still queued: it is
                # within the next MAX_BATCH jobs (see run_each), so in the batch it leads.
                successor = next(job for job in self._pending if job.wake is not None)
                successor.woken = True
                cast(_thread.LockType, successor.wake).release()  # it leads the next batch
            else:
                self._leading = False
                if self._closed:
                    self._idle.notify_all()  # close() waits for this

    def _wait_for_writers(self, expected: int) -> None:
        """Let the writers of the previous commit, which just woke, queue and share this one.

        Waits until ``expected`` jobs are queued (the last one to queue wakes us), as long as
        each step of ``_STRAGGLER_WAIT`` brings more of them. The leader sleeps on a lock
        rather than yielding the GIL in a loop (as it did before): a yielding leader takes
        the GIL back between the writers it waits for, a thread switch more per writer.
        Measured with 8 writers and an fsync per commit: 15-18% more appends a second, as
        many appends per commit.
        """
        with self._lock:
            seen = len(self._pending)
            if seen >= expected:
                return
            filled = _thread.allocate_lock()
            filled.acquire()
            self._filled, self._expected = filled, expected
        while True:
            woken = filled.acquire(timeout=_STRAGGLER_WAIT)
            with self._lock:
                queued = len(self._pending)
                if woken or self._filled is None or queued >= expected or queued == seen:
                    self._filled = None
                    return
                seen = queued

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_all(batch, exc)
            return
        try:
            if len(batch) == 1:
                self._run_alone(batch[0])
                failed = batch[0].error is not None
            else:
                if not self._run_together(batch):
                    for job in batch:
                        self._run_in_savepoint(job)
                failed = all(job.error is not None for job in batch)
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back itself (disk full, I/O error).
                lost = sqlite3.OperationalError("the transaction was rolled back by SQLite")
                self._fail_all([job for job in batch if job.error is None], lost)
            elif failed:
                conn.execute("ROLLBACK")
            else:
                conn.execute("COMMIT")
                self.commits += 1
            # Only the leader (one at a time) updates the counters: no lock needed.
            self.writes += len(batch)
            if len(batch) > self.largest_batch:
                self.largest_batch = len(batch)
        except sqlite3.Error as exc:
            # The transaction as a whole failed (disk full, I/O error): nothing of it stays.
            self._rollback_quietly()
            self._fail_all(batch, exc)
        except BaseException as exc:
            self._rollback_quietly()
            for job in batch:
                if job.error is None:
                    job.error = exc
            raise

    def _rollback_quietly(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def _run_alone(self, job: _Job[Any]) -> None:
        # A lone write needs no savepoint: if it fails the whole transaction is rolled back.
        try:
            job.result = job.work(self._conn)
        except sqlite3.Error as exc:
            job.error = _from_sqlite(exc, self._path)
        except StoreError as exc:
            job.error = exc

    def _run_together(self, batch: list[_Job[Any]]) -> bool:
        if self._together is None or any(job.item is None for job in batch):
            return False
        conn = self._conn
        try:
            outcomes = self._together(conn, [job.item for job in batch])
        except sqlite3.Error:
            if not conn.in_transaction:
                raise  # SQLite gave up the whole transaction: the batch fails as a whole
            outcomes = None  # an id collision, or one bad write: let each run alone
        if outcomes is None:
            return False
        for job, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, StoreError):
                job.error = outcome
            else:
                job.result = outcome
        self.batches_together += 1
        return True

    def _run_in_savepoint(self, job: _Job[Any]) -> None:
        conn = self._conn
        conn.execute("SAVEPOINT write")
        try:
            job.result = job.work(conn)
        except (sqlite3.Error, StoreError) as exc:
            conn.execute("ROLLBACK TO write")
            conn.execute("RELEASE write")
            job.error = _from_sqlite(exc, self._path) if isinstance(exc, sqlite3.Error) else exc
            return
        conn.execute("RELEASE write")

    def _fail_all(self, jobs: list[_Job[Any]], cause: sqlite3.Error) -> None:
        for job in jobs:
            job.error = _from_sqlite(cause, self._path)
            job.result = None


def _from_sqlite(exc: sqlite3.Error, path: str) -> StoreError:
    error = translate(exc, path)
    error.__cause__ = exc
    return error
