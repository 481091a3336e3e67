"""What the fake LLM server sends for one request under one :class:`Fault` step.

``respond`` is the only entry point: given the connection, the API, the step and the
sized :class:`Answer`, it writes the response (or misbehaves) and says whether the
connection can serve another request.

Streaming responses use chunked transfer encoding, one HTTP chunk per SSE event; the
events that go out together are written with a single ``send`` so a well-behaved request
costs one write. Stream-only faults on non-streaming requests do the closest thing:

========================  =====================================================================
``slow_first_token``      wait ``delay``, then answer
``cut``                   ``Content-Length`` of the full body, half the body, then FIN
``stall``                 ``Content-Length`` of the full body, half the body, then silence
``malformed``             200 ``application/json`` with the body ``{not json``
``no_terminator``         a normal answer (a JSON body has no terminator to leave out)
``stream_error_event``    the status error the event describes (Anthropic 529 / OpenAI 500)
========================  =====================================================================

``raw_json`` sends its JSON as the whole 200 response, streaming or not.

Every step continues a prefill: a request that ends with an assistant message gets only
the rest of the answer text after it (``Answer.prefill``), as continuing models do;
``reject_prefill`` refuses such a request with a 400 instead, and answers any other.
"""

from __future__ import annotations

import enum

from ._errors import ErrorResponse, error_response, prefill_rejection, stream_error_event
from ._faults import Api, Fault, FaultKind
from ._http import Connection, chunk, last_chunk, response_head
from ._wire import MALFORMED_BODY, MALFORMED_EVENT, Answer, render_completion, render_stream

__all__ = ["Outcome", "respond", "send_error"]

_JSON = ("content-type", "application/json")
_SSE = ("content-type", "text/event-stream; charset=utf-8")
_REQUEST_ID_HEADER: dict[Api, str] = {"anthropic": "request-id", "openai": "x-request-id"}


class Outcome(enum.Enum):
    """How the exchange ended, for the connection loop and the request record."""

    KEEP = "keep"
    """Response complete; the connection may serve another request."""
    CLOSE = "close"
    """The server closed (or must close) the connection."""
    GONE = "gone"
    """The client went away before the server was done."""


def _common_headers(api: Api, answer: Answer, keep_alive: bool) -> list[tuple[str, str]]:
    headers = [(_REQUEST_ID_HEADER[api], f"req_fake{answer.serial:012d}")]
    if not keep_alive:
        headers.append(("connection", "close"))
    return headers


def _done(keep_alive: bool) -> Outcome:
    return Outcome.KEEP if keep_alive else Outcome.CLOSE


async def send_error(
    conn: Connection, api: Api, error: ErrorResponse, serial: int, *, keep_alive: bool
) -> Outcome:
    """Send an HTTP error response in one write."""
    headers = [
        _JSON,
        ("content-length", str(len(error.body))),
        (_REQUEST_ID_HEADER[api], f"req_fake{serial:012d}"),
    ]
    headers.extend(error.headers)
    if not keep_alive:
        headers.append(("connection", "close"))
    await conn.send(response_head(error.status, headers) + error.body)
    return _done(keep_alive)


async def respond(
    conn: Connection, api: Api, step: Fault, answer: Answer, *, stream: bool, keep_alive: bool
) -> Outcome:
    """Carry out ``step`` for one request.

    Raises:
        anyio.BrokenResourceError: (or another of ``STREAM_GONE``) the client went away mid-write.
    """
    kind = step.kind
    if kind is FaultKind.NO_RESPONSE:
        await conn.wait_closed()
        return Outcome.GONE
    if kind is not FaultKind.SLOW_FIRST_TOKEN and not await conn.sleep(step.delay):
        return Outcome.GONE
    if kind is FaultKind.RESET:
        await conn.abort()
        return Outcome.CLOSE
    if kind is FaultKind.REJECT_PREFILL and answer.prefill:
        return await send_error(conn, api, prefill_rejection(api, answer), answer.serial, keep_alive=keep_alive)
    if kind is FaultKind.STATUS:
        return await send_error(
            conn, api, error_response(api, step, answer), answer.serial, keep_alive=keep_alive
        )
    if kind is FaultKind.STREAM_ERROR_EVENT and not stream:
        as_status = Fault.overloaded() if api == "anthropic" else Fault.server_error(500)
        error = error_response(api, as_status, answer)
        return await send_error(conn, api, error, answer.serial, keep_alive=keep_alive)
    if kind is FaultKind.RAW_JSON:
        body = (step.json_text or "null").encode()  # Fault.raw_json always sets it
        headers = [_JSON, ("content-length", str(len(body))), *_common_headers(api, answer, keep_alive)]
        await conn.send(response_head(200, headers) + body)
        return _done(keep_alive)
    if stream:
        return await _respond_stream(conn, api, step, answer, keep_alive)
    return await _respond_json(conn, api, step, answer, keep_alive)


async def _respond_json(conn: Connection, api: Api, step: Fault, answer: Answer, keep_alive: bool) -> Outcome:
    kind = step.kind
    if kind is FaultKind.SLOW_FIRST_TOKEN and not await conn.sleep(step.delay):
        return Outcome.GONE
    body = MALFORMED_BODY if kind is FaultKind.MALFORMED else render_completion(api, answer)
    headers = [_JSON, ("content-length", str(len(body))), *_common_headers(api, answer, keep_alive)]
    head = response_head(200, headers)
    if kind is FaultKind.CUT:
        await conn.send(head + body[: len(body) // 2])
        return Outcome.CLOSE
    if kind is FaultKind.STALL:
        await conn.send(head + body[: len(body) // 2])
        await conn.wait_closed()
        return Outcome.GONE
    await conn.send(head + body)
    return _done(keep_alive)


def _chunks(*events: bytes) -> bytes:
    return b"".join(chunk(event) for event in events)


async def _respond_stream(
    conn: Connection, api: Api, step: Fault, answer: Answer, keep_alive: bool
) -> Outcome:
    parts = render_stream(api, answer)
    headers = [_SSE, ("cache-control", "no-cache"), ("transfer-encoding", "chunked")]
    head = response_head(200, headers + _common_headers(api, answer, keep_alive))
    kind = step.kind
    deltas = parts.deltas
    first = deltas[: step.after_chunks]
    rest = deltas[step.after_chunks :]
    match kind:
        case FaultKind.SLOW_FIRST_TOKEN:
            await conn.send(head)
            if not await conn.sleep(step.delay):
                return Outcome.GONE
            body = _chunks(parts.prefix, *deltas, parts.suffix, parts.terminator) + last_chunk()
            await conn.send(body)
            return _done(keep_alive)
        case FaultKind.CUT:
            await conn.send(head + _chunks(parts.prefix, *first))
            return Outcome.CLOSE
        case FaultKind.STALL:
            await conn.send(head + _chunks(parts.prefix, *first))
            await conn.wait_closed()
            return Outcome.GONE
        case FaultKind.MALFORMED:
            events = (parts.prefix, *first, MALFORMED_EVENT[api], *rest, parts.suffix, parts.terminator)
        case FaultKind.NO_TERMINATOR:
            events = (parts.prefix, *deltas, parts.suffix)
        case FaultKind.STREAM_ERROR_EVENT:
            events = (parts.prefix, *first, stream_error_event(api, step))
        case _:
            events = (parts.prefix, *deltas, parts.suffix, parts.terminator)
    await conn.send(head + _chunks(*events) + last_chunk())
    return _done(keep_alive)
