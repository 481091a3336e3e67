"""The anthropic provider against a real HTTP server on 127.0.0.1, through the official SDK.

What only this wire format has; the faults and behaviours both SDK providers share are
tested once, over both, in test_provider_sdk_faults.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import valis_actors as va
from valis_actors._personas import NEUTRAL
from valis_actors.providers._anthropic import AnthropicProvider
from valis_actors.testing.fakeserver import FakeLLMServer, open_fake_llm_server

pytestmark = pytest.mark.anyio

KEY = "sk-ant-api03-Q7fJ2kLm9xW4vB8nR1tY6uE3oP5aS0dG"
MODEL = "claude-haiku-4-5"
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
        text="Ask with evidence of your impact.", api_keys={"anthropic": KEY}
    ) as server:
        yield server


def make_provider(
    server: FakeLLMServer, *, timeout: float | None = 5.0, **options: object
) -> AnthropicProvider:
    settings = va.ProviderSettings(
        name="claude",
        type="anthropic",
        timeout=timeout,
        options={"base_url": server.anthropic_base_url, "model": MODEL, "max_tokens": 256, **options},
    )
    return AnthropicProvider(settings)


@pytest.fixture
async def provider(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AnthropicProvider]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    provider = make_provider(server, timeout=1.0)
    await provider.aopen()
    try:
        yield provider
    finally:
        await provider.aclose()


async def test_anthropic_sends_persona_as_system_prompt_and_history_as_messages(
    provider: AnthropicProvider, server: FakeLLMServer
) -> None:
    await provider.get_response(REQUEST)
    body = server.requests[-1].body
    assert body is not None
    assert body["system"] == "You are Jane, an HR partner."
    assert body["messages"] == [
        {"role": "user", "content": "Hi Jane"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "How do I ask for a raise?"},
    ]
    assert body["model"] == MODEL
    assert body["max_tokens"] == 256
    assert "temperature" not in body
    # The SDK's own retries are off: the runtime owns retry policy.
    assert server.requests[-1].headers["x-stainless-retry-count"] == "0"
