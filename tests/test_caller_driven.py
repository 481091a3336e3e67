"""A message of an idle session answered in its caller's task (``SessionActor.serve``).

With the default lifecycle, ``ask`` on a session that has no task and nothing queued runs
the message in the caller's own task; messages sent meanwhile queue in the mailbox and the
session's task takes them over. The guarantees are the actor's: FIFO, one outcome per
message, a caller who leaves cancels its attempts, a crash is supervised, closing waits.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import anyio
import pytest

import valis_actors as va
from valis_actors._memory._store import InProcessStore
from valis_actors.testing import EventRecorder, Step

from .support import make_config, provider, scripted, settle

pytestmark = pytest.mark.anyio


class TaskRecorder:
    """A reply function that notes which task ran each provider call."""

    def __init__(self) -> None:
        self.tasks: dict[str, int] = {}

    def __call__(self, request: va.ProviderRequest) -> str:
        self.tasks[request.message] = anyio.get_current_task().id
        return f"ok: {request.message}"


class Hooked(va.SessionLifecycle):
    async def after_reply(self, message: va.MessageInfo) -> None:
        pass


async def test_an_idle_sessions_message_runs_in_the_callers_task() -> None:
    where = TaskRecorder()
    config = make_config(scripted("p1", default=Step.compute(where)))
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "one")
        assert reply.text == "ok: one"
        assert where.tasks["one"] == anyio.get_current_task().id
        # Nothing of the session's runs or waits between messages.
        assert runtime.statistics().waiting_sessions == 0
        await runtime.ask("s", "jane", "two")
        assert where.tasks["two"] == anyio.get_current_task().id


async def test_a_lifecycle_with_hooks_keeps_every_message_in_the_sessions_task() -> None:
    where = TaskRecorder()
    config = make_config(scripted("p1", default=Step.compute(where)))
    async with va.open_runtime(config, lifecycle=Hooked()) as runtime:
        await runtime.ask("s", "jane", "one")
        assert where.tasks["one"] != anyio.get_current_task().id


async def test_messages_sent_meanwhile_queue_behind_and_keep_their_order() -> None:
    where = TaskRecorder()
    config = make_config(scripted("p1", default=Step.compute(where, delay=1)))
    recorder = EventRecorder()
    order: list[int] = []
    callers: dict[int, int] = {}
    async with va.open_runtime(config, event_hook=recorder) as runtime:

        async def call(i: int) -> None:
            callers[i] = anyio.get_current_task().id
            reply = await runtime.ask("s", "jane", f"m{i}")
            assert reply.text == f"ok: m{i}"
            order.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(call, i)
                await settle()
        calls = provider(runtime).calls
        # m0 ran in its caller's task; the rest queued and the session's task answered them.
        assert where.tasks["m0"] == callers[0]
        assert all(where.tasks[f"m{i}"] != callers[i] for i in range(1, 6))
        await anyio.sleep(5)  # the session's task parks once its mailbox stays empty
        assert runtime.statistics().waiting_sessions == 0
        await runtime.ask("s", "jane", "again")
        assert where.tasks["again"] == anyio.get_current_task().id
    assert order == list(range(6))
    for before, after in itertools.pairwise(calls):
        assert before.ended is not None and after.started >= before.ended
    recorder.check_all(config)


async def test_a_queued_caller_with_a_tighter_deadline_tightens_the_running_message() -> None:
    config = make_config(scripted("p1", Step.answer(delay=20), Step.answer()))
    async with va.open_runtime(config) as runtime:
        replies: list[va.Reply] = []

        async def first() -> None:
            replies.append(await runtime.ask("s", "jane", "slow"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await settle()
            started = anyio.current_time()
            second = await runtime.ask("s", "jane", "quick", deadline=5)
            assert anyio.current_time() - started <= 5
        # The first was cut short (answered by the persona fallback) so the second is in time.
        assert replies[0].fallback_used
        assert second.session_id == "s"


async def test_a_caller_who_leaves_cancels_its_attempt_and_the_session_goes_on() -> None:
    config = make_config(scripted("p1", Step.hang()))
    recorder = EventRecorder()
    async with va.open_runtime(config, event_hook=recorder) as runtime:
        with anyio.move_on_after(2):
            await runtime.ask("s", "jane", "hangs")
        assert runtime.statistics().attempts_in_flight == 0
        assert [e.kind for e in recorder.of_kind(va.EventKind.MESSAGE_DROPPED)] == [va.EventKind.MESSAGE_DROPPED]
        reply = await runtime.ask("s", "jane", "next")
        assert reply.text == "p1: next"
        calls = provider(runtime).calls
    assert [(c.message, c.outcome) for c in calls] == [("hangs", "cancelled"), ("next", "answer")]
    recorder.check_all(config)


class GatedStore(InProcessStore):
    """Commits wait for ``gate`` (a slow disk), so a caller can leave while its turn commits."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = anyio.Event()
        self.committing = anyio.Event()

    async def append(self, rows: Sequence[tuple[str, va.Turn]], max_stored: int) -> None:  # type: ignore[override]
        self.committing.set()
        await self.gate.wait()
        super().append(rows, max_stored)


async def test_a_caller_who_leaves_while_its_turn_commits_leaves_no_stale_history() -> None:
    store = GatedStore()
    config = make_config(scripted("p1"))
    async with va.open_runtime(config, memory_store=store) as runtime:
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def leaves() -> None:
                with scope:
                    await runtime.ask("s", "jane", "first")

            tg.start_soon(leaves)
            await store.committing.wait()
            scope.cancel()
        store.gate.set()
        await anyio.sleep(1)  # the memory actor commits the turn its caller left
        await runtime.ask("s", "jane", "second")
        calls = provider(runtime).calls
    # The second message was sent with the committed first turn: the cache was not kept stale.
    assert [t.user for t in calls[-1].history] == ["first"]


async def test_a_crash_in_the_callers_task_is_supervised_like_one_in_the_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = EventRecorder()
    async with va.open_runtime(make_config(scripted("p1")), event_hook=recorder) as runtime:
        context = runtime._context
        render = context.system_prompt
        crashes = iter([True])

        def flaky(*args: object) -> str:
            if next(crashes, False):
                raise ZeroDivisionError("injected bug")
            return render(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(context, "system_prompt", flaky)
        with pytest.raises(va.ActorCrashedError, match="crashed while answering") as info:
            await runtime.ask("s", "jane", "first")
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        assert (await runtime.ask("s", "jane", "second")).text == "p1: second"
    assert len(recorder.of_kind(va.EventKind.ACTOR_RESTARTED)) == 1


async def test_closing_waits_for_a_message_answered_in_another_task() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=5)))
    replies: list[va.Reply] = []
    async with anyio.create_task_group() as outer, va.open_runtime(config) as runtime:

        async def caller() -> None:
            replies.append(await runtime.ask("s", "jane", "late"))

        outer.start_soon(caller)
        await settle()
    assert [r.text for r in replies] == ["p1: late"]
    assert runtime.closed


async def test_an_aborted_runtime_ends_a_message_answered_in_another_task() -> None:
    config = make_config(scripted("p1", Step.hang()))
    errors: list[BaseException] = []
    async with anyio.create_task_group() as outer:
        with pytest.raises(LookupError):
            async with va.open_runtime(config) as runtime:

                async def caller() -> None:
                    try:
                        await runtime.ask("s", "jane", "hangs")
                    except va.RuntimeClosedError as exc:
                        errors.append(exc)

                outer.start_soon(caller)
                await settle()
                raise LookupError("leave")
    assert [str(e) for e in errors] == ["the runtime closed while answering this message"]


async def test_an_idle_session_answered_by_its_callers_is_passivated() -> None:
    config = make_config(scripted("p1"), session={"idle_timeout": 60})
    recorder = EventRecorder()
    async with va.open_runtime(config, event_hook=recorder) as runtime:
        await runtime.ask("s", "jane", "one")
        await anyio.sleep(30)
        await runtime.ask("s", "jane", "two")  # idle again from here
        await anyio.sleep(50)
        assert runtime.statistics().live_sessions == 1
        await anyio.sleep(26)
        assert runtime.statistics().live_sessions == 0
    kinds = [e.kind for e in recorder.events if e.kind.startswith("session_")]
    assert kinds == ["session_activated", "session_passivated"]


@pytest.mark.parametrize("answers", ["scripted", "fallback"])
async def test_a_caller_asking_in_a_loop_of_instant_answers_lets_other_tasks_run(answers: str) -> None:
    # Neither the scripted computation nor the persona fallback awaits anything: the
    # runtime's checkpoint after such an answer is what lets the other task in.
    step = Step.compute(lambda request: "instant") if answers == "scripted" else Step.unavailable()
    # Memory off: recording a turn would wait for the memory actor, which yields anyway.
    config = make_config(scripted("p1", default=step), memory={"enabled": False})
    ran: list[int] = []
    async with va.open_runtime(config) as runtime, anyio.create_task_group() as tg:

        async def other() -> None:
            ran.append(len(ran))

        tg.start_soon(other)
        # trio may run a task woken in the same batch after the checkpointing one: two
        # answers (two checkpoints) are what guarantee the other task its turn.
        for message in ("one", "two"):
            reply = await runtime.ask("s", "jane", message)
            assert reply.fallback_used is (answers == "fallback")
        assert ran == [0], "answers that never suspended did not let another task run"
