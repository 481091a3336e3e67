"""Per-message cancel scopes on asyncio whose deadlines share one loop timer.

Every message runs under a cancel scope with a deadline (its attempt's timeout, or the
message's own). An anyio scope with a deadline arms a loop timer when it is entered and
cancels it when it is left: the timer is about half of what the scope costs (counted in
instructions per message, docs/performance.md), for a deadline that almost never fires.

Here the scopes of one runtime share a timer instead. A scope entered with a deadline
joins a queue in deadline order; the one loop timer is armed for the queue's head and,
when it fires, cancels the scopes that are due and re-arms for the next. The deadlines
of a runtime's messages are "now plus a constant" (a provider's timeout, the response
timeout), so they arrive in order, and joining is an append; a scope whose deadline
would come before the queue's last one gets a timer of its own, as an anyio scope does.
A scope that is left leaves the queue at once if it is at its head, and otherwise when
everything before it has left.

The cancelling itself is the wrapped anyio scope's: its shields, its nesting with the
task's other scopes and its level-triggered delivery are anyio's own. Only the timer is
different, and a timer that fires early only re-arms. trio needs none of this: its
deadlines are kept by its scheduler, not by a handle per scope.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from types import TracebackType
from typing import Self

import anyio

__all__ = ["DeadlineQueue", "QueuedScope"]


class QueuedScope:
    """A cancel scope whose deadline is kept by a :class:`DeadlineQueue` (asyncio only).

    It has what the runtime uses of a cancel scope: ``cancel()``, a ``deadline`` the owner
    may change while it runs, ``cancel_called`` and ``cancelled_caught``. Enter it once.

    The queue and its scopes share ``when`` (the deadline) and ``queued`` (waiting in the
    queue's deque); a scope's other state is its own.
    """

    __slots__ = ("_active", "_handle", "_queue", "_scope", "queued", "when")

    def __init__(self, queue: DeadlineQueue, deadline: float = math.inf) -> None:
        self._queue = queue
        self._scope: anyio.CancelScope = queue.anyio_scope()
        self.when = deadline
        self.queued = False
        self._active = False  # entered and not left
        self._handle: asyncio.TimerHandle | None = None  # its own timer (a deadline out of order)

    @property
    def deadline(self) -> float:
        return self.when

    @deadline.setter
    def deadline(self, value: float) -> None:
        if math.isnan(value):
            raise ValueError("deadline must not be NaN")
        self.when = value
        if not self._active:
            return
        # Out of the queue's order now (it stays in the deque as left until dropped):
        # a timer of its own keeps the new deadline.
        self.queued = False
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if value != math.inf:
            self._own_timer(value)

    def _own_timer(self, when: float) -> None:
        """Cancel at ``when`` on a timer of this scope's own (now, if it has passed)."""
        loop = self._queue.loop
        if when <= loop.time():
            self.expire()
        else:
            self._handle = loop.call_at(when, self.expire)

    @property
    def cancel_called(self) -> bool:
        return self._scope.cancel_called

    @property
    def cancelled_caught(self) -> bool:
        return self._scope.cancelled_caught

    def cancel(self) -> None:
        self._scope.cancel()

    def expire(self) -> None:
        """The deadline passed: cancel (called by the queue, or by the scope's own timer)."""
        self._handle = None
        self.queued = False
        self._scope.cancel()

    def __enter__(self) -> Self:
        self._scope.__enter__()
        self._active = True
        when = self.when
        if when != math.inf:
            queue = self._queue
            if when >= queue.last:
                # In order: the timer, armed for a deadline no later than this one, reaches
                # it (a deadline already past included: the timer fires at once).
                queue.scopes.append(self)
                self.queued = True
                queue.last = when
                if queue.armed is None:
                    queue.arm(when)
            else:
                self._own_timer(when)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._active = False
        if self.queued:
            self.queued = False
            scopes = self._queue.scopes
            while scopes and not scopes[0].queued:  # drop the ones at the head that are gone
                scopes.popleft()
        elif self._handle is not None:
            self._handle.cancel()
            self._handle = None
        return self._scope.__exit__(exc_type, exc, tb)


class DeadlineQueue:
    """The deadlines of the scopes it makes, on one loop timer; see the module docstring.

    Make it in the running event loop; :meth:`scope` is the runtime's ``new_scope``.

    Attributes:
        scopes: The scopes waiting for their deadline, in deadline order (a scope that
            was left stays until the ones before it are gone too).
        last: The latest deadline queued while the timer was armed: a scope whose
            deadline is earlier is out of order.
        armed: The timer, armed for a deadline no later than any queued one; None when
            nothing is queued.
    """

    __slots__ = ("anyio_scope", "armed", "last", "loop", "scopes")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.anyio_scope = type(anyio.CancelScope())  # the backend's own class: no look-up per scope
        self.scopes: deque[QueuedScope] = deque()
        self.last = -math.inf
        self.armed: asyncio.TimerHandle | None = None

    def scope(self, *, deadline: float = math.inf) -> QueuedScope:
        """A cancel scope (not entered) whose deadline this queue keeps."""
        return QueuedScope(self, deadline)

    def arm(self, when: float) -> None:
        self.armed = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        """Cancel the scopes that are due; arm for the next one."""
        self.armed = None
        scopes = self.scopes
        now = self.loop.time()
        while scopes:
            head = scopes[0]
            if not head.queued:
                scopes.popleft()
            elif head.when <= now:
                scopes.popleft()
                head.expire()
            else:
                self.arm(head.when)
                return
        self.last = -math.inf  # nothing queued: any deadline is in order again
