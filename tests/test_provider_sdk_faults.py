"""The SDK providers (anthropic, openai) against a real HTTP server on 127.0.0.1, through the
official SDKs: every fault and behaviour both wire formats share, one test parametrized over both."""

from __future__ import annotations

import subprocess
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal

import anyio
import pytest

import valis_actors as va
from valis_actors._personas import NEUTRAL
from valis_actors.providers._anthropic import AnthropicProvider
from valis_actors.providers._openai import OpenAIProvider
from valis_actors.testing.fakeserver import FakeLLMServer, Fault, open_fake_llm_server

pytestmark = pytest.mark.anyio

TEXT = "Ask with evidence of your impact."
REQUEST = va.ProviderRequest(
    session_id="s1",
    persona=NEUTRAL,
    message="How do I ask for a raise?",
    system_prompt="You are Jane, an HR partner.",
    history=(va.Turn(user="Hi Jane", assistant="Hello! How can I help?"),),
)


@dataclass(frozen=True)
class Api:
    """One wire format: how to build its provider and what its faults must read like."""

    name: Literal["anthropic", "openai"]  # the fault server's api name, and the provider type
    provider_class: type[va.BaseProvider]
    settings_name: str
    registry_name: str  # the provider_class() name
    sdk_module: str
    env_var: str
    custom_env_var: str
    key: str
    wrong_key: str
    model: str
    quota_text: str
    content_policy_text: str
    stream_error_text: str

    def base_url(self, server: FakeLLMServer) -> str:
        return str(getattr(server, f"{self.name}_base_url"))


ANTHROPIC = Api(
    name="anthropic",
    provider_class=AnthropicProvider,
    settings_name="claude",
    registry_name="anthropic_api",
    sdk_module="anthropic",
    env_var="ANTHROPIC_API_KEY",
    custom_env_var="TEAM_CLAUDE_KEY",
    key="sk-ant-api03-Q7fJ2kLm9xW4vB8nR1tY6uE3oP5aS0dG",
    wrong_key="sk-ant-api03-WRONGwrongWRONG0123456789xyz",
    model="claude-haiku-4-5",
    quota_text="credit balance",
    content_policy_text="Usage Policy",
    stream_error_text="overloaded_error",
)
OPENAI = Api(
    name="openai",
    provider_class=OpenAIProvider,
    settings_name="gpt",
    registry_name="openai_api",
    sdk_module="openai",
    env_var="OPENAI_API_KEY",
    custom_env_var="TEAM_GPT_KEY",
    key="sk-proj-Q7fJ2kLm9xW4vB8nR1tY6uE3oP5aS0dG",
    wrong_key="sk-proj-WRONGwrongWRONG0123456789xyz",
    model="gpt-4o-mini",
    quota_text="quota",
    content_policy_text="safety system",
    stream_error_text="server_error",
)
APIS = [pytest.param(ANTHROPIC, id="anthropic"), pytest.param(OPENAI, id="openai")]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # Real sockets: real time on both backends (a virtual clock would jump while bytes move).
    return str(request.param)


@pytest.fixture(params=APIS)
def api(request: pytest.FixtureRequest) -> Api:
    api: Api = request.param
    return api


@pytest.fixture
async def server(api: Api) -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm_server(text=TEXT, api_keys={api.name: api.key}) as server:
        yield server


def make_provider(
    api: Api, server: FakeLLMServer, *, timeout: float | None = 5.0, **options: object
) -> va.BaseProvider:
    settings = va.ProviderSettings(
        name=api.settings_name,
        type=api.name,
        timeout=timeout,
        options={"base_url": api.base_url(server), "model": api.model, "max_tokens": 256, **options},
    )
    return api.provider_class(settings)


@pytest.fixture
async def provider(
    api: Api, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[va.BaseProvider]:
    monkeypatch.setenv(api.env_var, api.key)
    provider = make_provider(api, server, timeout=1.0)
    await provider.aopen()
    try:
        yield provider
    finally:
        await provider.aclose()


def exception_chain_text(error: BaseException) -> str:
    """What a logged traceback says about ``error`` and its causes (without reading source files)."""
    lines: list[str] = []
    link: BaseException | None = error
    while link is not None:
        lines += traceback.format_exception_only(link)
        link = link.__cause__ or link.__context__
    return "".join(lines)


async def collect(provider: va.BaseProvider) -> tuple[list[str], va.ProviderResponse | None]:
    chunks: list[str] = []
    final: va.ProviderResponse | None = None
    stream = provider.stream_response(REQUEST)
    assert stream is not None
    async with aclosing(stream) as items:
        async for item in items:
            if isinstance(item, va.ProviderResponse):
                final = item
            else:
                assert final is None, "a chunk after the final response"
                chunks.append(item)
    return chunks, final


async def collect_error(provider: va.BaseProvider) -> tuple[list[str], va.ProviderError]:
    chunks: list[str] = []
    with pytest.raises(va.ProviderError) as caught:
        stream = provider.stream_response(REQUEST)
        assert stream is not None
        async with aclosing(stream) as items:
            async for item in items:
                assert isinstance(item, str), "a failed stream must not deliver a final response"
                chunks.append(item)
    return chunks, caught.value


async def test_sdk_provider_answers_with_the_reported_model_and_usage(
    api: Api, provider: va.BaseProvider
) -> None:
    response = await provider.get_response(REQUEST)
    assert response.text == TEXT
    assert response.model == api.model
    assert response.usage == va.Usage(input_tokens=20, output_tokens=6)


async def test_sdk_provider_streams_chunks_then_one_final_response(
    api: Api, provider: va.BaseProvider
) -> None:
    chunks, final = await collect(provider)
    assert len(chunks) > 1
    assert final is not None
    assert "".join(chunks) == final.text == TEXT
    assert final.model == api.model
    assert final.usage == va.Usage(input_tokens=20, output_tokens=6)


async def test_sdk_provider_429_with_retry_after_is_rate_limited(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(
        api.name, Fault.rate_limited(retry_after=2.5), Fault.rate_limited(None, retry_after_ms=1500)
    )
    with pytest.raises(va.RateLimitedError) as caught:
        await provider.get_response(REQUEST)
    assert caught.value.retry_after == 2.5
    with pytest.raises(va.RateLimitedError) as caught:
        await provider.get_response(REQUEST)
    assert caught.value.retry_after == 1.5


async def test_sdk_provider_429_without_retry_after_has_no_wait(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.rate_limited(retry_after=None))
    with pytest.raises(va.RateLimitedError) as caught:
        await provider.get_response(REQUEST)
    assert caught.value.retry_after is None


async def test_sdk_provider_insufficient_quota_is_permanent(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    # Anthropic: a low credit balance (400); OpenAI: a 429 that no wait will cure.
    server.script(api.name, Fault.insufficient_quota())
    with pytest.raises(va.PermanentProviderError, match=api.quota_text) as caught:
        await provider.get_response(REQUEST)
    assert not isinstance(caught.value, va.TransientProviderError)


@pytest.mark.parametrize("fault", [Fault.server_error(500), Fault.server_error(503), Fault.overloaded()])
async def test_sdk_provider_server_errors_are_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer, fault: Fault
) -> None:
    server.script(api.name, fault)
    with pytest.raises(va.TransientProviderError) as caught:
        await provider.get_response(REQUEST)
    assert type(caught.value) is va.TransientProviderError


async def test_sdk_provider_connection_reset_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.reset())
    with pytest.raises(va.TransientProviderError) as caught:
        await provider.get_response(REQUEST)
    assert type(caught.value) is va.TransientProviderError


async def test_sdk_provider_no_response_times_out(
    api: Api, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(api.env_var, api.key)
    provider = make_provider(api, server, timeout=0.3)
    await provider.aopen()
    try:
        server.script(api.name, Fault.no_response())
        started = anyio.current_time()
        with pytest.raises(va.ProviderTimeoutError):
            await provider.get_response(REQUEST)
        assert anyio.current_time() - started < 2.0
    finally:
        await provider.aclose()


async def test_sdk_provider_cancelled_request_leaves_nothing_behind(
    api: Api, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime's cancel scope is the real per-attempt limit. A generous SDK timeout: the
    # second call must not fail because a shared machine is slow (the fixture's is 1 s).
    monkeypatch.setenv(api.env_var, api.key)
    provider = make_provider(api, server, timeout=30.0)
    await provider.aopen()
    try:
        server.script(api.name, Fault.no_response())
        with anyio.move_on_after(0.2) as scope:
            await provider.get_response(REQUEST)
        assert scope.cancelled_caught
        assert (await provider.get_response(REQUEST)).text == TEXT
    finally:
        await provider.aclose()


async def test_sdk_provider_context_length_is_permanent(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.context_length_exceeded())
    with pytest.raises(va.PermanentProviderError, match="context length") as caught:
        await provider.get_response(REQUEST)
    assert not isinstance(caught.value, va.ContentPolicyError)


async def test_sdk_provider_content_policy_carries_the_reason(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.content_policy())
    with pytest.raises(va.ContentPolicyError, match=api.content_policy_text):
        await provider.get_response(REQUEST)


async def test_sdk_provider_wrong_key_is_permanent_and_redacted(
    api: Api, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = api.wrong_key
    monkeypatch.setenv(api.env_var, wrong)
    provider = make_provider(api, server)
    await provider.aopen()
    try:
        with pytest.raises(va.PermanentProviderError) as caught:
            await provider.get_response(REQUEST)
        _, streamed = await collect_error(provider)
    finally:
        await provider.aclose()
    for error in (caught.value, streamed):
        assert isinstance(error, va.PermanentProviderError)
        assert wrong not in str(error)
        assert wrong not in repr(error)
        # Nor in a logged traceback, which shows the SDK's error it was raised from.
        assert wrong not in exception_chain_text(error)
        assert api.env_var in str(error)
        assert "401" in str(error)
    assert server.requests[-1].fault == Fault.unauthorized()


async def test_sdk_provider_key_from_the_configured_env_var(
    api: Api, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(api.env_var, raising=False)
    monkeypatch.setenv(api.custom_env_var, api.key)
    provider = make_provider(api, server, api_key_env=api.custom_env_var)
    assert provider.unavailable_reason() is None
    await provider.aopen()
    try:
        assert (await provider.get_response(REQUEST)).text
    finally:
        await provider.aclose()
    assert provider.redact(f"echo {api.key}") == "echo [redacted]"


async def test_sdk_provider_empty_answer_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.ok(text=""), Fault.ok(text=""))
    with pytest.raises(va.TransientProviderError, match="empty answer"):
        await provider.get_response(REQUEST)
    chunks, error = await collect_error(provider)
    assert chunks == []
    assert type(error) is va.TransientProviderError


async def test_sdk_provider_stream_cut_mid_answer_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.cut(after_chunks=2))
    chunks, error = await collect_error(provider)
    assert len(chunks) == 2
    assert type(error) is va.TransientProviderError


async def test_sdk_provider_stream_stall_times_out(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.stall(after_chunks=1))
    started = anyio.current_time()
    chunks, error = await collect_error(provider)
    assert len(chunks) == 1
    assert isinstance(error, va.ProviderTimeoutError)
    assert anyio.current_time() - started < 3.0


async def test_sdk_provider_malformed_stream_event_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.malformed(after_chunks=1))
    chunks, error = await collect_error(provider)
    assert len(chunks) == 1
    assert type(error) is va.TransientProviderError
    assert "malformed" in str(error)


async def test_sdk_provider_malformed_body_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.malformed())
    with pytest.raises(va.TransientProviderError, match="malformed"):
        await provider.get_response(REQUEST)


async def test_sdk_provider_json_that_is_not_an_object_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.raw_json(["not", "an", "answer"]))
    with pytest.raises(va.TransientProviderError, match=r"malformed response body \(a JSON list, not an object\)"):
        await provider.get_response(REQUEST)


async def test_sdk_provider_error_body_with_a_200_status_is_classified(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    # What some proxies send: the API's error object, under a 200 status.
    if api.name == "anthropic":
        body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded right now"}}
    else:
        body = {"error": {"message": "Overloaded right now", "type": "server_error", "code": None}}
    server.script(api.name, Fault.raw_json(body))
    with pytest.raises(va.TransientProviderError, match=r"error body with status 200 \(\w+\): Overloaded right now"):
        await provider.get_response(REQUEST)


async def test_sdk_provider_answer_without_usage_or_model_still_answers(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    if api.name == "anthropic":
        body: dict[str, object] = {"content": [{"type": "text", "text": TEXT}], "stop_reason": "end_turn"}
    else:
        body = {"choices": [{"message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}]}
    server.script(api.name, Fault.raw_json(body))
    response = await provider.get_response(REQUEST)
    assert response.text == TEXT
    assert response.model is None
    assert response.usage in (None, va.Usage(0, 0))


@pytest.mark.parametrize("api", [OPENAI], indirect=True, ids=["openai"])
async def test_openai_completion_without_choices_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.raw_json({"id": "chatcmpl-1", "object": "chat.completion", "choices": []}))
    with pytest.raises(va.TransientProviderError, match=r"malformed response body \(no choices\)"):
        await provider.get_response(REQUEST)


@pytest.mark.parametrize("api", [ANTHROPIC], indirect=True, ids=["anthropic"])
async def test_anthropic_answer_keeps_only_its_text_blocks(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    content = [
        {"type": "thinking", "thinking": "weigh it"},
        {"type": "text", "text": "Ask with "},
        {"type": "text", "text": 7},  # not text: skipped, not a crash
        "junk",
        {"type": "text", "text": "evidence."},
    ]
    server.script("anthropic", Fault.raw_json({"content": content, "stop_reason": "end_turn", "model": "m-1"}))
    response = await provider.get_response(REQUEST)
    assert (response.text, response.model) == ("Ask with evidence.", "m-1")


async def test_sdk_provider_stream_without_terminator_finishes_promptly(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    # Anthropic: no message_stop event; OpenAI: no [DONE].
    server.script(api.name, Fault.no_terminator())
    started = anyio.current_time()
    chunks, final = await collect(provider)
    assert anyio.current_time() - started < 1.0
    assert final is not None
    assert "".join(chunks) == final.text
    assert final.usage == va.Usage(input_tokens=20, output_tokens=6)


async def test_sdk_provider_in_stream_error_event_is_transient(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.stream_error_event(after_chunks=1))
    chunks, error = await collect_error(provider)
    assert len(chunks) == 1
    assert type(error) is va.TransientProviderError
    assert api.stream_error_text in str(error)


async def test_sdk_provider_stream_error_status_is_mapped_before_any_chunk(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.rate_limited(retry_after=0.5))
    chunks, error = await collect_error(provider)
    assert chunks == []
    assert isinstance(error, va.RateLimitedError)
    assert error.retry_after == 0.5


async def test_sdk_provider_abandoned_stream_closes_its_connection(
    api: Api, provider: va.BaseProvider, server: FakeLLMServer
) -> None:
    server.script(api.name, Fault.stall(after_chunks=1))
    stream = provider.stream_response(REQUEST)
    assert stream is not None
    async with aclosing(stream) as items:
        assert isinstance(await items.__anext__(), str)
    with anyio.fail_after(2):
        while not server.requests[-1].completed:
            await anyio.sleep(0.01)
    assert server.requests[-1].client_disconnected


async def test_sdk_provider_missing_key_is_unavailable_without_network(
    api: Api, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(api.env_var, raising=False)
    provider = make_provider(api, server)
    assert provider.unavailable_reason() == f"{api.env_var} not set"
    await provider.aopen()
    with pytest.raises(va.ProviderUnavailableError, match=f"{api.env_var} not set"):
        await provider.get_response(REQUEST)
    await provider.aclose()
    assert server.requests == ()


@pytest.mark.parametrize("api", APIS)
def test_sdk_provider_sdk_is_imported_only_when_a_keyed_provider_is_opened(api: Api) -> None:
    code = (
        "import os, sys, anyio\n"
        "import valis_actors as va\n"
        "from valis_actors.providers._base import provider_class\n"
        f"cls = provider_class({api.registry_name!r})\n"
        f"os.environ.pop({api.env_var!r}, None)\n"
        f"p = cls(va.ProviderSettings(name='p', type={api.name!r}))\n"
        "anyio.run(p.aopen)\n"
        f"assert p.unavailable_reason() == {api.env_var + ' not set'!r}\n"
        f"assert {api.sdk_module!r} not in sys.modules and 'httpx2' not in sys.modules\n"
        f"os.environ[{api.env_var!r}] = 'k' * 20\n"
        f"p = cls(va.ProviderSettings(name='p', type={api.name!r}))\n"
        f"assert {api.sdk_module!r} not in sys.modules\n"
        "async def main():\n"
        "    await p.aopen()\n"
        "    await p.aclose()\n"
        "anyio.run(main)\n"
        f"assert {api.sdk_module!r} in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)
