"""The Anthropic Messages front door: ``POST /v1/messages``, plain and streaming.

Streaming sends ``message_start``, one text block (``content_block_start``,
``content_block_delta``..., ``content_block_stop``), ``message_delta`` (stop
reason, usage, and who answered in a ``valis`` object) and ``message_stop``. A cut
after the first chunk ends with an ``error`` event, which makes the SDK raise.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ._errors import ApiError, anthropic_body
from ._http import read_incoming
from ._replies import api_error, error_response, reply_headers, usage_of, valis_info
from ._requests import parse_anthropic
from ._service import Accepted
from ._streaming import ProducerResponse, Sender, sse

__all__ = ["messages"]


async def messages(request: Request) -> Response:
    """Answer a Messages request as the persona named by ``model``."""
    began = anyio.current_time()
    metrics = request.app.state.valis_metrics
    try:
        incoming = await read_incoming(request)
        service = incoming.service
        chat = parse_anthropic(
            incoming.data,
            max_messages=service.settings.max_messages,
            max_chars=service.runtime.config.max_message_chars,
        )
        accepted = service.accept(chat, incoming.headers, incoming.key, incoming.body)
    except ApiError as exc:
        metrics.http_request("messages", exc.status, began)
        return error_response(exc, anthropic_body)
    message_id = "msg_" + uuid.uuid4().hex

    async def produce(sender: Sender) -> None:
        if chat.stream:
            await _stream(sender, accepted, message_id, chat.persona, began, metrics)
        else:
            await _whole(sender, accepted, message_id, chat.persona)

    return ProducerResponse(produce, on_done=lambda status: metrics.http_request("messages", status, began))


def _message(message_id: str, model: str, text: str | None, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if text is None else [{"type": "text", "text": text}],
        "stop_reason": None if text is None else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


async def _whole(sender: Sender, accepted: Accepted, message_id: str, model: str) -> None:
    flight = accepted.flight
    async with flight.subscribed():
        await flight.done.wait()
    reply = flight.reply
    if reply is None:
        error = api_error(flight.error)
        await sender.whole(error.status, error.headers(), anthropic_body(error))
        return
    used = usage_of(reply)
    body = _message(message_id, model, reply.text, {"input_tokens": used.input_tokens,
                                                     "output_tokens": used.output_tokens})
    body["valis"] = valis_info(reply, accepted)
    await sender.whole(200, reply_headers(reply, accepted), json.dumps(body).encode())


async def _stream(sender: Sender, accepted: Accepted, message_id: str, model: str, began: float, metrics: Any) -> None:
    flight = accepted.flight
    async with flight.subscribed():
        await flight.wait_first()
        if not flight.chunks and flight.reply is None:
            error = api_error(flight.error)
            await sender.whole(error.status, error.headers(), anthropic_body(error))
            return
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **reply_headers(None, accepted)}
        await sender.start(200, headers, "text/event-stream; charset=utf-8")
        start = {"type": "message_start", "message": _message(message_id, model, None,
                                                               {"input_tokens": 0, "output_tokens": 0})}
        await sender.body(sse(start, "message_start"))
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        await sender.body(sse(block, "content_block_start"))
        first = True
        async for text in flight.chunks_from():
            if first:
                metrics.first_token("messages", began)
                first = False
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
            await sender.body(sse(delta, "content_block_delta"))
    reply = flight.reply
    if reply is None:
        error = api_error(flight.error)
        await sender.body(sse(json.loads(anthropic_body(error)), "error"), more=False)
        return
    await sender.body(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    used = usage_of(reply)
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": used.input_tokens, "output_tokens": used.output_tokens},
        "valis": valis_info(reply, accepted),
    }
    await sender.body(sse(delta, "message_delta"))
    await sender.body(sse({"type": "message_stop"}, "message_stop"), more=False)
