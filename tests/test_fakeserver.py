"""The fake LLM server, driven through the real ``anthropic`` and ``openai`` SDKs on 127.0.0.1.

These tests use real sockets and therefore real time; every delay is at most 0.3 s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anthropic
import anyio
import httpx2
import openai
import pytest

from tests.support import eventually
from valis_actors.testing.fakeserver import (
    FakeLLMServer,
    Fault,
    FaultKind,
    RecordedRequest,
    open_fake_llm_server,
)

# Under trio, an async generator dropped before exhaustion makes trio's finalizer emit a
# ResourceWarning. The SDKs do that on their own: openai's AsyncStream breaks out of its SSE
# loop at ``data: [DONE]`` without closing the generators below it, and a stream that raises
# (cut, timeout, bad JSON) abandons them in both SDKs. Only those generators are ignored.
# ``raises`` below drops the caught exception's tracebacks so that those generators are
# finalized inside the test that abandoned them, while this filter applies.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Async generator '(openai|anthropic|httpx2|httpcore2)\.:ResourceWarning"
)

ANTHROPIC_KEY = "sk-ant-test"
OPENAI_KEY = "sk-test"
MESSAGES = [{"role": "user", "content": "Say hello to me please"}]  # 5 words
E = TypeVar("E", bound=BaseException)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- helpers ---------------------------------------------------------------------------------


@asynccontextmanager
async def sdk_clients(
    server: FakeLLMServer,
    *,
    timeout: float = 5.0,
    anthropic_key: str = ANTHROPIC_KEY,
    openai_key: str = OPENAI_KEY,
) -> AsyncIterator[tuple[anthropic.AsyncAnthropic, openai.AsyncOpenAI]]:
    """Both SDK clients on ``server``, without retries, closed on exit."""
    anthropic_client = anthropic.AsyncAnthropic(
        api_key=anthropic_key, base_url=server.anthropic_base_url, max_retries=0, timeout=timeout
    )
    openai_client = openai.AsyncOpenAI(
        api_key=openai_key, base_url=server.openai_base_url, max_retries=0, timeout=timeout
    )
    try:
        yield anthropic_client, openai_client
    finally:
        await anthropic_client.close()
        await openai_client.close()


async def ask_anthropic(client: anthropic.AsyncAnthropic, **kwargs: Any) -> anthropic.types.Message:
    return await client.messages.create(
        model="claude-fake", max_tokens=kwargs.pop("max_tokens", 64), messages=MESSAGES, **kwargs
    )


async def stream_anthropic(
    client: anthropic.AsyncAnthropic, received: list[str] | None = None, **kwargs: Any
) -> list[Any]:
    """Stream a message; return its events, appending each text delta to ``received`` as it arrives."""
    stream = await client.messages.create(
        model="claude-fake", max_tokens=kwargs.pop("max_tokens", 64), messages=MESSAGES, stream=True, **kwargs
    )
    events = []
    async for event in stream:
        events.append(event)
        if event.type == "content_block_delta" and received is not None:
            received.append(event.delta.text)
    return events


async def ask_openai(client: openai.AsyncOpenAI, **kwargs: Any) -> Any:
    return await client.chat.completions.create(model="gpt-fake", messages=MESSAGES, **kwargs)  # type: ignore[arg-type]


async def stream_openai(
    client: openai.AsyncOpenAI, received: list[str] | None = None, **kwargs: Any
) -> list[Any]:
    """Stream a completion; return its chunks, appending each content delta to ``received``."""
    stream = await client.chat.completions.create(
        model="gpt-fake",
        messages=MESSAGES,
        stream=True,
        **kwargs,  # type: ignore[arg-type]
    )
    chunks = []
    async for chunk in stream:
        chunks.append(chunk)
        if chunk.choices and chunk.choices[0].delta.content and received is not None:
            received.append(chunk.choices[0].delta.content)
    return chunks


async def raises(expected: type[E], call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> E:
    """Await ``call`` and return the ``expected`` exception it raised, its tracebacks dropped.

    Dropping the tracebacks frees the SDK frames (and their abandoned generators) now,
    rather than whenever the garbage collector breaks the exception's reference cycle.
    """
    try:
        await call(*args, **kwargs)
    except expected as exc:
        link: BaseException | None = exc
        while link is not None:
            link.__traceback__ = None
            link = link.__cause__ or link.__context__
        return exc
    pytest.fail(f"{call.__name__} did not raise {expected.__name__}")


async def raises_in_stream(
    wrapper: type[Exception], cause: type[Exception], call: Callable[..., Awaitable[Any]], *args: Any
) -> Exception:
    """What the anthropic SDK raises for an httpx2 error while iterating a stream: older
    releases let the raw error (``cause``) out, newer ones (2.17) raise their own
    ``wrapper`` from it."""
    exc = await raises(Exception, call, *args)
    if not isinstance(exc, cause):
        assert isinstance(exc, wrapper), exc
        assert isinstance(exc.__cause__, cause), exc.__cause__
    return exc


# --- answers ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_fakeserver_anthropic_json_answer_echoes_model_and_counts_words() -> None:
    async with open_fake_llm_server(text="Hi there, friend.") as server, sdk_clients(server) as (client, _):
        message = await ask_anthropic(client, system="Be kind")

        assert message.content[0].text == "Hi there, friend."
        assert message.model == "claude-fake"
        assert message.stop_reason == "end_turn"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
        (record,) = server.requests
        assert record.api == "anthropic"
        assert (record.method, record.path, record.stream) == ("POST", "/v1/messages", False)
        # anthropic 2.x sends the key as "Authorization: Bearer"; older SDKs sent x-api-key.
        auth = {
            name: value for name, value in record.headers.items() if name in ("x-api-key", "authorization")
        }
        assert auth and set(auth.values()) == {"<redacted>"}
        assert ANTHROPIC_KEY not in json.dumps(dict(record.headers))
        assert record.body is not None and record.body["messages"] == MESSAGES
        assert record.fault == Fault.ok()
        assert record.authorized and record.completed and not record.client_disconnected


@pytest.mark.anyio
async def test_fakeserver_anthropic_stream_sends_every_event_in_order() -> None:
    async with (
        open_fake_llm_server(text="Hi there, my friend.", chunks=3) as server,
        sdk_clients(server) as (
            client,
            _,
        ),
    ):
        received: list[str] = []
        events = await stream_anthropic(client, received)

        assert [event.type for event in events] == [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        assert "".join(received) == "Hi there, my friend."
        assert len(received) == 3
        assert events[0].message.model == "claude-fake"
        assert events[0].message.usage.input_tokens == 5
        assert events[-2].usage.output_tokens == 4
        assert events[-2].delta.stop_reason == "end_turn"
        async with client.messages.stream(model="claude-fake", max_tokens=64, messages=MESSAGES) as helper:
            assert await helper.get_final_text() == "Hi there, my friend."
        assert [record.stream for record in server.requests] == [True, True]


@pytest.mark.anyio
async def test_fakeserver_openai_json_answer_has_usage() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (_, client):
        completion = await ask_openai(client)

        assert completion.object == "chat.completion"
        assert completion.model == "gpt-fake"
        assert completion.choices[0].message.content == "Hello from fake-model."
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 3)
        assert completion.usage.total_tokens == 8
        (record,) = server.requests
        assert (record.api, record.path, record.headers["authorization"]) == (
            "openai",
            "/v1/chat/completions",
            "<redacted>",
        )


@pytest.mark.anyio
async def test_fakeserver_openai_stream_sends_usage_only_when_requested() -> None:
    async with (
        open_fake_llm_server(text="One two three four", chunks=2) as server,
        sdk_clients(server) as (_, client),
    ):
        received: list[str] = []
        chunks = await stream_openai(client, received, stream_options={"include_usage": True})

        assert chunks[0].choices[0].delta.role == "assistant"
        assert received == ["One two ", "three four"]
        assert chunks[-2].choices[0].finish_reason == "stop"
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 4)
        assert all(chunk.usage is None for chunk in chunks[:-1])

        plain = await stream_openai(client)
        assert plain[-1].choices[0].finish_reason == "stop"
        assert all(chunk.usage is None for chunk in plain)
        assert all(record.stream for record in server.requests)


@pytest.mark.anyio
async def test_fakeserver_max_tokens_truncates_the_answer() -> None:
    async with open_fake_llm_server(text="a b c d e f") as server, sdk_clients(server) as (aclient, oclient):
        message = await ask_anthropic(aclient, max_tokens=2)
        assert (message.content[0].text, message.stop_reason, message.usage.output_tokens) == (
            "a b",
            "max_tokens",
            2,
        )
        events = await stream_anthropic(aclient, max_tokens=2)
        assert events[-2].delta.stop_reason == "max_tokens"

        completion = await ask_openai(oclient, max_completion_tokens=3)
        assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == (
            "a b c",
            "length",
        )


@pytest.mark.anyio
async def test_fakeserver_keeps_connections_alive_across_requests() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        for _ in range(2):
            await ask_anthropic(aclient)
            await stream_anthropic(aclient)
            await ask_openai(oclient)
            await stream_openai(oclient, stream_options={"include_usage": True})

        assert len(server.requests) == 8
        assert server.statistics().connections_total == 2


# --- HTTP error statuses --------------------------------------------------------------------------

# fault, (anthropic class, status, error.type, message part), (openai class, status, type, code)
STATUS_CASES = [
    pytest.param(
        Fault.rate_limited(0.2),
        (anthropic.RateLimitError, 429, "rate_limit_error", "rate limit"),
        (openai.RateLimitError, 429, "requests", "rate_limit_exceeded"),
        id="rate_limited",
    ),
    pytest.param(
        Fault.insufficient_quota(),
        (anthropic.BadRequestError, 400, "invalid_request_error", "credit balance is too low"),
        (openai.RateLimitError, 429, "insufficient_quota", "insufficient_quota"),
        id="insufficient_quota",
    ),
    pytest.param(
        Fault.overloaded(),
        (anthropic.OverloadedError, 529, "overloaded_error", "Overloaded"),
        (openai.InternalServerError, 503, "server_error", None),
        id="overloaded",
    ),
    pytest.param(
        Fault.server_error(500),
        (anthropic.InternalServerError, 500, "api_error", "Internal server error"),
        (openai.InternalServerError, 500, "server_error", None),
        id="server_error",
    ),
    pytest.param(
        Fault.status(503),
        (anthropic.ServiceUnavailableError, 503, "api_error", "Internal server error"),
        (openai.InternalServerError, 503, "server_error", None),
        id="status_503",
    ),
    pytest.param(
        Fault.context_length_exceeded(),
        (
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
            "prompt is too long: 200005 tokens > 200000",
        ),
        (openai.BadRequestError, 400, "invalid_request_error", "context_length_exceeded"),
        id="context_length_exceeded",
    ),
    pytest.param(
        Fault.content_policy(),
        (anthropic.BadRequestError, 400, "invalid_request_error", "Usage Policy"),
        (openai.BadRequestError, 400, "invalid_request_error", "content_policy_violation"),
        id="content_policy",
    ),
    pytest.param(
        Fault.unauthorized(),
        (
            anthropic.AuthenticationError,
            401,
            "authentication_error",
            f"Incorrect API key provided: {ANTHROPIC_KEY}",
        ),
        (openai.AuthenticationError, 401, "invalid_request_error", "invalid_api_key"),
        id="unauthorized",
    ),
    pytest.param(
        Fault.status(403),
        (anthropic.PermissionDeniedError, 403, "permission_error", "permission"),
        (openai.PermissionDeniedError, 403, "invalid_request_error", None),
        id="status_403",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("fault", "anthropic_expected", "openai_expected"), STATUS_CASES)
async def test_fakeserver_status_fault_raises_the_sdk_error_class(
    fault: Fault,
    anthropic_expected: tuple[type[anthropic.APIStatusError], int, str, str],
    openai_expected: tuple[type[openai.APIStatusError], int, str, str | None],
    stream: bool,
) -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        server.script("anthropic", fault)
        server.script("openai", fault)

        a_class, a_status, a_type, a_message = anthropic_expected
        a_exc = await raises(anthropic.APIStatusError, stream_anthropic if stream else ask_anthropic, aclient)
        assert type(a_exc) is a_class
        assert (a_exc.status_code, a_exc.type) == (a_status, a_type)
        assert a_message in str(a_exc.api_message)
        assert a_exc.request_id is not None and a_exc.request_id.startswith("req_fake")

        o_class, o_status, o_type, o_code = openai_expected
        o_exc = await raises(openai.APIStatusError, stream_openai if stream else ask_openai, oclient)
        assert type(o_exc) is o_class
        assert (o_exc.status_code, o_exc.type, o_exc.code) == (o_status, o_type, o_code)
        assert [record.fault for record in server.requests] == [fault, fault]


@pytest.mark.anyio
async def test_fakeserver_rate_limited_exposes_retry_after_headers() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        server.script("anthropic", Fault.rate_limited(retry_after=0.2))
        server.script("openai", Fault.rate_limited(retry_after=2, retry_after_ms=1500))

        a_exc = await raises(anthropic.RateLimitError, ask_anthropic, aclient)
        assert a_exc.response.headers["retry-after"] == "0.2"
        assert "retry-after-ms" not in a_exc.response.headers
        o_exc = await raises(openai.RateLimitError, stream_openai, oclient)
        assert o_exc.response.headers["retry-after"] == "2"
        assert o_exc.response.headers["retry-after-ms"] == "1500"


@pytest.mark.anyio
async def test_fakeserver_status_overrides_type_code_message_and_headers() -> None:
    fault = Fault.status(
        418,
        error_type="teapot_error",
        code="short_and_stout",
        message="I am a teapot",
        headers=(("x-a", "b"),),
    )
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        server.script("anthropic", fault)
        server.script("openai", fault)

        a_exc = await raises(anthropic.APIStatusError, ask_anthropic, aclient)
        assert (a_exc.status_code, a_exc.type, a_exc.api_message) == (418, "teapot_error", "I am a teapot")
        assert a_exc.response.headers["x-a"] == "b"
        o_exc = await raises(openai.APIStatusError, ask_openai, oclient)
        assert (o_exc.status_code, o_exc.type, o_exc.code, o_exc.message) == (
            418,
            "teapot_error",
            "short_and_stout",
            "Error code: 418 - I am a teapot",
        )


@pytest.mark.anyio
async def test_fakeserver_wrong_key_gets_401_echoing_the_key_and_pops_no_step() -> None:
    keys = {"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY}
    async with open_fake_llm_server(api_keys=keys) as server:
        server.script("anthropic", Fault.ok(text="scripted"))
        server.script("openai", Fault.ok(text="scripted"))
        async with sdk_clients(server, anthropic_key="sk-ant-WRONG-1", openai_key="sk-WRONG-2") as (
            aclient,
            oclient,
        ):
            a_exc = await raises(anthropic.AuthenticationError, ask_anthropic, aclient)
            o_exc = await raises(openai.AuthenticationError, stream_openai, oclient)

        assert "Incorrect API key provided: sk-ant-WRONG-1" in str(a_exc)
        assert a_exc.type == "authentication_error"
        assert "Incorrect API key provided: sk-WRONG-2" in str(o_exc)
        assert o_exc.code == "invalid_api_key"
        assert [(r.authorized, r.fault) for r in server.requests] == [(False, Fault.unauthorized())] * 2
        assert all("WRONG" not in json.dumps(dict(r.headers)) for r in server.requests)
        assert server.pending("anthropic") == server.pending("openai") == (Fault.ok(text="scripted"),)

        async with sdk_clients(server) as (aclient, oclient):
            assert (await ask_anthropic(aclient)).content[0].text == "scripted"
            assert (await ask_openai(oclient)).choices[0].message.content == "scripted"
        assert server.requests[-1].authorized


# --- transport faults --------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_fakeserver_reset_raises_connection_error(stream: bool) -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        server.script("anthropic", Fault.reset())
        server.script("openai", Fault.reset())

        a_exc = await raises(
            anthropic.APIConnectionError, stream_anthropic if stream else ask_anthropic, aclient
        )
        o_exc = await raises(openai.APIConnectionError, stream_openai if stream else ask_openai, oclient)

        for exc in (a_exc, o_exc):
            assert not isinstance(exc, (anthropic.APITimeoutError, openai.APITimeoutError))
            assert isinstance(exc.__cause__, httpx2.ReadError)  # ECONNRESET, not a clean EOF
        # The pool drops the reset connection and opens a fresh one.
        assert (await ask_openai(oclient)).choices[0].message.content == "Hello from fake-model."


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_fakeserver_no_response_times_out_and_records_the_disconnect(stream: bool) -> None:
    async with open_fake_llm_server() as server, sdk_clients(server, timeout=0.2) as (aclient, oclient):
        server.script("anthropic", Fault.no_response())
        server.script("openai", Fault.no_response())

        await raises(anthropic.APITimeoutError, stream_anthropic if stream else ask_anthropic, aclient)
        await raises(openai.APITimeoutError, stream_openai if stream else ask_openai, oclient)

        await eventually(lambda: all(record.completed for record in server.requests))
        assert [record.client_disconnected for record in server.requests] == [True, True]
        assert server.in_flight == 0


@pytest.mark.anyio
async def test_fakeserver_slow_first_token_sends_headers_then_waits() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        # A wait long enough that a loaded machine's first request never takes as long.
        server.script("anthropic", Fault.slow_first_token(2.0))
        start = anyio.current_time()
        stream = await aclient.messages.create(model="m", max_tokens=64, messages=MESSAGES, stream=True)
        headers_at = anyio.current_time() - start
        events = [event async for event in stream]
        done_at = anyio.current_time() - start
        assert headers_at < 2.0 <= done_at
        assert events[-1].type == "message_stop"

        server.script("openai", Fault.slow_first_token(0.3))
        start = anyio.current_time()
        completion = await ask_openai(oclient)
        assert anyio.current_time() - start >= 0.3
        assert completion.choices[0].message.content == "Hello from fake-model."


@pytest.mark.anyio
async def test_fakeserver_slow_first_token_trips_the_sdk_read_timeout_mid_stream() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server, timeout=0.1) as (aclient, oclient):
        server.script("anthropic", Fault.slow_first_token(0.3))
        server.script("openai", Fault.slow_first_token(0.3))

        await raises_in_stream(anthropic.APITimeoutError, httpx2.ReadTimeout, stream_anthropic, aclient)
        await raises(openai.APITimeoutError, stream_openai, oclient)


@pytest.mark.anyio
async def test_fakeserver_ok_delay_holds_the_answer() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, _):
        server.script("anthropic", Fault.ok(text="late", delay=0.2))
        start = anyio.current_time()
        message = await ask_anthropic(aclient)
        assert anyio.current_time() - start >= 0.2
        assert message.content[0].text == "late"


# --- stream faults -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_fakeserver_cut_closes_mid_stream() -> None:
    async with (
        open_fake_llm_server(text="a b c d", chunks=4) as server,
        sdk_clients(server) as (aclient, oclient),
    ):
        server.script("anthropic", Fault.cut(after_chunks=2), Fault.cut())
        server.script("openai", Fault.cut(after_chunks=3), Fault.cut())

        a_received: list[str] = []
        await raises_in_stream(
            anthropic.APIConnectionError, httpx2.RemoteProtocolError, stream_anthropic, aclient, a_received
        )
        assert a_received == ["a ", "b "]
        o_received: list[str] = []
        o_exc = await raises(openai.APIConnectionError, stream_openai, oclient, o_received)
        assert isinstance(o_exc.__cause__, httpx2.RemoteProtocolError)
        assert o_received == ["a ", "b ", "c "]

        # Non-streaming: half the promised Content-Length, then FIN.
        await raises(anthropic.APIConnectionError, ask_anthropic, aclient)
        await raises(openai.APIConnectionError, ask_openai, oclient)


@pytest.mark.anyio
async def test_fakeserver_stall_goes_silent_after_some_chunks() -> None:
    async with (
        open_fake_llm_server(text="a b c", chunks=3) as server,
        sdk_clients(server, timeout=0.2) as (
            aclient,
            oclient,
        ),
    ):
        server.script("anthropic", Fault.stall(after_chunks=1), Fault.stall())
        server.script("openai", Fault.stall(after_chunks=2))

        a_received: list[str] = []
        await raises_in_stream(anthropic.APITimeoutError, httpx2.ReadTimeout, stream_anthropic, aclient, a_received)
        assert a_received == ["a "]
        o_received: list[str] = []
        await raises(openai.APITimeoutError, stream_openai, oclient, o_received)
        assert o_received == ["a ", "b "]
        await raises(anthropic.APITimeoutError, ask_anthropic, aclient)

        await eventually(lambda: all(record.completed for record in server.requests))
        assert all(record.client_disconnected for record in server.requests)


@pytest.mark.anyio
async def test_fakeserver_malformed_event_breaks_the_sdk_json_parsing() -> None:
    async with (
        open_fake_llm_server(text="a b c", chunks=3) as server,
        sdk_clients(server) as (aclient, oclient),
    ):
        server.script("anthropic", Fault.malformed(after_chunks=1), Fault.malformed())
        server.script("openai", Fault.malformed(after_chunks=2), Fault.malformed())

        # Neither SDK wraps the JSON error: it escapes as json.JSONDecodeError (a ValueError).
        a_received: list[str] = []
        await raises(json.JSONDecodeError, stream_anthropic, aclient, a_received)
        assert a_received == ["a "]
        o_received: list[str] = []
        await raises(json.JSONDecodeError, stream_openai, oclient, o_received)
        assert o_received == ["a ", "b "]
        await raises(json.JSONDecodeError, ask_anthropic, aclient)
        await raises(json.JSONDecodeError, ask_openai, oclient)


@pytest.mark.anyio
async def test_fakeserver_no_terminator_ends_the_body_without_the_final_event() -> None:
    async with (
        open_fake_llm_server(text="a b", chunks=2) as server,
        sdk_clients(server) as (aclient, oclient),
    ):
        server.script("anthropic", Fault.no_terminator())
        server.script("openai", Fault.no_terminator())

        events = await stream_anthropic(aclient)
        assert [event.type for event in events][-3:] == [
            "content_block_delta",
            "content_block_stop",
            "message_delta",
        ]
        received: list[str] = []
        chunks = await stream_openai(oclient, received, stream_options={"include_usage": True})
        assert received == ["a ", "b"]
        assert chunks[-1].usage is not None  # everything but data: [DONE]

        # The HTTP body itself ended cleanly, so the connections are reused.
        await ask_anthropic(aclient)
        await ask_openai(oclient)
        assert server.statistics().connections_total == 2


@pytest.mark.anyio
async def test_fakeserver_stream_error_event_raises_mid_stream() -> None:
    async with (
        open_fake_llm_server(text="a b c", chunks=3) as server,
        sdk_clients(server) as (aclient, oclient),
    ):
        server.script("anthropic", Fault.stream_error_event(after_chunks=2), Fault.stream_error_event())
        server.script("openai", Fault.stream_error_event(after_chunks=1), Fault.stream_error_event())

        a_received: list[str] = []
        a_exc = await raises(anthropic.APIStatusError, stream_anthropic, aclient, a_received)
        assert a_received == ["a ", "b "]
        # The SDK raises the base class, with the HTTP status of the stream (200).
        assert type(a_exc) is anthropic.APIStatusError
        assert (a_exc.status_code, a_exc.type, a_exc.api_message) == (200, "overloaded_error", "Overloaded")

        o_received: list[str] = []
        o_exc = await raises(openai.APIError, stream_openai, oclient, o_received)
        assert o_received == ["a "]
        # Not an APIStatusError: there is no status to report.
        assert type(o_exc) is openai.APIError
        assert (o_exc.type, o_exc.code) == ("server_error", None)

        # Non-streaming requests get the matching status error.
        await raises(anthropic.OverloadedError, ask_anthropic, aclient)
        await raises(openai.InternalServerError, ask_openai, oclient)


# --- scripts, defaults, concurrency, lifecycle -----------------------------------------------------


@pytest.mark.anyio
async def test_fakeserver_script_is_fifo_per_api_then_default() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        server.script("openai", Fault.rate_limited(0.1), Fault.server_error())
        server.script("openai", Fault.ok(text="third"))

        assert (await ask_anthropic(aclient)).content[0].text == "Hello from fake-model."
        await raises(openai.RateLimitError, ask_openai, oclient)
        await raises(openai.InternalServerError, ask_openai, oclient)
        assert server.pending("openai") == (Fault.ok(text="third"),)
        assert (await ask_openai(oclient)).choices[0].message.content == "third"
        assert (await ask_openai(oclient)).choices[0].message.content == "Hello from fake-model."
        assert server.pending("openai") == ()
        assert [record.fault and record.fault.kind for record in server.requests] == [
            FaultKind.OK,
            FaultKind.STATUS,
            FaultKind.STATUS,
            FaultKind.OK,
            FaultKind.OK,
        ]


@pytest.mark.anyio
async def test_fakeserver_set_default_keeps_one_api_down() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        server.set_default(Fault.status(503), api="openai")
        for _ in range(3):
            await raises(openai.InternalServerError, ask_openai, oclient)
        assert (await ask_anthropic(aclient)).content[0].text == "Hello from fake-model."

        server.script("openai", Fault.ok(text="scripted wins"))
        assert (await ask_openai(oclient)).choices[0].message.content == "scripted wins"
        await raises(openai.InternalServerError, ask_openai, oclient)

        server.set_default(Fault.ok())
        assert (await ask_openai(oclient)).choices[0].message.content == "Hello from fake-model."


@pytest.mark.anyio
async def test_fakeserver_counts_concurrent_requests_in_flight() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (_, oclient):
        server.set_default(Fault.ok(delay=0.3))
        async with anyio.create_task_group() as task_group:
            for _ in range(3):
                task_group.start_soon(ask_openai, oclient)
            await eventually(lambda: server.in_flight == 3)
        await eventually(lambda: server.in_flight == 0)

        assert server.max_in_flight == 3
        assert server.statistics().connections_total == 3
        server.reset_max_in_flight()
        assert server.max_in_flight == 0


@pytest.mark.anyio
async def test_fakeserver_exit_closes_open_connections() -> None:
    # The client outlives the server, so the hanging request fails because the server left.
    async with anyio.create_task_group() as task_group, open_fake_llm_server() as server:
        client = openai.AsyncOpenAI(api_key="k", base_url=server.openai_base_url, max_retries=0, timeout=5)
        server.script("openai", Fault.no_response())
        task_group.start_soon(raises, openai.APIConnectionError, ask_openai, client)
        await eventually(lambda: server.in_flight == 1)
    await client.close()
    assert server.statistics().connections_open == 0
    assert server.requests[0].completed
    assert not server.requests[0].client_disconnected  # the server left, not the client


@pytest.mark.anyio
async def test_fakeserver_exception_in_block_propagates_unwrapped() -> None:
    with pytest.raises(LookupError, match="boom"):
        async with open_fake_llm_server():
            raise LookupError("boom")


@pytest.mark.anyio
async def test_fakeserver_answers_bad_requests_in_the_api_format() -> None:
    async with open_fake_llm_server() as server:

        async def exchange(data: bytes) -> tuple[int, dict[str, Any]]:
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                await stream.send(data)
                response = b""
                with anyio.fail_after(5):
                    while True:
                        try:
                            response += await stream.receive()
                        except anyio.EndOfStream:
                            break
            head, _, body = response.partition(b"\r\n\r\n")
            return int(head.split()[1]), json.loads(body)

        status, body = await exchange(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (status, body["error"]["type"]) == (404, "invalid_request_error")
        status, body = await exchange(b"GET /v1/messages HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert (status, body["type"], body["error"]["type"]) == (405, "error", "invalid_request_error")
        payload = json.dumps({"model": "m", "messages": MESSAGES}).encode()
        status, body = await exchange(
            b"POST /v1/messages HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%b"
            % (len(payload), payload)
        )
        assert (status, body["error"]["message"]) == (400, "max_tokens: Field required")
        status, body = await exchange(b"nonsense\r\n\r\n")
        assert status == 400
        assert [(record.api, record.fault) for record in server.requests] == [
            (None, None),
            ("anthropic", None),
            ("anthropic", None),
        ]


def test_fakeserver_fault_constructors_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="delay must be >= 0"):
        Fault.ok(delay=-1)
    with pytest.raises(ValueError, match="400..599"):
        Fault.status(200)
    with pytest.raises(ValueError, match="500..599"):
        Fault.server_error(404)
    with pytest.raises(ValueError, match="after_chunks must be >= 0"):
        Fault.cut(after_chunks=-1)
    assert Fault.rate_limited(retry_after=1.0) == Fault.rate_limited()
    assert Fault.overloaded() != Fault.server_error()


@pytest.mark.anyio
async def test_fakeserver_rejects_bad_scripts() -> None:
    async with open_fake_llm_server() as server:
        with pytest.raises(ValueError, match="api must be one of"):
            server.script("gemini", Fault.ok())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Fault objects"):
            server.script("openai", "ok")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown APIs"):
        async with open_fake_llm_server(api_keys={"gemini": "k"}):
            pass


# --- as a process --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_fakeserver_subprocess_serves_until_sigterm(anyio_backend: str) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable,
        "-m",
        "valis_actors.testing.fakeserver",
        "--port",
        "0",
        "--backend",
        anyio_backend,
        "--text",
        "From a process.",
    ]
    async with await anyio.open_process(command, cwd=root, env=env, stdin=subprocess.DEVNULL) as process:
        assert process.stdout is not None and process.stderr is not None
        try:
            line = b""
            with anyio.fail_after(30):
                while not line.endswith(b"\n"):
                    line += await process.stdout.receive()
            match = re.fullmatch(rb"listening on (http://127\.0\.0\.1:(\d+))\n", line)
            assert match is not None, line
            url = match.group(1).decode()
            async with openai.AsyncOpenAI(
                api_key="k", base_url=url + "/v1", max_retries=0, timeout=5
            ) as client:
                completion = await ask_openai(client)
            assert completion.choices[0].message.content == "From a process."

            process.terminate()
            with anyio.fail_after(10):
                returncode = await process.wait()
            stderr = b""
            async for data in process.stderr:
                stderr += data
            assert returncode == 0, stderr.decode(errors="replace")
        finally:
            if process.returncode is None:
                process.kill()


def test_fakeserver_records_are_frozen() -> None:
    record = RecordedRequest(
        api="openai",
        method="POST",
        path="/v1/chat/completions",
        headers={},
        body=None,
        stream=False,
        started_at=0.0,
        fault=Fault.ok(),
        authorized=True,
    )
    with pytest.raises(AttributeError):
        record.completed = True  # type: ignore[misc]


PREFILLED = [*MESSAGES, {"role": "assistant", "content": "Hello from"}]


@pytest.mark.anyio
async def test_fakeserver_continues_an_assistant_prefill_with_the_rest_of_its_text() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        message = await aclient.messages.create(model="m", max_tokens=64, messages=PREFILLED)  # type: ignore[arg-type]
        assert message.content[0].text == " fake-model."  # type: ignore[union-attr]
        completion = await oclient.chat.completions.create(model="m", messages=PREFILLED)  # type: ignore[arg-type]
        assert completion.choices[0].message.content == " fake-model."
        # A prefill the text does not start with is answered anew, as OpenAI's own API does.
        other = [*MESSAGES, {"role": "assistant", "content": "Goodbye"}]
        completion = await oclient.chat.completions.create(model="m", messages=other)  # type: ignore[arg-type]
        assert completion.choices[0].message.content == "Hello from fake-model."


@pytest.mark.anyio
async def test_fakeserver_reject_prefill_refuses_only_requests_that_end_with_an_assistant_message() -> None:
    async with open_fake_llm_server() as server, sdk_clients(server) as (aclient, oclient):
        server.script("anthropic", Fault.reject_prefill(), Fault.reject_prefill())
        with pytest.raises(anthropic.BadRequestError) as refused:
            await aclient.messages.create(model="m", max_tokens=64, messages=PREFILLED)  # type: ignore[arg-type]
        assert refused.value.status_code == 400
        assert "does not support assistant message prefill" in str(refused.value)
        message = await aclient.messages.create(model="m", max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
        assert message.content[0].text == "Hello from fake-model."  # type: ignore[union-attr]

        server.script("openai", Fault.reject_prefill())
        with pytest.raises(openai.BadRequestError) as refused_openai:
            await oclient.chat.completions.create(model="m", messages=PREFILLED)  # type: ignore[arg-type]
        assert "must end with a user message" in str(refused_openai.value)
