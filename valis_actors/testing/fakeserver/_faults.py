"""Fault steps for the fake LLM server: what the server does with one request.

A :class:`Fault` is frozen data built by small constructors (``Fault.ok()``,
``Fault.rate_limited(retry_after=1.0)``, ``Fault.cut(after_chunks=2)``...). The server keeps
one FIFO queue of steps per API; every request of that API pops the next step, and the
default step applies when the queue is empty. How a step looks on the wire for each API
is decided in ``_fakeserver_wire.py``; this module only holds the data.

Every step accepts ``delay``: the server waits that long (with ``anyio.sleep`` semantics,
so it follows the event loop's clock) after reading the request and before doing anything
else, watching for the client going away meanwhile.
"""

from __future__ import annotations

import enum
import json
from typing import Any, Literal

import attrs

__all__ = ["Api", "Fault", "FaultKind"]

Api = Literal["anthropic", "openai"]
"""The two wire formats the fake server speaks."""

APIS: tuple[Api, ...] = ("anthropic", "openai")


class FaultKind(enum.Enum):
    """What a :class:`Fault` step does; see the constructors on :class:`Fault`."""

    OK = "ok"
    STATUS = "status"
    RESET = "reset"
    NO_RESPONSE = "no_response"
    SLOW_FIRST_TOKEN = "slow_first_token"
    CUT = "cut"
    STALL = "stall"
    MALFORMED = "malformed"
    NO_TERMINATOR = "no_terminator"
    STREAM_ERROR_EVENT = "stream_error_event"
    REJECT_PREFILL = "reject_prefill"
    RAW_JSON = "raw_json"


# Named error presets of ``FaultKind.STATUS``: each API renders them in its own words
# (``_fakeserver_wire.py``). ``None`` means "derive everything from the status code".
Preset = Literal[
    "rate_limited",
    "insufficient_quota",
    "overloaded",
    "server_error",
    "context_length_exceeded",
    "content_policy",
    "unauthorized",
]


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"Fault.{attribute.name} must be >= 0 (got {value!r})")


def _optional_non_negative(
    _instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and value < 0:
        raise ValueError(f"Fault.{attribute.name} must be >= 0 or None (got {value!r})")


def _error_status(_instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and not 400 <= value <= 599:
        raise ValueError(f"Fault.{attribute.name} must be an HTTP error status in 400..599 (got {value!r})")


@attrs.frozen(kw_only=True)
class Fault:
    """One scripted behaviour of the fake server for one request.

    Build steps with the constructors (``Fault.ok()``, ``Fault.status(429)``, ...) rather than
    directly; the fields are public so tests can inspect what was applied to a request.

    Attributes:
        kind: What the step does.
        delay: Seconds to wait after reading the request, before anything is sent.
        text: The answer for ``ok`` steps (and the streamed faults); ``None`` = server default.
        status_code: The HTTP status of ``status`` steps; ``None`` = the preset's status for the API.
        preset: A named error (``"rate_limited"``...) rendered in each API's own words.
        retry_after: Value of the ``retry-after`` header (seconds), if any.
        retry_after_ms: Value of the ``retry-after-ms`` header (milliseconds), if any.
        error_type: Overrides the error ``type`` in the body.
        code: Overrides the OpenAI error ``code`` (Anthropic bodies have no code).
        message: Overrides the error message.
        after_chunks: For stream faults: how many content deltas are sent first.
        headers: Extra response headers, as ``(name, value)`` pairs.
        json_text: For ``raw_json`` steps: the JSON text sent as the whole 200 response.
    """

    kind: FaultKind
    delay: float = attrs.field(default=0.0, validator=_non_negative)
    text: str | None = None
    status_code: int | None = attrs.field(default=None, validator=_error_status)
    preset: Preset | None = None
    retry_after: float | None = attrs.field(default=None, validator=_optional_non_negative)
    retry_after_ms: float | None = attrs.field(default=None, validator=_optional_non_negative)
    error_type: str | None = None
    code: str | None = None
    message: str | None = None
    after_chunks: int = attrs.field(default=0, validator=_non_negative)
    headers: tuple[tuple[str, str], ...] = ()
    json_text: str | None = None

    # --- success -------------------------------------------------------------------------

    @classmethod
    def ok(cls, text: str | None = None, delay: float = 0.0) -> Fault:
        """Answer normally (JSON or SSE), after ``delay`` seconds, with ``text`` or the default."""
        return cls(kind=FaultKind.OK, text=text, delay=delay)

    # --- HTTP error statuses -------------------------------------------------------------

    @classmethod
    def status(
        cls,
        status_code: int,
        *,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        error_type: str | None = None,
        code: str | None = None,
        message: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        delay: float = 0.0,
    ) -> Fault:
        """Answer with an HTTP error in the API's JSON error format.

        The error type and message default to what the real API sends for that status
        (Anthropic: 400 invalid_request_error, 401 authentication_error, 403 permission_error,
        429 rate_limit_error, 529 overloaded_error, other 5xx api_error; OpenAI: 429 type
        ``requests`` code ``rate_limit_exceeded``, 5xx ``server_error``, other 4xx
        ``invalid_request_error``).
        """
        return cls(
            kind=FaultKind.STATUS,
            status_code=status_code,
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            error_type=error_type,
            code=code,
            message=message,
            headers=headers,
            delay=delay,
        )

    @classmethod
    def rate_limited(
        cls, retry_after: float | None = 1.0, *, retry_after_ms: float | None = None, delay: float = 0.0
    ) -> Fault:
        """429 with ``retry-after`` (and optionally ``retry-after-ms``) headers."""
        return cls(
            kind=FaultKind.STATUS,
            preset="rate_limited",
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
            delay=delay,
        )

    @classmethod
    def insufficient_quota(cls, *, delay: float = 0.0) -> Fault:
        """Out of credit: OpenAI 429 ``insufficient_quota``; Anthropic 400 "credit balance is too low"."""
        return cls(kind=FaultKind.STATUS, preset="insufficient_quota", delay=delay)

    @classmethod
    def overloaded(cls, *, retry_after: float | None = None, delay: float = 0.0) -> Fault:
        """Anthropic 529 ``overloaded_error``; OpenAI 503 ``server_error``."""
        return cls(kind=FaultKind.STATUS, preset="overloaded", retry_after=retry_after, delay=delay)

    @classmethod
    def server_error(cls, status_code: int = 500, *, delay: float = 0.0) -> Fault:
        """A 5xx: Anthropic ``api_error``; OpenAI ``server_error``."""
        if not 500 <= status_code <= 599:
            raise ValueError(f"Fault.server_error status_code must be in 500..599 (got {status_code!r})")
        return cls(kind=FaultKind.STATUS, preset="server_error", status_code=status_code, delay=delay)

    @classmethod
    def context_length_exceeded(cls, *, delay: float = 0.0) -> Fault:
        """400: OpenAI code ``context_length_exceeded``; Anthropic "prompt is too long: N tokens > M maximum"."""
        return cls(kind=FaultKind.STATUS, preset="context_length_exceeded", delay=delay)

    @classmethod
    def content_policy(cls, *, delay: float = 0.0) -> Fault:
        """400: OpenAI code ``content_policy_violation``; Anthropic invalid_request_error citing the Usage Policy."""
        return cls(kind=FaultKind.STATUS, preset="content_policy", delay=delay)

    @classmethod
    def unauthorized(cls, *, delay: float = 0.0) -> Fault:
        """401 whose message echoes the key the request carried (as some proxies do)."""
        return cls(kind=FaultKind.STATUS, preset="unauthorized", delay=delay)

    # --- transport faults ----------------------------------------------------------------

    @classmethod
    def reset(cls, *, delay: float = 0.0) -> Fault:
        """Read the request, then abort the TCP connection with an RST before any byte of response."""
        return cls(kind=FaultKind.RESET, delay=delay)

    @classmethod
    def no_response(cls) -> Fault:
        """Read the request and never answer; hold the connection until the client or server closes it."""
        return cls(kind=FaultKind.NO_RESPONSE)

    # --- stream faults -------------------------------------------------------------------

    @classmethod
    def slow_first_token(cls, delay: float) -> Fault:
        """Streaming: send the headers, wait ``delay``, then stream normally. Non-streaming: wait, then answer."""
        return cls(kind=FaultKind.SLOW_FIRST_TOKEN, delay=delay)

    @classmethod
    def cut(cls, after_chunks: int = 1, *, text: str | None = None) -> Fault:
        """Send ``after_chunks`` content deltas, then close the connection mid-body.

        The close is a FIN, not an RST, so the client reliably reads the deltas sent before
        it; the chunked body is left unterminated. With ``after_chunks`` at or above the
        number of deltas, every delta is sent and the cut comes before ``content_block_stop``
        / the finish chunk. Non-streaming: half the promised ``Content-Length``, then FIN.
        """
        return cls(kind=FaultKind.CUT, after_chunks=after_chunks, text=text)

    @classmethod
    def stall(cls, after_chunks: int = 1, *, text: str | None = None) -> Fault:
        """Send ``after_chunks`` content deltas, then go silent with the connection open.

        The server holds the connection until the client closes it (recorded as
        ``client_disconnected``) or the server shuts down. Non-streaming: half the body, then silence.
        """
        return cls(kind=FaultKind.STALL, after_chunks=after_chunks, text=text)

    @classmethod
    def malformed(cls, after_chunks: int = 1, *, text: str | None = None) -> Fault:
        """Send ``after_chunks`` deltas, one ``data: {not json`` event, then the rest of the stream.

        The stream *continues* after the bad event (remaining deltas and the terminator), so a
        client that skips bad events still gets the whole answer; the SDKs raise
        ``json.JSONDecodeError`` at the bad event. Anthropic's bad event is named
        ``event: content_block_delta`` because its SDK skips unnamed events. Non-streaming:
        a 200 ``application/json`` response whose body is ``{not json``.
        """
        return cls(kind=FaultKind.MALFORMED, after_chunks=after_chunks, text=text)

    @classmethod
    def raw_json(cls, payload: object) -> Fault:
        """Answer 200 ``application/json`` with ``payload`` (JSON-encoded) as the whole body.

        A server that speaks the wrong shape: an error object with a 200 status (some
        proxies), a completion without ``choices``, a JSON array. Streaming requests get
        the same JSON body instead of an event stream.
        """
        return cls(kind=FaultKind.RAW_JSON, json_text=json.dumps(payload))

    @classmethod
    def no_terminator(cls, *, text: str | None = None) -> Fault:
        """Stream the whole answer but end the body without ``message_stop`` / ``data: [DONE]``.

        Everything else is sent (Anthropic's ``message_delta``, OpenAI's finish and usage
        chunks) and the HTTP body ends cleanly, so the connection stays reusable and the SDKs
        end their iteration without an error. Non-streaming: a normal answer.
        """
        return cls(kind=FaultKind.NO_TERMINATOR, text=text)

    @classmethod
    def reject_prefill(cls, *, text: str | None = None) -> Fault:
        """Refuse a request that ends with an assistant message (a prefill) with a 400; answer others.

        The wording is the real APIs': Anthropic's newer models say "This model does not
        support assistant message prefill. The conversation must end with a user message."
        (``invalid_request_error``); OpenAI-compatible servers that check the chat
        template say the same in an OpenAI error body.
        """
        return cls(kind=FaultKind.REJECT_PREFILL, text=text)

    @classmethod
    def stream_error_event(
        cls,
        after_chunks: int = 1,
        *,
        error_type: str | None = None,
        message: str | None = None,
        text: str | None = None,
    ) -> Fault:
        """Send ``after_chunks`` deltas, then an in-stream error event, then end the body.

        Anthropic: ``event: error`` with ``{"type": "error", "error": {"type": "overloaded_error",
        ...}}``; OpenAI: ``data: {"error": {"type": "server_error", ...}}``. ``error_type`` and
        ``message`` override the defaults. Non-streaming: Anthropic 529 / OpenAI 500.
        """
        return cls(
            kind=FaultKind.STREAM_ERROR_EVENT,
            after_chunks=after_chunks,
            error_type=error_type,
            message=message,
            text=text,
        )
