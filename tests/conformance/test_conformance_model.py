"""A stateful test: random appends, retries, deletes and metadata against a plain model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import streamsource as ss

STREAMS = ["a-1", "a-2", "b-1"]
TYPES = ["Created", "Changed", "Removed"]


@dataclass
class ModelStream:
    events: list[ss.NewEvent] = field(default_factory=list)
    tombstoned: bool = False
    truncate_before: int = 0
    max_count: int | None = None

    @property
    def version(self) -> int | None:
        return len(self.events) - 1 if self.events else None

    @property
    def soft_deleted(self) -> bool:
        """Every event is hidden by a soft delete: the next append may expect NO_STREAM."""
        return self.version is not None and self.truncate_before > self.version

    def visible(self) -> list[int]:
        if self.version is None:
            return []
        lowest = self.truncate_before
        if self.max_count is not None:
            lowest = max(lowest, self.version - self.max_count + 1)
        return list(range(lowest, self.version + 1))


def make_machine(open_store: Any) -> type[RuleBasedStateMachine]:
    class StoreAgainstModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store = open_store()
            self.streams = {name: ModelStream() for name in STREAMS}
            self.log: list[tuple[str, int]] = []
            self.appends: list[tuple[str, list[ss.NewEvent], ss.AppendResult]] = []

        def teardown(self) -> None:
            self.store.close()

        @rule(
            stream=st.sampled_from(STREAMS),
            types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=3),
            how=st.sampled_from(["any", "exact", "no_stream", "exists", "wrong"]),
        )
        def append(self, stream: str, types: list[str], how: str) -> None:
            model = self.streams[stream]
            expected: Any = {
                "any": ss.ANY,
                "exact": ss.NO_STREAM if model.version is None else model.version,
                "no_stream": ss.NO_STREAM,
                "exists": ss.STREAM_EXISTS,
                "wrong": (model.version or 0) + 3,
            }[how]
            batch = [ss.NewEvent(t, {"k": uuid.uuid4().hex[:6]}) for t in types]
            fails = (
                model.tombstoned
                or {
                    "any": False,
                    "exact": False,
                    "no_stream": model.version is not None and not model.soft_deleted,
                    "exists": model.version is None,
                    "wrong": True,
                }[how]
            )
            try:
                result = self.store.append(stream, batch, expected)
            except ss.StreamDeleted:
                assert model.tombstoned
                return
            except ss.WrongExpectedVersion as error:
                assert fails and not model.tombstoned
                assert error.actual == model.version
                return
            assert not fails
            for event in batch:
                model.events.append(event)
                self.log.append((stream, len(model.events) - 1))
            assert result.version == model.version
            self.appends.append((stream, batch, result))

        @rule(data=st.data())
        def retry(self, data: st.DataObject) -> None:
            if not self.appends:
                return
            stream, batch, result = data.draw(st.sampled_from(self.appends))
            if self.streams[stream].tombstoned:
                return
            assert self.store.append(stream, batch, ss.ANY) == result

        @rule(stream=st.sampled_from(STREAMS))
        def soft_delete(self, stream: str) -> None:
            model = self.streams[stream]
            if model.tombstoned:
                return
            self.store.delete_stream(stream)
            if model.version is not None:
                model.truncate_before = model.version + 1

        @rule(stream=st.sampled_from(STREAMS))
        def hard_delete(self, stream: str) -> None:
            model = self.streams[stream]
            if model.tombstoned:
                return
            self.store.delete_stream(stream, hard=True)
            model.tombstoned = True

        @rule(stream=st.sampled_from(STREAMS), count=st.none() | st.integers(0, 4))
        def set_max_count(self, stream: str, count: int | None) -> None:
            model = self.streams[stream]
            if model.tombstoned:
                return
            self.store.set_stream_metadata(
                stream, ss.StreamMetadata(max_count=count, truncate_before=model.truncate_before)
            )
            model.max_count = count

        @invariant()
        def streams_read_as_modelled(self) -> None:
            for name, model in self.streams.items():
                if model.tombstoned:
                    continue
                recorded = list(self.store.read_stream(name))
                assert [e.version for e in recorded] == model.visible()
                assert [e.id for e in recorded] == [model.events[v].id for v in model.visible()]
                assert self.store.stream_version(name) == model.version

        @invariant()
        def log_reads_as_modelled(self) -> None:
            log = list(self.store.read_all())
            assert [(e.stream, e.version) for e in log] == self.log
            positions = [e.position for e in log]
            assert positions == sorted(set(positions))
            assert self.store.head_position() == (positions[-1] if positions else 0)

    return StoreAgainstModel


def test_store_behaves_like_the_model(store_factory: Any) -> None:
    run_state_machine_as_test(
        make_machine(store_factory),
        settings=settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
