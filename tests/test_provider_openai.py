"""The openai provider against a real HTTP server on 127.0.0.1, through the official SDK."""

from __future__ import annotations

import subprocess
import sys
import traceback
from collections.abc import AsyncIterator
from contextlib import aclosing

import anyio
import pytest

import valis_actors as va
from valis_actors._personas import NEUTRAL
from valis_actors.providers._openai import OpenAIProvider
from valis_actors.testing.fakeserver import FakeLLMServer, Fault, open_fake_llm_server

pytestmark = pytest.mark.anyio

KEY = "sk-proj-Q7fJ2kLm9xW4vB8nR1tY6uE3oP5aS0dG"
MODEL = "gpt-4o-mini"
REQUEST = va.ProviderRequest(
    session_id="s1",
    persona=NEUTRAL,
    message="How do I ask for a raise?",
    system_prompt="You are Jane, an HR partner.",
    history=(va.Turn(user="Hi Jane", assistant="Hello! How can I help?"),),
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # Real sockets: real time on both backends (a virtual clock would jump while bytes move).
    return str(request.param)


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm_server(
        text="Ask with evidence of your impact.", api_keys={"openai": KEY}
    ) as server:
        yield server


def make_provider(server: FakeLLMServer, *, timeout: float | None = 5.0, **options: object) -> OpenAIProvider:
    settings = va.ProviderSettings(
        name="gpt",
        type="openai",
        timeout=timeout,
        options={"base_url": server.openai_base_url, "model": MODEL, "max_tokens": 256, **options},
    )
    return OpenAIProvider(settings)


@pytest.fixture
async def provider(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenAIProvider]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider = make_provider(server, timeout=1.0)
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


async def test_openai_answers_with_the_reported_model_and_usage(provider: OpenAIProvider) -> None:
    response = await provider.get_response(REQUEST)
    assert response.text == "Ask with evidence of your impact."
    assert response.model == MODEL
    assert response.usage == va.Usage(input_tokens=20, output_tokens=6)


async def test_openai_sends_persona_as_system_message_and_history_as_messages(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    await provider.get_response(REQUEST)
    body = server.requests[-1].body
    assert body is not None
    assert body["messages"] == [
        {"role": "system", "content": "You are Jane, an HR partner."},
        {"role": "user", "content": "Hi Jane"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "How do I ask for a raise?"},
    ]
    assert body["model"] == MODEL
    assert body["max_tokens"] == 256
    assert "temperature" not in body
    assert "stream" not in body
    # The SDK's own retries are off: the runtime owns retry policy.
    assert server.requests[-1].headers["x-stainless-retry-count"] == "0"


async def test_openai_stream_asks_for_usage(provider: OpenAIProvider, server: FakeLLMServer) -> None:
    await collect(provider)
    body = server.requests[-1].body
    assert body is not None
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_openai_options_reach_the_server(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider = make_provider(server, temperature=0.2, organization="org-valis")
    await provider.aopen()
    try:
        await provider.get_response(REQUEST)
    finally:
        await provider.aclose()
    request = server.requests[-1]
    assert request.body is not None
    assert request.body["temperature"] == 0.2
    assert request.headers["openai-organization"] == "org-valis"


async def test_openai_local_server_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # An OpenAI-compatible local server (Ollama, vLLM, llama.cpp) that needs no key.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with open_fake_llm_server(text="Local answer.") as local:
        provider = make_provider(local, api_key_optional=True, model="llama3.2")
        assert provider.unavailable_reason() is None
        await provider.aopen()
        try:
            response = await provider.get_response(REQUEST)
            chunks, final = await collect(provider)
        finally:
            await provider.aclose()
    assert response.text == "Local answer." == "".join(chunks)
    assert response.model == "llama3.2"
    assert final is not None and final.usage is not None


async def test_openai_streams_chunks_then_one_final_response(provider: OpenAIProvider) -> None:
    chunks, final = await collect(provider)
    assert len(chunks) > 1
    assert final is not None
    assert "".join(chunks) == final.text == "Ask with evidence of your impact."
    assert final.model == MODEL
    assert final.usage == va.Usage(input_tokens=20, output_tokens=6)


async def test_openai_429_with_retry_after_is_rate_limited(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script(
        "openai", Fault.rate_limited(retry_after=2.5), Fault.rate_limited(None, retry_after_ms=1500)
    )
    with pytest.raises(va.RateLimitedError) as caught:
        await provider.get_response(REQUEST)
    assert caught.value.retry_after == 2.5
    with pytest.raises(va.RateLimitedError) as caught:
        await provider.get_response(REQUEST)
    assert caught.value.retry_after == 1.5


async def test_openai_429_without_retry_after_has_no_wait(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.rate_limited(retry_after=None))
    with pytest.raises(va.RateLimitedError) as caught:
        await provider.get_response(REQUEST)
    assert caught.value.retry_after is None


async def test_openai_429_insufficient_quota_is_permanent(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.insufficient_quota())
    with pytest.raises(va.PermanentProviderError, match="quota") as caught:
        await provider.get_response(REQUEST)
    assert not isinstance(caught.value, va.TransientProviderError)


@pytest.mark.parametrize("fault", [Fault.server_error(500), Fault.server_error(503), Fault.overloaded()])
async def test_openai_server_errors_are_transient(
    provider: OpenAIProvider, server: FakeLLMServer, fault: Fault
) -> None:
    server.script("openai", fault)
    with pytest.raises(va.TransientProviderError) as caught:
        await provider.get_response(REQUEST)
    assert type(caught.value) is va.TransientProviderError


async def test_openai_connection_reset_is_transient(provider: OpenAIProvider, server: FakeLLMServer) -> None:
    server.script("openai", Fault.reset())
    with pytest.raises(va.TransientProviderError) as caught:
        await provider.get_response(REQUEST)
    assert type(caught.value) is va.TransientProviderError


async def test_openai_no_response_times_out(server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider = make_provider(server, timeout=0.3)
    await provider.aopen()
    try:
        server.script("openai", Fault.no_response())
        started = anyio.current_time()
        with pytest.raises(va.ProviderTimeoutError):
            await provider.get_response(REQUEST)
        assert anyio.current_time() - started < 2.0
    finally:
        await provider.aclose()


async def test_openai_cancelled_request_leaves_nothing_behind(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime's cancel scope is the real per-attempt limit. A generous SDK timeout: the
    # second call must not fail because a shared machine is slow (the fixture's is 1 s).
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    provider = make_provider(server, timeout=30.0)
    await provider.aopen()
    try:
        server.script("openai", Fault.no_response())
        with anyio.move_on_after(0.2) as scope:
            await provider.get_response(REQUEST)
        assert scope.cancelled_caught
        assert (await provider.get_response(REQUEST)).text == "Ask with evidence of your impact."
    finally:
        await provider.aclose()


async def test_openai_context_length_is_permanent(provider: OpenAIProvider, server: FakeLLMServer) -> None:
    server.script("openai", Fault.context_length_exceeded())
    with pytest.raises(va.PermanentProviderError, match="context length") as caught:
        await provider.get_response(REQUEST)
    assert not isinstance(caught.value, va.ContentPolicyError)


async def test_openai_content_policy_carries_the_reason(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.content_policy())
    with pytest.raises(va.ContentPolicyError, match="safety system"):
        await provider.get_response(REQUEST)


async def test_openai_wrong_key_is_permanent_and_redacted(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-proj-WRONGwrongWRONG0123456789xyz"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    provider = make_provider(server)
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
        assert "OPENAI_API_KEY" in str(error)
        assert "401" in str(error)
    assert server.requests[-1].fault == Fault.unauthorized()


async def test_openai_key_from_the_configured_env_var(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("TEAM_CLAUDE_KEY", KEY)
    provider = make_provider(server, api_key_env="TEAM_CLAUDE_KEY")
    assert provider.unavailable_reason() is None
    await provider.aopen()
    try:
        assert (await provider.get_response(REQUEST)).text
    finally:
        await provider.aclose()
    assert provider.redact(f"echo {KEY}") == "echo [redacted]"


async def test_openai_empty_answer_is_transient(provider: OpenAIProvider, server: FakeLLMServer) -> None:
    server.script("openai", Fault.ok(text=""), Fault.ok(text=""))
    with pytest.raises(va.TransientProviderError, match="empty answer"):
        await provider.get_response(REQUEST)
    chunks, error = await collect_error(provider)
    assert chunks == []
    assert type(error) is va.TransientProviderError


async def test_openai_stream_cut_mid_answer_is_transient(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.cut(after_chunks=2))
    chunks, error = await collect_error(provider)
    assert len(chunks) == 2
    assert type(error) is va.TransientProviderError


async def test_openai_stream_stall_times_out(provider: OpenAIProvider, server: FakeLLMServer) -> None:
    server.script("openai", Fault.stall(after_chunks=1))
    started = anyio.current_time()
    chunks, error = await collect_error(provider)
    assert len(chunks) == 1
    assert isinstance(error, va.ProviderTimeoutError)
    assert anyio.current_time() - started < 3.0


async def test_openai_malformed_stream_event_is_transient(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.malformed(after_chunks=1))
    chunks, error = await collect_error(provider)
    assert len(chunks) == 1
    assert type(error) is va.TransientProviderError
    assert "malformed" in str(error)


async def test_openai_malformed_body_is_transient(provider: OpenAIProvider, server: FakeLLMServer) -> None:
    server.script("openai", Fault.malformed())
    with pytest.raises(va.TransientProviderError, match="malformed"):
        await provider.get_response(REQUEST)


async def test_openai_stream_without_done_finishes_promptly(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.no_terminator())
    started = anyio.current_time()
    chunks, final = await collect(provider)
    assert anyio.current_time() - started < 1.0
    assert final is not None
    assert "".join(chunks) == final.text
    assert final.usage == va.Usage(input_tokens=20, output_tokens=6)


async def test_openai_in_stream_error_event_is_transient(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.stream_error_event(after_chunks=1))
    chunks, error = await collect_error(provider)
    assert len(chunks) == 1
    assert type(error) is va.TransientProviderError
    assert "server_error" in str(error)


async def test_openai_stream_error_status_is_mapped_before_any_chunk(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.rate_limited(retry_after=0.5))
    chunks, error = await collect_error(provider)
    assert chunks == []
    assert isinstance(error, va.RateLimitedError)
    assert error.retry_after == 0.5


async def test_openai_abandoned_stream_closes_its_connection(
    provider: OpenAIProvider, server: FakeLLMServer
) -> None:
    server.script("openai", Fault.stall(after_chunks=1))
    stream = provider.stream_response(REQUEST)
    assert stream is not None
    async with aclosing(stream) as items:
        assert isinstance(await items.__anext__(), str)
    with anyio.fail_after(2):
        while not server.requests[-1].completed:
            await anyio.sleep(0.01)
    assert server.requests[-1].client_disconnected


async def test_openai_missing_key_is_unavailable_without_network(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = make_provider(server)
    assert provider.unavailable_reason() == "OPENAI_API_KEY not set"
    await provider.aopen()
    with pytest.raises(va.ProviderUnavailableError, match="OPENAI_API_KEY not set"):
        await provider.get_response(REQUEST)
    await provider.aclose()
    assert server.requests == ()


def test_openai_sdk_is_imported_only_when_a_keyed_provider_is_opened() -> None:
    code = (
        "import os, sys, anyio\n"
        "import valis_actors as va\n"
        "from valis_actors.providers._base import provider_class\n"
        "cls = provider_class('openai_api')\n"
        "os.environ.pop('OPENAI_API_KEY', None)\n"
        "p = cls(va.ProviderSettings(name='p', type='openai'))\n"
        "anyio.run(p.aopen)\n"
        "assert p.unavailable_reason() == 'OPENAI_API_KEY not set'\n"
        "assert 'openai' not in sys.modules and 'httpx2' not in sys.modules\n"
        "os.environ['OPENAI_API_KEY'] = 'k' * 20\n"
        "p = cls(va.ProviderSettings(name='p', type='openai'))\n"
        "assert 'openai' not in sys.modules\n"
        "async def main():\n"
        "    await p.aopen()\n"
        "    await p.aclose()\n"
        "anyio.run(main)\n"
        "assert 'openai' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)
