"""Streaming: same order and cascade as ask, failover only before the first chunk, and hedging."""

from __future__ import annotations

import anyio
import pytest

import valis_actors as va
from valis_actors.testing import Step

from .support import make_config, provider, scripted, settle

pytestmark = pytest.mark.anyio

OUT = va.AttemptOutcome


async def collect(runtime: va.Runtime, session: str, message: str, **kw: float) -> tuple[list[str], va.Reply]:
    async with runtime.stream(session, "jane", message, **kw) as chunks:
        received = [text async for text in chunks]
    assert chunks.reply is not None
    return received, chunks.reply


async def test_stream_yields_chunks_then_exposes_reply_metadata() -> None:
    config = make_config(scripted("p1", chunks=3, model="m1"))
    async with va.open_runtime(config) as runtime:
        async with runtime.stream("s", "jane", "hello there") as chunks:
            received = [text async for text in chunks]
        assert len(received) == 3
        assert "".join(received) == "p1: hello there" == chunks.text
        assert (chunks.provider, chunks.model, chunks.fallback_used) == ("p1", "m1", False)
        assert chunks.usage == va.Usage(2, 3)
        assert [a.outcome for a in chunks.attempts] == [OUT.SUCCESS]


async def test_failure_before_the_first_chunk_fails_over() -> None:
    config = make_config(scripted("p1", default=Step.transient()), scripted("p2"), retry_schedule=[])
    async with va.open_runtime(config) as runtime:
        received, reply = await collect(runtime, "s", "hi")
    assert "".join(received) == "p2: hi"
    assert reply.provider == "p2"
    assert [a.outcome for a in reply.attempts] == [OUT.TRANSIENT, OUT.SUCCESS]


async def test_no_first_token_in_time_fails_over() -> None:
    config = make_config(
        scripted("p1", Step.answer(delay=10)), scripted("p2"), first_token_timeout=2, retry_schedule=[]
    )
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        _, reply = await collect(runtime, "s", "hi")
        assert anyio.current_time() - start == pytest.approx(2)
    assert reply.provider == "p2"
    assert reply.attempts[0].outcome is OUT.TIMEOUT


async def test_cut_after_the_first_chunk_is_an_incomplete_answer_never_a_complete_one() -> None:
    config = make_config(scripted("p1", Step.cut(after_chunks=1), chunks=3), scripted("p2"))
    async with va.open_runtime(config) as runtime:
        received: list[str] = []
        with pytest.raises(va.IncompleteAnswerError, match="incomplete") as info:
            async with runtime.stream("s", "jane", "hello there") as chunks:
                async for text in chunks:
                    received.append(text)
        assert len(received) == 1
        assert chunks.reply is None
        assert info.value.provider == "p1"
        assert provider(runtime, "p2").calls == []  # no failover after the first chunk
        # the session goes on
        assert (await runtime.ask("s", "jane", "next")).text == "p1: next"


async def test_stall_after_the_first_chunk_ends_with_incomplete_answer() -> None:
    config = make_config(scripted("p1", Step.stall(after_chunks=2), chunks=4), stream_idle_timeout=3)
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        with pytest.raises(va.IncompleteAnswerError, match="stalled"):
            await collect(runtime, "s", "one two three four")
        assert anyio.current_time() - start == pytest.approx(3)


async def test_fallback_streams_too() -> None:
    config = make_config(scripted("p1", default=Step.permanent()))
    async with va.open_runtime(config) as runtime:
        received, reply = await collect(runtime, "s", "I need help")
    assert reply.fallback_used and len(received) > 1
    assert "".join(received) == reply.text


async def test_streams_and_asks_of_one_session_keep_their_order() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=1)))
    order: list[str] = []
    async with va.open_runtime(config) as runtime:
        async def streamed(message: str) -> None:
            await collect(runtime, "s", message)
            order.append(message)

        async def asked(message: str) -> None:
            await runtime.ask("s", "jane", message)
            order.append(message)

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(streamed if i % 2 else asked, f"m{i}")
                await settle()
    assert order == [f"m{i}" for i in range(6)]


async def test_leaving_the_stream_early_cancels_the_attempt() -> None:
    config = make_config(scripted("p1", Step.answer(delay=0), chunks=5))
    async with va.open_runtime(config) as runtime:
        p1 = provider(runtime)
        p1.script(Step("answer", chunk_delay=1.0))
        async with runtime.stream("s", "jane", "a b c d e f g h i j") as chunks:
            async for _ in chunks:
                break
        await settle()
        assert runtime.statistics().attempts_in_flight == 0
        assert (await runtime.ask("s", "jane", "next")).text == "p1: next"


async def test_hedging_starts_the_next_provider_and_the_first_success_wins() -> None:
    config = make_config(
        scripted("slow", default=Step.answer(delay=10)), scripted("fast", default=Step.answer(delay=1)),
        hedge_after=2,
    )
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        assert anyio.current_time() - start == pytest.approx(3)
        await settle()
        assert runtime.statistics().attempts_in_flight == 0
    assert reply.provider == "fast"
    outcomes = {a.provider: a.outcome for a in reply.attempts}
    assert outcomes == {"slow": OUT.CANCELLED, "fast": OUT.SUCCESS}


async def test_hedging_off_waits_for_the_slow_provider() -> None:
    config = make_config(scripted("slow", default=Step.answer(delay=8)), scripted("fast"))
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.provider == "slow"


async def test_hedging_moves_on_at_once_when_the_first_provider_fails() -> None:
    config = make_config(
        scripted("bad", default=Step.permanent(delay=0.5)), scripted("good"), hedge_after=5
    )
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        assert anyio.current_time() - start == pytest.approx(0.5)
    assert reply.provider == "good"


async def test_hedged_stream_first_chunk_wins() -> None:
    config = make_config(
        scripted("slow", default=Step.answer(delay=10)), scripted("fast", default=Step.answer(delay=1)),
        hedge_after=2,
    )
    async with va.open_runtime(config) as runtime:
        received, reply = await collect(runtime, "s", "hi")
    assert "".join(received) == "fast: hi"
    assert reply.provider == "fast"
