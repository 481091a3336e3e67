"""The breaker actor: closed -> open -> half-open (one probe) -> closed / open."""

from __future__ import annotations

import anyio
import pytest

import valis_actors as va
from valis_actors._cascade._breaker import LEGAL_TRANSITIONS, CircuitState
from valis_actors.testing import Step

from .support import make_config, provider, scripted, settle

pytestmark = pytest.mark.anyio

OUT = va.AttemptOutcome


def _transitions(events: list[va.RuntimeEvent]) -> list[tuple[str, str]]:
    return [(e.data["from"], e.data["to"]) for e in events if e.kind == va.EventKind.BREAKER_TRANSITION]


async def test_circuit_opens_after_threshold_failures_and_skips_instantly() -> None:
    config = make_config(
        scripted("p1", default=Step.transient()), scripted("p2"),
        circuit_breaker_threshold=3, circuit_breaker_timeout=300, retry_schedule=[],
    )
    events: list[va.RuntimeEvent] = []
    async with va.open_runtime(config, event_hook=events.append) as runtime:
        for i in range(3):
            await runtime.ask(f"s{i}", "jane", "hi")
        await settle()
        assert runtime.statistics().breakers["p1"].state is CircuitState.OPEN
        start = anyio.current_time()
        reply = await runtime.ask("s9", "jane", "hi")
        assert anyio.current_time() == start
        assert len(provider(runtime, "p1").calls) == 3
    assert reply.attempts[0].outcome is OUT.CIRCUIT_OPEN
    assert reply.provider == "p2"
    assert _transitions(events) == [("closed", "open")]


async def test_half_open_lets_exactly_one_probe_through_then_closes_on_success() -> None:
    config = make_config(
        scripted("p1", default=Step.transient()), scripted("p2"),
        circuit_breaker_threshold=2, circuit_breaker_timeout=300, retry_schedule=[],
    )
    events: list[va.RuntimeEvent] = []
    async with va.open_runtime(config, event_hook=events.append) as runtime:
        p1 = provider(runtime, "p1")
        for i in range(2):
            await runtime.ask(f"s{i}", "jane", "hi")
        await anyio.sleep(300)  # virtual time: the breaker timeout passes at once
        p1.set_default(Step.answer(delay=1))
        replies: list[va.Reply] = []

        async def call(i: int) -> None:
            replies.append(await runtime.ask(f"probe{i}", "jane", "hi"))

        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(call, i)
        assert p1.max_in_flight == 1
        answered_by_p1 = [r for r in replies if r.provider == "p1"]
        assert len(answered_by_p1) == 1
        await settle()
        assert runtime.statistics().breakers["p1"].state is CircuitState.CLOSED
        reply = await runtime.ask("after", "jane", "hi")
        assert reply.provider == "p1"
    assert _transitions(events) == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_failed_probe_reopens_the_circuit() -> None:
    config = make_config(
        scripted("p1", default=Step.transient()), scripted("p2"),
        circuit_breaker_threshold=1, circuit_breaker_timeout=60, retry_schedule=[],
    )
    events: list[va.RuntimeEvent] = []
    async with va.open_runtime(config, event_hook=events.append) as runtime:
        await runtime.ask("a", "jane", "hi")
        await anyio.sleep(60)
        await runtime.ask("b", "jane", "hi")  # the probe fails
        await settle()
        snap = runtime.statistics().breakers["p1"]
        assert snap.state is CircuitState.OPEN
        assert snap.times_opened == 2
    assert _transitions(events) == [("closed", "open"), ("open", "half_open"), ("half_open", "open")]
    assert all(t in {(a.value, b.value) for a, b in LEGAL_TRANSITIONS} for t in _transitions(events))


async def test_cancelled_probe_gives_its_permit_back() -> None:
    config = make_config(
        scripted("p1", default=Step.transient()), scripted("p2"),
        circuit_breaker_threshold=1, circuit_breaker_timeout=60, retry_schedule=[],
    )
    async with va.open_runtime(config) as runtime:
        p1 = provider(runtime, "p1")
        await runtime.ask("a", "jane", "hi")
        await anyio.sleep(60)
        p1.set_default(Step.hang())
        with anyio.move_on_after(1):
            await runtime.ask("b", "jane", "probe then give up")
        await settle()
        assert runtime.statistics().breakers["p1"].probes_in_flight == 0
        p1.set_default(Step.answer())
        reply = await runtime.ask("c", "jane", "next probe")
        assert reply.provider == "p1"


async def test_flapping_provider_opens_probes_once_and_closes() -> None:
    config = make_config(
        scripted("p1", *[Step.transient()] * 3), scripted("p2"),
        circuit_breaker_threshold=3, circuit_breaker_timeout=30, retry_schedule=[],
    )
    async with va.open_runtime(config) as runtime:
        providers = []
        for i in range(6):
            providers.append((await runtime.ask(f"s{i}", "jane", "hi")).provider)
            await settle()
        await anyio.sleep(30)
        providers.append((await runtime.ask("late", "jane", "hi")).provider)
        await settle()
        assert runtime.statistics().breakers["p1"].state is CircuitState.CLOSED
        assert len(provider(runtime, "p1").calls) == 4
    assert providers == ["p2"] * 6 + ["p1"]
