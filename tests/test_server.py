"""``valis serve`` over real sockets: a Hypercorn on 127.0.0.1:0, the official SDKs as clients.

Real clock: bytes cross the kernel (a virtual clock would jump while they do).
Nothing is ordered with sleeps: providers that wait on events, and the runtime's
own records (call start/end, accepted order), say what happened.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import openai
import pytest

import valis_actors as va
from valis_actors.server import ServerSettings
from valis_actors.testing import EventRecorder

from .server_support import chat_body, make_config, serve

pytestmark = [
    pytest.mark.anyio,
    # The SDKs leave async generators unfinished under trio (see providers/_http.py).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- test providers ---------------------------------------------------------------------


@va.register_provider("test_gate")
class GateProvider(va.BaseProvider):
    """Streams ``first``, then waits for ``release`` before the rest; counts calls."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.calls = 0

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        return va.ProviderResponse("Hello world", "gate-model", va.Usage(3, 2))

    def stream_response(self, request: va.ProviderRequest) -> AsyncIterator[str | va.ProviderResponse]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[str | va.ProviderResponse]:
        self.calls += 1
        self.entered.set()
        yield "Hello"
        await self.release.wait()
        yield " world"
        yield va.ProviderResponse("Hello world", "gate-model", va.Usage(3, 2))


@va.register_provider("test_barrier")
class BarrierProvider(va.BaseProvider):
    """Answers only once ``parties`` calls are in flight together: proof of parallelism."""

    parties = 4

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.waiting = 0
        self.all_in = anyio.Event()

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        self.waiting += 1
        if self.waiting >= self.parties:
            self.all_in.set()
        with anyio.fail_after(5):
            await self.all_in.wait()
        return va.ProviderResponse(f"parallel: {request.message}", "barrier")


GATE = {"name": "gate", "type": "test_gate"}


# --- the OpenAI surface -----------------------------------------------------------------


async def test_models_lists_every_persona() -> None:
    async with serve() as srv:
        models = await srv.openai().models.list()
        one = await srv.openai().models.retrieve("jane")
        with pytest.raises(openai.NotFoundError):
            await srv.openai().models.retrieve("nobody")
    ids = [m.id for m in models.data]
    assert ids == sorted(ids) and {"jane", "coach_emma", "guide_sam", "advisor_alex"} <= set(ids)
    assert one.id == "jane"


async def test_chat_completion_names_persona_and_the_real_provider() -> None:
    async with serve() as srv:
        raw = await srv.openai().chat.completions.with_raw_response.create(
            model="jane", messages=[{"role": "user", "content": "hello there"}]
        )
    completion = raw.parse()
    assert completion.model == "jane"
    assert completion.choices[0].message.content == "scripted: hello there"
    assert completion.system_fingerprint == "valis:scripted/scripted-model"
    assert completion.model_extra is not None and completion.model_extra["valis"]["provider"] == "scripted"
    assert raw.headers["x-valis-provider"] == "scripted" and raw.headers["x-valis-model"] == "scripted-model"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


async def test_sync_sdk_in_a_thread() -> None:
    async with serve() as srv:

        def call() -> str | None:
            with openai.OpenAI(base_url=srv.base_url, api_key="unused") as client:
                result = client.chat.completions.create(model="jane", messages=[{"role": "user", "content": "hi"}])
            return result.choices[0].message.content

        assert await anyio.to_thread.run_sync(call) == "scripted: hi"


async def test_stream_with_usage_ends_with_a_usage_chunk_and_done() -> None:
    async with serve(make_config({"name": "scripted", "type": "scripted", "chunks": 3})) as srv:
        stream = await srv.openai().chat.completions.create(
            model="jane", messages=[{"role": "user", "content": "tell me"}], stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "scripted: tell me"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(final) == 1 and final[0].system_fingerprint == "valis:scripted/scripted-model"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


async def test_first_chunk_arrives_before_the_answer_is_finished() -> None:
    async with serve(make_config(GATE)) as srv:
        gate = srv.provider("gate")
        async with srv.http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            first = await anext(line async for line in lines if line.startswith("data:"))
            assert json.loads(first[5:])["choices"][0]["delta"]["content"] == "Hello"
            assert not gate.release.is_set()  # the rest is still being written by the provider
            gate.release.set()
            rest = [line async for line in lines if line.startswith("data:")]
    assert rest[-1] == "data: [DONE]"


async def test_client_disconnect_cancels_the_provider_attempt() -> None:
    config = make_config({"name": "scripted", "type": "scripted", "default": {"kind": "stall", "after_chunks": 1}})
    dropped = anyio.Event()

    def hook(event: va.RuntimeEvent) -> None:
        if event.kind == va.EventKind.MESSAGE_DROPPED:
            dropped.set()

    async with serve(config, hook=hook) as srv:
        async with srv.http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    break  # leave with the answer half-sent: the connection closes
        with anyio.fail_after(5):
            await dropped.wait()  # the session actor gave the message up, its attempt cancelled
        (call,) = srv.scripted().calls
    assert call.outcome == "cancelled"


async def test_stream_cut_after_first_chunk_ends_with_an_error_event_not_done() -> None:
    config = make_config({"name": "scripted", "type": "scripted", "default": {"kind": "cut", "after_chunks": 1}})
    async with serve(config) as srv:
        async with srv.http.stream("POST", "/v1/chat/completions", json=chat_body(stream=True)) as response:
            assert response.status_code == 200
            data = [line[6:] async for line in response.aiter_lines() if line.startswith("data: ")]
        stream = await srv.openai().chat.completions.create(
            model="jane", messages=[{"role": "user", "content": "again"}], stream=True
        )
        with pytest.raises(openai.APIError, match="cut"):
            async for _ in stream:
                pass
    assert "[DONE]" not in data
    assert json.loads(data[-1])["error"]["code"] == "incomplete_answer"


# --- sessions, history, system messages ---------------------------------------------------


async def test_session_header_with_only_the_new_message_uses_stored_memory() -> None:
    async with serve() as srv:
        client = srv.openai(default_headers={"X-Session-Id": "mem-1"})
        await client.chat.completions.create(model="jane", messages=[{"role": "user", "content": "first"}])
        await client.chat.completions.create(model="jane", messages=[{"role": "user", "content": "second"}])
        calls = srv.scripted().calls
    assert [c.session_id for c in calls] == ["mem-1", "mem-1"]
    assert [(t.user, t.assistant) for t in calls[1].history] == [("first", "scripted: first")]


async def test_client_history_is_what_the_provider_sees() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hi, I am Jane."},
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "three"},
    ]
    async with serve() as srv:
        client = srv.openai(default_headers={"X-Session-Id": "hist-1"})
        await client.chat.completions.create(model="jane", messages=[{"role": "user", "content": "stored"}])
        await client.chat.completions.create(model="jane", messages=messages)  # type: ignore[arg-type]
        call = srv.scripted().calls[-1]
    assert call.message == "three"
    assert [(t.user, t.assistant) for t in call.history] == [
        ("(the conversation starts)", "Hi, I am Jane."), ("one\n\ntwo", "ok")
    ]  # the stored turn ("stored") is not injected twice


@pytest.mark.parametrize("mode", ["append", "replace", "ignore"])
async def test_client_system_message_modes(mode: str) -> None:
    body = {"model": "jane", "messages": [{"role": "system", "content": "CLIENT RULES"},
                                          {"role": "user", "content": "hi"}]}
    async with serve(settings=ServerSettings(system_message=mode)) as srv:
        assert (await srv.http.post("/v1/chat/completions", json=body)).status_code == 200
        prompt = srv.scripted().calls[0].system_prompt
    persona_prompt = va.render_system_prompt(srv.service.runtime.personas.get("jane"))
    expected = {"append": persona_prompt + "\n\nCLIENT RULES", "replace": "CLIENT RULES", "ignore": persona_prompt}
    assert prompt == expected[mode]


async def test_stateless_conversation_without_ids_keeps_one_session() -> None:
    async with serve() as srv:
        first = await srv.http.post("/v1/chat/completions", json=chat_body("how are you?"))
        answer = first.json()["choices"][0]["message"]["content"]
        second = await srv.http.post("/v1/chat/completions", json={"model": "jane", "messages": [
            {"role": "user", "content": "how are you?"}, {"role": "assistant", "content": answer},
            {"role": "user", "content": "and then?"}]})
    assert first.headers["x-valis-session-id"] == second.headers["x-valis-session-id"]
    assert first.headers["x-valis-session-id"].startswith("h:")


# --- ordering ---------------------------------------------------------------------------------


async def test_one_session_is_answered_in_order_never_two_at_once() -> None:
    config = make_config({"name": "scripted", "type": "scripted", "default": {"kind": "answer", "delay": 0.005}})
    answers: dict[str, str] = {}
    async with serve(config) as srv:
        client = srv.openai(default_headers={"X-Session-Id": "ordered"})

        async def one(i: int) -> None:
            result = await client.chat.completions.create(
                model="jane", messages=[{"role": "user", "content": f"m{i}"}]
            )
            answers[f"m{i}"] = result.choices[0].message.content or ""

        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(one, i)
        calls = srv.scripted().calls
        accepted = srv.accepted("ordered")
    assert answers == {f"m{i}": f"scripted: m{i}" for i in range(12)}
    assert [c.message for c in calls] == accepted  # answered in acceptance order
    for before, after in itertools.pairwise(calls):
        assert before.ended is not None and after.started >= before.ended  # never overlapping
    assert max(c.concurrency for c in calls) == 1
    recorder = EventRecorder(list(srv.events))
    recorder.check_fifo()
    recorder.check_exactly_once()


async def test_different_sessions_run_in_parallel() -> None:
    async with serve(make_config({"name": "barrier", "type": "test_barrier"})) as srv:

        async def one(i: int) -> None:
            response = await srv.http.post(
                "/v1/chat/completions", json=chat_body(f"m{i}"), headers={"X-Session-Id": f"p{i}"}
            )
            assert response.json()["choices"][0]["message"]["content"] == f"parallel: m{i}"

        async with anyio.create_task_group() as tg:
            for i in range(BarrierProvider.parties):
                tg.start_soon(one, i)


# --- retries are not new turns -------------------------------------------------------------


async def test_idempotency_key_joins_the_first_answer() -> None:
    async with serve(make_config(GATE)) as srv:
        gate = srv.provider("gate")
        results: list[httpx.Response] = []

        async def post() -> None:
            results.append(await srv.http.post(
                "/v1/chat/completions", json=chat_body("pay"), headers={"Idempotency-Key": "k1"}
            ))

        async with anyio.create_task_group() as tg:
            tg.start_soon(post)
            await gate.entered.wait()
            tg.start_soon(post)
            gate.release.set()
        again = await srv.http.post("/v1/chat/completions", json=chat_body("pay"), headers={"Idempotency-Key": "k1"})
        reused = await srv.http.post(
            "/v1/chat/completions", json=chat_body("other"), headers={"Idempotency-Key": "k1"}
        )
        assert gate.calls == 1
    bodies = {r.json()["choices"][0]["message"]["content"] for r in [*results, again]}
    assert bodies == {"Hello world"}
    assert sorted(r.headers.get("x-valis-deduplicated", "false") for r in [*results, again]) == [
        "false", "true", "true"
    ]
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert reused.headers["x-should-retry"] == "false"


async def test_same_session_and_body_within_the_window_is_answered_once() -> None:
    async with serve() as srv:
        headers = {"X-Session-Id": "dup"}
        first = await srv.http.post("/v1/chat/completions", json=chat_body("once"), headers=headers)
        second = await srv.http.post("/v1/chat/completions", json=chat_body("once"), headers=headers)
        stats = srv.service.runtime.statistics()
    assert first.json()["choices"] == second.json()["choices"]
    assert second.headers["x-valis-deduplicated"] == "true"
    assert len(srv.scripted().calls) == 1 and stats.replies_delivered == 1


async def test_sdk_retry_after_a_timeout_is_answered_once() -> None:
    config = make_config({"name": "scripted", "type": "scripted", "script": [{"kind": "hang"}]})
    async with serve(config) as srv:
        client = srv.openai(max_retries=1, timeout=0.5)
        result = await client.chat.completions.create(model="jane", messages=[{"role": "user", "content": "hi"}])
        with anyio.fail_after(5):
            await srv.service.flights.idle.wait()
        calls = srv.scripted().calls
        delivered = srv.service.runtime.statistics().replies_delivered
    assert result.choices[0].message.content == "scripted: hi"
    assert [c.outcome for c in calls] == ["cancelled", "answer"]  # the timed-out attempt was cancelled
    assert delivered == 1
    EventRecorder(list(srv.events)).check_exactly_once()  # the first dropped, the retry answered


async def test_a_cut_answer_is_continued_and_streams_to_the_sdk_client_as_one_answer() -> None:
    story = "Once upon a time there was a server that streamed the whole answer."
    cut = {"kind": "cut", "text": story, "after_chunks": 2}
    config = make_config(
        {"name": "a", "type": "scripted", "chunks": 5, "script": [cut]},
        {"name": "b", "type": "scripted", "default": {"kind": "answer", "text": story}, "prefill": True},
    )
    async with serve(config) as srv:
        stream = await srv.openai().chat.completions.create(
            model="jane", messages=[{"role": "user", "content": "tell me"}], stream=True,
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == story
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
