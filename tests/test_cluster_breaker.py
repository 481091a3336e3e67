"""The shared breaker against a real redis-server: one circuit per provider for every process."""

from __future__ import annotations

import anyio
import pytest

from tests.test_cluster_redis import (  # noqa: F401 - the shared fixtures
    RedisServer,
    anyio_backend_fixture,
    collect_coredis_garbage,
    redis_fixture,
    redis_server_fixture,
)
from valis_actors import CircuitState
from valis_actors.cluster import RedisConnection, SharedBreaker

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")]


def processes(redis: RedisConnection, n: int = 4, **options: float) -> list[SharedBreaker]:
    """N breakers with their own caches, as N worker processes would have."""
    options.setdefault("refresh_interval", 0.0)
    return [SharedBreaker(redis, threshold=3, cooldown=0.3, **options) for _ in range(n)]  # type: ignore[arg-type]


async def wait_half_open(breaker: SharedBreaker, provider: str) -> None:
    with anyio.fail_after(5):
        while (await breaker.read(provider)).state is not CircuitState.HALF_OPEN:
            await anyio.sleep(0.02)


async def test_shared_breaker_opens_for_every_process_after_threshold_failures_in_total(
    redis: RedisConnection,
) -> None:
    workers = processes(redis)
    assert (await workers[0].report("p", False)).state is CircuitState.CLOSED
    assert (await workers[1].report("p", False)).state is CircuitState.CLOSED
    assert [(await w.read("p")).failures for w in workers] == [2, 2, 2, 2]
    opened = await workers[2].report("p", False)
    assert opened.state is CircuitState.OPEN and 0 < opened.open_for <= 0.3
    for w in workers:
        seen = await w.read("p")
        assert (seen.state, seen.source) == (CircuitState.OPEN, "redis")
    # Late failures of attempts already in flight change nothing.
    assert (await workers[3].report("p", False)).state is CircuitState.OPEN
    assert (await workers[0].read("other")).state is CircuitState.CLOSED


async def test_shared_breaker_grants_exactly_one_probe_per_cooldown(redis: RedisConnection) -> None:
    workers = processes(redis)
    for w in workers[:3]:
        await w.report("p", False)
    for round_ in range(2):
        assert not (await workers[0].try_acquire_probe("p")).granted  # still open
        await wait_half_open(workers[0], "p")
        verdicts = []

        async def ask(w: SharedBreaker) -> None:
            verdicts.append(await w.try_acquire_probe("p"))  # noqa: B023

        async with anyio.create_task_group() as tg:
            for w in workers * 3:  # 12 attempts in 4 processes at once
                tg.start_soon(ask, w)
        assert [v.probe for v in verdicts].count(True) == 1, f"round {round_}"
        assert [v.granted for v in verdicts].count(True) == 1
        if round_ == 0:
            assert (await workers[1].report("p", False, probe=True)).state is CircuitState.OPEN
    assert (await workers[2].report("p", True, probe=True)).state is CircuitState.CLOSED
    for w in workers:
        assert (await w.read("p")).state is CircuitState.CLOSED
        verdict = await w.try_acquire_probe("p")
        assert verdict.granted and not verdict.probe  # closed: no permit needed


async def test_shared_breaker_success_resets_the_failure_count(redis: RedisConnection) -> None:
    a, b = processes(redis, 2)
    await a.report("p", False)
    await a.report("p", False)
    await b.report("p", True)
    assert (await a.read("p")).failures == 0
    await a.report("p", False)
    assert (await b.read("p")).state is CircuitState.CLOSED


async def test_shared_breaker_reads_redis_at_most_once_per_refresh_interval(redis: RedisConnection) -> None:
    (breaker,) = processes(redis, 1, refresh_interval=30.0)
    first = await breaker.read("p")
    sent = redis.statistics().commands
    for _ in range(10):
        assert await breaker.read("p") is first
    assert redis.statistics().commands == sent
    # Plain successes on a healthy circuit cost no round trip either.
    await breaker.report("p", True)
    assert redis.statistics().commands == sent


async def test_shared_breaker_falls_back_to_local_state_when_redis_is_down(
    redis_server: RedisServer, redis: RedisConnection
) -> None:
    (breaker,) = processes(redis, 1)
    redis_server.stop()
    states = [await breaker.report("p", False) for _ in range(3)]
    assert [s.state for s in states] == [CircuitState.CLOSED, CircuitState.CLOSED, CircuitState.OPEN]
    assert {s.source for s in states} == {"local"}
    assert breaker.fallbacks >= 3 and not redis.statistics().available
    assert not (await breaker.try_acquire_probe("p")).granted
    await wait_half_open(breaker, "p")
    verdicts = [await breaker.try_acquire_probe("p") for _ in range(3)]
    assert [v.probe for v in verdicts] == [True, False, False]
    assert {v.source for v in verdicts} == {"local"}
    assert (await breaker.report("p", True, probe=True)).state is CircuitState.CLOSED


async def test_shared_breaker_probe_given_back_lets_the_next_one_probe(redis: RedisConnection) -> None:
    a, b = processes(redis, 2)
    for _ in range(3):
        await a.report("p", False)
    await wait_half_open(a, "p")
    first = await a.try_acquire_probe("p")
    assert first.probe and not (await b.try_acquire_probe("p")).granted
    await a.release_probe("p", first)  # cancelled without a verdict
    assert (await b.try_acquire_probe("p")).probe


async def test_shared_breaker_late_success_leaves_an_open_circuit_open(redis: RedisConnection) -> None:
    a, b = processes(redis, 2)
    for _ in range(3):
        await a.report("p", False)
    assert (await b.report("p", True)).state is CircuitState.OPEN
