"""Aggregate basics: commands record events, state changes only by applying them."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

import streamsource as ss

events = ss.EventRegistry()


@events.event("CounterIncremented")
class Incremented(msgspec.Struct, frozen=True):
    by: int


@events.event("CounterReset")
class Reset(msgspec.Struct, frozen=True):
    pass


class NotRegistered(msgspec.Struct, frozen=True):
    by: int


@events.event("CounterNoted")
@dataclasses.dataclass(frozen=True)
class Noted:
    text: str


class TooBig(ss.DomainError):
    pass


class Counter(ss.Aggregate):
    registry = events

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.value = 0

    def increment(self, by: int) -> None:
        if self.value + by > 10:
            raise TooBig(f"{self.value} + {by} is above 10")
        self.record(Incremented(by=by))

    @ss.applies(Incremented)
    def _incremented(self, event: Incremented) -> None:
        self.value += event.by

    @ss.applies(Reset)
    def _reset(self, event: Reset) -> None:
        self.value = 0


class DoublingCounter(Counter):
    category = "doubler"

    @ss.applies(Incremented)
    def _incremented(self, event: Incremented) -> None:
        self.value += 2 * event.by


def test_record_applies_at_once_and_keeps_the_event_pending() -> None:
    counter = Counter("c1")
    assert counter.version is None and counter.saved_version is None
    counter.increment(2)
    counter.increment(3)
    assert counter.value == 5
    assert counter.version == 1
    assert counter.pending_events == (Incremented(2), Incremented(3))
    assert counter.saved_version is None  # nothing stored yet


def test_a_refused_command_changes_nothing() -> None:
    counter = Counter("c1")
    counter.increment(9)
    with pytest.raises(TooBig, match="9 \\+ 5 is above 10"):
        counter.increment(5)
    assert isinstance(TooBig("x"), ss.DomainError)
    assert counter.value == 9
    assert counter.version == 0
    assert counter.pending_events == (Incremented(9),)


def test_an_unregistered_event_class_is_refused_before_state_changes() -> None:
    counter = Counter("c1")
    with pytest.raises(ss.UnknownEventType, match="NotRegistered is not a registered"):
        counter.record(NotRegistered(by=1))
    assert counter.value == 0 and counter.pending_events == ()


def test_an_event_without_an_applies_method_is_a_programming_error() -> None:
    counter = Counter("c1")
    with pytest.raises(ss.ProgrammingError, match="Counter has no @applies method for Noted"):
        counter.record(Noted("hello"))
    assert counter.pending_events == () and counter.version is None


def test_applying_the_recorded_events_in_order_rebuilds_the_same_state() -> None:
    live = Counter("c1")
    live.increment(4)
    live.record(Reset())
    live.increment(6)
    replica = Counter("c1")
    for event in live.pending_events:
        replica.apply(event)
    assert replica.value == live.value == 6


def test_a_subclass_overrides_an_applies_method_and_its_stream_category() -> None:
    counter = DoublingCounter("d")
    counter.increment(3)
    counter.record(Reset())  # inherited applier
    counter.increment(1)
    assert counter.value == 2
    assert counter.stream == "doubler-d"
    assert Counter.stream_name("c1") == "counter-c1"


def test_applies_needs_an_event_class() -> None:
    with pytest.raises(ss.ProgrammingError):
        ss.applies()


def test_registry_refuses_a_second_class_under_a_taken_name() -> None:
    registry = ss.EventRegistry()
    registry.register(Incremented, "Incremented")
    registry.register(Incremented, "Incremented")  # the same class again is fine

    class Other(msgspec.Struct):
        by: int

    with pytest.raises(ss.ProgrammingError, match="already registered"):
        registry.register(Other, "Incremented")


def test_registry_accepts_only_structs_and_dataclasses_with_a_positive_version() -> None:
    registry = ss.EventRegistry()

    class Plain:
        pass

    with pytest.raises(ss.ProgrammingError, match=r"msgspec\.Struct or a dataclass"):
        registry.register(Plain)
    with pytest.raises(ss.ProgrammingError, match="int >= 1"):
        registry.register(Incremented, version=0)


def test_registry_round_trips_structs_and_dataclasses() -> None:
    name, data, version = events.encode(Noted("hi"))
    assert (name, data, version) == ("CounterNoted", {"text": "hi"}, 1)
    assert events.decode(name, data, version) == Noted("hi")
    assert events.decode("CounterIncremented", {"by": 2}) == Incremented(2)
    with pytest.raises(ss.UnknownEventType, match="'Nope' has no registered class"):
        events.decode("Nope", {})
