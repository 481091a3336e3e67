"""Unit tests of the provider boundary: the error table, Retry-After, redaction, options.

The behaviour against a real server is tested per provider (test_provider_*.py);
here each rule of the mapping is pinned down on its own, including SDK exceptions
the fake server cannot produce.
"""

from __future__ import annotations

import subprocess
import sys
import time
from email.utils import formatdate
from typing import Any

import httpx2
import pytest

import valis_actors as va
from valis_actors.providers._common import (
    ErrorInfo,
    Redactor,
    classify_error,
    retry_after_seconds,
    unexpected_error,
)
from valis_actors.providers._http import timed_out, transport_name

KEY = "sk-ant-api03-Q7fJ2kLm9xW4vB8nR1tY6uE3oP5aS0dG"
REDACT = Redactor([KEY])


def classify(status: int, **fields: Any) -> va.ProviderError:
    return classify_error(ErrorInfo(status, **fields), key_env="ANTHROPIC_API_KEY", redact=REDACT)


@pytest.mark.parametrize(
    ("info", "expected", "words"),
    [
        (ErrorInfo(429, type="rate_limit_error", message="slow down"), va.RateLimitedError, "rate limited"),
        (ErrorInfo(429, type="requests", code="rate_limit_exceeded"), va.RateLimitedError, "429"),
        (
            ErrorInfo(429, type="insufficient_quota", message="You exceeded your current quota"),
            va.PermanentProviderError,
            "quota",
        ),
        (
            ErrorInfo(429, type="rate_limit_error", code="enforced_spend_limit_reached"),
            va.PermanentProviderError,
            "spend limit",
        ),
        (
            ErrorInfo(400, type="invalid_request_error", message="Your credit balance is too low"),
            va.PermanentProviderError,
            "credit balance",
        ),
        (
            ErrorInfo(401, type="authentication_error", message="invalid x-api-key"),
            va.PermanentProviderError,
            "check ANTHROPIC_API_KEY",
        ),
        (ErrorInfo(403, type="permission_error"), va.PermanentProviderError, "check ANTHROPIC_API_KEY"),
        (ErrorInfo(408, type="timeout_error"), va.TransientProviderError, "408"),
        (ErrorInfo(409), va.TransientProviderError, "409"),
        (ErrorInfo(500, type="api_error"), va.TransientProviderError, "500"),
        (ErrorInfo(502), va.TransientProviderError, "502"),
        (ErrorInfo(503, type="server_error"), va.TransientProviderError, "503"),
        (ErrorInfo(504, type="timeout_error"), va.TransientProviderError, "504"),
        (
            ErrorInfo(529, type="overloaded_error", message="Overloaded"),
            va.TransientProviderError,
            "Overloaded",
        ),
        (
            ErrorInfo(400, code="context_length_exceeded", message="maximum context length is 8192 tokens"),
            va.PermanentProviderError,
            "context length",
        ),
        (
            ErrorInfo(400, message="prompt is too long: 200001 tokens > 200000 maximum"),
            va.PermanentProviderError,
            "context length",
        ),
        (ErrorInfo(413, type="request_too_large"), va.PermanentProviderError, "413"),
        (
            ErrorInfo(400, code="content_policy_violation", message="rejected by our safety system"),
            va.ContentPolicyError,
            "safety system",
        ),
        (
            ErrorInfo(400, message="Your request was flagged as potentially violating our Usage Policy"),
            va.ContentPolicyError,
            "Usage Policy",
        ),
        (
            ErrorInfo(404, type="not_found_error", message="model: claude-x"),
            va.PermanentProviderError,
            "base_url",
        ),
        (ErrorInfo(422, message="bad field"), va.PermanentProviderError, "422"),
        (
            ErrorInfo(200, type="overloaded_error", message="Overloaded", in_stream=True),
            va.TransientProviderError,
            "in stream",
        ),
        (ErrorInfo(200, type="rate_limit_error", in_stream=True), va.RateLimitedError, "in stream"),
    ],
)
def test_error_table_maps_each_status_and_body(info: ErrorInfo, expected: type, words: str) -> None:
    error = classify_error(info, key_env="ANTHROPIC_API_KEY", redact=REDACT)
    assert type(error) is expected
    assert words in str(error)


def test_error_table_takes_the_wait_from_retry_after_headers() -> None:
    later = formatdate(time.time() + 30, usegmt=True)
    assert classify(429, headers={"retry-after": "3"}).retry_after == 3.0  # type: ignore[attr-defined]
    both = {"retry-after-ms": "250", "retry-after": "5"}
    assert classify(429, headers=both).retry_after == 0.25  # type: ignore[attr-defined]
    waited = classify(429, headers={"retry-after": later}).retry_after  # type: ignore[attr-defined]
    assert 25 < waited <= 30
    assert classify(429).retry_after is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "junk", "retry-after": "4"}, 4.0),
        ({"retry-after": formatdate(time.time() - 60, usegmt=True)}, 0.0),
    ],
)
def test_retry_after_accepts_seconds_milliseconds_and_http_dates(
    headers: dict[str, str] | None, expected: float | None
) -> None:
    assert retry_after_seconds(headers) == expected


def test_error_messages_are_redacted() -> None:
    error = classify(401, message=f"Incorrect API key provided: {KEY}")
    assert KEY not in str(error)
    assert "[redacted]" in str(error)


@pytest.mark.parametrize(
    "text",
    [
        f"key {KEY} rejected",
        f"key={KEY}.",
        "Incorrect API key provided: sk-ant-api03-Q7fJ2k...",
        "Incorrect API key provided: sk-ant-a*********************0dG",
        "masked sk-ant****dG",
        "tail Q7fJ2kLm9xW4vB8n",
    ],
)
def test_redactor_removes_the_key_and_recognisable_fragments(text: str) -> None:
    redacted = REDACT(text)
    assert "[redacted]" in redacted
    for fragment in ("Q7fJ2k", "0dG", "Lm9xW4"):
        assert fragment not in redacted


def test_redactor_leaves_other_text_alone() -> None:
    text = "rate limited (429): This request would exceed the rate limit; see https://docs.example.com/rate-limits"
    assert REDACT(text) == text
    assert Redactor(["abc"])("abc abcdefgh") == "abc abcdefgh"  # too short to be a secret
    assert Redactor([None, ""])(KEY) == KEY
    assert not Redactor([])


def test_unexpected_errors_are_transient_and_named() -> None:
    error = unexpected_error(RuntimeError(f"boom with {KEY}"), redact=REDACT)
    assert type(error) is va.TransientProviderError
    assert "RuntimeError" in str(error)
    assert KEY not in str(error)


def _request() -> httpx2.Request:
    return httpx2.Request("POST", "http://127.0.0.1:9/v1/messages")


def _sdk_provider(type_name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from valis_actors.providers._base import provider_class

    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    return provider_class(type_name)(va.ProviderSettings(name=type_name, type=type_name, timeout=7))


@pytest.mark.parametrize("type_name", ["anthropic", "openai"])
def test_sdk_exceptions_map_to_our_types(type_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    provider = _sdk_provider(type_name, monkeypatch)
    sdk = provider.load_sdk()
    response = httpx2.Response(
        429,
        headers={"retry-after": "2"},
        json={"type": "error", "error": {"type": "rate_limit_error", "message": f"slow down {KEY}"}},
        request=_request(),
    )
    limited = provider._map(sdk.RateLimitError("429", response=response, body=response.json()))
    assert isinstance(limited, va.RateLimitedError) and limited.retry_after == 2.0
    assert KEY not in str(limited)

    timeout = provider._map(sdk.APITimeoutError(request=_request()))
    assert isinstance(timeout, va.ProviderTimeoutError) and "7s" in str(timeout)

    connection = provider._map(sdk.APIConnectionError(request=_request()))
    assert type(connection) is va.TransientProviderError

    broken = provider._map(httpx2.RemoteProtocolError("peer closed connection"))
    assert type(broken) is va.TransientProviderError

    surprise = provider._map(KeyError("choices"))
    assert type(surprise) is va.TransientProviderError and "KeyError" in str(surprise)

    ours = va.ContentPolicyError("no")
    assert provider._map(ours) is ours


def test_aiohttp_connection_errors_reported_as_timeouts_are_not_timeouts() -> None:
    aiohttp = pytest.importorskip("aiohttp")
    try:
        try:
            raise aiohttp.ServerDisconnectedError()
        except aiohttp.ClientError as exc:
            raise httpx2.ConnectTimeout("Server disconnected") from exc
    except httpx2.ConnectTimeout as exc:
        assert not timed_out(exc)
    try:
        try:
            raise aiohttp.SocketTimeoutError()
        except aiohttp.ClientError as exc:
            raise httpx2.ReadTimeout("Timeout on reading data from socket") from exc
    except httpx2.ReadTimeout as exc:
        assert timed_out(exc)
    assert timed_out(httpx2.ReadTimeout("read timed out"))


def test_transport_choice_per_backend() -> None:
    assert transport_name("trio") == "httpx2"
    assert transport_name("asyncio") == "aiohttp"  # aiohttp is in the test extra


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"type": "anthropic", "modle": "x"}, "unknown key 'modle'; did you mean 'model'?"),
        ({"type": "anthropic", "temperature": 1.5}, "temperature must be between 0 and 1"),
        ({"type": "openai", "temperature": 2.5}, "temperature must be between 0 and 2"),
        ({"type": "openai_api", "max_tokens": 0}, "max_tokens must be >= 1"),
        ({"type": "openai", "api_key_optional": "yes"}, "expected true or false"),
        ({"type": "desktop_commander", "command": "claude -p"}, "expected a list"),
        ({"type": "desktop_commander_mcp", "prompt_via": "stdn"}, "did you mean 'stdin'?"),
        ({"type": "desktop_commander", "env": {"A": 1}}, "expected a string"),
    ],
)
def test_provider_options_are_validated_at_config_load(entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(va.ConfigError) as caught:
        va.Config.from_dict({"providers": [entry]})
    assert any(problem in line and "@ $.providers[0]" in line for line in caught.value.problems), (
        caught.value.problems
    )


def test_provider_options_have_documented_defaults() -> None:
    from valis_actors.providers._anthropic import AnthropicOptions
    from valis_actors.providers._desktop_commander import DesktopCommanderOptions
    from valis_actors.providers._openai import OpenAIOptions

    assert AnthropicOptions().api_key_env == "ANTHROPIC_API_KEY"
    assert OpenAIOptions().api_key_env == "OPENAI_API_KEY"
    assert OpenAIOptions().api_key_optional is False
    assert DesktopCommanderOptions().command is None
    assert DesktopCommanderOptions(command=["llm"]).command == ("llm",)  # type: ignore[arg-type]
    assert DesktopCommanderOptions().prompt_via == "stdin"


def test_loading_a_config_naming_every_provider_imports_no_sdk() -> None:
    code = (
        "import sys, valis_actors as va\n"
        "va.Config.from_dict({'providers': ['desktop_commander_mcp', {'type': 'anthropic', 'model': 'm'},\n"
        "    {'type': 'openai_api', 'base_url': 'http://localhost:11434/v1', 'api_key_optional': True}]})\n"
        "bad = {'openai', 'anthropic', 'httpx', 'httpx2', 'aiohttp'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
