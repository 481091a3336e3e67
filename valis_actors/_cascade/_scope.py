"""``MessageScope``: the cancel handle of one message while the cascade answers it.

Whoever owns a message (its session actor, its caller, its stream) cancels it, or
tightens its deadline, through this handle. It is not itself a cancel scope: it
forwards to the one real scope that bounds the message's work at the moment.

- The common message (one attempt that answers) runs in a single real scope, the
  attempt's own: its deadline is the attempt's timeout or the message's deadline,
  whichever comes first, and a cancel of the message cancels it.
- Anything more (retries, failover, hedging, streaming, waiting for a slot or a probe)
  runs in a real scope that spans the rest of the message, opened by the cascade.

So a message costs one cancel scope and one timer, not two: each costs several
microseconds (more on trio), and its objects are held across the provider call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio

__all__ = ["MessageScope"]


class MessageScope:
    """The cancel handle of one message; see the module docstring.

    Args:
        deadline: When the message's attempts must end (the response deadline less the
            fallback's reserve).
        new_scope: Builds the real cancel scopes (the backend's own class).
    """

    __slots__ = ("_bound", "_cancelled", "_deadline", "_new_scope", "_target")

    def __init__(self, deadline: float, new_scope: Callable[..., anyio.CancelScope] = anyio.CancelScope) -> None:
        self._deadline = deadline
        self._new_scope = new_scope
        self._cancelled = False
        self._target: anyio.CancelScope | None = None  # the real scope bounding the work now
        self._bound = math.inf  # the target's own deadline (an attempt's timeout), if earlier

    @property
    def deadline(self) -> float:
        """When the message's attempts must end; the owner may tighten it (or undo that) at any time."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        self._deadline = value
        target = self._target
        if target is not None:
            target.deadline = min(self._bound, value)

    @property
    def cancel_called(self) -> bool:
        """True once the message was cancelled (its caller gave up)."""
        return self._cancelled

    def cancel(self) -> None:
        """Cancel the message: the work running now, and any the cascade would start after it."""
        self._cancelled = True
        target = self._target
        if target is not None:
            target.cancel()

    def open(self, bound: float = math.inf) -> anyio.CancelScope:
        """A real scope for the message's work from now on, to enter at once.

        It ends at ``bound`` or the message's deadline, whichever is first, and follows
        the handle (cancel, deadline) until :meth:`close`. Opened already cancelled if
        the message was.
        """
        scope = self._new_scope(deadline=min(bound, self._deadline))
        if self._cancelled:
            scope.cancel()
        self._target = scope
        self._bound = bound
        return scope

    def close(self) -> None:
        """The real scope was left: nothing to forward to until the next :meth:`open`."""
        self._target = None
        self._bound = math.inf
