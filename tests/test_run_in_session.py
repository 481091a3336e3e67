"""App logic in the session's order: ``Runtime.run_in_session`` (FIFO with asks, one outcome, cancellation)."""

from __future__ import annotations

import anyio
import pytest

import valis_actors as va
from valis_actors.testing import EventRecorder, Step

from .support import make_config, scripted, settle

pytestmark = pytest.mark.anyio


async def test_an_app_step_waits_for_earlier_messages_and_later_ones_wait_for_it() -> None:
    recorder = EventRecorder()
    config = make_config(scripted("p1", default=Step.answer(delay=2)))
    async with va.open_runtime(config, event_hook=recorder) as runtime:

        async def ask(text: str) -> None:
            await runtime.ask("s", "jane", text)

        async def handoff() -> str:
            await anyio.sleep(1)
            return "handed to a human"

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, "first")
            await settle()
            result: list[str] = []

            async def run_step() -> None:
                result.append(await runtime.run_in_session("s", handoff, label="handoff"))

            tg.start_soon(run_step)
            await settle()
            tg.start_soon(ask, "after")
    assert result == ["handed to a human"]
    # Per the runtime's own events: each step starts only after the one before it ended.
    steps = [(e.kind, e.seq) for e in recorder.events if e.kind in (va.EventKind.MESSAGE_STARTED, va.EventKind.REPLY_DELIVERED)]
    started, delivered = va.EventKind.MESSAGE_STARTED, va.EventKind.REPLY_DELIVERED
    assert steps == [(started, 0), (delivered, 0), (started, 1), (delivered, 1), (started, 2), (delivered, 2)]
    accepted = {e.seq: e.data["message"] for e in recorder.of_kind(va.EventKind.MESSAGE_ACCEPTED)}
    assert accepted == {0: "first", 1: "handoff", 2: "after"}
    recorder.check_fifo()
    recorder.check_exactly_once()


async def test_an_app_step_error_reaches_its_caller_as_it_is_and_the_session_goes_on() -> None:
    async def broken() -> None:
        raise LookupError("no such ticket")

    async with va.open_runtime(make_config(scripted("p1"))) as runtime:
        with pytest.raises(LookupError, match="no such ticket"):
            await runtime.run_in_session("s", broken)
        assert (await runtime.ask("s", "jane", "still there?")).text == "p1: still there?"


async def test_a_queued_app_step_whose_caller_gives_up_never_runs() -> None:
    ran: list[bool] = []

    async def step() -> None:
        ran.append(True)

    config = make_config(scripted("p1", default=Step.answer(delay=5)))
    async with va.open_runtime(config) as runtime, anyio.create_task_group() as tg:
        tg.start_soon(runtime.ask, "s", "jane", "busy")
        await settle()
        with anyio.move_on_after(1):
            await runtime.run_in_session("s", step)
    assert ran == []


async def test_run_in_session_refuses_what_is_not_callable() -> None:
    async with va.open_runtime(make_config(scripted("p1"))) as runtime:
        with pytest.raises(va.InvalidRequestError, match="callable"):
            await runtime.run_in_session("s", "not a function")  # type: ignore[arg-type]


async def test_a_message_after_an_app_step_keeps_its_own_deadline() -> None:
    # The step's nominal deadline (response_deadline after it was accepted) is long past
    # when the next message comes: it must not cut that message short.
    config = make_config(scripted("p1"), response_deadline=5)

    async def slow() -> None:
        await anyio.sleep(20)

    async with va.open_runtime(config) as runtime:
        await runtime.run_in_session("s", slow)
        reply = await runtime.ask("s", "jane", "after it")
        await anyio.sleep(60)
        later = await runtime.ask("s", "jane", "much later")
    assert (reply.provider, reply.fallback_used) == ("p1", False)
    assert (later.provider, later.fallback_used) == ("p1", False)
