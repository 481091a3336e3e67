"""Idempotency records on Redis: a retried request gets the first request's answer."""

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
from valis_actors.cluster import IdempotencyRecords, RedisConnection, RequestPendingError

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")]


async def test_idempotency_retry_waits_for_and_gets_the_first_answer(redis: RedisConnection) -> None:
    first, retry = IdempotencyRecords(redis), IdempotencyRecords(redis)  # two processes
    claim = await first.claim("req-1")
    assert claim.owner and claim.token
    seen = await retry.claim("req-1")
    assert not seen.owner and seen.response is None  # pending
    answers: list[str | None] = []

    async def wait() -> None:
        answers.append(await retry.wait("req-1", anyio.current_time() + 10))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.05)
        assert not answers
        assert await first.complete(claim, '{"text": "hi"}')
    assert answers == ['{"text": "hi"}']
    later = await retry.claim("req-1")
    assert (later.owner, later.response) == (False, '{"text": "hi"}')


async def test_idempotency_abandoned_claim_lets_a_retry_answer(redis: RedisConnection) -> None:
    records = IdempotencyRecords(redis)
    claim = await records.claim("k")
    await records.abandon(claim)
    assert await records.wait("k", anyio.current_time() + 1) is None
    again = await records.claim("k")
    assert again.owner
    assert not await records.complete(claim, "late")  # the first claim is no longer the owner
    assert await records.complete(again, "second")
    assert await records.wait("k", anyio.current_time() + 1) == "second"


async def test_idempotency_wait_gives_up_at_the_deadline(redis: RedisConnection) -> None:
    records = IdempotencyRecords(redis)
    await records.claim("k")
    with pytest.raises(RequestPendingError, match="'k' is still running"):
        await records.wait("k", anyio.current_time() + 0.05)


async def test_idempotency_pending_record_of_a_dead_claimant_expires(redis: RedisConnection) -> None:
    records = IdempotencyRecords(redis, pending_ttl=0.05)
    claim = await records.claim("k")
    with anyio.fail_after(5):
        assert await records.wait("k", anyio.current_time() + 5) is None
    assert not await records.complete(claim, "too late")
    assert (await records.claim("k")).owner
