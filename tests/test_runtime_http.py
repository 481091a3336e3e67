"""The whole runtime against a real loopback server, through the official SDKs.

Real time (short durations): the SDKs talk over real sockets, where a virtual
clock would jump while the kernel moves bytes.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import valis_actors as va
from valis_actors.testing.fakeserver import FakeLLMServer, Fault, open_fake_llm_server

pytestmark = [
    pytest.mark.anyio,
    # The SDKs leave async generators unfinished under trio (see providers/_http.py).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

OUT = va.AttemptOutcome
KEY = "sk-test-SECRET-0123456789"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLLMServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    async with open_fake_llm_server(text="The answer from the fake model.", chunks=4) as srv:
        yield srv


def config(server: FakeLLMServer, *, prefill: bool | None = None, **overrides: Any) -> va.Config:
    data: dict[str, Any] = {
        "providers": [
            {"name": "openai", "type": "openai", "base_url": server.openai_base_url, "model": "gpt-test"},
            {"name": "anthropic", "type": "anthropic", "base_url": server.anthropic_base_url, "model": "claude-test"},
        ],
        "retry_schedule": [0.05],
        "provider_timeout": 2,
        "response_deadline": 5,
        "memory": {"backend": "memory"},
    }
    if prefill is not None:
        for entry in data["providers"]:
            entry["prefill"] = prefill
    data.update(overrides)
    return va.Config.from_dict(data)


async def test_answer_names_provider_model_and_usage(server: FakeLLMServer) -> None:
    async with va.open_runtime(config(server)) as runtime:
        reply = await runtime.ask("s", "jane", "hello there")
    assert (reply.provider, reply.model) == ("openai", "gpt-test")
    assert reply.text == "The answer from the fake model."
    assert reply.usage is not None and reply.usage.output_tokens == 6
    (request,) = server.requests
    assert request.body is not None and request.body["messages"][0]["role"] == "system"
    assert "You are Jane" in request.body["messages"][0]["content"]


async def test_429_with_retry_after_is_honoured(server: FakeLLMServer) -> None:
    server.script("openai", Fault.rate_limited(retry_after=0.3))
    async with va.open_runtime(config(server)) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    first, second = server.requests
    assert second.started_at - first.started_at >= 0.3
    assert [a.outcome for a in reply.attempts] == [OUT.RATE_LIMITED, OUT.SUCCESS]
    assert reply.attempts[0].retry_after == pytest.approx(0.3)


async def test_persistent_429_without_retry_after_fails_over(server: FakeLLMServer) -> None:
    server.set_default(Fault.status(429, error_type="rate_limit_error"), api="openai")
    async with va.open_runtime(config(server)) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.provider == "anthropic"
    assert [a.outcome for a in reply.attempts] == [OUT.RATE_LIMITED, OUT.RATE_LIMITED, OUT.SUCCESS]


async def test_500_once_then_healthy_is_retried(server: FakeLLMServer) -> None:
    server.script("openai", Fault.server_error(500))
    async with va.open_runtime(config(server)) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.provider == "openai"
    assert [a.outcome for a in reply.attempts] == [OUT.TRANSIENT, OUT.SUCCESS]


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (Fault.status(503), OUT.TRANSIENT),
        (Fault.reset(), OUT.TRANSIENT),
        (Fault.no_response(), OUT.TIMEOUT),
    ],
    ids=["503", "reset", "no-response"],
)
async def test_persistent_fault_fails_over_to_the_next_provider(
    server: FakeLLMServer, fault: Fault, outcome: OUT
) -> None:
    server.set_default(fault, api="openai")
    async with va.open_runtime(config(server, provider_timeout=0.5)) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.provider == "anthropic"
    # Transient faults are retried on the same provider; a timeout moves on at once.
    tries = [outcome] if outcome is OUT.TIMEOUT else [outcome, outcome]
    assert [a.outcome for a in reply.attempts] == [*tries, OUT.SUCCESS]
    # Failover accounting: the answer is the fallback provider's, with its model and usage.
    assert reply.model == "claude-test" and reply.usage == reply.attempts[-1].usage is not None
    assert all(a.usage is None for a in reply.attempts[:-1])


async def test_context_length_is_not_retried_on_the_same_provider(server: FakeLLMServer) -> None:
    server.script("openai", Fault.context_length_exceeded())
    async with va.open_runtime(config(server)) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert [a.outcome for a in reply.attempts] == [OUT.PERMANENT, OUT.SUCCESS]
    assert reply.provider == "anthropic"


async def test_content_policy_refusal_carries_the_reason_and_stays(server: FakeLLMServer) -> None:
    server.script("openai", Fault.content_policy())
    async with va.open_runtime(config(server)) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.fallback_used
    assert reply.refusal and "policy" in reply.refusal.lower()
    assert [r.api for r in server.requests] == ["openai"]


async def test_flapping_provider_opens_probes_once_and_closes(server: FakeLLMServer) -> None:
    server.set_default(Fault.status(503), api="openai")
    cfg = config(server, retry_schedule=[], circuit_breaker_threshold=2, circuit_breaker_timeout=0.3)
    async with va.open_runtime(cfg) as runtime:
        for _ in range(4):
            await runtime.ask("s", "jane", "hi")
        openai_calls = [r for r in server.requests if r.api == "openai"]
        assert len(openai_calls) == 2  # then the circuit is open: skipped
        assert runtime.statistics().breakers["openai"].state is va.CircuitState.OPEN
        server.set_default(Fault.ok(), api="openai")
        await anyio.sleep(0.35)
        reply = await runtime.ask("s", "jane", "probe")
        assert reply.provider == "openai"
        await anyio.sleep(0.01)
        assert runtime.statistics().breakers["openai"].state is va.CircuitState.CLOSED


async def test_missing_key_is_skipped_at_once_with_the_reason(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    async with va.open_runtime(config(server)) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert reply.attempts[0].outcome is OUT.UNAVAILABLE
    assert "OPENAI_API_KEY" in (reply.attempts[0].error or "")
    assert {r.api for r in server.requests} == {"anthropic"}


async def test_wrong_key_is_permanent_and_the_key_never_shows(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-KEY-that-must-not-leak-42"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    server_keys = {"openai": KEY}
    async with open_fake_llm_server(api_keys=server_keys) as strict:
        cfg = config(strict)
        async with va.open_runtime(cfg) as runtime:
            reply = await runtime.ask("s", "jane", "hi")
            shown = repr(runtime.statistics()) + repr(reply) + str(reply.attempts)
    assert reply.attempts[0].outcome is OUT.PERMANENT
    assert wrong not in shown
    assert "OPENAI_API_KEY" in (reply.attempts[0].error or "")


async def test_three_providers_first_down_answers_well_under_a_second_and_a_half(
    server: FakeLLMServer,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    cfg = config(
        server,
        providers=[
            {"name": "down", "type": "openai", "base_url": dead},
            {"name": "openai", "type": "openai", "base_url": server.openai_base_url},
            {"name": "anthropic", "type": "anthropic", "base_url": server.anthropic_base_url},
        ],
    )
    async with va.open_runtime(cfg) as runtime:
        start = anyio.current_time()
        reply = await runtime.ask("s", "jane", "hi")
        elapsed = anyio.current_time() - start
    assert reply.provider == "openai"
    assert elapsed < 1.5


async def collect(runtime: va.Runtime) -> tuple[list[str], va.Reply | None]:
    async with runtime.stream("s", "jane", "hello") as chunks:
        received = [c async for c in chunks]
    return received, chunks.reply


async def test_stream_answer_with_usage(server: FakeLLMServer) -> None:
    async with va.open_runtime(config(server)) as runtime:
        received, reply = await collect(runtime)
    assert len(received) > 1 and "".join(received) == "The answer from the fake model."
    assert reply is not None and reply.usage is not None and reply.model == "gpt-test"
    assert server.requests[0].body["stream_options"] == {"include_usage": True}  # type: ignore[index]


async def test_slow_first_token_fails_over(server: FakeLLMServer) -> None:
    server.script("openai", Fault.slow_first_token(1.0))
    async with va.open_runtime(config(server, first_token_timeout=0.3, retry_schedule=[])) as runtime:
        _, reply = await collect(runtime)
    assert reply is not None and reply.provider == "anthropic"
    assert reply.attempts[0].outcome is OUT.TIMEOUT


BROKEN_STREAMS = pytest.mark.parametrize(
    "fault", [Fault.cut(after_chunks=1), Fault.stall(after_chunks=1), Fault.malformed(after_chunks=1)],
    ids=["cut", "stall", "malformed"],
)


@BROKEN_STREAMS
async def test_broken_stream_after_the_first_chunk_is_continued_by_the_next_provider(
    server: FakeLLMServer, fault: Fault
) -> None:
    server.script("openai", fault)
    async with va.open_runtime(config(server, stream_idle_timeout=0.3)) as runtime:
        received, reply = await collect(runtime)
    assert "".join(received) == "The answer from the fake model."
    assert reply is not None and reply.text == "".join(received)
    assert [(s.provider, s.model) for s in reply.segments] == [("openai", "gpt-test"), ("anthropic", "claude-test")]
    assert sum(s.characters for s in reply.segments) == len(reply.text)
    first, second = server.requests
    assert (first.api, second.api) == ("openai", "anthropic")
    # The continuation carried the cut answer as the final assistant message.
    assert second.body is not None
    prefill = second.body["messages"][-1]
    assert prefill["role"] == "assistant" and "The answer from the fake model.".startswith(prefill["content"])


@BROKEN_STREAMS
async def test_broken_stream_with_no_provider_to_continue_it_is_never_a_complete_answer(
    server: FakeLLMServer, fault: Fault
) -> None:
    server.script("openai", fault)
    async with va.open_runtime(config(server, prefill=False, stream_idle_timeout=0.3)) as runtime:
        received: list[str] = []
        with pytest.raises(va.IncompleteAnswerError) as caught:
            async with runtime.stream("s", "jane", "hello") as chunks:
                async for chunk in chunks:
                    received.append(chunk)
        assert received and "".join(received) != "The answer from the fake model."
        assert caught.value.received == "".join(received)
        assert [r.api for r in server.requests] == ["openai"]


async def test_stream_without_terminator_finishes_promptly(server: FakeLLMServer) -> None:
    server.script("openai", Fault.no_terminator())
    async with va.open_runtime(config(server, stream_idle_timeout=3)) as runtime:
        start = anyio.current_time()
        received, reply = await collect(runtime)
        assert anyio.current_time() - start < 1.0
    assert "".join(received) == "The answer from the fake model."
    assert reply is not None and reply.provider == "openai"


def anthropic_only(server: FakeLLMServer, **overrides: Any) -> va.Config:
    data: dict[str, Any] = {
        "providers": [
            {"name": "anthropic", "type": "anthropic", "base_url": server.anthropic_base_url, "model": "claude-test"},
        ],
        "retry_schedule": [0.05],
        "provider_timeout": 2,
        "response_deadline": 5,
        "memory": {"backend": "memory"},
    }
    data.update(overrides)
    return va.Config.from_dict(data)


async def test_anthropic_continues_its_own_cut_answer_without_trailing_whitespace_in_the_prefill(
    server: FakeLLMServer,
) -> None:
    # "The answer " would be refused by the Messages API (trailing whitespace): the prefill
    # is sent trimmed and the continuation's leading space dropped, so nothing doubles.
    server.script("anthropic", Fault.cut(after_chunks=1))
    async with va.open_runtime(anthropic_only(server)) as runtime:
        received, reply = await collect(runtime)
    assert "".join(received) == "The answer from the fake model."
    assert reply is not None and [s.provider for s in reply.segments] == ["anthropic", "anthropic"]
    second = server.requests[1].body
    assert second is not None
    assert second["messages"][-1]["role"] == "assistant"
    assert second["messages"][-1]["content"] == second["messages"][-1]["content"].rstrip()


async def test_a_prefill_rejection_through_the_sdk_moves_on_and_is_never_the_final_error(
    server: FakeLLMServer,
) -> None:
    # anthropic is cut; openai refuses to continue (400); anthropic continues itself.
    server.script("anthropic", Fault.cut(after_chunks=2))
    server.script("openai", Fault.reject_prefill())
    data = config(server).to_json()
    conf = va.Config.from_dict({**data, "providers": [data["providers"][1], data["providers"][0]]})
    async with va.open_runtime(conf) as runtime:
        received, reply = await collect(runtime)
    assert reply is not None and "".join(received) == reply.text == "The answer from the fake model."
    assert [a.outcome for a in reply.attempts] == [OUT.TRANSIENT, OUT.PREFILL_REJECTED, OUT.SUCCESS]
    assert "prefill" in (reply.attempts[1].error or "")
    assert [s.provider for s in reply.segments] == ["anthropic", "anthropic"]


async def test_an_event_reader_gets_a_restart_when_no_provider_continues_through_the_sdks(
    server: FakeLLMServer,
) -> None:
    server.script("openai", Fault.cut(after_chunks=2))
    async with va.open_runtime(config(server, prefill=False)) as runtime, runtime.stream("s", "jane", "hello") as chunks:
        events = [event async for event in chunks.events()]
    restarts = [i for i, e in enumerate(events) if isinstance(e, va.Restart)]
    assert len(restarts) == 1
    after = "".join(e for e in events[restarts[0] + 1 :] if isinstance(e, str))
    assert chunks.reply is not None and after == chunks.reply.text == "The answer from the fake model."
