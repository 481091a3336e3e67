"""The OpenAI Chat Completions front door: ``GET /v1/models``, ``POST /v1/chat/completions``.

The ``model`` field is the persona everywhere; the provider and model that really
answered are in ``system_fingerprint`` (``valis:<provider>/<model>``), in a
``valis`` object, and (non-streaming) in the ``x-valis-provider`` and
``x-valis-model`` headers. Streaming, they arrive in the final chunk, since
failover can change the provider until the first chunk.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

import valis_actors as va

from ._errors import ApiError, openai_body
from ._flights import Flight
from ._http import read_incoming, service_of
from ._replies import api_error, error_response, reply_headers, usage_of, valis_info
from ._requests import parse_openai
from ._service import Accepted
from ._streaming import ProducerResponse, Sender, sse

__all__ = ["chat_completions", "list_models", "retrieve_model"]


def _model(persona: va.Persona) -> dict[str, Any]:
    return {"id": persona.id, "object": "model", "created": 0, "owned_by": "valis", "name": persona.name,
            "description": persona.description}


async def list_models(request: Request) -> Response:
    """Every persona as a model."""
    try:
        service = service_of(request)
        service.authenticate({k.lower(): v for k, v in request.headers.items()})
    except ApiError as exc:
        return error_response(exc, openai_body)
    data = [_model(p) for p in sorted(service.runtime.personas, key=lambda p: p.id)]
    return Response(json.dumps({"object": "list", "data": data}), media_type="application/json")


async def retrieve_model(request: Request) -> Response:
    """One persona as a model (an alias answers with the persona's own id)."""
    try:
        service = service_of(request)
        service.authenticate({k.lower(): v for k, v in request.headers.items()})
        persona = service.persona(request.path_params["model_id"])
    except ApiError as exc:
        return error_response(exc, openai_body)
    return Response(json.dumps(_model(persona)), media_type="application/json")


async def chat_completions(request: Request) -> Response:
    """Answer a Chat Completions request as the persona named by ``model``."""
    began = anyio.current_time()
    metrics = request.app.state.valis_metrics
    try:
        incoming = await read_incoming(request)
        service = incoming.service
        chat = parse_openai(
            incoming.data,
            max_messages=service.settings.max_messages,
            max_chars=service.runtime.config.max_message_chars,
        )
        accepted = service.accept(chat, incoming.headers, incoming.key, incoming.body)
    except ApiError as exc:
        metrics.http_request("chat.completions", exc.status, began)
        return error_response(exc, openai_body)
    base = {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "created": int(time.time()),
        "model": chat.persona,
    }
    if chat.stream:

        async def produce(sender: Sender) -> None:
            await _stream(sender, accepted, base, chat.include_usage, began, metrics)

    else:

        async def produce(sender: Sender) -> None:
            await _whole(sender, accepted, base)

    return ProducerResponse(produce, on_done=lambda status: metrics.http_request("chat.completions", status, began))


def _fingerprint(reply: va.Reply) -> str:
    return f"valis:{reply.provider}/{reply.model or reply.provider}"


async def _whole(sender: Sender, accepted: Accepted, base: dict[str, Any]) -> None:
    flight = accepted.flight
    async with flight.subscribed():
        await flight.done.wait()
    if flight.reply is None:
        error = api_error(flight.error)
        await sender.whole(error.status, error.headers(), openai_body(error))
        return
    reply = flight.reply
    body = {
        **base,
        "object": "chat.completion",
        "system_fingerprint": _fingerprint(reply),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(reply),
        "valis": valis_info(reply, accepted),
    }
    await sender.whole(200, reply_headers(reply, accepted), json.dumps(body).encode())


def _usage(reply: va.Reply) -> dict[str, int]:
    used = usage_of(reply)
    return {"prompt_tokens": used.input_tokens, "completion_tokens": used.output_tokens,
            "total_tokens": used.total_tokens}


async def _stream(
    sender: Sender, accepted: Accepted, base: dict[str, Any], include_usage: bool, began: float, metrics: Any
) -> None:
    flight: Flight = accepted.flight
    chunk_base = {**base, "object": "chat.completion.chunk", "system_fingerprint": None}
    if include_usage:
        chunk_base["usage"] = None

    def frame(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return sse({**chunk_base, "choices": [choice], **extra})

    async with flight.subscribed():
        await flight.wait_first()
        if not flight.chunks and flight.reply is None:
            error = api_error(flight.error)
            await sender.whole(error.status, error.headers(), openai_body(error))
            return
        headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **reply_headers(None, accepted)}
        await sender.start(200, headers, "text/event-stream; charset=utf-8")
        first = True
        async for text in flight.chunks_from():
            delta: dict[str, Any] = {"content": text}
            if first:
                delta = {"role": "assistant", "content": text}
                metrics.first_token("chat.completions", began)
                first = False
            await sender.body(frame(delta))
    reply = flight.reply
    if reply is None:  # cut after the first chunk: say so, never end like a complete answer
        error = api_error(flight.error)
        await sender.body(sse({"error": json.loads(openai_body(error))["error"]}), more=False)
        return
    final = frame({}, "stop", system_fingerprint=_fingerprint(reply), valis=valis_info(reply, accepted))
    await sender.body(final)
    if include_usage:
        await sender.body(sse({**chunk_base, "choices": [], "usage": _usage(reply), "system_fingerprint":
                               _fingerprint(reply)}))
    await sender.body(b"data: [DONE]\n\n", more=False)
