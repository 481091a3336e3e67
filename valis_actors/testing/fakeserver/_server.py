"""The fake LLM server's state and request handling (see ``_fakeserver.py`` for the overview).

``FakeLLMServer`` owns the script queues, the default steps, the request records and the
counters; ``serve_connection`` runs one task per TCP connection, reading requests with
``_fakeserver_http`` and answering them with ``_fakeserver_respond``.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
import attrs

from ._errors import request_error
from ._faults import APIS, Api, Fault
from ._http import STREAM_GONE, Connection, HttpRequest, ProtocolError
from ._respond import Outcome, respond, send_error
from ._wire import Answer, continuation, count_words, split_chunks, trailing_prefill, truncate_words

__all__ = ["DEFAULT_TEXT", "FakeLLMServer", "FakeServerStatistics", "RecordedRequest"]

DEFAULT_TEXT = "Hello from fake-model."
DEFAULT_MODEL = "fake-model"
REDACTED = "<redacted>"

_ROUTES: dict[str, Api] = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai"}
_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})
_REQUIRED_FIELDS: dict[Api, tuple[str, ...]] = {
    "anthropic": ("model", "max_tokens", "messages"),
    "openai": ("model", "messages"),
}


@attrs.frozen
class RecordedRequest:
    """One request the server received, as the server saw it.

    Attributes:
        api: ``"anthropic"``, ``"openai"``, or ``None`` for an unknown path.
        method: The HTTP method.
        path: The request path (no query string).
        headers: Lower-cased headers; auth headers (``x-api-key``, ``authorization``...) are ``"<redacted>"``.
        body: The parsed JSON body, or ``None`` if it was not a JSON object.
        stream: Whether the request asked for ``"stream": true``.
        started_at: ``anyio.current_time()`` when the request was read.
        fault: The step applied (``Fault.unauthorized()`` for a wrong key; ``None`` if rejected as invalid).
        authorized: Whether the key matched ``api_keys`` (always ``True`` without ``api_keys``).
        completed: Whether the server has finished handling it.
        client_disconnected: Whether the client went away before the server was done.
    """

    api: Api | None
    method: str
    path: str
    headers: Mapping[str, str]
    body: Mapping[str, Any] | None
    stream: bool
    started_at: float
    fault: Fault | None
    authorized: bool
    completed: bool = False
    client_disconnected: bool = False


@attrs.frozen
class FakeServerStatistics:
    """Counters of a :class:`FakeLLMServer` (see :meth:`FakeLLMServer.statistics`)."""

    requests_total: int
    in_flight: int
    max_in_flight: int
    connections_total: int
    connections_open: int


def _api_key(api: Api, headers: Mapping[str, str]) -> str:
    authorization = headers.get("authorization", "")
    bearer = authorization[7:] if authorization[:7].lower() == "bearer " else ""
    if api == "anthropic":
        return headers.get("x-api-key") or bearer
    return bearer or headers.get("api-key", "")


def _max_tokens(api: Api, body: Mapping[str, Any]) -> int | None:
    value = (
        body.get("max_tokens")
        if api == "anthropic"
        else body.get("max_completion_tokens", body.get("max_tokens"))
    )
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _rejection(
    api: Api | None, request: HttpRequest, body: Mapping[str, Any] | None, authorized: bool
) -> tuple[int, str] | None:
    """The ``(status, message)`` that refuses the request before any step applies, if any."""
    if api is None:
        return 404, f"Unknown request URL: {request.method} {request.path}."
    if request.method != "POST":
        return 405, f"Method {request.method} not allowed on {request.path}."
    if not authorized:
        return None  # answered by the Fault.unauthorized() step
    if body is None:
        return 400, "The request body is not a JSON object."
    missing = [field for field in _REQUIRED_FIELDS[api] if field not in body]
    return (400, f"{missing[0]}: Field required") if missing else None


class FakeLLMServer:
    """The running fake server; get one from :func:`open_fake_llm_server`.

    All methods are meant to be called from the event loop that runs the server. The
    connection tasks update the counters and records without awaiting in between, so
    there is no interleaving to guard against.
    """

    def __init__(
        self,
        *,
        port: int,
        text: str,
        chunks: int,
        api_keys: Mapping[str, str] | None,
        default: Fault,
        record: bool,
    ) -> None:
        self._port = port
        self._text = text
        self._chunks = chunks
        self._api_keys = dict(api_keys) if api_keys is not None else None
        self._defaults: dict[Api, Fault] = dict.fromkeys(APIS, default)
        self._scripts: dict[Api, collections.deque[Fault]] = {api: collections.deque() for api in APIS}
        self._record = record
        self._requests: list[RecordedRequest] = []
        self._serial = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._connections_total = 0
        self._connections_open = 0

    # --- public API -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.AsyncAnthropic`` (the SDK appends ``/v1/messages``)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.AsyncOpenAI`` (the SDK appends ``/chat/completions``)."""
        return self.url + "/v1"

    def script(self, api: Api, *steps: Fault) -> None:
        """Queue ``steps`` for the next requests of ``api``, after any steps already queued."""
        self._check_api(api)
        for step in steps:
            if not isinstance(step, Fault):
                raise TypeError(
                    f"script() steps must be Fault objects (got {step!r}); build them with Fault.ok()..."
                )
        self._scripts[api].extend(steps)

    def pending(self, api: Api) -> tuple[Fault, ...]:
        """The steps still queued for ``api``."""
        self._check_api(api)
        return tuple(self._scripts[api])

    def clear_script(self, api: Api | None = None) -> None:
        """Drop the queued steps of ``api`` (of both APIs if ``None``)."""
        for name in self._apis(api):
            self._scripts[name].clear()

    def set_default(self, step: Fault, *, api: Api | None = None) -> None:
        """Make ``step`` apply whenever the queue of ``api`` (of both APIs if ``None``) is empty."""
        if not isinstance(step, Fault):
            raise TypeError(f"set_default() takes a Fault (got {step!r})")
        for name in self._apis(api):
            self._defaults[name] = step

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, oldest first (empty if recording is off)."""
        return tuple(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._requests.clear()

    @property
    def in_flight(self) -> int:
        """Requests being handled right now."""
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The highest :attr:`in_flight` seen since start (or since :meth:`reset_max_in_flight`)."""
        return self._max_in_flight

    def reset_max_in_flight(self) -> None:
        """Restart the :attr:`max_in_flight` high-water mark from the current :attr:`in_flight`."""
        self._max_in_flight = self._in_flight

    def statistics(self) -> FakeServerStatistics:
        """A snapshot of the server's counters."""
        return FakeServerStatistics(
            requests_total=self._serial,
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
            connections_total=self._connections_total,
            connections_open=self._connections_open,
        )

    # --- serving ----------------------------------------------------------------------------

    def _check_api(self, api: str) -> None:
        if api not in APIS:
            raise ValueError(f"api must be one of {APIS} (got {api!r})")

    def _apis(self, api: Api | None) -> tuple[Api, ...]:
        if api is None:
            return APIS
        self._check_api(api)
        return (api,)

    async def serve_connection(self, stream: anyio.abc.SocketStream) -> None:
        """Serve the requests of one connection until either side closes it."""
        self._connections_total += 1
        self._connections_open += 1
        try:
            async with stream:
                conn = Connection(stream)
                while True:
                    try:
                        request = await conn.read_request()
                    except ProtocolError as exc:
                        self._serial += 1
                        error = request_error("openai", exc.status, exc.message, self._serial)
                        await send_error(conn, "openai", error, self._serial, keep_alive=False)
                        return
                    if request is None or await self._handle(conn, request) is not Outcome.KEEP:
                        return
        except STREAM_GONE:
            pass
        finally:
            self._connections_open -= 1

    async def _handle(self, conn: Connection, request: HttpRequest) -> Outcome:
        self._serial += 1
        serial = self._serial
        api = _ROUTES.get(request.path)
        body = _json_object(request.body)
        api_key = _api_key(api, request.headers) if api is not None else ""
        authorized = self._api_keys is None or api is None or self._api_keys.get(api, api_key) == api_key
        rejection = _rejection(api, request, body, authorized)
        step: Fault | None = None
        if api is not None and rejection is None:
            # Like the real APIs, a wrong key is refused before anything else is looked at.
            step = self._next_step(api) if authorized else Fault.unauthorized()
        stream = body is not None and body.get("stream") is True
        record = RecordedRequest(
            api=api,
            method=request.method,
            path=request.path,
            headers={
                name: REDACTED if name in _SECRET_HEADERS else value
                for name, value in request.headers.items()
            },
            body=body,
            stream=stream,
            started_at=anyio.current_time(),
            fault=step,
            authorized=authorized,
        )
        index = len(self._requests)
        if self._record:
            self._requests.append(record)
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        # Stays CLOSE if the server shuts down (cancellation) mid-request: not the client's doing.
        outcome = Outcome.CLOSE
        try:
            if api is not None and step is not None:
                answer = self._answer(api, body or {}, step, serial, api_key, stream)
                outcome = await respond(conn, api, step, answer, stream=stream, keep_alive=request.keep_alive)
            else:
                status, message = rejection or (400, "Bad request.")
                error = request_error(api or "openai", status, message, serial)
                outcome = await send_error(
                    conn, api or "openai", error, serial, keep_alive=request.keep_alive
                )
        except STREAM_GONE:
            outcome = Outcome.GONE
        finally:
            self._in_flight -= 1
            if self._record and index < len(self._requests) and self._requests[index] is record:
                self._requests[index] = attrs.evolve(
                    record, completed=True, client_disconnected=outcome is Outcome.GONE
                )
        return outcome

    def _next_step(self, api: Api) -> Fault:
        queue = self._scripts[api]
        return queue.popleft() if queue else self._defaults[api]

    def _answer(
        self, api: Api, body: Mapping[str, Any], step: Fault, serial: int, api_key: str, stream: bool
    ) -> Answer:
        prefill = trailing_prefill(body)
        text, truncated = truncate_words(
            continuation(step.text if step.text is not None else self._text, prefill), _max_tokens(api, body)
        )
        model = body.get("model")
        options = body.get("stream_options")
        return Answer(
            serial=serial,
            model=model if isinstance(model, str) and model else DEFAULT_MODEL,
            text=text,
            chunks=split_chunks(text, self._chunks) if stream else (),
            input_tokens=count_words(body, api),
            output_tokens=len(text.split()),
            truncated=truncated,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            api_key=api_key,
            prefill=prefill,
        )
