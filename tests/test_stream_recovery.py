"""A cut streamed answer is continued (prefill), or restarted for event readers, never shown as complete.

Virtual time, both backends, scripted providers that continue a prefill like a model
does (``prefill: true``: they answer only the rest of their text). The fake-server
versions of the same faults, through the official SDKs, are in test_runtime_http.py.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import valis_actors as va
from valis_actors.testing import Step

from .support import make_config, provider, scripted

pytestmark = pytest.mark.anyio

OUT = va.AttemptOutcome
TEXT = "Once upon a time there was a runtime that never lied about its answers."


def continuing(name: str, *steps: Step, default: Step | None = None, **options: Any) -> dict[str, Any]:
    """A scripted entry that continues prefills, answering TEXT by default."""
    return scripted(name, *steps, default=default or Step.answer(TEXT), prefill=True, chunks=6, **options)


async def read_text(runtime: va.Runtime, session: str = "s", **kw: Any) -> tuple[str, va.Reply]:
    async with runtime.stream(session, "jane", "tell me a story", **kw) as chunks:
        received = [text async for text in chunks]
    assert chunks.reply is not None
    return "".join(received), chunks.reply


async def read_events(runtime: va.Runtime, session: str = "s") -> tuple[list[str | va.Restart], va.Reply]:
    async with runtime.stream(session, "jane", "tell me a story") as chunks:
        events = [event async for event in chunks.events()]
    assert chunks.reply is not None
    return events, chunks.reply


def after_last_restart(events: list[str | va.Restart]) -> str:
    shown: list[str] = []
    for event in events:
        if isinstance(event, va.Restart):
            shown.clear()
        else:
            shown.append(event)
    return "".join(shown)


async def test_a_cut_answer_is_continued_by_the_next_provider_as_one_answer() -> None:
    config = make_config(continuing("a", Step("cut", text=TEXT, after_chunks=2)), continuing("b"))
    async with va.open_runtime(config) as runtime:
        joined, reply = await read_text(runtime)
        b = provider(runtime, "b")
    assert joined == reply.text == TEXT
    # b was asked to continue what a had sent, and produced the rest of it.
    assert len(b.calls) == 1
    assert [s.provider for s in reply.segments] == ["a", "b"]
    assert sum(s.characters for s in reply.segments) == len(TEXT)
    assert [a.outcome for a in reply.attempts] == [OUT.TRANSIENT, OUT.SUCCESS]
    assert not reply.fallback_used


async def test_the_same_provider_continues_its_own_answer_after_its_retry_delay() -> None:
    config = make_config(continuing("a", Step("cut", text=TEXT, after_chunks=3)), retry_schedule=[1.5])
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        joined, reply = await read_text(runtime)
        took = anyio.current_time() - start
        a = provider(runtime, "a")
    assert joined == reply.text == TEXT
    assert [s.provider for s in reply.segments] == ["a", "a"]
    assert 1.5 <= took < 1.6  # one retry delay, no timeout
    assert len(a.calls) == 2


async def test_a_stall_moves_to_the_next_provider_after_one_idle_timeout() -> None:
    config = make_config(
        continuing("a", Step("stall", text=TEXT, after_chunks=2)), continuing("b"), stream_idle_timeout=4
    )
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        joined, reply = await read_text(runtime)
        took = anyio.current_time() - start
    assert joined == reply.text == TEXT
    assert [a.outcome for a in reply.attempts] == [OUT.TIMEOUT, OUT.SUCCESS]
    assert 4 <= took < 4.1


async def test_a_prefill_rejection_is_recognised_and_the_next_provider_continues() -> None:
    config = make_config(
        continuing("a", Step("cut", text=TEXT, after_chunks=2)),
        continuing("b", default=Step.reject_prefill(TEXT)),
        continuing("c"),
    )
    async with va.open_runtime(config) as runtime:
        joined, reply = await read_text(runtime)
        assert joined == reply.text == TEXT
        assert [a.outcome for a in reply.attempts] == [OUT.TRANSIENT, OUT.PREFILL_REJECTED, OUT.SUCCESS]
        assert [s.provider for s in reply.segments] == ["a", "c"]
        # b is not asked to continue again: the next cut goes straight to c.
        provider(runtime, "a").script(Step("cut", text=TEXT, after_chunks=2))
        joined, reply = await read_text(runtime, "s2")
        assert joined == TEXT
        assert [a.provider for a in reply.attempts] == ["a", "c"]


async def test_an_answer_cut_twice_is_continued_twice() -> None:
    config = make_config(
        continuing("a", Step("cut", text=TEXT, after_chunks=1)),
        continuing("b", Step("cut", text=TEXT, after_chunks=2)),
        continuing("c"),
    )
    async with va.open_runtime(config) as runtime:
        joined, reply = await read_text(runtime)
    assert joined == reply.text == TEXT
    assert [s.provider for s in reply.segments] == ["a", "b", "c"]
    assert all(s.characters > 0 for s in reply.segments)
    assert reply.usage is not None and reply.usage.output_tokens > 0


async def test_without_a_provider_that_continues_event_readers_get_a_restart_and_a_fresh_answer() -> None:
    config = make_config(
        scripted("a", Step("cut", text=TEXT, after_chunks=2), default=Step.answer(TEXT), chunks=6),
        retry_schedule=[0.5],
    )
    async with va.open_runtime(config) as runtime:
        events, reply = await read_events(runtime)
    restarts = [e for e in events if isinstance(e, va.Restart)]
    assert len(restarts) == 1 and restarts[0].discarded and TEXT.startswith(restarts[0].discarded)
    assert after_last_restart(events) == reply.text == TEXT
    assert [s.provider for s in reply.segments] == ["a"]


async def test_without_a_provider_that_continues_text_readers_get_incomplete_with_what_they_received() -> None:
    config = make_config(scripted("a", Step("cut", text=TEXT, after_chunks=2), default=Step.answer(TEXT), chunks=6))
    async with va.open_runtime(config) as runtime:
        received: list[str] = []
        with pytest.raises(va.IncompleteAnswerError) as caught:
            async with runtime.stream("s", "jane", "tell me a story") as chunks:
                async for text in chunks:
                    received.append(text)
    assert received and caught.value.received == "".join(received) != TEXT


async def test_a_restarted_answer_falls_back_to_the_persona_when_no_provider_answers() -> None:
    config = make_config(
        scripted("a", Step("cut", text=TEXT, after_chunks=2), default=Step.permanent(), chunks=6), retry_schedule=[]
    )
    async with va.open_runtime(config) as runtime:
        events, reply = await read_events(runtime)
    assert any(isinstance(e, va.Restart) for e in events)
    assert reply.fallback_used and after_last_restart(events) == reply.text


async def test_a_deadline_during_the_continuation_is_incomplete_not_the_fallback() -> None:
    config = make_config(
        continuing("a", Step("cut", text=TEXT, after_chunks=2)),
        continuing("b", default=Step.hang()),
        stream_idle_timeout=60,
        first_token_timeout=60,
    )
    async with va.open_runtime(config) as runtime:
        received: list[str] = []
        with pytest.raises(va.IncompleteAnswerError) as caught:
            async with runtime.stream("s", "jane", "tell me a story", deadline=5) as chunks:
                async for text in chunks:
                    received.append(text)
    assert caught.value.received == "".join(received) and received


async def test_a_hedged_stream_cut_after_its_first_chunk_is_continued() -> None:
    config = make_config(
        continuing("a", Step("cut", text=TEXT, after_chunks=2)),
        continuing("b", default=Step.answer(TEXT, delay=3)),
        hedge_after=1,
    )
    async with va.open_runtime(config) as runtime:
        joined, reply = await read_text(runtime)
    assert joined == reply.text == TEXT
    assert reply.segments[0].provider == "a" and reply.segments[-1].provider == "b"


async def test_a_continued_answer_is_stored_whole_in_memory() -> None:
    config = make_config(continuing("a", Step("cut", text=TEXT, after_chunks=2)), continuing("b"))
    async with va.open_runtime(config) as runtime:
        await read_text(runtime)
        await runtime.ask("s", "jane", "and then?")
        later = provider(runtime, "a").calls[-1]
    # The next message was sent the whole continued answer as history.
    assert later.message == "and then?"
    assert [turn.assistant for turn in later.history] == [TEXT]
