"""Per-session leases and fencing epochs against a real redis-server, on asyncio and trio.

Real time, short TTLs, bounded loops; no assertion depends on how fast the machine is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from tests.test_cluster_redis import (  # noqa: F401 - the shared fixtures
    RedisServer,
    anyio_backend_fixture,
    collect_coredis_garbage,
    redis_fixture,
    redis_server_fixture,
)
from valis_actors.cluster import (
    ClusterUnavailableError,
    Lease,
    LeaseLostError,
    LeaseTimeoutError,
    RedisConnection,
    SessionLeases,
    open_redis,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")]


def soon(seconds: float) -> float:
    return anyio.current_time() + seconds


@pytest.fixture
async def leases(redis: RedisConnection) -> AsyncIterator[SessionLeases]:
    yield SessionLeases(redis, ttl=1.0, linger=0.05)


async def test_lease_epoch_increments_with_each_grant(leases: SessionLeases) -> None:
    epochs = []
    for _ in range(3):
        lease = await leases.acquire("s1", soon(1))
        epochs.append(lease.epoch)
        await leases.release("s1")
    assert epochs == [epochs[0], epochs[0] + 1, epochs[0] + 2]
    other = await leases.acquire("s2", soon(1))
    assert other.held and leases.get("s2") is other


async def test_lease_one_owner_at_a_time_under_contention(redis: RedisConnection) -> None:
    # Six "processes" (each its own SessionLeases) take turns on one session.
    owners: list[int] = []
    inside: list[int] = []
    grants: list[int] = []

    async def worker(n: int) -> None:
        mine = SessionLeases(redis, ttl=2.0, linger=0)
        for _ in range(4):
            lease = await mine.acquire("hot", soon(20))
            inside.append(n)
            assert len(inside) == 1, f"two owners at once: {inside}"
            grants.append(lease.epoch)
            owners.append(n)
            await anyio.sleep(0.002)
            inside.remove(n)
            await mine.release("hot")

    async with anyio.create_task_group() as tg:
        for n in range(6):
            tg.start_soon(worker, n)
    assert len(owners) == 24
    assert grants == sorted(grants) and len(set(grants)) == 24  # one epoch per grant, in grant order


async def test_lease_waiter_times_out_at_deadline_with_retry_after(
    leases: SessionLeases, redis: RedisConnection
) -> None:
    await leases.acquire("s", soon(1))
    other = SessionLeases(redis, ttl=1.0)
    with pytest.raises(LeaseTimeoutError, match="being answered by another process") as info:
        await other.acquire("s", soon(0.05))
    assert info.value.session_id == "s"
    assert 0 < info.value.retry_after <= 1.0
    assert other.statistics().timed_out == 1 and leases.statistics().held == 1


async def test_lease_waiter_gets_it_when_the_holder_releases(
    leases: SessionLeases, redis: RedisConnection
) -> None:
    first = await leases.acquire("s", soon(1))
    other = SessionLeases(redis, ttl=1.0)
    got: list[Lease] = []

    async def wait_for_it() -> None:
        got.append(await other.acquire("s", soon(10)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_for_it)
        await anyio.sleep(0.05)
        assert not got
        await leases.release("s")
    assert got[0].epoch == first.epoch + 1
    assert first.lost.is_set() and not first.held


async def test_lease_renewal_keeps_it_past_its_ttl(redis_server: RedisServer, redis: RedisConnection) -> None:
    leases = SessionLeases(redis, ttl=0.3, linger=10)
    lease = await leases.acquire("s", soon(1))
    lease.begin()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lease.keep_alive)
        with lease.fence() as scope:
            await anyio.sleep(1.0)  # more than three ttls
        assert not scope.cancelled_caught
        assert lease.held
        with pytest.raises(LeaseTimeoutError):
            await SessionLeases(redis, ttl=0.3).acquire("s", soon(0.05))
        assert redis_server.command("GET", leases.lease_key("s")) == lease.token
        await leases.release("s")
    assert redis_server.command("EXISTS", leases.lease_key("s")) == 0


async def test_lease_lost_when_its_key_is_taken_fires_the_fence(
    redis_server: RedisServer, redis: RedisConnection
) -> None:
    leases = SessionLeases(redis, ttl=0.6, linger=10)
    lease = await leases.acquire("s", soon(1))
    lease.begin()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lease.keep_alive)
        redis_server.command("DEL", leases.lease_key("s"))
        newer = await SessionLeases(redis, ttl=5).acquire("s", soon(1))
        with lease.fence() as scope:
            await anyio.sleep(5)  # cut by the next renewal (after ttl/3)
        assert scope.cancelled_caught
    assert lease.lost.is_set() and leases.get("s") is None
    with pytest.raises(LeaseLostError, match="no longer holds the lease of session 's'"):
        lease.check()
    assert newer.epoch == lease.epoch + 1
    assert leases.statistics().lost == 1


async def test_lease_self_fences_before_its_ttl_when_redis_stops_answering(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.settings(command_timeout=0.1)) as connection:
        leases = SessionLeases(connection, ttl=0.6, linger=10, safety_margin=0.15)
        lease = await leases.acquire("s", soon(1))
        lease.begin()
        # Writes (and so scripts) wait while Redis is paused; reads still answer.
        redis_server.command("CLIENT", "PAUSE", "3000", "WRITE")
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lease.keep_alive)
                with lease.fence() as scope:
                    await anyio.sleep(5)
                assert scope.cancelled_caught
                # The fence fired while Redis still gives the key to us: nobody else can have it.
                assert redis_server.command("PTTL", leases.lease_key("s")) > 0  # type: ignore[operator]
                assert redis_server.command("GET", leases.lease_key("s")) == lease.token
                await lease.lost.wait()
        finally:
            redis_server.command("CLIENT", "UNPAUSE")
    assert not lease.held


async def test_lease_released_after_idle_linger(redis_server: RedisServer, redis: RedisConnection) -> None:
    leases = SessionLeases(redis, ttl=5, linger=0.1)
    lease = await leases.acquire("s", soon(1))
    lease.begin()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lease.keep_alive)
        await anyio.sleep(0.2)
        assert lease.held  # busy: no linger
        lease.end()
        with anyio.fail_after(5):
            await lease.lost.wait()
    assert redis_server.command("EXISTS", leases.lease_key("s")) == 0
    again = await SessionLeases(redis, ttl=5).acquire("s", anyio.current_time())  # free at once
    assert again.epoch == lease.epoch + 1


async def test_lease_epochs_keep_growing_after_redis_restart(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.settings(command_timeout=0.5)) as connection:
        leases = SessionLeases(connection, ttl=0.6, linger=10)
        old = await leases.acquire("s", soon(1))
        old.begin()
        redis_server.restart()  # every key lost: lease and epoch counter
        async with anyio.create_task_group() as tg:
            tg.start_soon(old.keep_alive)
            new = None
            for _ in range(100):  # bounded: the pool notices the restart on first use
                try:
                    new = await SessionLeases(connection, ttl=5).acquire("s", soon(1))
                    break
                except ClusterUnavailableError:
                    await anyio.sleep(0.02)
            assert new is not None
            with anyio.fail_after(5):
                await old.lost.wait()  # its renewal found the key someone else's
    assert new.epoch > old.epoch


async def test_lease_epoch_floor_from_a_durable_store(leases: SessionLeases) -> None:
    lease = await leases.acquire("s", soon(1), epoch_floor=10**16)
    assert lease.epoch == 10**16 + 1


async def test_lease_acquire_refused_when_redis_is_down(
    redis_server: RedisServer, leases: SessionLeases
) -> None:
    redis_server.stop()
    with pytest.raises(ClusterUnavailableError, match="cannot acquire the lease of session 's'"):
        await leases.acquire("s", soon(1))


async def test_lease_released_when_its_keep_alive_is_cancelled(
    redis_server: RedisServer, redis: RedisConnection
) -> None:
    leases = SessionLeases(redis, ttl=5, linger=10)
    lease = await leases.acquire("s", soon(1))
    lease.begin()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lease.keep_alive)
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert lease.lost.is_set()
    assert redis_server.command("EXISTS", leases.lease_key("s")) == 0
