"""Error responses of the fake LLM server, in each API's own format and words.

Anthropic: ``{"type": "error", "error": {"type": ..., "message": ...}, "request_id": ...}``.
OpenAI: ``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}``.

A ``status`` step is rendered from its preset (``Fault.rate_limited()``...) or, for a bare
``Fault.status(code)``, from what the real API sends for that code; the step's
``error_type``, ``code`` and ``message`` then override the defaults.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._faults import Api, Fault
from ._wire import Answer, anthropic_event, dumps

__all__ = ["ErrorResponse", "error_response", "request_error", "stream_error_event"]

ANTHROPIC_CONTEXT_LIMIT = 200_000
OPENAI_CONTEXT_LIMIT = 128_000


@attrs.frozen
class ErrorResponse:
    """An HTTP error: status, extra headers and JSON body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def stream_error_event(api: Api, fault: Fault) -> bytes:
    """The in-stream error event of ``Fault.stream_error_event``."""
    if api == "anthropic":
        error_type = fault.error_type or "overloaded_error"
        message = fault.message or _ANTHROPIC_MESSAGES.get(error_type, "Overloaded")
        return anthropic_event("error", {"type": "error", "error": {"type": error_type, "message": message}})
    error = {
        "message": fault.message or _OPENAI_SERVER_ERROR,
        "type": fault.error_type or "server_error",
        "param": None,
        "code": None,
    }
    return b"data: " + dumps({"error": error}).encode() + b"\n\n"


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ANTHROPIC_MESSAGES = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": (
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits."
    ),
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "overloaded_error": "Overloaded",
}
_OPENAI_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


@attrs.frozen
class _Error:
    status: int
    type: str
    message: str
    code: str | None = None
    param: str | None = None


def _preset_error(api: Api, fault: Fault, answer: Answer) -> _Error | None:
    """The per-API rendering of a named preset (``Fault.rate_limited()``...)."""
    anthropic = api == "anthropic"
    match fault.preset:
        case "rate_limited":
            if anthropic:
                return _Error(429, "rate_limit_error", _ANTHROPIC_MESSAGES["rate_limit_error"])
            wait = f" Please try again in {fault.retry_after:g}s." if fault.retry_after is not None else ""
            return _Error(
                429,
                "requests",
                f"Rate limit reached for {answer.model} on requests per min (RPM).{wait}",
                code="rate_limit_exceeded",
            )
        case "insufficient_quota":
            if anthropic:
                return _Error(
                    400,
                    "invalid_request_error",
                    "Your credit balance is too low to access the Anthropic API. "
                    "Please go to Plans & Billing to upgrade or purchase credits.",
                )
            return _Error(
                429,
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details. For more "
                "information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                code="insufficient_quota",
            )
        case "overloaded":
            if anthropic:
                return _Error(529, "overloaded_error", "Overloaded")
            return _Error(503, "server_error", "The server is overloaded or not ready yet.")
        case "server_error":
            status = fault.status_code or 500
            if anthropic:
                return _Error(status, "api_error", "Internal server error")
            return _Error(status, "server_error", _OPENAI_SERVER_ERROR)
        case "context_length_exceeded":
            if anthropic:
                tokens = ANTHROPIC_CONTEXT_LIMIT + answer.input_tokens
                return _Error(
                    400,
                    "invalid_request_error",
                    f"prompt is too long: {tokens} tokens > {ANTHROPIC_CONTEXT_LIMIT} maximum",
                )
            tokens = OPENAI_CONTEXT_LIMIT + answer.input_tokens
            return _Error(
                400,
                "invalid_request_error",
                f"This model's maximum context length is {OPENAI_CONTEXT_LIMIT} tokens. However, your "
                f"messages resulted in {tokens} tokens. Please reduce the length of the messages.",
                code="context_length_exceeded",
                param="messages",
            )
        case "content_policy":
            if anthropic:
                return _Error(
                    400,
                    "invalid_request_error",
                    "Your request was flagged as potentially violating our Usage Policy "
                    "(https://www.anthropic.com/legal/aup). Please try rephrasing the request.",
                )
            return _Error(
                400,
                "invalid_request_error",
                "Your request was rejected as a result of our safety system. Your prompt may contain "
                "text that is not allowed by our safety system.",
                code="content_policy_violation",
            )
        case "unauthorized":
            return unauthorized_error(api, answer.api_key)
        case None:
            return None


def unauthorized_error(api: Api, api_key: str) -> _Error:
    """The 401 for a wrong key; the message echoes the key, as some proxies do."""
    if api == "anthropic":
        return _Error(401, "authentication_error", f"Incorrect API key provided: {api_key}")
    return _Error(
        401,
        "invalid_request_error",
        f"Incorrect API key provided: {api_key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _status_error(api: Api, status: int, answer: Answer) -> _Error:
    """The real API's default error for a bare status code."""
    if api == "anthropic":
        error_type = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return _Error(status, error_type, _ANTHROPIC_MESSAGES.get(error_type, "Error."))
    if status == 401:
        return unauthorized_error(api, answer.api_key)
    if status == 429:
        return _Error(429, "requests", f"Rate limit reached for {answer.model}.", code="rate_limit_exceeded")
    if status == 503:
        return _Error(503, "server_error", "The server is overloaded or not ready yet.")
    if status >= 500:
        return _Error(status, "server_error", _OPENAI_SERVER_ERROR)
    return _Error(status, "invalid_request_error", f"Request failed with status {status}.")


def request_error(api: Api, status: int, message: str, serial: int) -> ErrorResponse:
    """An error about the request itself (bad JSON, missing field, unknown path)."""
    error = _Error(
        status,
        "not_found_error" if api == "anthropic" and status == 404 else "invalid_request_error",
        message,
    )
    return _render_error(api, error, (), serial)


PREFILL_REJECTED_MESSAGE = (
    "This model does not support assistant message prefill. The conversation must end with a user message."
)


def prefill_rejection(api: Api, answer: Answer) -> ErrorResponse:
    """The 400 of ``Fault.reject_prefill`` for a request that ends with an assistant message."""
    error = _Error(400, "invalid_request_error", PREFILL_REJECTED_MESSAGE)
    return _render_error(api, error, (), answer.serial)


def error_response(api: Api, fault: Fault, answer: Answer) -> ErrorResponse:
    """The HTTP error of a ``status`` step (preset or bare status), in the API's format."""
    error = _preset_error(api, fault, answer) or _status_error(api, fault.status_code or 500, answer)
    error = attrs.evolve(
        error,
        status=fault.status_code or error.status,
        type=fault.error_type or error.type,
        message=fault.message or error.message,
        code=fault.code or error.code,
    )
    headers: list[tuple[str, str]] = []
    if fault.retry_after is not None:
        headers.append(("retry-after", f"{fault.retry_after:g}"))
    if fault.retry_after_ms is not None:
        headers.append(("retry-after-ms", f"{fault.retry_after_ms:g}"))
    headers.extend(fault.headers)
    return _render_error(api, error, tuple(headers), answer.serial)


def _render_error(
    api: Api, error: _Error, headers: tuple[tuple[str, str], ...], serial: int
) -> ErrorResponse:
    if api == "anthropic":
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": error.type, "message": error.message},
            "request_id": f"req_fake{serial:012d}",
        }
    else:
        body = {
            "error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
        }
    return ErrorResponse(status=error.status, headers=headers, body=dumps(body).encode())
