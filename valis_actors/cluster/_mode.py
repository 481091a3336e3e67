"""Cluster mode put together: Redis, leases, the fenced store and the shared breaker, for a runtime.

    async with open_cluster_runtime(config) as runtime:      # config.cluster or VALIS_REDIS_URL
        reply = await runtime.ask(...)

or, when the caller needs the cluster's parts too (``valis serve``: idempotency, /readyz):

    async with ClusterMode.open(config) as mode:
        async with open_runtime(config, **mode.runtime_options()) as runtime:
            ...

The core learns nothing of Redis: it gets a ``SessionLifecycle`` (leases), a memory
store (fenced by the lease epoch) and a ``BreakerSync`` (the shared breaker).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import anyio
import attrs

from .. import Config, ConfigError, Runtime, open_runtime
from .._cascade import SharedState
from .._events import EventHook
from .._memory import ConversationStore
from ._breaker import ProbeVerdict, SharedBreaker
from ._cluster import Cluster, open_cluster
from ._config import REDIS_URL_ENV, ClusterConfig
from ._connection import ConnectionStatistics
from ._lease import LeaseStatistics
from ._lifecycle import ClusterLifecycle
from ._sqlite_fence import FencedSqliteStore
from ._store import RedisConversationStore

__all__ = ["BreakerSyncAdapter", "ClusterMode", "ClusterStatistics", "open_cluster_runtime"]


class BreakerSyncAdapter:
    """The breaker actor's ``BreakerSync`` over a :class:`SharedBreaker`.

    A state read from local fallback (Redis unreachable) is answered as None: the
    breaker actor then decides from its own local state machine.
    """

    def __init__(self, shared: SharedBreaker) -> None:
        self.shared = shared
        self.refresh_interval = shared.refresh_interval
        self._probes: dict[str, ProbeVerdict] = {}

    async def read(self, provider: str) -> SharedState | None:
        circuit = await self.shared.read(provider)
        if circuit.source != "redis":
            return None
        return SharedState(circuit.state, circuit.open_for, circuit.failures, circuit.probe_in_flight)

    async def report(self, provider: str, success: bool, probe: bool) -> SharedState | None:
        self._probes.pop(provider, None)
        circuit = await self.shared.report(provider, success, probe=probe)
        if circuit.source != "redis":
            return None
        return SharedState(circuit.state, circuit.open_for, circuit.failures, circuit.probe_in_flight)

    async def acquire_probe(self, provider: str) -> tuple[bool, bool] | None:
        verdict = await self.shared.try_acquire_probe(provider)
        if verdict.source != "redis":
            return None
        if verdict.probe:
            self._probes[provider] = verdict
        return verdict.granted, verdict.probe

    async def release_probe(self, provider: str) -> None:
        verdict = self._probes.pop(provider, None)
        if verdict is not None:
            await self.shared.release_probe(provider, verdict)


@attrs.frozen
class ClusterStatistics:
    """Cluster mode's state, for ``/readyz`` and ``/metrics``.

    Attributes:
        redis: The connection's health and counters.
        leases: Leases held, granted, timed out, lost.
        lease_waits: Messages that waited for another process's lease.
        lease_wait_seconds: Their total wait.
        fenced_stops: Messages stopped because their lease was lost while they ran.
        stale_epoch_rejections: Memory writes rejected because a newer owner held the session.
        breaker_fallbacks: Shared-breaker calls answered from local state (Redis unreachable).
    """

    redis: ConnectionStatistics
    leases: LeaseStatistics
    lease_waits: int
    lease_wait_seconds: float
    fenced_stops: int
    stale_epoch_rejections: int
    breaker_fallbacks: int


class _CountingRedisStore:
    """The Redis store as the memory actor sees it: fenced, rejections counted."""

    blocking = False
    fenced = True

    def __init__(self, store: RedisConversationStore) -> None:
        self._store = store
        self.rejections = 0

    async def append(self, rows: Any, max_stored: int, *, epochs: Any) -> None:
        from ._errors import StaleEpochError

        try:
            await self._store.append(rows, max_stored, epochs=epochs)
        except StaleEpochError:
            self.rejections += 1
            raise

    async def recent(self, session_id: str, persona_id: str | None, limit: int) -> Any:
        return await self._store.recent(session_id, persona_id, limit)

    async def forget(self, session_id: str) -> int:
        return await self._store.forget(session_id)

    async def close(self) -> None:
        await self._store.close()


class _CountingSqliteStore(FencedSqliteStore):
    """The fenced SQLite store as the memory actor sees it: rejections counted."""

    fenced = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self.rejections = 0

    def append(self, rows: Any, max_stored: int, *, epochs: Any) -> None:
        from ._errors import StaleEpochError

        try:
            super().append(rows, max_stored, epochs=epochs)
        except StaleEpochError:
            self.rejections += 1
            raise


class ClusterMode:
    """The parts cluster mode gives a runtime; made by :meth:`open`.

    Attributes:
        config: The ``cluster`` settings.
        cluster: The Redis connection, leases, idempotency records.
        lifecycle: The session hooks holding leases.
        breaker: The shared breaker the breaker actor syncs with.
    """

    def __init__(
        self,
        config: ClusterConfig,
        cluster: Cluster,
        lifecycle: ClusterLifecycle,
        store: _CountingRedisStore | _CountingSqliteStore | None,
        breaker: BreakerSyncAdapter,
    ) -> None:
        self.config = config
        self.cluster = cluster
        self.lifecycle = lifecycle
        self._store = store
        self.breaker = breaker

    def runtime_options(self) -> dict[str, Any]:
        """Keyword arguments for ``open_runtime``: lifecycle, memory store, breaker sync."""
        return {
            "lifecycle": self.lifecycle,
            "memory_store": cast(ConversationStore, self._store) if self._store is not None else None,
            "breaker_sync": self.breaker,
        }

    @property
    def available(self) -> bool:
        """False since the last Redis command failed for want of Redis, until one succeeds."""
        return self.cluster.connection.statistics().available

    async def check(self) -> bool:
        """Ping Redis now (for ``/readyz``); True if it answered within ``command_timeout``."""
        from ._errors import ClusterError

        try:
            await self.cluster.connection.call("ping Redis", lambda c: c.ping())
        except ClusterError:
            return False
        return True

    def statistics(self) -> ClusterStatistics:
        """A snapshot of cluster mode's state."""
        lifecycle = self.lifecycle
        return ClusterStatistics(
            redis=self.cluster.connection.statistics(),
            leases=self.cluster.leases.statistics(),
            lease_waits=lifecycle.lease_waits,
            lease_wait_seconds=lifecycle.lease_wait_seconds,
            fenced_stops=lifecycle.lost,
            stale_epoch_rejections=self._store.rejections if self._store is not None else 0,
            breaker_fallbacks=self.breaker.shared.fallbacks,
        )

    @classmethod
    @asynccontextmanager
    async def open(cls, config: Config, cluster_config: ClusterConfig | None = None) -> AsyncIterator[ClusterMode]:
        """Connect to Redis and build the parts; leave it after the runtime closed.

        Raises:
            ConfigError: Cluster mode is not configured, or its section is wrong.
            ClusterUnavailableError: Redis cannot be reached.
            MemoryStoreError: The SQLite file cannot be opened (``memory: "sqlite"``).

        Errors raised by the body come out as themselves, never wrapped in an ExceptionGroup.
        """
        settings = cluster_config if cluster_config is not None else ClusterConfig.from_config(config)
        if settings is None:
            raise ConfigError(
                f"cluster mode is not configured: add a cluster section ({{\"redis_url\": ...}}) "
                f"to config.json or set {REDIS_URL_ENV} @ $.cluster"
            )
        async with open_cluster(
            settings.settings,
            lease_ttl=settings.lease_ttl,
            linger=settings.linger,
            safety_margin=settings.safety_margin,
            idempotency_ttl=settings.idempotency_ttl,
        ) as cluster:
            store: _CountingRedisStore | _CountingSqliteStore | None = None
            claims: FencedSqliteStore | None = None
            if config.memory.enabled and settings.memory == "redis":
                store = _CountingRedisStore(cluster.memory)
            elif config.memory.enabled:
                from .._memory._sqlite import default_memory_path

                path = config.memory.path or default_memory_path()
                store = await anyio.to_thread.run_sync(_CountingSqliteStore, path)
                # Claims and epoch floors go through their own connection to the file:
                # the memory actor's connection is used by its thread only.
                claims = await anyio.to_thread.run_sync(FencedSqliteStore, path)
            breaker = BreakerSyncAdapter(
                cluster.shared_breaker(
                    threshold=config.circuit_breaker_threshold,
                    cooldown=config.circuit_breaker_timeout,
                    refresh_interval=settings.breaker_refresh,
                )
            )
            body_error: BaseException | None = None
            try:
                async with anyio.create_task_group() as renewals:
                    lifecycle = ClusterLifecycle(
                        cluster.leases,
                        renewals,
                        epoch_floor=_floor(claims) if claims is not None else None,
                        claim=_claim(claims) if claims is not None else None,
                    )
                    try:
                        yield cls(settings, cluster, lifecycle, store, breaker)
                    except BaseException as exc:  # noqa: BLE001 - re-raised below, unwrapped
                        body_error = exc
                    # Renewals end with the runtime: each gives its session back as it stops.
                    renewals.cancel_scope.cancel()
            finally:
                if claims is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(claims.close)
            if body_error is not None:
                raise body_error


def _floor(store: FencedSqliteStore) -> Any:
    async def floor(session_id: str) -> int:
        return await anyio.to_thread.run_sync(store.current_epoch, session_id)

    return floor


def _claim(store: FencedSqliteStore) -> Any:
    async def claim(session_id: str, epoch: int) -> None:
        await anyio.to_thread.run_sync(store.claim_epoch, session_id, epoch)

    return claim


@asynccontextmanager
async def open_cluster_runtime(
    config: Config | None = None,
    *,
    cluster_config: ClusterConfig | None = None,
    event_hook: EventHook | None = None,
) -> AsyncIterator[Runtime]:
    """``open_runtime`` in cluster mode: sessions leased and fenced, circuits shared, through Redis.

    Args:
        config: The configuration; its ``cluster`` section (or ``VALIS_REDIS_URL``) says where Redis is.
        cluster_config: The cluster settings, instead of reading ``config.cluster``.
        event_hook: As for ``open_runtime``.

    Raises:
        ConfigError: Cluster mode is not configured, or its section is wrong.
        ClusterUnavailableError: Redis cannot be reached.

    Errors raised by the body come out as themselves, never wrapped in an ExceptionGroup.
    """
    config = config if config is not None else Config()
    async with AsyncExitStack() as stack:
        mode = await stack.enter_async_context(ClusterMode.open(config, cluster_config))
        yield await stack.enter_async_context(open_runtime(config, event_hook=event_hook, **mode.runtime_options()))
