"""The ``anthropic`` provider (legacy ``anthropic_api``): the Messages API via the official SDK.

The persona is the system prompt; the history and the message are the messages.
The SDK's retries are off (the runtime owns retry policy), its errors are mapped
here into our types (see ``_common.classify_error``), the answer's JSON is read here
(not into the SDK's models), and a streamed answer counts as complete once
``message_delta`` has reported a ``stop_reason``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
import attrs

from .._errors import ContentPolicyError, TransientProviderError
from .._messages import ProviderRequest, ProviderResponse, Usage
from .._validation import at_least
from ._base import register_provider
from ._common import ErrorInfo, between, drain, parse_body, parse_event
from ._http import SDKProvider, iter_sse

__all__ = ["AnthropicOptions", "AnthropicProvider"]

# After the answer is complete (stop_reason seen and yielded), how long to wait for
# the rest of the stream (message_stop) so the connection can go back to the pool;
# a stream without terminator is complete anyway and ends when this runs out.
TERMINATOR_GRACE = 0.25


@attrs.frozen
class AnthropicOptions:
    """Options of an ``anthropic`` entry in config.json.

    Attributes:
        model: The model to ask.
        max_tokens: The longest answer, in tokens.
        temperature: Sampling temperature (0 to 1); None uses the API's default.
        base_url: Another endpoint speaking the Messages API (a proxy, a test server).
        api_key_env: The environment variable holding the API key.
        max_connections: HTTP connections kept to the API (at least ``max_concurrent_requests``).
        prefill: Continue a cut answer by sending it back as a final assistant message
            (Claude models continue it; a model that refuses is skipped for the rest of
            the run). False: never ask this entry to continue an answer.
    """

    model: str = "claude-sonnet-4-6"
    max_tokens: int = attrs.field(default=1024, validator=at_least(1))
    temperature: float | None = attrs.field(default=None, validator=between(0.0, 1.0))
    base_url: str | None = None
    api_key_env: str = "ANTHROPIC_API_KEY"
    max_connections: int = attrs.field(default=1000, validator=at_least(1))
    prefill: bool = True


@register_provider("anthropic", aliases=("anthropic_api",))
class AnthropicProvider(SDKProvider):
    """Answers through ``anthropic.AsyncAnthropic``; one client per runtime (``aopen``/``aclose``)."""

    options_type = AnthropicOptions
    options: AnthropicOptions

    def _import_sdk(self) -> Any:
        import anthropic

        return anthropic

    def _make_client(self, http_client: Any) -> Any:
        client = self._sdk.AsyncAnthropic(
            api_key=self.api_key,
            base_url=self.options.base_url,
            max_retries=0,
            timeout=self.sdk_timeout,
            http_client=http_client,
        )
        # The SDK imports its resource modules on first use: let that happen here, in the thread.
        client.messages.with_streaming_response  # noqa: B018
        return client

    def continues_prefill(self) -> bool:
        return self.options.prefill

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        messages = request.messages()
        if request.prefill:
            # The Messages API refuses a final assistant message that ends in whitespace;
            # the continuation then starts with it, and `_Continuation` drops it again.
            messages[-1]["content"] = request.prefill.rstrip() or request.prefill
        params: dict[str, Any] = {
            "model": self.options.model,
            "max_tokens": self.options.max_tokens,
            "messages": messages,
        }
        if request.system_prompt:
            params["system"] = request.system_prompt
        if self.options.temperature is not None:
            params["temperature"] = self.options.temperature
        return params

    async def get_response(self, request: ProviderRequest) -> ProviderResponse:
        client = self._require_client()
        try:
            # The raw body, read here like a stream's events (see _http): the SDK's
            # response models would cost a fifth of the whole call, for four fields.
            raw = await client.messages.with_raw_response.create(**self._params(request))
            body = parse_body(raw.http_response.content)
        except Exception as exc:
            raise self._map(exc) from exc
        if body.get("type") == "error":  # an error body with a 200 status (a proxy)
            raise self._classify(_error_info(200, body))
        content = body.get("content")
        text = _Continuation(request).clean(
            "".join(
                block["text"]
                for block in content
                if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
            )
            if isinstance(content, list)
            else ""
        )
        stop_reason = body.get("stop_reason")
        usage = _dict(body.get("usage"))
        if stop_reason == "refusal":
            raise ContentPolicyError(
                f"refused by the provider's content policy (stop_reason refusal): {text}"
            )
        if not text.strip() and not request.prefill:
            raise TransientProviderError(f"empty answer (stop_reason {stop_reason})")
        return ProviderResponse(  # positional: an attrs frozen init is cheaper so
            text,
            self.reported_model(body.get("model")),
            Usage(_int(usage.get("input_tokens"), 0), _int(usage.get("output_tokens"), 0)),
        )

    def stream_response(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        return self._stream(request)

    async def _stream(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        client = self._require_client()
        try:
            response = await client.messages.with_streaming_response.create(
                **self._params(request), stream=True
            ).__aenter__()
        except Exception as exc:
            raise self._map(exc) from exc
        parts: list[str] = []
        continuation = _Continuation(request)
        model: str | None = None
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        try:
            async with aclosing(iter_sse(response.http_response)) as events:
                while stop_reason is None:
                    item = await self._next_event(events)
                    if item is None:
                        break
                    name, data = item
                    if name is None or name == "ping":  # what the SDK skips too
                        continue
                    payload = parse_event(data)
                    if name == "error":
                        raise self._classify(_error_info(200, payload, in_stream=True))
                    kind = payload.get("type")
                    if kind == "message_start":
                        message = _dict(payload.get("message"))
                        model = message.get("model") if isinstance(message.get("model"), str) else model
                        usage = _dict(message.get("usage"))
                        input_tokens = _int(usage.get("input_tokens"), input_tokens)
                        output_tokens = _int(usage.get("output_tokens"), output_tokens)
                    elif kind == "content_block_delta":
                        delta = _dict(payload.get("delta"))
                        text = delta.get("text")
                        if delta.get("type") == "text_delta" and isinstance(text, str):
                            text = continuation.clean(text)
                            if text:
                                parts.append(text)
                                yield text
                    elif kind == "message_delta":
                        reason = _dict(payload.get("delta")).get("stop_reason")
                        stop_reason = reason if isinstance(reason, str) else None
                        usage = _dict(payload.get("usage"))
                        input_tokens = _int(usage.get("input_tokens"), input_tokens)
                        output_tokens = _int(usage.get("output_tokens"), output_tokens)
                    elif kind == "message_stop":
                        break
                if stop_reason is None:
                    raise TransientProviderError(
                        "the stream ended before the answer was complete (no stop_reason)"
                    )
                if stop_reason == "refusal":
                    raise ContentPolicyError("refused by the provider's content policy (stop_reason refusal)")
                if not "".join(parts).strip() and not request.prefill:
                    raise TransientProviderError(f"empty answer (stop_reason {stop_reason})")
                yield ProviderResponse(
                    text="".join(parts), model=self.reported_model(model), usage=Usage(input_tokens, output_tokens)
                )
                await drain(events, TERMINATOR_GRACE)
        finally:
            with anyio.CancelScope(shield=True):
                await response.close()

    def _status_info(self, exc: Any) -> ErrorInfo:
        return _error_info(exc.status_code, exc.body, headers=exc.response.headers)


class _Continuation:
    """Drops the whitespace a continuation starts with when the prefill sent had it trimmed."""

    def __init__(self, request: ProviderRequest) -> None:
        prefill = request.prefill
        self._pending = bool(prefill) and prefill != prefill.rstrip() and bool(prefill.strip())

    def clean(self, text: str) -> str:
        if self._pending:
            text = text.lstrip()
            self._pending = not text
        return text


def _error_info(status: int, body: object, *, headers: Any = None, in_stream: bool = False) -> ErrorInfo:
    """The fields of an Anthropic error body ``{"type": "error", "error": {"type", "message"}}``."""
    error = _dict(body.get("error", body)) if isinstance(body, dict) else {}
    details = _dict(error.get("details"))
    return ErrorInfo(
        status,
        type=error.get("type") if isinstance(error.get("type"), str) else None,
        code=details.get("error_code") if isinstance(details.get("error_code"), str) else None,
        message=error.get("message")
        if isinstance(error.get("message"), str)
        else (body if isinstance(body, str) else None),
        headers=headers,
        in_stream=in_stream,
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
