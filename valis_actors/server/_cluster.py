"""``valis serve`` in cluster mode: the runtime opened through ``valis_actors.cluster``, and what the
server adds — idempotency records in Redis, cluster errors as HTTP, ``/readyz`` and ``/metrics`` lines.

Nothing here imports ``valis_actors.cluster`` until cluster mode is configured
(``cluster`` in config.json or ``VALIS_REDIS_URL``): a server without it imports no more
than before.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

import valis_actors as va

if TYPE_CHECKING:
    from valis_actors.cluster import ClusterMode, IdempotencyRecords

__all__ = [
    "cluster_configured",
    "cluster_error_map",
    "cluster_metrics",
    "cluster_readiness",
    "deduplicated",
    "open_server_runtime",
]

logger = logging.getLogger("valis_actors.server")

REDIS_URL_ENV = "VALIS_REDIS_URL"  # as valis_actors.cluster.REDIS_URL_ENV (not imported: see above)


def cluster_configured(config: va.Config, environ: Mapping[str, str] | None = None) -> bool:
    """True if the config (or the environment) turns cluster mode on."""
    env = os.environ if environ is None else environ
    return bool(config.cluster) or bool(env.get(REDIS_URL_ENV, "").strip())


@asynccontextmanager
async def open_server_runtime(
    config: va.Config, event_hook: Callable[[va.RuntimeEvent], None] | None
) -> AsyncIterator[tuple[va.Runtime, ClusterMode | None]]:
    """The server's runtime: in cluster mode when configured, else plain ``open_runtime``.

    Raises:
        ConfigError: A wrong ``cluster`` section.
        ClusterUnavailableError: Redis cannot be reached at start.
    """
    if not cluster_configured(config):
        async with va.open_runtime(config, event_hook=event_hook) as runtime:
            yield runtime, None
        return
    try:
        from valis_actors.cluster import ClusterMode
    except ImportError as exc:  # pragma: no cover - the cluster extra is missing
        raise va.ConfigError(f"cluster mode needs the cluster extra: pip install 'valis_actors[cluster]' ({exc})") from None
    async with ClusterMode.open(config) as mode, va.open_runtime(
        config, event_hook=event_hook, **mode.runtime_options()
    ) as runtime:
        yield runtime, mode


def cluster_error_map() -> dict[type[va.ValisError], tuple[int, str, str, bool]]:
    """Rows of ``ERROR_MAP`` for cluster mode's errors (imports ``valis_actors.cluster``)."""
    from valis_actors import cluster as c

    return {
        # Another worker holds the session: retry once its lease is free (Retry-After).
        c.LeaseTimeoutError: (503, "overloaded_error", "session_busy_elsewhere", True),
        # The turn was discarded, never stored: a retry answers it afresh.
        c.LeaseLostError: (503, "overloaded_error", "lease_lost", True),
        c.StaleEpochError: (503, "overloaded_error", "stale_owner", True),
        c.ClusterUnavailableError: (503, "overloaded_error", "cluster_unavailable", True),
        c.RequestPendingError: (409, "invalid_request_error", "request_pending", True),
        c.ClusterError: (503, "server_error", "cluster_error", False),
    }


def cluster_row(exc: va.ValisError) -> tuple[tuple[int, str, str, bool], float | None] | None:
    """The row and ``Retry-After`` of a cluster error; None for other errors.

    A cluster error exists only once ``valis_actors.cluster`` was imported, so this
    never imports it for a server not in cluster mode.
    """
    if "valis_actors.cluster" not in sys.modules:
        return None
    rows = cluster_error_map()
    for cls in type(exc).__mro__:
        row = rows.get(cls)
        if row is not None:
            retry_after = getattr(exc, "retry_after", None)
            return row, (max(1.0, float(retry_after)) if isinstance(retry_after, int | float) else None)
    return None


async def cluster_readiness(mode: ClusterMode) -> tuple[bool, dict[str, Any]]:
    """Whether Redis answers now (new sessions are refused without it), and the body's ``cluster`` part."""
    up = await mode.check()
    stats = mode.statistics()
    return up, {
        "redis": "up" if up else "down",
        "leases_held": stats.leases.held,
        "circuits": "shared" if up else "local",
    }


def cluster_metrics(mode: ClusterMode) -> str:
    """Prometheus lines for cluster mode's state."""
    s = mode.statistics()
    rows = [
        ("valis_cluster_redis_up", "gauge", "1 if the last Redis command succeeded", int(s.redis.available)),
        ("valis_cluster_redis_commands_total", "counter", "Redis commands sent", s.redis.commands),
        ("valis_cluster_redis_failures_total", "counter", "Redis commands that found Redis unreachable",
         s.redis.failures),
        ("valis_cluster_leases_held", "gauge", "session leases this process holds", s.leases.held),
        ("valis_cluster_lease_grants_total", "counter", "session leases granted", s.leases.granted),
        ("valis_cluster_lease_timeouts_total", "counter", "lease waits that ran out the deadline",
         s.leases.timed_out),
        ("valis_cluster_leases_lost_total", "counter", "leases lost before release", s.leases.lost),
        ("valis_cluster_lease_waits_total", "counter", "messages that waited for another process's lease",
         s.lease_waits),
        ("valis_cluster_lease_wait_seconds_total", "counter", "seconds messages waited for leases",
         round(s.lease_wait_seconds, 6)),
        ("valis_cluster_fenced_stops_total", "counter", "messages stopped because their lease was lost",
         s.fenced_stops),
        ("valis_cluster_stale_epoch_rejections_total", "counter", "memory writes of a stale owner rejected",
         s.stale_epoch_rejections),
        ("valis_cluster_breaker_fallbacks_total", "counter", "shared-breaker calls answered from local state",
         s.breaker_fallbacks),
    ]
    lines = []
    for name, kind, help_text, value in rows:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    return "\n".join(lines) + "\n"


def _dump_reply(reply: va.Reply) -> str:
    usage = [reply.usage.input_tokens, reply.usage.output_tokens] if reply.usage is not None else None
    return json.dumps({
        "text": reply.text, "provider": reply.provider, "persona_id": reply.persona_id,
        "session_id": reply.session_id, "fallback_used": reply.fallback_used, "model": reply.model,
        "usage": usage, "elapsed": reply.elapsed, "refusal": reply.refusal,
    })


def _load_reply(raw: str) -> va.Reply:
    data = json.loads(raw)
    usage = data.pop("usage")
    return va.Reply(**data, usage=va.Usage(*usage) if usage is not None else None)


async def deduplicated(
    records: IdempotencyRecords, key: str, deadline: float, answer: Callable[[], Awaitable[va.Reply]]
) -> va.Reply:
    """Answer a request once across every worker: the first claims ``key`` and answers, retries get its reply.

    Raises:
        RequestPendingError: The first request was still running at the deadline.
    """
    for _ in range(3):  # a claimant that failed or died leaves the key free: claim it again
        claim = await records.claim(key)
        if claim.owner:
            try:
                reply = await answer()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    try:
                        await records.abandon(claim)
                    except va.ValisError:
                        pass  # the pending record expires after its ttl
                raise
            try:
                await records.complete(claim, _dump_reply(reply))
            except va.ValisError as exc:  # the reply still goes out; a retry may answer again
                logger.warning("idempotency record %r not completed: %s", key, exc)
            return reply
        raw = claim.response if claim.response is not None else await records.wait(key, deadline)
        if raw is not None:
            return _load_reply(raw)
    return await answer()
