"""Cluster mode around app steps: ``run_in_session`` holds the session's lease like a message.

Two runtimes in one process share one real redis-server (see test_cluster_runtime.py).
Real time, short TTLs and deadlines, bounded loops; assertions are about order and outcomes.
"""

from __future__ import annotations

import itertools
import random

import anyio
import pytest

import valis_actors as va
from tests.support import make_config, scripted
from tests.test_cluster_redis import (  # noqa: F401 - the shared fixtures
    RedisServer,
    anyio_backend_fixture,
    collect_coredis_garbage,
    redis_server_fixture,
)
from tests.test_cluster_runtime import cluster_section, journal, workers
from valis_actors.cluster import ClusterMode, LeaseLostError, LeaseTimeoutError, open_cluster_runtime
from valis_actors.testing import Step

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")]


async def test_two_workers_never_overlap_steps_and_messages_of_a_session(redis_server: RedisServer) -> None:
    config = make_config(scripted("p1", default=Step.answer(delay=0.005)), cluster=cluster_section(redis_server))
    rng = random.Random(7)
    steps: list[tuple[float, float]] = []  # (start, end) of every app step, both workers

    async def step() -> str:
        started = anyio.current_time()
        await anyio.sleep(0.01)
        steps.append((started, anyio.current_time()))
        return "stepped"

    async with workers(config, 2) as pair:

        async def client(client_id: int) -> None:
            for n in range(8):
                runtime = pair[rng.randrange(2)][0]
                if (client_id + n) % 2:
                    assert await runtime.run_in_session("s1", step) == "stepped"
                else:
                    message = f"{client_id}/{n}"
                    assert (await runtime.ask("s1", "jane", message)).text == f"p1: {message}"

        async with anyio.create_task_group() as tg:
            for client_id in range(3):  # three clients at once, each on random workers
                tg.start_soon(client, client_id)
        messages = [(c.started, c.ended or c.started) for runtime, _ in pair for c in journal(runtime).calls]
    assert (len(steps), len(messages)) == (12, 12)
    intervals = sorted(steps + messages)
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start, "a step and a message (or two steps) of one session ran at once"


async def test_a_step_waiting_for_a_lease_held_elsewhere_times_out_at_its_deadline(redis_server: RedisServer) -> None:
    config = make_config(
        scripted("p1"), response_deadline=0.5, cluster=cluster_section(redis_server, lease_ttl=5.0)
    )
    redis_server.command("SET", "valis:lease:{s1}", "someone-else", "PX", "5000")
    ran: list[bool] = []

    async def step() -> None:
        ran.append(True)

    async with open_cluster_runtime(config) as runtime:
        started = anyio.current_time()
        with pytest.raises(LeaseTimeoutError) as caught:
            await runtime.run_in_session("s1", step)
        waited = anyio.current_time() - started
        assert 0 < caught.value.retry_after <= 5.0
        assert 0.3 <= waited < 2.0  # it waited for its deadline (0.5 s), and no longer
        assert ran == []  # never run without the lease
        assert (await runtime.ask("s2", "jane", "hello")).text == "p1: hello"  # the runtime goes on
        redis_server.command("DEL", "valis:lease:{s1}")
        await runtime.run_in_session("s1", step)  # the session goes on once the lease is free
        assert ran == [True]


async def test_a_step_that_loses_its_lease_is_cancelled_and_fails_with_lease_lost(redis_server: RedisServer) -> None:
    config = make_config(scripted("p1"), cluster=cluster_section(redis_server, lease_ttl=0.6, command_timeout=0.2))
    running = anyio.Event()
    cancelled: list[bool] = []

    async def step() -> None:
        running.set()
        try:
            await anyio.sleep(3)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    async with ClusterMode.open(config) as mode, va.open_runtime(config, **mode.runtime_options()) as runtime:
        errors: list[BaseException] = []

        async def run() -> None:
            try:
                await runtime.run_in_session("s1", step)
            except va.ValisError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            with anyio.fail_after(2):
                await running.wait()
            redis_server.command("CLIENT", "PAUSE", "1500", "ALL")  # renewals get no answer
        [error] = errors
        assert isinstance(error, LeaseLostError)
        assert cancelled == [True]  # stopped before its lease could expire, not awaited
        await anyio.sleep(1.6)  # the pause ends (bounded)
    assert mode.statistics().fenced_stops == 1
