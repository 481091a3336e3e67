"""The ``openai`` provider (legacy ``openai_api``): Chat Completions via the official SDK.

``base_url`` points it at any OpenAI-compatible server (Ollama, vLLM, llama.cpp
server); ``api_key_optional`` lets it run against local servers that need no key.
The persona is the system message. The answer's JSON is read here (not into the
SDK's models). Streams ask for usage; a streamed answer counts as complete once a
``finish_reason`` has arrived (the usage chunk and ``[DONE]`` that follow are
awaited only briefly).
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

__all__ = ["OpenAIOptions", "OpenAIProvider"]

# Sent when api_key_optional is set and no key is configured: the SDK insists on one.
NO_KEY = "no-key-needed"
# After finish_reason, how long to wait for the usage chunk, and then for [DONE].
TERMINATOR_GRACE = 0.25


@attrs.frozen
class OpenAIOptions:
    """Options of an ``openai`` entry in config.json.

    Attributes:
        model: The model to ask (for local servers, the name they serve it under).
        max_tokens: The longest answer, in tokens; None leaves it to the server.
        temperature: Sampling temperature (0 to 2); None uses the server's default.
        base_url: An OpenAI-compatible endpoint, e.g. ``http://localhost:11434/v1`` (Ollama).
        api_key_env: The environment variable holding the API key.
        organization: The OpenAI organization id, if the key belongs to several.
        api_key_optional: The server needs no key (local servers): a missing key does
            not make the provider unavailable, and a placeholder is sent.
        max_connections: HTTP connections kept to the server (at least ``max_concurrent_requests``).
        prefill: Continue a cut answer by sending it back as a final assistant message.
            ``None`` (the default) decides by ``base_url``: OpenAI's own API answers such a
            conversation anew, so no; a compatible server (vLLM, llama.cpp, Ollama) continues
            it, so yes.
        prefill_params: Extra body fields sent with a prefill only, for servers that need
            to be told to continue (vLLM: ``{"continue_final_message": true,
            "add_generation_prompt": false}``).
    """

    model: str = "gpt-4o-mini"
    max_tokens: int | None = attrs.field(default=None, validator=attrs.validators.optional(at_least(1)))
    temperature: float | None = attrs.field(default=None, validator=between(0.0, 2.0))
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    organization: str | None = None
    api_key_optional: bool = False
    max_connections: int = attrs.field(default=1000, validator=at_least(1))
    prefill: bool | None = None
    prefill_params: dict[str, Any] = attrs.field(factory=dict)


@register_provider("openai", aliases=("openai_api",))
class OpenAIProvider(SDKProvider):
    """Answers through ``openai.AsyncOpenAI``; one client per runtime (``aopen``/``aclose``)."""

    options_type = OpenAIOptions
    options: OpenAIOptions

    def _import_sdk(self) -> Any:
        import openai

        return openai

    def _make_client(self, http_client: Any) -> Any:
        client = self._sdk.AsyncOpenAI(
            api_key=self.api_key or NO_KEY,
            organization=self.options.organization,
            base_url=self.options.base_url,
            max_retries=0,
            timeout=self.sdk_timeout,
            http_client=http_client,
        )
        # The SDK imports its resource modules on first use: let that happen here, in the thread.
        client.chat.completions.with_streaming_response  # noqa: B018
        return client

    def continues_prefill(self) -> bool:
        if self.options.prefill is not None:
            return self.options.prefill
        base_url = self.options.base_url
        return base_url is not None and "api.openai.com" not in base_url

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        messages = request.messages()
        if request.system_prompt:
            messages.insert(0, {"role": "system", "content": request.system_prompt})
        params: dict[str, Any] = {"model": self.options.model, "messages": messages}
        if self.options.max_tokens is not None:
            params["max_tokens"] = self.options.max_tokens
        if self.options.temperature is not None:
            params["temperature"] = self.options.temperature
        if request.prefill and self.options.prefill_params:
            params["extra_body"] = dict(self.options.prefill_params)
        return params

    async def get_response(self, request: ProviderRequest) -> ProviderResponse:
        client = self._require_client()
        try:
            # The raw body, read here like a stream's chunks (see _http): the SDK's
            # response models would cost a fifth of the whole call, for four fields.
            raw = await client.chat.completions.with_raw_response.create(**self._params(request))
            body = parse_body(raw.http_response.content)
        except Exception as exc:
            raise self._map(exc) from exc
        if body.get("error"):  # an error body with a 200 status (a proxy, a local server)
            raise self._classify(_info(200, body))
        choices = body.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if choice is None:
            raise TransientProviderError("malformed response body (no choices)")
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        text = content if isinstance(content, str) else ""
        finish_reason = choice.get("finish_reason")
        if finish_reason == "content_filter":
            raise ContentPolicyError(
                "refused by the provider's content filter (finish_reason content_filter)"
            )
        if not text.strip() and not request.prefill:
            raise TransientProviderError(f"empty answer (finish_reason {finish_reason})")
        # positional: an attrs frozen init is cheaper so
        return ProviderResponse(text, self.reported_model(body.get("model")), _usage(body.get("usage")))

    def stream_response(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        return self._stream(request)

    async def _stream(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        client = self._require_client()
        try:
            response = await client.chat.completions.with_streaming_response.create(
                **self._params(request), stream=True, stream_options={"include_usage": True}
            ).__aenter__()
        except Exception as exc:
            raise self._map(exc) from exc
        parts: list[str] = []
        model: str | None = None
        usage: Usage | None = None
        finish_reason: str | None = None
        try:
            async with aclosing(iter_sse(response.http_response)) as events:
                while finish_reason is None:
                    item = await self._next_event(events)
                    if item is None or item[1].startswith("[DONE]"):
                        raise TransientProviderError(
                            "the stream ended before the answer was complete (no finish_reason)"
                        )
                    payload = self._chunk(item[1])
                    model = payload.get("model") if isinstance(payload.get("model"), str) else model
                    usage = _usage(payload.get("usage")) or usage
                    for entry in payload.get("choices") or ():
                        choice: dict[str, Any] = entry if isinstance(entry, dict) else {}
                        delta = choice.get("delta")
                        text = delta.get("content") if isinstance(delta, dict) else None
                        if isinstance(text, str) and text:
                            parts.append(text)
                            yield text
                        reason = choice.get("finish_reason")
                        finish_reason = reason if isinstance(reason, str) else finish_reason
                if finish_reason == "content_filter":
                    raise ContentPolicyError(
                        "refused by the provider's content filter (finish_reason content_filter)"
                    )
                if usage is None:
                    # The usage chunk follows the finish_reason; a server that does not
                    # send it (or stalls instead) does not hold up a complete answer.
                    usage = await self._await_usage(events)
                if not "".join(parts).strip() and not request.prefill:
                    raise TransientProviderError(f"empty answer (finish_reason {finish_reason})")
                yield ProviderResponse(text="".join(parts), model=self.reported_model(model), usage=usage)
                await drain(events, TERMINATOR_GRACE)
        finally:
            with anyio.CancelScope(shield=True):
                await response.close()

    def _chunk(self, data: str) -> dict[str, Any]:
        payload = parse_event(data)
        if payload.get("error"):
            # `data: {"error": {...}}` inside a 200 stream
            raise self._classify(_info(200, payload, in_stream=True))
        return payload

    async def _await_usage(self, events: AsyncIterator[tuple[str | None, str]]) -> Usage | None:
        with anyio.move_on_after(TERMINATOR_GRACE):
            try:
                async for _, data in events:
                    if data.startswith("[DONE]"):
                        break
                    usage = _usage(parse_event(data).get("usage"))
                    if usage is not None:
                        return usage
            except Exception:  # noqa: BLE001 - the answer is complete without usage
                return None
        return None

    def _status_info(self, exc: Any) -> ErrorInfo:
        return _info(exc.status_code, exc.body, headers=exc.response.headers)


def _info(status: int, body: object, *, headers: Any = None, in_stream: bool = False) -> ErrorInfo:
    """The fields of an OpenAI error body ``{"error": {"message", "type", "code"}}`` (or its inner object)."""
    error = body.get("error", body) if isinstance(body, dict) else body
    if not isinstance(error, dict):
        message = error if isinstance(error, str) else None
        return ErrorInfo(status, message=message, headers=headers, in_stream=in_stream)
    code = error.get("code")
    return ErrorInfo(
        status,
        type=error.get("type") if isinstance(error.get("type"), str) else None,
        code=str(code) if code is not None else None,
        message=error.get("message") if isinstance(error.get("message"), str) else None,
        headers=headers,
        in_stream=in_stream,
    )


def _usage(usage: object) -> Usage | None:
    if isinstance(usage, dict):
        return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))
    return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
