"""The breaker actor's sync port (``breaker_sync=``), through the real runtime, on virtual time.

The sync here is an in-process table standing for the shared one (the Redis-backed
sync is tested against a real redis-server in tests/test_cluster_runtime.py); these
tests pin the actor's side of the contract: it adopts what the sync answers through
legal transitions, and decides locally while the sync answers None.
"""

from __future__ import annotations

import anyio
import pytest

import valis_actors as va
from valis_actors._cascade import SharedState
from valis_actors._cascade._breaker import LEGAL_TRANSITIONS, CircuitState
from valis_actors.testing import Step

from .support import make_config, provider, scripted, settle

pytestmark = pytest.mark.anyio


class TableSync:
    """A shared circuit table in this process; ``down`` makes every call answer None."""

    refresh_interval = 1.0

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.failures = 0
        self.state = CircuitState.CLOSED
        self.probe_taken = False
        self.down = False
        self.calls = 0

    def _view(self) -> SharedState | None:
        if self.down:
            return None
        return SharedState(self.state, 30.0 if self.state is CircuitState.OPEN else 0.0, self.failures,
                           self.probe_taken)

    async def read(self, provider: str) -> SharedState | None:
        self.calls += 1
        return self._view()

    async def report(self, provider: str, success: bool, probe: bool) -> SharedState | None:
        self.calls += 1
        if self.down:
            return None
        if success:
            self.failures = 0
            if probe:
                self.state, self.probe_taken = CircuitState.CLOSED, False
        else:
            self.failures += 1
            if self.failures >= self.threshold or probe:
                self.state, self.probe_taken = CircuitState.OPEN, False
        return self._view()

    async def acquire_probe(self, provider: str) -> tuple[bool, bool] | None:
        self.calls += 1
        if self.down:
            return None
        if self.state is CircuitState.HALF_OPEN and not self.probe_taken:
            self.probe_taken = True
            return True, True
        return self.state is CircuitState.CLOSED, False

    async def release_probe(self, provider: str) -> None:
        self.probe_taken = False


def transitions(events: list[va.RuntimeEvent]) -> list[tuple[str, str]]:
    return [(e.data["from"], e.data["to"]) for e in events if e.kind == va.EventKind.BREAKER_TRANSITION]


async def test_a_circuit_opened_elsewhere_is_adopted_on_refresh_through_legal_steps() -> None:
    sync = TableSync(threshold=3)
    config = make_config(scripted("p1"), circuit_breaker_threshold=3, retry_schedule=[])
    events: list[va.RuntimeEvent] = []
    async with va.open_runtime(config, event_hook=events.append, breaker_sync=sync) as runtime:
        sync.state = CircuitState.OPEN  # another process opened it
        await anyio.sleep(1.5)  # one refresh
        assert runtime.statistics().breakers["p1"].state is CircuitState.OPEN
        reply = await runtime.ask("s1", "jane", "hi")
        assert reply.fallback_used and provider(runtime).calls == []
        sync.state = CircuitState.HALF_OPEN  # its cooldown ended
        await anyio.sleep(1.0)
        assert (await runtime.ask("s2", "jane", "hi")).text == "p1: hi"  # this process got the probe
        await settle()
        assert sync.state is CircuitState.CLOSED and not sync.probe_taken
        sync.state = CircuitState.HALF_OPEN  # closed -> half-open needs the open step between
        await anyio.sleep(1.0)
    steps = transitions(events)
    assert steps[:3] == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert all((CircuitState(a), CircuitState(b)) in LEGAL_TRANSITIONS for a, b in steps)


async def test_failures_count_across_processes_through_the_sync() -> None:
    sync = TableSync(threshold=3)
    sync.failures = 2  # two failures counted by other processes
    config = make_config(scripted("p1", default=Step.transient()), circuit_breaker_threshold=3, retry_schedule=[])
    async with va.open_runtime(config, breaker_sync=sync) as runtime:
        await runtime.ask("s1", "jane", "hi")
        await settle()
        assert runtime.statistics().breakers["p1"].state is CircuitState.OPEN  # one local failure was enough
        await runtime.ask("s2", "jane", "hi")
        assert len(provider(runtime).calls) == 1


async def test_a_sync_that_is_down_leaves_the_circuit_to_the_local_state_machine() -> None:
    sync = TableSync(threshold=100)
    sync.down = True
    config = make_config(scripted("p1", default=Step.transient()), circuit_breaker_threshold=2, retry_schedule=[])
    async with va.open_runtime(config, breaker_sync=sync) as runtime:
        for n in range(4):
            await runtime.ask(f"s{n}", "jane", "hi")
            await settle()
        assert runtime.statistics().breakers["p1"].state is CircuitState.OPEN  # opened locally at 2
        assert len(provider(runtime).calls) == 2
        asked = sync.calls
        assert asked <= 2  # after the first None, the actor stopped asking until the next refresh
