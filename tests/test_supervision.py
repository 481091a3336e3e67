"""Supervision: a crash fails one message, restarts the actor, never touches other sessions."""

from __future__ import annotations

import anyio
import pytest

import valis_actors as va

from .support import make_config, scripted

pytestmark = pytest.mark.anyio


class CrashOn(va.SessionLifecycle):
    """Raises inside the session actor when it starts chosen messages (its lifecycle hook),
    and records the events (its event hook)."""

    def __init__(self, *messages: str) -> None:
        self.messages = set(messages)
        self.doomed: set[int | None] = set()
        self.events: list[va.RuntimeEvent] = []

    def __call__(self, event: va.RuntimeEvent) -> None:
        self.events.append(event)
        if event.kind == va.EventKind.MESSAGE_ACCEPTED and event.data["message"] in self.messages:
            self.doomed.add(event.seq)

    async def before_message(self, message: va.MessageInfo) -> None:
        if message.seq in self.doomed:
            raise ZeroDivisionError("injected crash")

    def kinds(self, kind: str) -> list[va.RuntimeEvent]:
        return [e for e in self.events if e.kind == kind]


async def test_crash_gives_the_caller_a_valis_error_with_the_cause_and_restarts() -> None:
    hook = CrashOn("first")
    async with va.open_runtime(make_config(scripted("p1")), event_hook=hook, lifecycle=hook) as runtime:
        with pytest.raises(va.ActorCrashedError, match="crashed while answering") as info:
            await runtime.ask("s", "jane", "first")
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        reply = await runtime.ask("s", "jane", "second")
        assert reply.text == "p1: second"
    assert len(hook.kinds(va.EventKind.ACTOR_RESTARTED)) == 1


async def test_crash_keeps_queued_messages_and_other_sessions() -> None:
    hook = CrashOn("s-1")
    results: dict[str, object] = {}
    async with va.open_runtime(make_config(scripted("p1")), event_hook=hook, lifecycle=hook) as runtime:
        async def call(session: str, message: str) -> None:
            try:
                results[message] = (await runtime.ask(session, "jane", message)).text
            except va.ValisError as exc:
                results[message] = type(exc)

        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(call, "s", f"s-{i}")
                tg.start_soon(call, "other", f"o-{i}")
                await anyio.wait_all_tasks_blocked()
    assert results["s-1"] is va.ActorCrashedError
    assert results["s-0"] == "p1: s-0"
    assert results["s-2"] == "p1: s-2" and results["s-3"] == "p1: s-3"
    assert all(results[f"o-{i}"] == f"p1: o-{i}" for i in range(4))


async def test_too_many_restarts_make_the_session_refuse_then_recover() -> None:
    hook = CrashOn("crash")
    config = make_config(scripted("p1"), session={"max_restarts": 2, "restart_window": 60})
    async with va.open_runtime(config, event_hook=hook, lifecycle=hook) as runtime:
        for _ in range(3):
            with pytest.raises(va.ActorCrashedError):
                await runtime.ask("s", "jane", "crash")
        with pytest.raises(va.SessionFailedError, match="crashed 3 times in 60s"):
            await runtime.ask("s", "jane", "refused")
        assert (await runtime.ask("other", "jane", "fine")).text == "p1: fine"
        await anyio.sleep(61)
        assert (await runtime.ask("s", "jane", "back")).text == "p1: back"


async def test_an_event_hook_that_raises_never_stops_the_runtime() -> None:
    def hook(event: va.RuntimeEvent) -> None:
        raise RuntimeError("observer bug")

    async with va.open_runtime(make_config(scripted("p1")), event_hook=hook) as runtime:
        replies = [await runtime.ask("s", "jane", f"m{i}") for i in range(3)]
        failures = runtime.statistics().hook_failures
    assert [r.text for r in replies] == ["p1: m0", "p1: m1", "p1: m2"]
    assert failures > 3  # every event raised; each was counted, none was fatal
