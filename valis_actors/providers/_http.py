"""What the SDK providers share: the HTTP client, one client per runtime, SSE reading, error entry.

Transport. Both SDKs (anthropic, openai) are built on ``httpx2`` and accept
``http_client=``; each also ships ``DefaultAioHttpClient``, an ``httpx2.AsyncClient``
whose transport is aiohttp. aiohttp only runs on asyncio, so :func:`build_http_client`
picks:

- asyncio + aiohttp importable -> the SDK's ``DefaultAioHttpClient``;
- trio (or no aiohttp)          -> the SDK's ``DefaultAsyncHttpxClient`` (httpx2 on anyio).

Measured (docs/performance.md, "Choosing the SDK transport"): aiohttp gives about +50 %
requests per second on asyncio; on trio httpx2 with our pool limits is the best available.

With httpx2 the SDKs no longer show the ~290 req/s collapse of httpx 0.28
(encode/httpx#3215); the SDK's own per-call work dominates, and aiohttp still
gives +50 % on asyncio. Pool limits: the runtime's ``max_concurrent_requests``
already bounds the requests in flight, so the pool must never be the bottleneck:
``max_connections`` connections, all allowed to stay alive (a keep-alive pool
smaller than the concurrency makes the client close and reopen connections under
load), for ``KEEPALIVE_EXPIRY`` seconds.

Streams. The SDKs' stream classes nest async generators they never close (OpenAI
leaves them suspended after ``[DONE]``); under trio every abandoned generator is a
``ResourceWarning``. So the providers use the SDKs to send the request (and turn
error statuses into SDK exceptions) and read the event stream themselves with
:func:`iter_sse`, whose generators are always closed.

Answers. A non-streamed answer is read the same way: the SDK sends the request
(``with_raw_response``: the same request, its errors raised alike) and the provider
reads the four fields it needs from the JSON body (``_common.parse_body``). Building
the SDK's pydantic response models costs 720 000-780 000 instructions per anthropic
answer, a fifth of the whole bare SDK call over loopback (docs/performance.md, eighth pass).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import ProviderError, ProviderTimeoutError, ProviderUnavailableError, TransientProviderError
from ._base import BaseProvider, provider_options
from ._common import ErrorInfo, Redactor, classify_error, clip, read_api_key, scrub, unexpected_error
from ._connect import unreachable_error

if TYPE_CHECKING:
    from .._config import ProviderSettings

__all__ = [
    "DEFAULT_SDK_TIMEOUT",
    "KEEPALIVE_EXPIRY",
    "SDKProvider",
    "build_http_client",
    "current_backend",
    "iter_sse",
    "timed_out",
    "transport_name",
]

logger = logging.getLogger("valis_actors.providers")

KEEPALIVE_EXPIRY = 30.0
CONNECT_TIMEOUT = 5.0
DEFAULT_SDK_TIMEOUT = 120.0


def current_backend() -> str:
    """The name of the running async library (``"asyncio"`` or ``"trio"``)."""
    try:
        import sniffio
    except ImportError:  # sniffio comes with trio: without it, there is no trio
        return "asyncio"
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return "asyncio"


def transport_name(backend: str | None = None) -> str:
    """Which transport :func:`build_http_client` picks on ``backend`` (default: the running one)."""
    if (backend or current_backend()) != "asyncio":
        return "httpx2"
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return "httpx2"
    return "aiohttp"


def build_http_client(
    sdk: ModuleType, *, max_connections: int, timeout: float, backend: str | None = None
) -> Any:
    """Build one long-lived HTTP client for ``sdk`` (the ``anthropic`` or ``openai`` module).

    Blocking (it loads CA certificates and may import aiohttp): the providers run it
    in a worker thread, passing the ``backend`` the client will run on
    (:func:`current_backend`, read on the event loop). The caller owns the client and
    must ``await client.aclose()``: under trio the SDK does not close it.

    Args:
        sdk: The imported SDK module; its ``Default*Client`` classes keep its defaults
            (redirects, socket options) and take our limits and timeout.
        backend: ``"asyncio"`` or ``"trio"``; None reads it from the running loop (so
            None only works when called on the event loop, not in a worker thread).
        max_connections: Connections in the pool; all may be kept alive.
        timeout: Read/write timeout in seconds (the runtime's cancel scope is the real
            per-attempt limit; this one ends a stalled connection nobody cancels).
    """
    import httpx2

    limits = httpx2.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    client_timeout = httpx2.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
    if transport_name(backend or current_backend()) == "aiohttp":
        return sdk.DefaultAioHttpClient(limits=limits, timeout=client_timeout)
    return sdk.DefaultAsyncHttpxClient(
        limits=limits, timeout=client_timeout, event_hooks={"response": [_close_body_generator]}
    )


async def _close_body_generator(response: Any) -> None:
    """Make the body of ``response`` close its innermost generator when it is closed unread.

    httpx2's transport stream iterates httpcore2's body generator without closing it,
    so a response closed before its end (a stall cut by a timeout, a stream abandoned
    on a malformed event) leaves that generator to the garbage collector; under trio
    that is a ResourceWarning every time. This swaps the body for an iterator object
    that owns the generator and closes it. It reaches into httpx2's private stream
    attributes, guarded: if they change, it does nothing and only the warning returns.
    """
    transport_stream = getattr(response.stream, "_stream", None)
    body = getattr(transport_stream, "_httpcore_stream", None)
    if transport_stream is not None and hasattr(body, "aclose") and not isinstance(body, _OwnedBody):
        transport_stream._httpcore_stream = _OwnedBody(body)


class _OwnedBody:
    """An async iterator over an httpcore2 body that closes its generator on ``aclose``."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self._parts: Any = None

    def __aiter__(self) -> _OwnedBody:
        return self

    async def __anext__(self) -> bytes:
        if self._parts is None:
            self._parts = self._body.__aiter__()
        part: bytes = await self._parts.__anext__()
        return part

    async def aclose(self) -> None:
        try:
            if self._parts is not None and hasattr(self._parts, "aclose"):
                await self._parts.aclose()
        finally:
            await self._body.aclose()


def timed_out(exc: BaseException) -> bool:
    """Whether a timeout-typed error really is a timeout, not a dropped connection.

    The aiohttp adapter reports every ``aiohttp.ClientConnectionError`` (a reset, a
    server that closed the connection) as ``httpx2.ConnectTimeout``, which the SDKs
    turn into their ``APITimeoutError``; the original error is in the cause chain.
    """
    return not any(
        type(link).__module__.startswith("aiohttp") and not isinstance(link, TimeoutError)
        for link in _chain(exc)
    )


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and all(link is not seen for seen in links):
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


async def iter_sse(response: Any) -> AsyncGenerator[tuple[str | None, str], None]:
    """The server-sent events of an httpx2 response, as ``(event, data)`` pairs.

    Comments are skipped; an event cut off by the end of the body is dropped (the
    SSE rule), which the caller sees as a stream that ended early.
    """
    buffer = b""
    event: str | None = None
    data: list[str] = []
    async with aclosing(response.aiter_bytes()) as chunks:
        async for chunk in chunks:
            *lines, buffer = (buffer + chunk).split(b"\n")
            for raw in lines:
                line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
                if not line:
                    if data or event is not None:
                        yield event, "\n".join(data)
                    event, data = None, []
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)


# Distinct model names whose redacted form a provider keeps (a misbehaving server could
# name a new one per answer; past this many, they are redacted each time).
_MAX_MODEL_NAMES = 64


class SDKProvider(BaseProvider):
    """The base of the Anthropic and OpenAI providers: key, redaction, client, error entry.

    Subclasses set ``options_type`` (an attrs class with ``api_key_env`` and
    ``max_connections``) and implement :meth:`_import_sdk`, :meth:`_make_client`
    and :meth:`_status_info`. The SDK is imported by :meth:`aopen`, in a worker thread.
    """

    suspends = True  # an answer is an HTTP response: reading it always suspends the task

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        if self.options_type is None:
            raise TypeError(f"{type(self).__name__} must set options_type")
        self.options: Any = provider_options(settings, self.options_type)
        self.api_key = read_api_key(self.options.api_key_env)
        self._redact = Redactor([self.api_key])
        self._models: dict[str, str] = {}  # reported_model's answers: a server names few models
        self._sdk: Any = None
        self._http: Any = None
        self.client: Any = None

    def unavailable_reason(self) -> str | None:
        if self.api_key is None and not getattr(self.options, "api_key_optional", False):
            return f"{self.options.api_key_env} not set"
        return None

    def redact(self, text: str) -> str:
        return self._redact(text)

    def reported_model(self, model: object) -> str | None:
        """The model a response names, as ``reply.model`` may show it: redacted and clipped.

        A misbehaving server or proxy may echo the key there, and a successful answer's
        fields reach the caller, the attempts and the CLI footer unfiltered otherwise.
        """
        if not isinstance(model, str) or not model:
            return None
        # Redacting a key-like name runs a fuzzy match against the key (tens of microseconds
        # per answer); its result depends on the name alone, so it is kept per name.
        models = self._models
        shown = models.get(model)
        if shown is None:
            shown = clip(self._redact(model))
            if len(models) < _MAX_MODEL_NAMES:
                models[model] = shown
        return shown

    @property
    def sdk_timeout(self) -> float:
        """The SDK's read timeout: the entry's ``timeout``, or a generous default.

        The runtime enforces the per-attempt timeout with a cancel scope; this one only
        ends a stalled connection nobody cancels.
        """
        return self.settings.timeout or DEFAULT_SDK_TIMEOUT

    async def aopen(self) -> None:
        if self.client is not None or self.unavailable_reason() is not None:
            return
        # The SDK is imported here, not at module import (`import valis_actors` and
        # config loading stay free of it; a provider without a key never pays), and in a
        # worker thread, like the clients' construction (CA certificates are read from
        # disk): importing anthropic takes about a second, which would stall every other
        # task of an application that opens a runtime on its event loop.
        self._http, self.client = await anyio.to_thread.run_sync(self._build_clients, current_backend())

    def _build_clients(self, backend: str) -> tuple[Any, Any]:
        http = build_http_client(
            self.load_sdk(),
            backend=backend,
            max_connections=self.options.max_connections,
            timeout=self.sdk_timeout,
        )
        return http, self._make_client(http)

    async def aclose(self) -> None:
        client, http = self.client, self._http
        self.client = self._http = None
        with anyio.CancelScope(shield=True):
            if client is not None:
                await client.close()
            if http is not None:
                await http.aclose()

    @property
    def base_url(self) -> str:
        """The URL the SDK sends to: the entry's ``base_url``, the SDK's environment variable
        (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``) or its default."""
        client = self.client
        url = getattr(client, "base_url", None) if client is not None else None
        return str(url if url is not None else self.options.base_url or "")

    def _require_client(self) -> Any:
        if self.client is None:
            reason = self.unavailable_reason()
            raise ProviderUnavailableError(
                reason or f"provider {self.name!r} is not open: call aopen() first"
            )
        return self.client

    def load_sdk(self) -> Any:
        """Import the SDK (once) and return its module; blocking, so ``aopen`` runs it in a thread."""
        if self._sdk is None:
            self._sdk = self._import_sdk()
        return self._sdk

    def _import_sdk(self) -> Any:
        raise NotImplementedError

    def _make_client(self, http_client: Any) -> Any:
        """Create the SDK client (in a worker thread: it may import the SDK's lazy modules)."""
        raise NotImplementedError

    def _status_info(self, exc: Any) -> ErrorInfo:
        """The status, body fields and headers of the SDK's ``APIStatusError``."""
        raise NotImplementedError

    def _classify(self, info: ErrorInfo) -> ProviderError:
        return classify_error(info, key_env=self.options.api_key_env, redact=self._redact)

    async def _next_event(
        self, events: AsyncIterator[tuple[str | None, str]]
    ) -> tuple[str | None, str] | None:
        """The next server-sent event, or None at the end of the body; errors mapped."""
        try:
            return await events.__anext__()
        except StopAsyncIteration:
            return None
        except Exception as exc:
            raise self._map(exc) from exc

    def _map(self, exc: BaseException) -> ProviderError:
        """Translate what the SDK or its HTTP client raised into our error types (once, here)."""
        import httpx2

        sdk = self._sdk
        if isinstance(exc, ProviderError):
            return exc
        scrub(exc, self._redact)  # it becomes our error's __cause__
        if isinstance(exc, sdk.APIStatusError):
            return self._classify(self._status_info(exc))
        # Before the timeout test: a connect timeout (and, through aiohttp, every connect
        # error) arrives as the SDK's APITimeoutError, but nothing was sent.
        unreachable = unreachable_error(exc, url=self.base_url, redact=self._redact)
        if unreachable is not None:
            # One line, no traceback: the outcome table knows this failure.
            logger.warning("provider %r: %s", self.name, unreachable)
            return unreachable
        # The deepest cause names the failure best (ConnectionResetError, RemoteProtocolError...).
        causes: list[BaseException] = [link for link in _chain(exc) if isinstance(link, Exception)] or [exc]
        cause = type(causes[-1]).__name__
        if isinstance(exc, (sdk.APITimeoutError, httpx2.TimeoutException)) and timed_out(exc):
            return ProviderTimeoutError(f"no data within {self.sdk_timeout:g}s ({cause})")
        if isinstance(exc, (sdk.APIConnectionError, httpx2.HTTPError)):
            return TransientProviderError(f"connection lost ({cause})")
        if isinstance(exc, json.JSONDecodeError):
            return TransientProviderError("malformed response body (invalid JSON)")
        return unexpected_error(exc, redact=self._redact)
