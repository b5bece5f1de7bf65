"""The saga state machine, input by input: no database, no clock."""

from __future__ import annotations

import pytest

from streamsource.sagas import InvalidSagaInput, Saga, SagaCommand, Step
from streamsource.sagas.core import (
    Abort,
    Aborted,
    CancelDeadline,
    Compensated,
    CompensationFailed,
    Completed,
    DeadlineFired,
    Effect,
    Reply,
    Resume,
    SagaState,
    ScheduleDeadline,
    SendCommand,
    Start,
    Stuck,
    new_state,
    transition,
)

from .sample import Cmd, OrderSaga


def started() -> tuple[SagaState, list[Effect]]:
    state = new_state(OrderSaga, "saga-1", "order-7", {"order": "order-7"})
    return transition(OrderSaga, state, Start(), now=100.0)


def sent(effects: list[Effect]) -> SendCommand:
    (command,) = [e for e in effects if isinstance(e, SendCommand)]
    return command


def test_start_sends_the_first_action_with_its_timeout() -> None:
    state, effects = started()
    assert state.status == "running" and state.step == 0
    command = sent(effects)
    assert command.command == SagaCommand("stock", Cmd("Reserve", "order-7"))
    assert not command.compensation and command.attempt == 1
    (deadline,) = [e for e in effects if isinstance(e, ScheduleDeadline)]
    assert deadline.at == 105.0 and deadline.kind == "timeout"
    assert state.deadline == deadline.deadline_id


def test_success_replies_walk_every_step_and_update_the_data() -> None:
    state, effects = started()
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 101)
    assert any(isinstance(e, CancelDeadline) for e in effects)
    assert sent(effects).command.message.name == "Charge"
    reply = Reply(sent(effects).command_id, "success", {"payment": "pay-1"})
    state, effects = transition(OrderSaga, state, reply, 102)
    assert state.data == {"order": "order-7", "payment": "pay-1"}
    assert sent(effects).command.message.name == "Confirm"
    assert not any(isinstance(e, ScheduleDeadline) for e in effects)  # confirm has no timeout
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 103)
    assert state.status == "completed" and effects == [Completed()]
    assert [h.event for h in state.history][-1] == "completed"


def test_a_refusal_compensates_the_steps_before_it_newest_first() -> None:
    state, effects = started()
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 101)
    refusal = Reply(sent(effects).command_id, "failure", reason="card declined")
    state, effects = transition(OrderSaga, state, refusal, 102)
    assert state.status == "compensating" and state.reason == "step 'charge' refused: card declined"
    assert sent(effects).command.message.name == "Release"  # charge did nothing: not refunded
    assert sent(effects).compensation
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 103)
    assert state.status == "compensated"
    assert effects[-1] == Compensated("step 'charge' refused: card declined")
    assert state.history[-1].detail == "step 'charge' refused: card declined"


def test_a_fault_is_retried_after_a_backoff_then_counts_as_a_failure() -> None:
    state, effects = started()
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 101)
    fault = Reply(sent(effects).command_id, "fault", reason="database busy")
    state, effects = transition(OrderSaga, state, fault, 102)
    assert state.status == "running" and not any(isinstance(e, SendCommand) for e in effects)
    (retry,) = [e for e in effects if isinstance(e, ScheduleDeadline)]
    assert retry.kind == "retry" and retry.at == 102 + OrderSaga.backoff.bound(0)
    state, effects = transition(OrderSaga, state, DeadlineFired(retry.deadline_id), 103)
    second = sent(effects)
    assert second.command.message.name == "Charge" and second.attempt == 2
    state, effects = transition(
        OrderSaga, state, Reply(second.command_id, "fault", reason="x"), 104
    )
    assert state.status == "compensating"  # attempts=2 used up
    assert state.reason == "step 'charge' faulted 2 times, last: x"
    assert sent(effects).command.message.name == "Release"


def test_a_timeout_compensates_the_silent_step_too() -> None:
    state, effects = started()
    (deadline,) = [e for e in effects if isinstance(e, ScheduleDeadline)]
    state, effects = transition(OrderSaga, state, DeadlineFired(deadline.deadline_id), 105)
    assert state.status == "compensating" and state.step == 0
    assert sent(effects).command.message.name == "Release"
    assert "got no reply within 5s" in (state.reason or "")


def test_a_timeout_under_retry_sends_again_and_an_earlier_attempts_reply_counts() -> None:
    state, effects = started()
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 101)
    first = sent(effects)
    (deadline,) = [e for e in effects if isinstance(e, ScheduleDeadline)]
    state, effects = transition(OrderSaga, state, DeadlineFired(deadline.deadline_id), 106)
    assert sent(effects).attempt == 2 and state.status == "running"
    late = Reply(first.command_id, "success", {"payment": "pay-9"})
    state, effects = transition(OrderSaga, state, late, 107)
    assert state.data["payment"] == "pay-9" and sent(effects).command.message.name == "Confirm"


def test_stale_replies_and_cancelled_deadlines_are_recorded_and_ignored() -> None:
    state, effects = started()
    first = sent(effects)
    (deadline,) = [e for e in effects if isinstance(e, ScheduleDeadline)]
    state, effects = transition(OrderSaga, state, Reply(first.command_id, "success"), 101)
    before = state
    state, effects = transition(OrderSaga, state, DeadlineFired(deadline.deadline_id), 105)
    assert effects == [] and state.status == before.status and state.step == before.step
    state, effects = transition(OrderSaga, state, Reply(first.command_id, "failure"), 106)
    assert effects == [] and state.step == 1
    assert [h.event for h in state.history][-2:] == ["ignored", "ignored"]


def failing_compensation() -> tuple[SagaState, SendCommand]:
    state, effects = started()
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 101)
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "failure"), 102)
    return state, sent(effects)


def test_a_failing_compensation_is_retried_with_backoff_then_the_saga_is_stuck() -> None:
    state, release = failing_compensation()
    state, effects = transition(
        OrderSaga, state, CompensationFailed(release.command_id, "down"), 103
    )
    (retry,) = [e for e in effects if isinstance(e, ScheduleDeadline)]
    state, effects = transition(OrderSaga, state, DeadlineFired(retry.deadline_id), retry.at)
    again = sent(effects)
    assert again.attempt == 2 and again.compensation
    state, effects = transition(
        OrderSaga, state, Reply(again.command_id, "fault", reason="down"), 110
    )
    assert state.status == "stuck"
    assert state.reason == "compensation of step 'reserve' failed 2 times, last: fault: down"
    assert Stuck(state.reason) in effects
    assert not any(isinstance(e, ScheduleDeadline) for e in effects)


def test_resume_starts_the_compensation_again_and_abort_gives_up() -> None:
    stuck, _ = failing_compensation()
    for _ in range(2):
        stuck, effects = transition(OrderSaga, stuck, CompensationFailed(stuck.sent[-1], "x"), 103)
        for effect in effects:
            if isinstance(effect, ScheduleDeadline):
                stuck, _ = transition(OrderSaga, stuck, DeadlineFired(effect.deadline_id), 104)
    assert stuck.status == "stuck"

    resumed, effects = transition(OrderSaga, stuck, Resume(), 200)
    assert resumed.status == "compensating" and sent(effects).attempt == 1
    done, effects = transition(OrderSaga, resumed, Reply(sent(effects).command_id, "success"), 201)
    assert done.status == "compensated"

    aborted, effects = transition(OrderSaga, stuck, Abort("ops ticket 12"), 200)
    assert aborted.status == "aborted" and effects == [Aborted("ops ticket 12")]
    with pytest.raises(InvalidSagaInput, match="only a stuck saga resumes"):
        transition(OrderSaga, done, Resume(), 202)
    with pytest.raises(InvalidSagaInput, match="compensated: nothing to abort"):
        transition(OrderSaga, done, Abort(), 202)


def test_aborting_a_running_saga_compensates_from_its_current_step() -> None:
    state, effects = started()
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 101)
    state, effects = transition(OrderSaga, state, Abort("customer cancelled"), 102)
    assert state.status == "compensating" and sent(effects).command.message.name == "Refund"
    assert any(isinstance(e, CancelDeadline) for e in effects)


def test_state_round_trips_through_json() -> None:
    import msgspec

    state, _ = started()
    assert msgspec.json.decode(msgspec.json.encode(state), type=SagaState) == state


def test_malformed_definitions_are_refused_with_the_reason() -> None:
    with pytest.raises(InvalidSagaInput, match="attempts must be at least 1"):
        Step("x", lambda d: SagaCommand("s", Cmd("c", "o")), attempts=0)
    with pytest.raises(InvalidSagaInput, match="on_timeout must be"):
        Step("x", lambda d: SagaCommand("s", Cmd("c", "o")), on_timeout="wait")  # type: ignore[arg-type]
    with pytest.raises(InvalidSagaInput, match="step names repeat"):

        class Twice(Saga):
            name = "twice"
            steps = (Step("a", lambda d: SagaCommand("s", Cmd("c", "o"))),) * 2


def test_a_late_success_reply_frees_a_saga_stuck_on_timeouts() -> None:
    state, effects = started()
    state, effects = transition(OrderSaga, state, Reply(sent(effects).command_id, "success"), 101)
    refusal = Reply(sent(effects).command_id, "failure", reason="card declined")
    state, effects = transition(OrderSaga, state, refusal, 102)
    first_release = sent(effects).command_id
    now = 102.0
    while state.status != "stuck":  # no compensation reply comes: timeouts, retries, stuck
        (deadline,) = [e for e in effects if isinstance(e, ScheduleDeadline)]
        now = deadline.at
        state, effects = transition(OrderSaga, state, DeadlineFired(deadline.deadline_id), now)
    assert "no reply within 5s" in (state.reason or "")
    state, effects = transition(OrderSaga, state, Reply(first_release, "success"), now + 30)
    assert state.status == "compensated"
    assert state.reason == "step 'charge' refused: card declined"  # the cause, not the timeouts
    assert effects[-1] == Compensated("step 'charge' refused: card declined")
