"""The fenced conversation store on Redis: turns per (session, persona), stale owners rejected."""

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
from valis_actors import MemoryStoreError, Turn
from valis_actors._memory import SessionSummary
from valis_actors.cluster import (
    ClusterUnavailableError,
    RedisConnection,
    RedisConversationStore,
    SessionLeases,
    StaleEpochError,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")]


def turn(n: int, persona: str = "jane") -> Turn:
    return Turn(f"u{n}", f"a{n} é", persona, "openai", "gpt", float(n))


def parts(redis: RedisConnection) -> tuple[SessionLeases, RedisConversationStore]:
    leases = SessionLeases(redis, ttl=5)
    return leases, RedisConversationStore(redis, leases.epoch_key)


async def test_store_round_trip_per_persona_trim_and_forget(redis: RedisConnection) -> None:
    leases, store = parts(redis)
    lease = await leases.acquire("s", anyio.current_time() + 1)
    rows = [("s", turn(1)), ("s", turn(2, "sam")), ("s", turn(3)), ("s", turn(4))]
    await store.append(rows, max_stored=2, epochs={"s": lease.epoch})
    assert await store.recent("s", "jane", 10) == [turn(3), turn(4)]  # trimmed to 2 per persona
    assert await store.recent("s", "jane", 1) == [turn(4)]
    assert await store.recent("s", None, 10) == [turn(2, "sam"), turn(3), turn(4)]
    assert await store.recent("s", "jane", 0) == []
    assert await store.recent("other", None, 5) == []
    assert await store.forget("s") == 3
    assert await store.recent("s", None, 10) == []


async def test_store_lists_sessions_most_recent_first(redis: RedisConnection) -> None:
    leases, store = parts(redis)
    odd = "odd {tag} 100% *"  # the characters a session tag escapes, and a glob
    assert await store.sessions(10) == []
    for session, rows in (("a", [turn(1), turn(5, "sam")]), (odd, [turn(3)]), ("b", [turn(2)])):
        lease = await leases.acquire(session, anyio.current_time() + 1)
        await store.append([(session, t) for t in rows], 10, epochs={session: lease.epoch})
    assert await store.sessions(10) == [
        SessionSummary("a", 2, 5.0, ("jane", "sam")),
        SessionSummary(odd, 1, 3.0, ("jane",)),
        SessionSummary("b", 1, 2.0, ("jane",)),
    ]
    assert [s.session_id for s in await store.sessions(1)] == ["a"]
    assert await store.forget(odd) == 1
    assert [s.session_id for s in await store.sessions(10)] == ["a", "b"]


async def test_store_rejects_a_write_with_an_older_epoch(redis: RedisConnection) -> None:
    leases, store = parts(redis)
    old = await leases.acquire("s", anyio.current_time() + 1)
    await leases.release("s")
    new = await SessionLeases(redis, ttl=5).acquire("s", anyio.current_time() + 1)
    with pytest.raises(StaleEpochError, match="newer owner holds the session") as info:
        await store.append([("s", turn(1))], 10, epochs={"s": old.epoch})
    assert info.value.rejected == {"s": (old.epoch, new.epoch)}
    assert isinstance(info.value, MemoryStoreError)  # the memory actor passes it to the writer
    await store.append([("s", turn(2))], 10, epochs={"s": new.epoch})
    assert await store.recent("s", None, 10) == [turn(2)]


async def test_store_stale_session_does_not_block_the_others_of_a_batch(redis: RedisConnection) -> None:
    leases, store = parts(redis)
    a = await leases.acquire("a", anyio.current_time() + 1)
    b = await leases.acquire("b", anyio.current_time() + 1)
    with pytest.raises(StaleEpochError) as info:
        await store.append([("a", turn(1)), ("b", turn(2))], 10, epochs={"a": a.epoch - 1, "b": b.epoch})
    assert set(info.value.rejected) == {"a"}
    assert await store.recent("a", None, 10) == []
    assert await store.recent("b", None, 10) == [turn(2)]


async def test_store_rejects_writes_after_redis_lost_the_epoch(
    redis_server: RedisServer, redis: RedisConnection
) -> None:
    leases, store = parts(redis)
    lease = await leases.acquire("s", anyio.current_time() + 1)
    redis_server.restart()
    for _ in range(100):  # bounded: the first command after a restart may meet a dead connection
        try:
            await redis.call("ping", lambda c: c.ping())
            break
        except ClusterUnavailableError:
            await anyio.sleep(0.02)
    with pytest.raises(StaleEpochError, match="current none"):
        await store.append([("s", turn(1))], 10, epochs={"s": lease.epoch})
    assert await store.recent("s", None, 10) == []
