"""``Signal``: a one-shot event for the per-message waits (a caller's reply, an actor's mail).

Every message waits twice: its caller for the reply, the session's actor for mail.
``anyio.Event`` wraps the backend's event, so on asyncio one wait costs an anyio event,
an ``asyncio.Event``, its deque of waiters, a future and two coroutine frames, all tracked
by the garbage collector; with thousands of sessions waiting at once, those are what the
collector walks. A signal is set once:

- asyncio: ``FutureSignal``, a bare future per wait, made only when someone waits before it is set;
- trio: ``trio.Event`` itself (no wrapper);
- any other backend: ``anyio.Event``.

``signal_class()`` picks one for the running backend (the runtime calls it once). Waiting
on a signal that is already set is still a checkpoint, as with ``anyio.Event``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

import anyio
import sniffio
from anyio.lowlevel import checkpoint

__all__ = ["FutureSignal", "Signal", "checkpoint_function", "scope_class", "signal_class"]


class Signal(Protocol):
    """What the runtime needs of an event: set once, read, waited on."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self) -> Awaitable[None]: ...


class FutureSignal:
    """A signal on asyncio: each wait awaits a future of its own, made only when it waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        # The waiting futures: one (the common case), a list of several, or None.
        self._waiters: asyncio.Future[None] | list[asyncio.Future[None]] | None = None

    def set(self) -> None:
        self._set = True
        waiters = self._waiters
        if waiters is None:
            return
        self._waiters = None
        for future in waiters if isinstance(waiters, list) else (waiters,):
            if not future.done():  # a cancelled waiter's future is done
                future.set_result(None)

    def is_set(self) -> bool:
        return self._set

    def wait(self) -> Awaitable[None]:
        if self._set:
            return checkpoint()
        # Awaited as it is: cancelling the waiting task cancels its own future only.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            self._waiters = future
        elif isinstance(waiters, list):
            waiters.append(future)
        else:
            self._waiters = [waiters, future]
        return future


def checkpoint_function() -> Callable[[], Awaitable[None]]:
    """The running backend's own checkpoint (``anyio.lowlevel.checkpoint`` finds the backend each call)."""
    library = sniffio.current_async_library()
    if library == "asyncio":
        return partial(asyncio.sleep, 0)  # what anyio's checkpoint does on asyncio
    if library == "trio":
        import trio

        return trio.lowlevel.checkpoint
    return checkpoint  # pragma: no cover - anyio runs on asyncio and trio only


def signal_class() -> type[Signal]:
    """The signal class for the running async backend."""
    library = sniffio.current_async_library()
    if library == "asyncio":
        return FutureSignal
    if library == "trio":
        import trio  # only under trio, which is then loaded already

        return trio.Event
    return type(anyio.Event())  # pragma: no cover - anyio runs on asyncio and trio only


def scope_class() -> Callable[..., anyio.CancelScope]:
    """The cancel scope class for the running async backend, for the per-message scopes.

    On trio, ``trio.CancelScope`` itself: anyio's scope on trio is a wrapper that forwards
    to one, and the wrapper's layer costs about a third of what a scope with a deadline
    costs (counted in instructions per message, docs/performance.md). On asyncio, anyio's
    scope with its deadline kept by a ``DeadlineQueue``: one loop timer for all the
    runtime's scopes instead of one per scope (see ``_deadlines``). All have what the
    runtime uses: ``cancel()``, ``deadline``, ``cancel_called``, ``cancelled_caught``.
    """
    library = sniffio.current_async_library()
    if library == "trio":
        import trio  # only under trio, which is then loaded already

        return trio.CancelScope  # type: ignore[return-value]
    if library == "asyncio":
        from ._deadlines import DeadlineQueue

        return DeadlineQueue().scope  # type: ignore[return-value]
    return type(anyio.CancelScope())  # pragma: no cover - anyio runs on asyncio and trio only
