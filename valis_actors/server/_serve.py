"""Serving the app on Hypercorn (asyncio or trio worker), with a graceful drain.

On SIGTERM or SIGINT (or ``ServerHandle.drain()``): the server drains — new requests get 503
with ``Retry-After``, answers in flight finish (up to ``drain_timeout``) — then
Hypercorn closes the listener, the lifespan closes the runtime, and the process
exits 0. A second signal stops at once.

``valis serve`` owns its process, so it tunes the garbage collector once the app has
started (``tune_gc=True``, see ``tune_collector``); ``run_server`` alone, like the rest of
the library, leaves the collector as it found it.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskStatus
from hypercorn.asyncio.run import worker_serve as asyncio_serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.utils import wrap_app
from starlette.applications import Starlette

import valis_actors as va

from ._service import Service
from ._settings import API_KEYS_ENV, ServerSettings

__all__ = ["GC_THRESHOLDS", "ServerHandle", "check_exposure", "run_server", "serve", "tune_collector"]

logger = logging.getLogger("valis_actors.server")

# The young generation's threshold raised from CPython's 700: a request allocates a few
# hundred short-lived GC-tracked objects (SDK models, ASGI scopes, coroutines), so at the
# default most young collections find only live in-flight requests. The older ones as default.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_collector() -> None:
    """Tune the cyclic garbage collector for a long-running server process (``valis serve``).

    Called once the app has started (the runtime open, its providers and SDK clients made):
    ``gc.freeze()`` moves every object alive then (modules, classes, SDK and pydantic
    internals: long-lived by nature) out of the collector's passes, and ``GC_THRESHOLDS``
    makes young collections rarer. Process-wide: only for a process that ``valis serve``
    owns; the library never calls it for you (see docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    logger.debug("garbage collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), GC_THRESHOLDS)


def _tune_after_startup(app: Starlette) -> None:
    """Wrap the app's lifespan so that ``tune_collector`` runs once startup has finished."""
    startup = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan_then_tune(app: Any) -> AsyncIterator[Any]:
        async with startup(app) as state:
            tune_collector()
            yield state

    app.router.lifespan_context = lifespan_then_tune


def check_exposure(host: str, settings: ServerSettings) -> None:
    """Refuse a non-loopback host when no API key is configured.

    Raises:
        ConfigError: Saying how to set keys.
    """
    if settings.api_keys or _is_loopback(host):
        return
    raise va.ConfigError(
        f"refusing to listen on {host} without API keys: anyone who can reach it could use your providers. "
        f"Set {API_KEYS_ENV}=key1,key2 (or \"server\": {{\"api_keys\": [...]}} in config.json), "
        "or listen on 127.0.0.1"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _on_trio() -> bool:
    try:
        import sniffio
    except ImportError:  # sniffio comes with trio: without it, there is no trio
        return False
    return bool(sniffio.current_async_library() == "trio")


class ServerHandle:
    """A running server: its URL, and the drain switch that signals also press.

    Attributes:
        url: ``http://host:port`` (the API is under ``/v1``).
    """

    def __init__(self, url: str, app: Starlette) -> None:
        self.url = url
        self.app = app
        self._drain = anyio.Event()
        self._now = anyio.Event()

    def drain(self) -> None:
        """Start the drain now (new requests get 503 from this call on); a second call stops at once."""
        if self._drain.is_set():
            self._now.set()
        service = self.app.state.valis
        if isinstance(service, Service):
            service.draining = True
        self._drain.set()


async def run_server(
    app: Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    handle_signals: bool = True,
    announce: Callable[[str], None] | None = None,
    reuse_port: bool = False,
    tune_gc: bool = False,
    task_status: TaskStatus[ServerHandle] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (or ``ServerHandle.drain()``), drain, and return.

    Works on asyncio and trio (the matching Hypercorn worker). ``task_status.started``
    gets a ``ServerHandle`` once the socket listens (port 0 picks a free port);
    requests sent before the lifespan has started wait in the listen backlog.
    ``tune_gc`` (what ``valis serve`` passes: it owns its process) runs ``tune_collector``
    once the app's lifespan has started; by default the collector is left alone.

    ``reuse_port`` binds with ``SO_REUSEPORT`` (``valis serve --workers``: several
    processes listen on one port and the kernel spreads connections over them).

    Raises:
        ConfigError: A non-loopback ``host`` while the app has no API keys.
    """
    settings: ServerSettings = app.state.valis_settings
    check_exposure(host, settings)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=1024, reuse_port=reuse_port)
    except OSError as exc:
        raise va.ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port or --host") from None
    # Accepted sockets inherit it. asyncio sets it itself only on sockets whose proto is
    # IPPROTO_TCP (create_server's are 0): without it, keep-alive responses written in two
    # parts wait ~40 ms for the client's delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    bound = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{bound}"
    config = HypercornConfig()
    config.graceful_timeout = 5.0  # in-flight answers are drained before Hypercorn's own timeout starts
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # through logging's handlers, not a second stream
    config.keep_alive_timeout = 75.0  # above the usual client pool idle times
    sockets = Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[])
    handle = ServerHandle(url, app)
    if tune_gc:
        _tune_after_startup(app)

    async def shutdown_trigger() -> None:
        await handle._drain.wait()
        service = app.state.valis
        if isinstance(service, Service):
            service.draining = True
            timeout = settings.drain_timeout or service.runtime.config.response_deadline + 5.0
            logger.info("draining: %d answers in flight (up to %gs)", service.flights.in_flight, timeout)
            with anyio.move_on_after(timeout):
                async with anyio.create_task_group() as tg:

                    async def until_now() -> None:
                        await handle._now.wait()
                        tg.cancel_scope.cancel()

                    tg.start_soon(until_now)
                    await service.flights.idle.wait()
                    tg.cancel_scope.cancel()

    async def watch_signals() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                handle.drain()

    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]

    async def hypercorn_then_stop() -> None:
        # Hypercorn runs in a child task: on asyncio it cancels and un-cancels tasks with
        # asyncio's own calls, which must not reach the task that owns this group.
        if _on_trio():
            from hypercorn.trio.run import worker_serve as trio_serve  # imports trio: only on trio

            sock.listen(1024)
            await trio_serve(wrapped, config, sockets=sockets, shutdown_trigger=shutdown_trigger)
        else:
            await asyncio_serve(wrapped, config, sockets=sockets, shutdown_trigger=shutdown_trigger)
        tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        if handle_signals:
            tg.start_soon(watch_signals)
        tg.start_soon(hypercorn_then_stop)
        if announce is not None:
            announce(url)
        task_status.started(handle)

def serve(
    config_path: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    backend: str = "asyncio",
    workers: int = 1,
    reuse_port: bool = False,
) -> int:
    """``valis serve``: load the config, check exposure, serve until a signal; the exit code.

    With ``workers`` > 1 (cluster mode only), run that many worker processes on one port.

    Raises:
        ConfigError: A bad config, a non-loopback host without API keys, or ``workers`` > 1
            without cluster mode.
    """
    from ._app import create_app
    from ._settings import load_server_config
    from ._workers import check_workers, serve_workers

    config, settings = load_server_config(config_path)
    check_exposure(host, settings)
    check_workers(workers, config)
    if workers > 1:
        return serve_workers(workers, config_path=config_path, host=host, port=port, backend=backend)
    app = create_app(config, settings=settings)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def announce(url: str) -> None:
        auth = f"{len(settings.api_keys)} API key(s)" if settings.api_keys else "no auth (loopback only)"
        print(f"valis serve: {url}/v1 on {backend}, {auth}; chat page at {url}/; Ctrl+C or SIGTERM drains "
              "and stops", file=sys.stderr)

    anyio.run(_serve_main, app, host, port, announce, reuse_port, backend=backend)
    return 0


async def _serve_main(
    app: Starlette, host: str, port: int, announce: Callable[[str], None], reuse_port: bool
) -> None:
    await run_server(app, host=host, port=port, announce=announce, reuse_port=reuse_port, tune_gc=True)
