"""Run a workload on virtual time, on trio or asyncio."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

__all__ = ["run_on_virtual_time"]

T = TypeVar("T")


def run_on_virtual_time(func: Callable[..., Awaitable[T]], *args: Any, backend: str = "trio") -> T:
    """Run ``func(*args)`` in a new event loop whose clock jumps whenever every task waits.

    On trio this is ``trio.testing.MockClock(autojump_threshold=0)``; on asyncio it is
    looptime's event loop (``pip install looptime``). A workload that sleeps 300 s
    finishes in milliseconds, and its timings are exact and repeatable. Code that
    waits on worker threads or real sockets should not run on virtual time: the
    clock jumps while the thread or the kernel works.
    """
    if backend == "trio":
        import trio.testing

        options: dict[str, Any] = {"clock": trio.testing.MockClock(autojump_threshold=0)}
    elif backend == "asyncio":
        import looptime

        options = {"loop_factory": looptime.new_event_loop}
    else:
        raise ValueError(f"backend must be 'trio' or 'asyncio', got {backend!r}")
    return anyio.run(func, *args, backend=backend, backend_options=options)
