"""The running loop's clock, looked up once.

``anyio.current_time()`` finds the backend on every call (a few microseconds);
on the hot path the runtime calls the backend's own clock directly: the asyncio
loop's ``time`` (looptime's virtual clock in tests) or the trio run's clock's
``current_time`` (``trio.current_time()`` reaches it through two more calls; a
``MockClock`` in tests). Same clock, same values as ``anyio.current_time()``.
"""

from __future__ import annotations

from collections.abc import Callable

import sniffio

__all__ = ["Clock", "backend_clock"]

Clock = Callable[[], float]


def backend_clock() -> Clock:
    """The clock of the running event loop (call from inside it)."""
    # Imported here: `import valis_actors` should not pay for importing an event loop.
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_clock().current_time
    import asyncio

    return asyncio.get_running_loop().time
