"""Per-session leases: one process at a time works for a session, fenced by an epoch.

    acquire:  SET lease:{S} token NX PX ttl, and INCR epoch:{S} in the same script
    renew:    every ttl/3, PEXPIRE if the key still holds our token
    release:  DEL if the key still holds our token (after ``linger`` seconds idle)

Self-fencing runs on the monotonic clock: a lease is known valid until the start of
the request that last granted or renewed it, plus ttl, minus ``safety_margin``.
Fences (cancel scopes from :meth:`Lease.fence`) carry that deadline, so work stops
before Redis could give the session to another process even if the renewal task
never gets another answer; a renewal that finds the key gone cancels them at once.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import attrs

from . import _scripts
from ._connection import RedisConnection, session_tag
from ._errors import ClusterUnavailableError, LeaseLostError, LeaseTimeoutError

__all__ = ["Lease", "LeaseStatistics", "SessionLeases"]

_FIRST_POLL = 0.005
_MAX_POLL = 0.1


@attrs.frozen
class LeaseStatistics:
    """The process's leases, for ``/metrics``.

    Attributes:
        held: Sessions whose lease this process holds now.
        granted: Grants since the start.
        timed_out: Acquisitions that gave up at their deadline (another process held the session).
        lost: Leases lost before release (renewal refused or too late): each one stopped work.
    """

    held: int
    granted: int
    timed_out: int
    lost: int


class Lease:
    """This process's hold on one session, made by :meth:`SessionLeases.acquire`.

    Attributes:
        session_id: The session.
        epoch: The fencing epoch of this grant; every memory write of the grant carries it.
        token: The random value stored under the lease key.
        lost: Set once the lease is lost (renewal refused or too late) or released.
    """

    def __init__(
        self, owner: SessionLeases, session_id: str, epoch: int, token: str, valid_until: float
    ) -> None:
        self._owner = owner
        self.session_id = session_id
        self.epoch = epoch
        self.token = token
        self._valid_until = valid_until
        self.lost = anyio.Event()
        self._held = True
        self._busy = 0
        self._idle_since = anyio.current_time()
        self._poke = anyio.Event()
        self._fences: set[anyio.CancelScope] = set()

    def __repr__(self) -> str:
        return f"<Lease {self.session_id!r} epoch={self.epoch} held={self.held}>"

    @property
    def valid_until(self) -> float:
        """The ``anyio.current_time()`` before which the lease is known to be ours."""
        return self._valid_until

    @property
    def held(self) -> bool:
        """True while the lease is ours (not released, not lost, not past ``valid_until``)."""
        return self._held and anyio.current_time() < self._valid_until

    def check(self) -> None:
        """Raise unless the lease is held: call it before each side effect (a memory write).

        Raises:
            LeaseLostError: The lease was released, lost, or may have expired.
        """
        if not self.held:
            raise LeaseLostError(
                f"this process no longer holds the lease of session {self.session_id!r} (epoch {self.epoch}); "
                "its work for the session was stopped"
            )

    @contextmanager
    def fence(self) -> Iterator[anyio.CancelScope]:
        """A cancel scope that is cancelled when the lease is lost or reaches ``valid_until``.

        Renewals move its deadline on. Check ``scope.cancelled_caught`` (or :meth:`check`)
        after the block to tell a fenced stop from a normal end.
        """
        scope = anyio.CancelScope(deadline=self._valid_until)
        if not self._held:
            scope.cancel()
        self._fences.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._fences.discard(scope)

    def begin(self) -> None:
        """Mark the start of a message: the lease is not released while a message runs."""
        self._busy += 1

    def end(self) -> None:
        """Mark a message done; the lease is released after ``linger`` seconds without a message."""
        self._busy = max(0, self._busy - 1)
        if self._busy == 0:
            self._idle_since = anyio.current_time()
            self._poke.set()

    async def keep_alive(self) -> None:
        """Renew every ttl/3 until released, lost, or idle for ``linger``; run it in the caller's task group.

        Returns once the lease is no longer held. Never raises for Redis trouble: a lease
        that cannot be renewed in time is lost (its fences fire, ``lost`` is set).
        """
        owner = self._owner
        next_renewal = anyio.current_time() + owner.ttl / 3
        try:
            while self._held:
                now = anyio.current_time()
                if now >= self._valid_until:
                    self._lose()
                    return
                linger_end = self._idle_since + owner.linger if self._busy == 0 else math.inf
                if now >= linger_end:
                    await owner.release(self.session_id)
                    return
                if now >= next_renewal:
                    next_renewal = await self._renew()
                    continue
                self._poke = anyio.Event()
                with anyio.move_on_after(min(next_renewal, linger_end, self._valid_until) - now):
                    await self._poke.wait()
        except BaseException:
            # Cancelled with its owner (the runtime closing): give the session back now
            # rather than make the next process wait out the ttl. release() is shielded.
            if self._held:
                await owner.release(self.session_id)
            raise

    async def _renew(self) -> float:
        owner = self._owner
        started = anyio.current_time()
        renewed = None
        try:
            # Past valid_until an answer no longer matters: the fences have fired.
            with anyio.move_on_at(self._valid_until):
                renewed = await owner.connection.script(
                    f"renew the lease of session {self.session_id!r}",
                    _scripts.RENEW,
                    [owner.lease_key(self.session_id), owner.epoch_key(self.session_id)],
                    [self.token, owner.ttl_ms, owner.epoch_retention_ms],
                )
        except ClusterUnavailableError:
            pass
        if renewed is None:
            # Try again soon; the fences still stop the work at valid_until.
            return anyio.current_time() + min(owner.ttl / 10, _MAX_POLL)
        if not renewed:
            self._lose()
            return math.inf
        self._extend(started + owner.ttl - owner.safety_margin)
        return started + owner.ttl / 3

    def _extend(self, valid_until: float) -> None:
        self._valid_until = valid_until
        for scope in self._fences:
            scope.deadline = valid_until

    def _lose(self) -> None:
        if self._held:
            self._owner._lost += 1
        self._end()
        for scope in list(self._fences):
            scope.cancel()

    def _end(self) -> None:
        if self._held:
            self._held = False
            self._owner._forget(self)
            self.lost.set()
            self._poke.set()


class SessionLeases:
    """The process's leases on sessions, over one Redis connection.

    Args:
        connection: From :func:`open_redis`.
        ttl: Seconds a lease lives in Redis without renewal (renewed every ttl/3).
        linger: Seconds a lease is kept after the session's last message before release.
        safety_margin: Seconds before the ttl at which this process stops its work; default ttl/5.
        epoch_retention: Seconds a session's epoch counter is kept after its last grant or renewal.
    """

    def __init__(
        self,
        connection: RedisConnection,
        *,
        ttl: float = 10.0,
        linger: float = 2.0,
        safety_margin: float | None = None,
        epoch_retention: float = 7 * 86400.0,
    ) -> None:
        margin = ttl / 5 if safety_margin is None else safety_margin
        if not ttl > 0 or not 0 <= margin < ttl or linger < 0:
            raise ValueError(
                f"need ttl > 0, 0 <= safety_margin < ttl, linger >= 0 (got {ttl}, {margin}, {linger})"
            )
        self.connection = connection
        self.ttl = ttl
        self.ttl_ms = max(1, round(ttl * 1000))
        self.linger = linger
        self.safety_margin = margin
        self.epoch_retention_ms = max(self.ttl_ms * 2, round(epoch_retention * 1000))
        self._held: dict[str, Lease] = {}
        self._granted = 0
        self._timed_out = 0
        self._lost = 0

    def statistics(self) -> LeaseStatistics:
        """Counts of grants, timeouts and losses, and the leases held now."""
        return LeaseStatistics(len(self._held), self._granted, self._timed_out, self._lost)

    def lease_key(self, session_id: str) -> str:
        return self.connection.key("lease", session_tag(session_id))

    def epoch_key(self, session_id: str) -> str:
        return self.connection.key("epoch", session_tag(session_id))

    def get(self, session_id: str) -> Lease | None:
        """This process's lease on the session, if it holds one."""
        lease = self._held.get(session_id)
        return lease if lease is not None and lease.held else None

    async def acquire(self, session_id: str, deadline: float, *, epoch_floor: int = 0) -> Lease:
        """Take the session's lease, waiting for its holder until ``deadline``.

        Each grant bumps the session's epoch (atomically with the grant). Start
        :meth:`Lease.keep_alive` in the caller's task group right after.

        Args:
            session_id: The session.
            deadline: ``anyio.current_time()`` after which to give up.
            epoch_floor: The highest epoch a durable store has seen for the session; the
                grant's epoch is above it even if Redis lost its counter.

        Raises:
            LeaseTimeoutError: Another process held the lease until the deadline.
            ClusterUnavailableError: Redis cannot be reached (no session is taken on without it).
        """
        poll = _FIRST_POLL
        while True:
            started = anyio.current_time()
            token = secrets.token_hex(16)
            granted, value = await self.connection.script(
                f"acquire the lease of session {session_id!r}",
                _scripts.ACQUIRE,
                [self.lease_key(session_id), self.epoch_key(session_id)],
                [token, self.ttl_ms, epoch_floor, self.epoch_retention_ms],
            )
            if granted:
                lease = Lease(self, session_id, int(value), token, started + self.ttl - self.safety_margin)
                self._held[session_id] = lease
                self._granted += 1
                return lease
            holder_left = int(value) / 1000 if int(value) > 0 else 0.0
            now = anyio.current_time()
            if now >= deadline:
                self._timed_out += 1
                raise LeaseTimeoutError(
                    f"session {session_id!r} is being answered by another process; "
                    f"retry after {max(holder_left, 0.001):.3f} s",
                    session_id=session_id,
                    retry_after=holder_left,
                )
            wait = poll * random.uniform(0.5, 1.0)  # jitter: waiters do not poll in step
            if 0 < holder_left < wait:
                wait = holder_left
            await anyio.sleep(max(0.0, min(wait, deadline - now)))
            poll = min(poll * 2, _MAX_POLL)

    async def release(self, session_id: str) -> None:
        """Give the session's lease back now (compare-and-delete); a no-op if not held.

        Raises nothing for Redis trouble: an unreleased lease expires after its ttl.
        """
        lease = self._held.get(session_id)
        if lease is None:
            return
        lease._end()
        for scope in list(lease._fences):
            scope.cancel()
        try:
            with anyio.CancelScope(shield=True):
                await self.connection.script(
                    f"release the lease of session {session_id!r}",
                    _scripts.COMPARE_AND_DELETE,
                    [self.lease_key(session_id)],
                    [lease.token],
                )
        except ClusterUnavailableError:
            pass

    def _forget(self, lease: Lease) -> None:
        if self._held.get(lease.session_id) is lease:
            del self._held[lease.session_id]
