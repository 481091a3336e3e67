"""Wire formats of the fake LLM server's answers: Anthropic Messages and OpenAI Chat Completions.

Pure functions from "what to answer" to bytes: JSON bodies and SSE events, each in the
shape the official SDKs parse (errors are in ``_fakeserver_errors.py``). Nothing here does I/O.

Streams are rendered as :class:`StreamParts` so the server can send a prefix of a
stream and then misbehave (cut, stall, inject a malformed event...):

    prefix      message_start / role chunk (and Anthropic's content_block_start, ping)
    deltas      one event per text chunk
    suffix      content_block_stop + message_delta / finish chunk (+ usage chunk)
    terminator  message_stop / ``data: [DONE]``
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs

from ._faults import Api

__all__ = [
    "MALFORMED_BODY",
    "MALFORMED_EVENT",
    "Answer",
    "StreamParts",
    "anthropic_event",
    "count_words",
    "dumps",
    "render_completion",
    "render_stream",
    "split_chunks",
    "truncate_words",
]

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_WORD = re.compile(r"\S+\s*")


@attrs.frozen
class Answer:
    """What one request is answered with, already sized by the request.

    Attributes:
        serial: The server-wide request number, used for deterministic ids.
        model: The model named by the request (echoed back).
        text: The answer text, truncated to the request's max tokens.
        chunks: ``text`` split into the streamed deltas (``"".join(chunks) == text``); empty if not streaming.
        input_tokens: Words in the request's system prompt and messages.
        output_tokens: Words in ``text``.
        truncated: Whether ``text`` was cut to the request's max tokens.
        include_usage: OpenAI ``stream_options.include_usage`` was requested.
        api_key: The key the request carried (echoed by 401s), or ``""``.
        prefill: The text of a final assistant message the request ended with (a partial
            answer to continue), or ``""``; ``text`` is then only what follows it.
    """

    serial: int
    model: str
    text: str
    chunks: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    truncated: bool = False
    include_usage: bool = False
    api_key: str = ""
    prefill: str = ""


@attrs.frozen
class StreamParts:
    """An SSE stream split where faults can cut into it (see the module docstring)."""

    prefix: bytes
    deltas: tuple[bytes, ...]
    suffix: bytes
    terminator: bytes


# --- sizing the answer --------------------------------------------------------------------


def count_words(body: Mapping[str, Any], api: Api) -> int:
    """Count the words of the request's system prompt and messages (the fake "input tokens")."""
    words = 0
    if api == "anthropic":
        words += _words_of_content(body.get("system"))
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, Mapping):
                words += _words_of_content(message.get("content"))
    return words


def trailing_prefill(body: Mapping[str, Any]) -> str:
    """The content of the final message when it is the assistant's (a prefill), else ``""``."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return ""
    last = messages[-1]
    if not isinstance(last, Mapping) or last.get("role") != "assistant":
        return ""
    content = last.get("content")
    if isinstance(content, list):
        return "".join(
            block["text"] for block in content if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        )
    return content if isinstance(content, str) else ""


def continuation(text: str, prefill: str) -> str:
    """What a continuing server answers: the rest of ``text`` after ``prefill``.

    Like a real model that continues a partial answer, with a known text: when the
    answer starts with the prefill (or with it less trailing whitespace, which the
    Messages API makes clients trim), only the rest is sent; otherwise the whole text.
    """
    if not prefill:
        return text
    for start in (prefill, prefill.rstrip()):
        if start and text.startswith(start):
            return text[len(start) :]
    return text


def _words_of_content(content: object) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(
            len(block["text"].split())
            for block in content
            if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        )
    return 0


def truncate_words(text: str, max_words: int | None) -> tuple[str, bool]:
    """Cut ``text`` to ``max_words`` words; return the text and whether it was cut."""
    if max_words is None:
        return text, False
    pieces = _WORD.findall(text)
    if len(pieces) <= max_words:
        return text, False
    return "".join(pieces[:max_words]).rstrip(), True


def split_chunks(text: str, count: int) -> tuple[str, ...]:
    """Split ``text`` into ``count`` non-empty pieces (fewer if too short), at word boundaries if possible."""
    if not text:
        return ()
    count = max(1, min(count, len(text)))
    pieces = _WORD.findall(text)
    leading = text[: len(text) - len(text.lstrip())]
    if pieces:
        pieces[0] = leading + pieces[0]
    if len(pieces) < count:
        # Too few words: fall back to even character slices.
        pieces = list(text)
    size, extra = divmod(len(pieces), count)
    chunks: list[str] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append("".join(pieces[start:end]))
        start = end
    return tuple(chunks)


# --- successful answers ---------------------------------------------------------------------


def render_completion(api: Api, answer: Answer) -> bytes:
    """The non-streaming JSON body."""
    if api == "anthropic":
        return dumps(
            {
                "id": f"msg_fake{answer.serial:012d}",
                "type": "message",
                "role": "assistant",
                "model": answer.model,
                "content": [{"type": "text", "text": answer.text}],
                "stop_reason": "max_tokens" if answer.truncated else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
            }
        ).encode()
    return dumps(
        {
            "id": f"chatcmpl-fake{answer.serial:012d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "length" if answer.truncated else "stop",
                }
            ],
            "usage": _openai_usage(answer),
            "system_fingerprint": None,
        }
    ).encode()


def render_stream(api: Api, answer: Answer) -> StreamParts:
    """The streaming answer as SSE bytes, split into :class:`StreamParts`."""
    return _anthropic_stream(answer) if api == "anthropic" else _openai_stream(answer)


def anthropic_event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(data).encode() + b"\n\n"


def _anthropic_stream(answer: Answer) -> StreamParts:
    message: dict[str, Any] = {
        "id": f"msg_fake{answer.serial:012d}",
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": 1},
    }
    prefix = (
        anthropic_event("message_start", {"type": "message_start", "message": message})
        + anthropic_event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        + anthropic_event("ping", {"type": "ping"})
    )
    deltas = tuple(
        anthropic_event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}},
        )
        for chunk in answer.chunks
    )
    suffix = anthropic_event(
        "content_block_stop", {"type": "content_block_stop", "index": 0}
    ) + anthropic_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens" if answer.truncated else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": answer.output_tokens},
        },
    )
    terminator = anthropic_event("message_stop", {"type": "message_stop"})
    return StreamParts(prefix=prefix, deltas=deltas, suffix=suffix, terminator=terminator)


def _openai_usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def _openai_stream(answer: Answer) -> StreamParts:
    head = (
        f'{{"id":"chatcmpl-fake{answer.serial:012d}","object":"chat.completion.chunk",'
        f'"created":{int(time.time())},"model":{dumps(answer.model)},"system_fingerprint":null,"choices":'
    )
    usage_null = ',"usage":null}' if answer.include_usage else "}"

    def chunk(delta: object, finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + (head + dumps([choice]) + usage_null).encode() + b"\n\n"

    prefix = chunk({"role": "assistant", "content": "", "refusal": None}, None)
    deltas = tuple(chunk({"content": text}, None) for text in answer.chunks)
    suffix = chunk({}, "length" if answer.truncated else "stop")
    if answer.include_usage:
        suffix += (
            b"data: " + (head + "[]" + ',"usage":' + dumps(_openai_usage(answer)) + "}").encode() + b"\n\n"
        )
    return StreamParts(prefix=prefix, deltas=deltas, suffix=suffix, terminator=b"data: [DONE]\n\n")


# --- malformed data -----------------------------------------------------------------------------

MALFORMED_EVENT: dict[Api, bytes] = {
    # Anthropic's SDK skips events without an ``event:`` field, so the bad data is named.
    "anthropic": b"event: content_block_delta\ndata: {not json\n\n",
    "openai": b"data: {not json\n\n",
}
MALFORMED_BODY = b"{not json"
