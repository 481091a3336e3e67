"""The openai provider against a real HTTP server on 127.0.0.1, through the official SDK.

What only this wire format has; the faults and behaviours both SDK providers share are
tested once, over both, in test_provider_sdk_faults.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

import valis_actors as va
from valis_actors._personas import NEUTRAL
from valis_actors.providers._openai import OpenAIProvider
from valis_actors.testing.fakeserver import FakeLLMServer, open_fake_llm_server

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
