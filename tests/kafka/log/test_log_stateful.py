"""A Hypothesis state machine: the log against a list of batches, with reopens and crashes."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from log_batches import make_batch

from streamsource.kafka.log import LogConfig, OffsetOutOfRange, PartitionLog

NOW = 1_000_000


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="log-stateful-"))
        self.config = LogConfig(segment_bytes=600, index_interval_bytes=150, retention_ms=-1)
        self.log = PartitionLog.open(self.root / "p", self.config, now_ms=NOW)
        self.batches: list[tuple[int, bytes]] = []  # (base offset, stored bytes)
        self.start = 0
        self.end = 0
        self.counter = 0

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _new_batch(self, records: int, value_size: int) -> bytearray:
        self.counter += 1
        return make_batch(
            records, timestamp=self.counter, tag=str(self.counter), value_size=value_size
        )

    @rule(shape=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 120)), min_size=1, max_size=3))
    def append(self, shape: list[tuple[int, int]]) -> None:
        batches = [self._new_batch(records, size) for records, size in shape]
        info = self.log.append(batches, now_ms=NOW)
        assert info.base_offset == self.end
        for batch in batches:
            self.batches.append((self.end, bytes(batch)))
            self.end += int.from_bytes(batch[23:27], "big") + 1
        assert info.last_offset == self.end - 1

    @rule(data=st.data(), max_bytes=st.integers(1, 1500))
    def read(self, data: st.DataObject, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.start - 2, self.end + 2))
        if offset < self.start or offset > self.end:
            try:
                self.log.read(offset, max_bytes)
            except OffsetOutOfRange:
                return
            raise AssertionError(f"read({offset}) outside [{self.start}, {self.end}] worked")
        expected = b""
        for base, stored in self.batches:
            last = base + int.from_bytes(stored[23:27], "big")
            if last < offset:
                continue
            if expected and len(expected) + len(stored) > max_bytes:
                break
            expected += stored
            if len(expected) >= max_bytes:
                break
        assert self.log.read(offset, max_bytes) == expected

    @rule(data=st.data())
    def find_by_timestamp(self, data: st.DataObject) -> None:
        target = data.draw(st.integers(0, self.counter + 1))
        expected = None
        for base, stored in self.batches:
            timestamp = int.from_bytes(stored[35:43], "big")  # max timestamp = every record's
            if timestamp >= target:
                expected = (base, timestamp)
                break
        assert self.log.offset_for_timestamp(target) == expected

    @rule(data=st.data(), max_bytes=st.integers(1, 1500))
    def read_below_a_max_offset(self, data: st.DataObject, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.start, self.end))
        max_offset = data.draw(st.integers(self.start, self.end + 1))
        got = self.log.read(offset, max_bytes, max_offset=max_offset)
        expected = b""
        for base, stored in self.batches:
            last = base + int.from_bytes(stored[23:27], "big")
            if last < offset:
                continue
            if last >= max_offset or (expected and len(expected) + len(stored) > max_bytes):
                break
            expected += stored
            if len(expected) >= max_bytes:
                break
        assert got == expected

    @rule()
    def reopen(self) -> None:
        self.log.close()
        self.log = PartitionLog.open(self.root / "p", self.config, now_ms=NOW)

    @rule(records=st.integers(1, 3), cut=st.floats(0.0, 0.99))
    def crash_during_append(self, records: int, cut: float) -> None:
        """A partial batch at the end of the last segment, as a crash mid-write leaves."""
        self.log.close()
        torn = self._new_batch(records, 40)
        last = sorted((self.root / "p").glob("*.log"))[-1]
        with open(last, "ab") as f:
            f.write(torn[: int(len(torn) * cut)])
        self.log = PartitionLog.open(self.root / "p", self.config, now_ms=NOW)

    @precondition(lambda self: len(self.batches) > 2)
    @rule()
    def retention(self) -> None:
        # a topic whose retention.bytes was lowered: the log reopens with the new setting
        config = LogConfig(segment_bytes=600, index_interval_bytes=150, retention_bytes=800)
        self.log.close()
        self.log = PartitionLog.open(self.root / "p", config, now_ms=NOW)
        self.log.enforce_retention(now_ms=NOW)
        self.log.close()
        self.log = PartitionLog.open(self.root / "p", self.config, now_ms=NOW)
        self.start = self.log.log_start_offset
        self.batches = [(b, s) for b, s in self.batches if b >= self.start]
        assert not self.batches or self.batches[0][0] == self.start

    @invariant()
    def offsets_match(self) -> None:
        assert self.log.log_end_offset == self.end
        assert self.log.log_start_offset == self.start
        assert self.log.size_bytes == sum(len(s) for _, s in self.batches)


TestLogMachine = LogMachine.TestCase
TestLogMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
