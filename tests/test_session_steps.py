"""App steps (``Runtime.run_in_session``) go through the session lifecycle like messages, on virtual time.

The lifecycle's hooks run around a step; the default lifecycle costs a step no MessageInfo
and no hook. Cluster mode's leases around steps are in test_cluster_steps.py (real Redis).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

import valis_actors as va
from valis_actors._actors import _session
from valis_actors.testing import Step

from .support import make_config, scripted, settle

pytestmark = pytest.mark.anyio


class Recording(va.SessionLifecycle):
    """Records each hook call around messages and steps, and what the step saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, float]] = []  # (hook, seq, deadline)

    async def before_message(self, message: va.MessageInfo) -> None:
        self.calls.append(("before_message", message.seq, message.deadline))

    @contextmanager
    def fence(self, message: va.MessageInfo) -> Iterator[int | None]:
        self.calls.append(("fence", message.seq, message.deadline))
        yield 7
        self.calls.append(("fence exit", message.seq, message.deadline))

    async def after_reply(self, message: va.MessageInfo) -> None:
        self.calls.append(("after_reply", message.seq, message.deadline))


class Refusing(va.SessionLifecycle):
    """A lifecycle whose ``before_message`` refuses every message or step with a ValisError."""

    async def before_message(self, message: va.MessageInfo) -> None:
        raise va.ValisError(f"session {message.session_id!r} is not ours")


async def test_app_step_runs_inside_before_message_fence_and_after_reply() -> None:
    lifecycle = Recording()
    inside: list[list[str]] = []

    async def step() -> str:
        inside.append([hook for hook, _, _ in lifecycle.calls])
        return "done"

    async with va.open_runtime(make_config(scripted("p1")), lifecycle=lifecycle) as runtime:
        assert await runtime.run_in_session("s", step) == "done"
    assert inside == [["before_message", "fence"]]  # the step ran inside the fence
    assert [hook for hook, _, _ in lifecycle.calls] == ["before_message", "fence", "fence exit", "after_reply"]


async def test_app_step_lease_deadline_is_response_deadline_from_its_start() -> None:
    # Queued 2 s behind a message, the step still gets a whole response_deadline to wait.
    lifecycle = Recording()
    config = make_config(scripted("p1", default=Step.answer(delay=2)), response_deadline=5)

    async def step() -> None:
        pass

    async with va.open_runtime(config, lifecycle=lifecycle) as runtime, anyio.create_task_group() as tg:
        sent = anyio.current_time()
        tg.start_soon(runtime.ask, "s", "jane", "slow")
        await settle()
        await runtime.run_in_session("s", step)
        [step_deadline] = {deadline for hook, seq, deadline in lifecycle.calls if seq == 1}
    assert step_deadline == pytest.approx(sent + 2 + 5, abs=0.01)


async def test_app_step_refused_by_the_lifecycle_fails_with_its_error_and_the_session_goes_on() -> None:
    ran: list[bool] = []
    events: list[va.RuntimeEvent] = []

    async def step() -> None:
        ran.append(True)

    config = make_config(scripted("p1"))
    async with va.open_runtime(config, lifecycle=Refusing(), event_hook=events.append) as runtime:
        for _ in range(5):  # more than max_restarts: none of them is a crash
            with pytest.raises(va.ValisError, match="is not ours") as caught:
                await runtime.run_in_session("s", step)
            assert type(caught.value) is va.ValisError
    assert ran == []
    assert not [e for e in events if e.kind == va.EventKind.ACTOR_RESTARTED]


async def test_app_step_on_the_default_lifecycle_builds_no_message_info(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    def counting(*args: object) -> va.MessageInfo:
        built.append(args)
        return va.MessageInfo(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_session, "MessageInfo", counting)

    async def step() -> str:
        return "done"

    class OnlyActivate(va.SessionLifecycle):  # no hook around messages: the default path
        async def activate(self, session_id: str) -> None:
            pass

    lifecycles: tuple[va.SessionLifecycle | None, ...] = (None, OnlyActivate())
    for lifecycle in lifecycles:
        async with va.open_runtime(make_config(scripted("p1")), lifecycle=lifecycle) as runtime:
            assert await runtime.run_in_session("s", step) == "done"
            assert (await runtime.ask("s", "jane", "hi")).text == "p1: hi"
    assert built == []
    async with va.open_runtime(make_config(scripted("p1")), lifecycle=Recording()) as runtime:
        await runtime.run_in_session("s", step)
    assert len(built) == 1  # the check above would see one
