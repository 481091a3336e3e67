"""The errors of cluster mode, under ``ValisError``.

    ValisError
    └── ClusterError
        ├── ClusterUnavailableError   (Redis cannot be reached, or did not answer in time)
        ├── LeaseTimeoutError         (another process held the session until the deadline)
        ├── LeaseLostError            (this process no longer owns the session: stop its work)
        ├── RequestPendingError       (a retried request's first attempt is still running)
        └── StaleEpochError           (also MemoryStoreError: a write of an older owner, rejected)

coredis errors are translated into these once, by :func:`translate_errors`, around
every call this package makes to Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .. import MemoryStoreError, ValisError

__all__ = [
    "ClusterError",
    "ClusterUnavailableError",
    "LeaseLostError",
    "LeaseTimeoutError",
    "RequestPendingError",
    "StaleEpochError",
    "translate_errors",
]


class ClusterError(ValisError):
    """Cluster mode could not do what was asked (Redis refused a command, a lease was lost...)."""


class ClusterUnavailableError(ClusterError):
    """Redis cannot be reached or did not answer within ``command_timeout``.

    Sessions are not taken on (fail closed for ordering); circuits fall back to local state.
    """


class LeaseTimeoutError(ClusterError):
    """Another process held the session's lease until the request's deadline.

    Attributes:
        session_id: The session.
        retry_after: Seconds after which the holder's lease would expire at the latest.
    """

    def __init__(self, message: str, *, session_id: str, retry_after: float) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.retry_after = retry_after


class LeaseLostError(ClusterError):
    """This process no longer holds the session's lease; its work for the session must stop."""


class RequestPendingError(ClusterError):
    """The first request with this idempotency key was still running at the deadline."""


class StaleEpochError(ClusterError, MemoryStoreError):
    """A memory write carried an epoch that is not the session's current one: it was discarded.

    Raised after the rows of every other session of the same call were stored.

    Attributes:
        rejected: ``{session_id: (epoch written, current epoch or None)}`` of the discarded writes.
    """

    def __init__(self, rejected: dict[str, tuple[int, int | None]]) -> None:
        parts = [
            f"{sid!r} (epoch {got}, current {cur if cur is not None else 'none'})"
            for sid, (got, cur) in sorted(rejected.items())
        ]
        super().__init__(
            "memory write rejected: a newer owner holds the session, this result is discarded: "
            + ", ".join(parts)
        )
        self.rejected = rejected


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Translate coredis errors raised by the block into ours (the one map of this package).

    Args:
        action: What was being done, for the message ("acquire the lease of 's1'").
    """
    import coredis.exceptions as ce  # only imported once cluster mode is in use

    try:
        yield
    except (ce.ConnectionError, TimeoutError, ce.BusyLoadingError) as exc:
        raise ClusterUnavailableError(
            f"cannot {action}: Redis is unreachable or too slow ({type(exc).__name__}: {exc}); "
            "check cluster.redis_url and that Redis is running"
        ) from exc
    except ce.RedisError as exc:
        raise ClusterError(
            f"cannot {action}: Redis refused the command ({type(exc).__name__}: {exc})"
        ) from exc
