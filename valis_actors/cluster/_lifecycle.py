"""``ClusterLifecycle``: the session hooks that hold a session's lease while its messages run.

    before_message  take the lease (or keep the one held), waiting for another holder
                    until the message's deadline; a new grant claims its epoch at the store
    fence           the message's work runs inside the lease's fence (a cancel scope that
                    fires before the lease could expire); yields the epoch memory writes carry
    after_reply     the message is done: the lease is released after ``linger`` idle seconds
    passivate       the session's task ended: nothing to do (the linger releases it)

Renewals run in the lifecycle's own task group (one ``keep_alive`` task per grant).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio
from anyio.abc import TaskGroup

from .._actors._context import MessageInfo, SessionLifecycle
from ._errors import LeaseLostError, LeaseTimeoutError
from ._lease import Lease, SessionLeases

__all__ = ["ClusterLifecycle"]

# Stop waiting for a lease this long before the message's hook scope ends, so the wait
# ends in LeaseTimeoutError (with its retry_after) rather than in a bare cancellation.
_ACQUIRE_MARGIN = 0.02


class ClusterLifecycle(SessionLifecycle):
    """Per-session leases around each message; see the module docstring.

    Args:
        leases: The process's leases.
        task_group: Where renewal tasks run (lives as long as the runtime).
        epoch_floor: The highest epoch a durable store has seen for a session (``epoch_floor``
            of ``SessionLeases.acquire``), or None.
        claim: Called with (session, epoch) right after each grant, so that a fenced
            store rejects every older owner from then on, or None.
    """

    def __init__(
        self,
        leases: SessionLeases,
        task_group: TaskGroup,
        *,
        epoch_floor: Callable[[str], Awaitable[int]] | None = None,
        claim: Callable[[str, int], Awaitable[None]] | None = None,
    ) -> None:
        self.leases = leases
        self._tg = task_group
        self._epoch_floor = epoch_floor
        self._claim = claim
        self._running: dict[str, Lease] = {}  # session -> the lease of its running message
        self.lease_waits = 0  # messages that found the session held elsewhere and waited
        self.lease_wait_seconds = 0.0
        self.lost = 0  # messages stopped because their lease was lost

    async def before_message(self, message: MessageInfo) -> None:
        """Hold the session's lease for this message.

        Raises:
            LeaseTimeoutError: Another process held the session until the deadline.
            ClusterUnavailableError: Redis cannot be reached (no session is taken on).
        """
        session_id = message.session_id
        self._settle(session_id)  # a message that crashed the session never reached after_reply
        lease = self.leases.get(session_id)
        if lease is None:
            lease = await self._acquire(message)
        lease.begin()
        self._running[session_id] = lease

    async def _acquire(self, message: MessageInfo) -> Lease:
        session_id = message.session_id
        deadline = min(message.deadline, anyio.current_effective_deadline()) - _ACQUIRE_MARGIN
        floor = await self._epoch_floor(session_id) if self._epoch_floor is not None else 0
        started = anyio.current_time()
        timed_out = self.leases.statistics().timed_out
        try:
            lease = await self.leases.acquire(session_id, deadline, epoch_floor=floor)
        finally:
            waited = anyio.current_time() - started
            if waited > 0.01 or self.leases.statistics().timed_out != timed_out:
                self.lease_waits += 1
                self.lease_wait_seconds += waited
        try:
            if self._claim is not None:
                await self._claim(session_id, lease.epoch)
            self._tg.start_soon(lease.keep_alive, name=f"lease {session_id!r}")
        except BaseException:
            await self.leases.release(session_id)
            raise
        return lease

    @contextmanager
    def fence(self, message: MessageInfo) -> Iterator[int | None]:
        """Run the message's work inside its lease's fence; yield the lease's epoch.

        Raises:
            LeaseLostError: The lease was lost (or could have expired) while the work ran:
                the work was stopped and its result is discarded.
            LeaseTimeoutError: No lease is held for the message (its wait ran out the deadline).
        """
        lease = self._running.get(message.session_id)
        if lease is None:
            raise LeaseTimeoutError(
                f"session {message.session_id!r}: no lease could be taken before the deadline; retry later",
                session_id=message.session_id,
                retry_after=self.leases.ttl,
            )
        with lease.fence() as scope:
            yield lease.epoch
        if scope.cancelled_caught:
            self.lost += 1
            raise LeaseLostError(
                f"session {message.session_id!r} lost its lease (epoch {lease.epoch}) while answering; "
                "the answer was discarded, retry the message"
            )

    async def after_reply(self, message: MessageInfo) -> None:
        """The message is settled: its lease may linger, then is released."""
        self._settle(message.session_id)

    async def passivate(self, session_id: str) -> None:
        """The session's task ended: its lease lingers, then is released."""
        self._settle(session_id)

    def _settle(self, session_id: str) -> None:
        lease = self._running.pop(session_id, None)
        if lease is not None:
            lease.end()
