"""The recorder's invariant checks cover the app's own steps and events, in session order."""

from __future__ import annotations

import anyio
import pytest

import valis_actors as va
from valis_actors.testing import APP_EVENT, EventRecorder, InvariantViolation, Step

from .support import make_config, scripted, settle

pytestmark = pytest.mark.anyio


async def test_an_app_event_inside_run_in_session_keeps_the_session_order() -> None:
    recorder = EventRecorder()
    config = make_config(scripted("p1", default=Step.answer(delay=2)))
    async with va.open_runtime(config, event_hook=recorder) as runtime:

        async def handoff() -> str:
            recorder.record_app("s", "handoff", ticket=7)
            return "handed off"

        async with anyio.create_task_group() as tg:
            tg.start_soon(runtime.ask, "s", "jane", "first")
            await settle()
            assert await runtime.run_in_session("s", handoff, label="handoff") == "handed off"
    (event,) = recorder.app_events("s", "handoff")
    assert event.seq == 1  # recorded inside the step, which is message 1 of the runtime
    assert (event.kind, event.data) == (APP_EVENT, {"name": "handoff", "ticket": 7})
    assert event.time == 2.0  # after the first message's 2 s answer, on virtual time
    recorder.check_all(config)


async def test_an_app_event_beside_the_runtime_that_overtakes_a_message_fails_check_fifo() -> None:
    recorder = EventRecorder()
    config = make_config(scripted("p1", default=Step.answer(delay=2)))
    async with va.open_runtime(config, event_hook=recorder) as runtime, anyio.create_task_group() as tg:
        tg.start_soon(runtime.ask, "s", "jane", "first")
        tg.start_soon(runtime.ask, "s", "jane", "second")
        await settle()
        recorder.record_app("s", "handoff")  # answered at once: messages 0 and 1 still unanswered
        recorder.record_app("other", "handoff")  # another session: nothing to overtake
    assert [e.session_id for e in recorder.app_events()] == ["s", "other"]
    with pytest.raises(InvariantViolation, match=r"app event 'handoff' .* overtook unanswered message\(s\) \[0, 1\]"):
        recorder.check_fifo()
    recorder.check_exactly_once()  # the runtime's own messages are fine


async def test_an_app_event_beside_a_running_app_step_overtakes_it_and_what_is_queued() -> None:
    recorder = EventRecorder()
    config = make_config(scripted("p1", default=Step.answer(delay=2)))
    async with va.open_runtime(config, event_hook=recorder) as runtime, anyio.create_task_group() as tg:

        async def step() -> None:
            await anyio.sleep(1)

        tg.start_soon(runtime.run_in_session, "s", step)
        await settle()
        tg.start_soon(runtime.ask, "s", "jane", "queued behind the step")
        await settle()
        recorder.record_app("s", "inside no step")  # the step runs, but this is not its task
    assert recorder.app_events()[0].seq is None
    with pytest.raises(InvariantViolation, match=r"overtook unanswered message\(s\) \[0, 1\]"):
        recorder.check_fifo()


async def test_a_slow_app_step_is_not_held_to_the_response_deadline() -> None:
    recorder = EventRecorder()
    config = make_config(scripted("p1"), response_deadline=5)

    async def slow() -> None:
        await anyio.sleep(20)

    async with va.open_runtime(config, event_hook=recorder) as runtime:
        await runtime.run_in_session("s", slow)
        await runtime.ask("s", "jane", "after it")
    (step, answer) = recorder.replies("s")
    assert (step.provider, step.time) == ("app", 20.0)
    assert answer.provider == "p1"
    assert step.time > step.data["deadline"]
    recorder.check_all(config)
