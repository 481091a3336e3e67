"""The response deadline bounds everything a message does; a caller who leaves cancels it at any stage.

Reproductions of the adversarial pass's defects 2-4 (issue "Reliability"), on virtual time.
"""

from __future__ import annotations

import anyio
import pytest

import valis_actors as va
from valis_actors.testing import Step

from .support import make_config, provider, scripted, settle

pytestmark = pytest.mark.anyio


class SlowPreparation(va.SessionLifecycle):
    """Stands for a slow history load or lease wait: ``before_message`` takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def before_message(self, message: va.MessageInfo) -> None:
        await anyio.sleep(self.seconds)


async def test_a_slow_preparation_cannot_make_the_reply_late() -> None:
    # Defect 2: memory I/O ran outside the deadline (a 0.5 s deadline answered after 1.94 s).
    async with va.open_runtime(make_config(scripted("p1")), lifecycle=SlowPreparation(2)) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi", deadline=0.5)
        elapsed = anyio.current_time() - start
    assert elapsed <= 0.5
    assert reply.fallback_used


async def test_a_caller_who_leaves_during_preparation_cancels_the_message_before_any_attempt() -> None:
    # Defect 3: the scope was created after the history load; the provider was still called.
    async with va.open_runtime(make_config(scripted("p1")), lifecycle=SlowPreparation(1)) as runtime:
        with anyio.move_on_after(0.5):
            await runtime.ask("s", "jane", "hi")
        await anyio.sleep(2)
        assert provider(runtime).calls == []


async def test_a_dropped_queued_message_gives_back_the_deadline_it_lent() -> None:
    # Defect 4: B (0.5 s) left the queue after 0.05 s, yet A (30 s, needs 2 s) got the fallback at 0.6 s.
    config = make_config(scripted("p1", default=Step.answer(delay=2)))
    async with va.open_runtime(config) as runtime, anyio.create_task_group() as tg:
        replies: list[va.Reply] = []

        async def caller_a() -> None:
            replies.append(await runtime.ask("s", "jane", "a", deadline=30))

        tg.start_soon(caller_a)
        await settle()
        with anyio.move_on_after(0.05):
            await runtime.ask("s", "jane", "b", deadline=0.5)
    assert replies[0].provider == "p1" and not replies[0].fallback_used
