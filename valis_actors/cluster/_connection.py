"""The Redis connection owner: one coredis client per process, entered once, shared by the parts.

coredis (>= 6) is built on anyio, so the same client runs under asyncio and trio. Its
connection pool owns a task group; :func:`open_redis` enters it in the caller's task and
keeps body errors unwrapped (a task group would wrap them in an ExceptionGroup).
Every command goes through :meth:`RedisConnection.call`: bounded by ``command_timeout``
and translated into our errors at this boundary.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from .. import ConfigError
from ._errors import ClusterUnavailableError, translate_errors

if TYPE_CHECKING:
    import coredis

__all__ = ["ClusterSettings", "ConnectionStatistics", "RedisConnection", "open_redis", "session_tag"]

T = TypeVar("T")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ConfigError(
            f"cluster.{attribute.name} must be > 0 (got {value!r}) @ $.cluster.{attribute.name}"
        )


@attrs.frozen
class ClusterSettings:
    """The ``cluster`` section: where Redis is and how long its answers may take.

    Attributes:
        redis_url: ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``).
        key_prefix: Prepended to every key, so several deployments can share one Redis.
        connect_timeout: Seconds to open a connection.
        command_timeout: Seconds one command may take before Redis counts as unavailable.
    """

    redis_url: str
    key_prefix: str = "valis:"
    connect_timeout: float = attrs.field(default=1.0, validator=_positive)
    command_timeout: float = attrs.field(default=1.0, validator=_positive)

    @classmethod
    def from_env(cls) -> ClusterSettings | None:
        """Settings from ``VALIS_REDIS_URL``; None (cluster mode off) when it is unset or empty."""
        url = os.environ.get("VALIS_REDIS_URL", "").strip()
        return cls(url) if url else None


@attrs.frozen
class ConnectionStatistics:
    """How the connection to Redis is doing (for ``/readyz`` and ``/metrics``).

    Attributes:
        available: False since the last command failed for want of Redis, until one succeeds.
        commands: Commands sent.
        failures: Commands that failed because Redis was unreachable or too slow.
        last_error: The last such failure, as a message.
    """

    available: bool
    commands: int
    failures: int
    last_error: str | None


_TAG_UNSAFE = re.compile(r"[{}%]")


def session_tag(session_id: str) -> str:
    """The Redis Cluster hash tag of a session: every key of one session lands in one slot."""
    return "{" + _TAG_UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", session_id) + "}"


class RedisConnection:
    """The process's connection to Redis, made by :func:`open_redis`; the parts share it."""

    def __init__(self, client: coredis.Redis[str], settings: ClusterSettings) -> None:
        self.client = client
        self.settings = settings
        self.prefix = settings.key_prefix
        self._scripts: dict[str, Any] = {}
        self._available = True
        self._commands = 0
        self._failures = 0
        self._last_error: str | None = None

    def key(self, *parts: str) -> str:
        """``prefix + ":".join(parts)``."""
        return self.prefix + ":".join(parts)

    async def call(self, action: str, make: Callable[[coredis.Redis[str]], Awaitable[T]]) -> T:
        """Run one command (``make(client)``) within ``command_timeout``, errors translated.

        Raises:
            ClusterUnavailableError: Redis is unreachable or did not answer in time.
            ClusterError: Redis refused the command.
        """
        self._commands += 1
        try:
            with translate_errors(action), anyio.fail_after(self.settings.command_timeout):
                result = await make(self.client)
        except ClusterUnavailableError as exc:
            self._available = False
            self._failures += 1
            self._last_error = str(exc)
            raise
        self._available = True
        return result

    async def script(self, action: str, source: str, keys: list[str], args: list[str | int]) -> Any:
        """Run a Lua script (EVALSHA, loaded again after a Redis restart) like :meth:`call`."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return await self.call(action, lambda _: script(keys=keys, args=args))

    def statistics(self) -> ConnectionStatistics:
        """The connection's health and counters."""
        return ConnectionStatistics(self._available, self._commands, self._failures, self._last_error)


@asynccontextmanager
async def open_redis(settings: ClusterSettings) -> AsyncIterator[RedisConnection]:
    """Open the process's Redis client and check that Redis answers.

    Raises:
        ClusterUnavailableError: Redis did not answer a PING within the timeouts.
        ClusterError: The URL is not a Redis URL, or Redis refused the connection (auth...).

    Errors raised by the body come out as themselves, never wrapped in an ExceptionGroup.
    """
    import coredis  # imported only when cluster mode is configured
    from coredis.retry import NoRetryPolicy

    with translate_errors(f"connect to {settings.redis_url!r}"):
        try:
            client: coredis.Redis[str] = coredis.Redis.from_url(
                settings.redis_url,
                decode_responses=True,
                # Our callers retry on their own schedule (lease polls, renewals); a silent
                # retry inside the client would eat their deadline.
                retry_policy=NoRetryPolicy(),
                connect_timeout=settings.connect_timeout,
                stream_timeout=settings.command_timeout,
            )
        except ValueError as exc:
            raise ConfigError(
                f"cluster.redis_url is not a Redis URL (got {settings.redis_url!r}): {exc}; "
                "use redis://host:port/db @ $.cluster.redis_url"
            ) from exc
    body_error: BaseException | None = None
    async with client:
        connection = RedisConnection(client, settings)
        try:
            await connection.call(f"reach Redis at {settings.redis_url!r}", lambda c: c.ping())
            yield connection
        except BaseException as exc:  # noqa: BLE001 - re-raised below, unwrapped
            body_error = exc
    if body_error is not None:
        raise body_error
