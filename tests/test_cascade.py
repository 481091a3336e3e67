"""The cascade: retry schedule, Retry-After, permanent errors, deadlines, concurrency bound."""

from __future__ import annotations

import itertools
import logging

import anyio
import pytest

import valis_actors as va
from valis_actors.testing import Step

from .support import make_config, provider, scripted, settle

pytestmark = pytest.mark.anyio

OUT = va.AttemptOutcome


async def test_transient_failures_are_retried_after_the_schedule_delays() -> None:
    config = make_config(scripted("p1", Step.transient(), Step.transient()), retry_schedule=[1, 2, 4])
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
        starts = [c.started for c in provider(runtime).calls]
    assert reply.provider == "p1"
    assert [a.outcome for a in reply.attempts] == [OUT.TRANSIENT, OUT.TRANSIENT, OUT.SUCCESS]
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx([1, 2])


async def test_n_delays_allow_n_retries_then_the_next_provider() -> None:
    config = make_config(
        scripted("p1", default=Step.transient()), scripted("p2"), retry_schedule=[1, 1, 1]
    )
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
        assert len(provider(runtime, "p1").calls) == 4
    assert reply.provider == "p2"
    assert [a.provider for a in reply.attempts] == ["p1"] * 4 + ["p2"]


async def test_retry_after_wins_when_longer_than_the_schedule() -> None:
    config = make_config(scripted("p1", Step.rate_limited(retry_after=7)), retry_schedule=[1])
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
        first, second = provider(runtime).calls
    assert second.started - first.started == pytest.approx(7)
    assert reply.attempts[0].outcome is OUT.RATE_LIMITED
    assert reply.attempts[0].retry_after == 7


async def test_schedule_wins_when_longer_than_retry_after() -> None:
    config = make_config(scripted("p1", Step.rate_limited(retry_after=0.5)), retry_schedule=[3])
    async with va.open_runtime(config) as runtime:
        await runtime.ask("s", "jane", "hi")
        first, second = provider(runtime).calls
    assert second.started - first.started == pytest.approx(3)


async def test_permanent_error_goes_to_the_next_provider_without_retry() -> None:
    config = make_config(scripted("p1", default=Step.permanent()), scripted("p2"))
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
        assert len(provider(runtime, "p1").calls) == 1
    assert reply.provider == "p2"
    assert [a.outcome for a in reply.attempts] == [OUT.PERMANENT, OUT.SUCCESS]


async def test_unavailable_provider_is_skipped_at_once_without_a_call() -> None:
    config = make_config(scripted("p1"), scripted("p2"))
    async with va.open_runtime(config) as runtime:
        provider(runtime, "p1").unavailable = "P1_KEY not set"
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        assert anyio.current_time() == start
        assert provider(runtime, "p1").calls == []
    assert reply.provider == "p2"
    assert reply.attempts[0] == va.Attempt("p1", OUT.UNAVAILABLE, "P1_KEY not set")


async def test_content_policy_refusal_does_not_fail_over_by_default() -> None:
    config = make_config(scripted("p1", Step.content_policy()), scripted("p2"))
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
        assert provider(runtime, "p2").calls == []
    assert reply.fallback_used
    assert reply.refusal is not None and "content policy" in reply.refusal


async def test_content_policy_failover_switch_tries_the_next_provider() -> None:
    config = make_config(scripted("p1", Step.content_policy()), scripted("p2"), content_policy_failover=True)
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.provider == "p2"
    assert reply.refusal is None


async def test_all_providers_failing_gives_the_persona_fallback() -> None:
    config = make_config(scripted("p1", default=Step.permanent()), scripted("p2", default=Step.permanent()))
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "sam", "how do I find my way in a new city?")
    assert reply.fallback_used
    assert reply.provider == "persona_fallback"
    assert reply.model == "persona-fallback"
    assert reply.text


async def test_reply_arrives_by_the_deadline_when_a_provider_hangs() -> None:
    config = make_config(scripted("p1", default=Step.hang()), response_deadline=5, provider_timeout=100)
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        elapsed = anyio.current_time() - start
    assert elapsed <= 5
    assert reply.fallback_used
    assert reply.attempts[-1].outcome is OUT.DEADLINE


async def test_per_call_deadline_overrides_the_configured_one() -> None:
    config = make_config(scripted("p1", default=Step.hang()), response_deadline=50, provider_timeout=100)
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi", deadline=2)
        assert anyio.current_time() - start <= 2
    assert reply.fallback_used


async def test_a_silent_provider_costs_one_timeout_then_the_next_provider_answers() -> None:
    config = make_config(scripted("p1", default=Step.hang()), scripted("p2"), provider_timeout=3, retry_schedule=[1, 2])
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        assert anyio.current_time() - start == pytest.approx(3)
    assert [a.outcome for a in reply.attempts] == [OUT.TIMEOUT, OUT.SUCCESS]
    assert reply.provider == "p2"


async def test_with_retry_timeouts_a_timeout_is_retried_on_the_same_provider() -> None:
    config = make_config(scripted("p1", Step.hang()), provider_timeout=3, retry_schedule=[1], retry_timeouts=True)
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        assert anyio.current_time() - start == pytest.approx(4)
    assert [a.outcome for a in reply.attempts] == [OUT.TIMEOUT, OUT.SUCCESS]
    assert reply.attempts[0].duration == pytest.approx(3)


async def test_retry_that_would_miss_the_deadline_is_not_started() -> None:
    config = make_config(
        scripted("p1", Step.rate_limited(retry_after=60)), response_deadline=10, retry_schedule=[1]
    )
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        assert anyio.current_time() - start < 0.01
        assert len(provider(runtime).calls) == 1
    assert reply.fallback_used
    assert reply.attempts[-1].outcome is OUT.DEADLINE


async def test_deadline_holds_for_messages_queued_behind_slow_ones() -> None:
    config = make_config(scripted("p1", default=Step.hang()), response_deadline=4)
    done: dict[str, float] = {}
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()

        async def call(i: int) -> None:
            await runtime.ask("s", "jane", f"m{i}")
            done[f"m{i}"] = anyio.current_time() - start

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(call, i)
    assert all(elapsed <= 4 for elapsed in done.values())


async def test_max_concurrent_requests_is_never_exceeded() -> None:
    config = make_config(
        scripted("p1", default=Step.answer(delay=1)), scripted("p2", default=Step.answer(delay=1)),
        max_concurrent_requests=5, circuit_breaker_threshold=1000,
    )
    async with va.open_runtime(config) as runtime:
        p1 = provider(runtime, "p1")
        p1.script(*[Step.transient()] * 30)
        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(runtime.ask, f"s{i}", "jane", "hi")
        total = p1.max_in_flight + provider(runtime, "p2").max_in_flight
        peak = max(c.concurrency for c in p1.calls)
    assert peak <= 5
    assert total <= 10  # each bounded by the shared limit of 5
    assert p1.max_in_flight == 5


async def test_a_provider_bug_is_a_failed_attempt_logged_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(scripted("p1", Step.crash()), scripted("p2"))
    with caplog.at_level(logging.ERROR, logger="valis_actors.cascade"):
        async with va.open_runtime(config) as runtime:
            reply = await runtime.ask("s", "jane", "hi")
    assert reply.provider == "p2"
    assert reply.attempts[0].outcome is OUT.ERROR
    assert "RuntimeError" in (reply.attempts[0].error or "")
    # The traceback is in the message, redacted; exc_info would be formatted raw (tests/test_secrets.py).
    assert any("Traceback (most recent call last)" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)


async def test_reply_names_the_answering_provider_and_its_usage_not_failed_ones() -> None:
    config = make_config(scripted("p1", default=Step.transient()), scripted("p2", model="m2"), retry_schedule=[])
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "three words here")
    assert (reply.provider, reply.model) == ("p2", "m2")
    assert reply.usage == va.Usage(3, 4)  # "p2: three words here"
    assert reply.attempts[0].usage is None


async def test_a_queued_message_with_a_tighter_deadline_is_still_answered_in_time_and_in_order() -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=10)), response_deadline=30)
    finished: list[tuple[str, float]] = []
    async with va.open_runtime(config) as runtime:
        start = anyio.current_time()

        async def call(message: str, deadline: float | None) -> None:
            reply = await runtime.ask("s", "jane", message, deadline=deadline)
            finished.append((reply.text, anyio.current_time()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "slow", None)
            await settle()
            urgent_start = anyio.current_time()
            tg.start_soon(call, "urgent", 2.0)
    # FIFO means "slow" must end first; the urgent caller's deadline cuts it short.
    assert [text.startswith("p1:") for text, _ in finished] == [False, False]
    assert [t for _, t in finished] == pytest.approx([urgent_start + 2.0] * 2, abs=0.01)
    assert finished[0][1] - start < 10
