"""With tracing on, every saga decision is a span, and the commands it sends continue it:
one trace from the start of a saga through each participant's handling and every reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from streamsource.observability import tracing

from .conftest import Clock
from .mall import PlaceOrder
from .test_engine import mall, order


def test_saga_steps_are_spans_of_one_trace(
    open_store: Callable[..., Any], clock: Clock, exporter: InMemorySpanExporter
) -> None:
    m = mall(open_store, clock)
    with tracing.span("checkout") as root:
        saga_id = m.engine.start(PlaceOrder, "o-1", order())
    m.transport.drain()
    assert m.state(saga_id).status == "completed"

    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    steps = [s for s in spans if s.name == "streamsource.saga.step"]
    handled = [s for s in spans if s.name == "streamsource.messaging.handle"]
    # a start, then one decision per reply: reserve, charge, confirm
    assert [s.attributes["streamsource.saga_input"] for s in steps] == ["Start"] + ["Reply"] * 3  # type: ignore[index]
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert steps[0].parent is not None and steps[0].parent.span_id == root.context.span_id
    # each participant's handling is a child of the step that sent its command, and each
    # later step a child of the handling of the reply that caused it
    step_ids = {s.context.span_id for s in steps}
    commands = [h for h in handled if h.parent is not None and h.parent.span_id in step_ids]
    assert len(commands) == 3  # reserve (stock), charge (payments), confirm (orders)
    for step in steps[1:]:
        assert step.parent is not None
        assert by_id[step.parent.span_id].name == "streamsource.messaging.handle"
    assert steps[-1].attributes["streamsource.saga_status"] == "completed"  # type: ignore[index]
