"""Run a workload on virtual time, on trio or asyncio."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from ._extras import require

__all__ = ["run_on_virtual_time"]

T = TypeVar("T")


def run_on_virtual_time(func: Callable[..., Awaitable[T]], *args: Any, backend: str = "trio") -> T:
    """Run ``func(*args)`` in a new event loop whose clock jumps whenever every task waits.

    The default backend is **trio**: ``trio.testing.MockClock(autojump_threshold=0)``;
    ``backend="asyncio"`` runs on looptime's event loop. Both come with
    ``pip install "valis_actors[testing]"``. A workload that sleeps 300 s
    finishes in milliseconds, and its timings are exact and repeatable. Code that
    waits on worker threads or real sockets should not run on virtual time: the
    clock jumps while the thread or the kernel works.

    Raises:
        ValueError: ``backend`` is neither ``"trio"`` nor ``"asyncio"``.
        ModuleNotFoundError: trio (or looptime, for asyncio) is not installed; the
            message names the extra that installs it.
    """
    if backend == "trio":
        trio_testing = require("trio.testing", "run_on_virtual_time(backend='trio') (the default)")
        options: dict[str, Any] = {"clock": trio_testing.MockClock(autojump_threshold=0)}
    elif backend == "asyncio":
        looptime = require("looptime", "run_on_virtual_time(backend='asyncio')")
        options = {"loop_factory": looptime.new_event_loop}
    else:
        raise ValueError(f"backend must be 'trio' or 'asyncio', got {backend!r}")
    return anyio.run(func, *args, backend=backend, backend_options=options)
