"""Every async test runs on asyncio and trio, on virtual time by default.

asyncio runs on looptime's event loop and trio on ``MockClock(autojump_threshold=0)``:
when every task is waiting, the clock jumps to the next deadline, so a 300 s
breaker timeout takes microseconds. Modules that talk to real sockets or real
processes define their own ``anyio_backend`` fixture on the real clock (a virtual
clock would jump while the kernel moves bytes or a worker thread runs).
"""

from __future__ import annotations

from collections.abc import Iterator

import blockbuster
import looptime
import pytest
import trio.testing


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    if request.param == "asyncio":
        return ("asyncio", {"loop_factory": looptime.new_event_loop})
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.fixture(autouse=True)
def no_blocking_calls() -> Iterator[None]:
    """Fail any test in which the runtime makes a blocking call on the event loop.

    blockbuster patches blocking functions (time.sleep, file and socket I/O, ...)
    to raise when called from a running asyncio loop by code in ``valis_actors``.
    The same code paths run under trio, so asyncio's check covers both.
    """
    with blockbuster.blockbuster_ctx("valis_actors", excluded_modules=["valis_actors.testing.fakeserver._http"]):
        yield
