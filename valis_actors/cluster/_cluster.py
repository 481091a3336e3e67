"""``open_cluster``: the connection and the parts of cluster mode, opened together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ._breaker import SharedBreaker
from ._connection import ClusterSettings, RedisConnection, open_redis
from ._idempotency import IdempotencyRecords
from ._lease import SessionLeases
from ._store import RedisConversationStore

__all__ = ["Cluster", "open_cluster"]


class Cluster:
    """What a process of the cluster shares through Redis; made by :func:`open_cluster`.

    Attributes:
        connection: The Redis connection (``connection.statistics()`` for ``/readyz``).
        leases: Per-session leases and their epochs.
        memory: The fenced conversation store on Redis (used when ``memory.backend`` is ``"redis"``).
        idempotency: The server's records of retried requests.
    """

    def __init__(
        self, connection: RedisConnection, leases: SessionLeases, idempotency: IdempotencyRecords
    ) -> None:
        self.connection = connection
        self.leases = leases
        self.memory = RedisConversationStore(connection, leases.epoch_key)
        self.idempotency = idempotency

    def shared_breaker(self, *, threshold: int, cooldown: float, **options: float) -> SharedBreaker:
        """A shared view of every provider's circuit, for the breaker actor to sync with."""
        return SharedBreaker(self.connection, threshold=threshold, cooldown=cooldown, **options)


@asynccontextmanager
async def open_cluster(
    settings: ClusterSettings,
    *,
    lease_ttl: float = 10.0,
    linger: float = 2.0,
    safety_margin: float | None = None,
    idempotency_ttl: float = 600.0,
) -> AsyncIterator[Cluster]:
    """Connect to Redis and yield the cluster's parts; enter it once per process, in a parent task.

    Raises:
        ClusterUnavailableError: Redis cannot be reached.

    Errors raised by the body come out as themselves, never wrapped in an ExceptionGroup.
    """
    async with open_redis(settings) as connection:
        leases = SessionLeases(connection, ttl=lease_ttl, linger=linger, safety_margin=safety_margin)
        yield Cluster(connection, leases, IdempotencyRecords(connection, ttl=idempotency_ttl))
