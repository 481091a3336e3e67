"""The session actors: ordering, concurrency, cancellation, passivation, closing."""

from __future__ import annotations

import itertools

import anyio
import pytest

import valis_actors as va
from valis_actors.testing import Step

from .support import make_config, provider, scripted, settle

pytestmark = pytest.mark.anyio


async def test_ask_returns_the_providers_answer_with_metadata() -> None:
    async with va.open_runtime(make_config(scripted("p1"))) as runtime:
        reply = await runtime.ask("s1", "jane", "I have a conflict with my manager")
    assert reply.text == "p1: I have a conflict with my manager"
    assert reply.provider == "p1"
    assert reply.persona_id == "jane"
    assert reply.session_id == "s1"
    assert reply.fallback_used is False
    assert reply.model == "scripted-model"
    assert [a.outcome for a in reply.attempts] == [va.AttemptOutcome.SUCCESS]


async def test_session_processes_concurrent_callers_strictly_in_order() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=0.5)))
    order: list[int] = []
    async with va.open_runtime(config) as runtime:
        async def call(i: int) -> None:
            reply = await runtime.ask("same", "jane", f"m{i}")
            assert reply.text == f"p1: m{i}"
            order.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(call, i)
                await settle()  # accepted in this order
        calls = provider(runtime).calls
    assert order == list(range(50))
    assert [c.message for c in calls] == [f"m{i}" for i in range(50)]
    # message k+1 started only after message k ended
    for before, after in itertools.pairwise(calls):
        assert before.ended is not None and after.started >= before.ended
    assert max(c.concurrency for c in calls) == 1


async def test_the_sprints_three_calls_to_one_session_are_answered_in_order() -> None:
    config = make_config(scripted("p1", Step.answer(delay=3), Step.answer(delay=1), Step.answer(delay=0)))
    finished: list[str] = []
    async with va.open_runtime(config) as runtime:
        async def call(text: str) -> None:
            await runtime.ask("s", "sam", text)
            finished.append(text)

        async with anyio.create_task_group() as tg:
            for text in ("first", "second", "third"):
                tg.start_soon(call, text)
                await settle()
    assert finished == ["first", "second", "third"]


async def test_independent_sessions_run_in_parallel() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=1.0)))
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(runtime.ask, f"s{i}", "jane", "hi")
        elapsed = anyio.current_time() - start
        assert provider(runtime).max_in_flight == 20
    assert elapsed == pytest.approx(1.0, abs=0.05)


async def test_every_accepted_message_gets_exactly_one_reply() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=0.01)))
    replies: dict[tuple[str, int], str] = {}
    async with va.open_runtime(config) as runtime:
        async def call(session: str, i: int) -> None:
            reply = await runtime.ask(session, "jane", f"{session}-{i}")
            assert (session, i) not in replies
            replies[(session, i)] = reply.text

        async with anyio.create_task_group() as tg:
            for i in range(10):
                for s in range(10):
                    tg.start_soon(call, f"s{s}", i)
        assert len(provider(runtime).calls) == 100
    assert len(replies) == 100
    assert all(text == f"p1: {s}-{i}" for (s, i), text in replies.items())


async def test_caller_cancelled_while_queued_drops_its_message() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=5)))
    async with va.open_runtime(config) as runtime:
        async with anyio.create_task_group() as tg:
            tg.start_soon(runtime.ask, "s", "jane", "first")
            await settle()
            with anyio.move_on_after(1):
                await runtime.ask("s", "jane", "dropped")
            tg.start_soon(runtime.ask, "s", "jane", "third")
        assert provider(runtime).messages() == ["first", "third"]


async def test_caller_cancelled_while_running_cancels_attempt_and_session_goes_on() -> None:
    config = make_config(scripted("p1", Step.hang()))
    async with va.open_runtime(config) as runtime:
        with anyio.move_on_after(2):
            await runtime.ask("s", "jane", "hangs")
        await settle()
        assert runtime.statistics().attempts_in_flight == 0
        reply = await runtime.ask("s", "jane", "next")
        assert reply.text == "p1: next"
        calls = provider(runtime).calls
    assert [(c.message, c.outcome) for c in calls] == [("hangs", "cancelled"), ("next", "answer")]


async def test_idle_session_is_passivated_and_recreated_transparently() -> None:
    config = make_config(scripted("p1"), session={"idle_timeout": 60})
    events: list[va.RuntimeEvent] = []
    async with va.open_runtime(config, event_hook=events.append) as runtime:
        await runtime.ask("s", "jane", "one")
        assert runtime.statistics().live_sessions == 1
        await anyio.sleep(76)  # passivated 1 to 1.25 idle timeouts after the last message
        assert runtime.statistics().live_sessions == 0
        reply = await runtime.ask("s", "jane", "two")
        assert reply.text == "p1: two"
        assert runtime.statistics().live_sessions == 1
    kinds = [e.kind for e in events if e.kind.startswith("session_")]
    assert kinds == ["session_activated", "session_passivated", "session_activated"]


async def test_asking_a_closed_runtime_raises_runtime_closed() -> None:
    async with va.open_runtime(make_config()) as runtime:
        pass
    assert runtime.closed
    with pytest.raises(va.RuntimeClosedError, match="closed"):
        await runtime.ask("s", "jane", "hello")


async def test_error_in_the_body_is_raised_as_itself_not_a_group() -> None:
    with pytest.raises(KeyError):
        async with va.open_runtime(make_config()) as runtime:
            await runtime.ask("s", "jane", "hi")
            raise KeyError("boom")


async def test_caller_waiting_when_the_runtime_is_cancelled_gets_runtime_closed() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=100)))
    errors: list[BaseException] = []

    async def waiter(runtime: va.Runtime, message: str) -> None:
        try:
            await runtime.ask("s", "jane", message)
        except va.RuntimeClosedError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as outer:
        with pytest.raises(RuntimeError):
            async with va.open_runtime(config) as runtime:
                outer.start_soon(waiter, runtime, "running")
                await settle()
                outer.start_soon(waiter, runtime, "queued")
                await settle()
                raise RuntimeError("leave")
    assert sorted(str(e) for e in errors) == [
        "the runtime closed before this message was answered",
        "the runtime closed while answering this message",
    ]


async def test_leaving_normally_drains_queued_messages() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=1)))
    texts: list[str] = []
    async with anyio.create_task_group() as outer, va.open_runtime(config) as runtime:
        for i in range(3):
            outer.start_soon(_collect, runtime, f"m{i}", texts)
            await settle()  # trio starts tasks in any order: accept them one by one
    assert texts == ["p1: m0", "p1: m1", "p1: m2"]


async def _collect(runtime: va.Runtime, message: str, texts: list[str]) -> None:
    texts.append((await runtime.ask("s", "jane", message)).text)


async def test_full_mailbox_applies_backpressure_then_raises_mailbox_full() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=100)), session={"mailbox_size": 2})
    async with va.open_runtime(config) as runtime, anyio.create_task_group() as tg:
        tg.start_soon(runtime.ask, "s", "jane", "running")
        await settle()
        tg.start_soon(runtime.ask, "s", "jane", "queued 1")
        tg.start_soon(runtime.ask, "s", "jane", "queued 2")
        await settle()
        assert runtime.statistics().mailbox_depths == {"s": 2}
        start = anyio.current_time()
        with pytest.raises(va.MailboxFullError, match="mailbox full") as info:
            await runtime.ask("s", "jane", "refused", deadline=5)
        assert anyio.current_time() - start == pytest.approx(5, abs=0.01)
        assert "mailbox_size" in str(info.value)
        tg.cancel_scope.cancel()


async def test_statistics_report_sessions_attempts_and_breakers() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=10)), max_concurrent_requests=4)
    async with va.open_runtime(config) as runtime, anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(runtime.ask, f"s{i}", "jane", "hi")
        await settle()
        stats = runtime.statistics()
        assert stats.live_sessions == 3
        assert stats.attempts_in_flight == 3
        assert stats.max_concurrent_requests == 4
        assert stats.breakers["p1"].state is va.CircuitState.CLOSED
        tg.cancel_scope.cancel()


async def test_ask_with_caller_history_and_system_prompt_sends_them_instead_of_the_stored_ones() -> None:
    history = [va.Turn("earlier question", "earlier answer")]
    async with va.open_runtime(make_config(scripted("p1"))) as runtime:
        await runtime.ask("s1", "jane", "stored turn")
        await runtime.ask("s1", "jane", "second", history=history, system_prompt="Be brief.")
        await runtime.ask("s1", "jane", "third")
        calls = provider(runtime).calls
    assert calls[1].history == tuple(history)
    assert calls[1].system_prompt == "Be brief."
    # the turn given its own history was still recorded; stored memory is used again after it
    assert [t.user for t in calls[2].history] == ["stored turn", "second"]
    assert calls[2].system_prompt != "Be brief."


async def test_ask_refuses_a_history_that_is_not_turns() -> None:
    async with va.open_runtime(make_config(scripted("p1"))) as runtime:
        with pytest.raises(va.InvalidRequestError, match="history"):
            await runtime.ask("s1", "jane", "hi", history=[("user", "hi")])  # type: ignore[list-item]
