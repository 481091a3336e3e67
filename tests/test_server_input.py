"""Bad input, auth, CORS and drain, against a real Hypercorn on both backends.

Each bad request gets a 4xx with an OpenAI error body naming the field, never a
traceback, and nothing reaches a provider.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import openai
import pytest

import valis_actors as va
from valis_actors.server import ServerSettings

from .server_support import chat_body, make_config, serve
from .test_server import GATE

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def messages(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"role": role, "content": content} for role, content in pairs]


BAD_BODIES: list[tuple[str, Any, int, str | None]] = [
    ("not-an-object", [1, 2], 400, "body"),
    ("model-missing", {"messages": messages(("user", "hi"))}, 400, "model"),
    ("model-not-a-string", {"model": 3, "messages": messages(("user", "hi"))}, 400, "model"),
    ("messages-not-a-list", {"model": "jane", "messages": "hi"}, 400, "messages"),
    ("messages-empty", {"model": "jane", "messages": []}, 400, "messages"),
    ("message-not-an-object", {"model": "jane", "messages": ["hi"]}, 400, "messages[0]"),
    ("unknown-role", {"model": "jane", "messages": messages(("tool", "x"))}, 400, "messages[0].role"),
    ("content-a-number", {"model": "jane", "messages": messages(("user", 5))}, 400, "messages[0].content"),
    ("image-part", {"model": "jane", "messages": messages(("user", [{"type": "image_url"}]))}, 400,
     "messages[0].content[0].type"),
    ("last-from-assistant", {"model": "jane", "messages": messages(("user", "a"), ("assistant", "b"))}, 400,
     "messages"),
    ("stream-not-bool", {**chat_body(), "stream": "yes"}, 400, "stream"),
    ("include-usage-not-bool", {**chat_body(), "stream_options": {"include_usage": 1}}, 400,
     "stream_options.include_usage"),
    ("n-two", {**chat_body(), "n": 2}, 400, "n"),
    ("user-not-a-string", {**chat_body(), "user": 7}, 400, "user"),
    ("session-not-a-string", {**chat_body(), "metadata": {"session_id": 1}}, 400, "metadata.session_id"),
    ("too-many-messages", {"model": "jane", "messages": messages(*[("user", "x")] * 6)}, 400, "messages"),
    ("message-too-long", chat_body("x" * 101), 400, "messages[0].content"),
    ("history-too-long", {"model": "jane", "messages": messages(("user", "y" * 101), ("assistant", "a"),
                                                                 ("user", "b"))}, 400, "messages[0].content"),
    ("empty-message", chat_body("   "), 400, None),
    ("unknown-persona", chat_body(model="nobody"), 404, "model"),
]


@pytest.mark.parametrize(("body", "status", "param"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
async def test_bad_input_is_a_clear_4xx(body: Any, status: int, param: str | None) -> None:
    config = make_config(max_message_chars=100)
    async with serve(config, ServerSettings(max_messages=5)) as srv:
        response = await srv.http.post("/v1/chat/completions", json=body)
        assert srv.scripted().calls == []
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["param"] == param
    assert "Traceback" not in response.text
    assert response.headers["x-should-retry"] == "false"


async def test_unknown_persona_lists_the_known_ids_through_the_sdk() -> None:
    async with serve() as srv:
        with pytest.raises(openai.NotFoundError, match="known: advisor_alex, coach_emma, guide_sam, jane"):
            await srv.openai().chat.completions.create(model="nobody", messages=[{"role": "user", "content": "hi"}])


async def test_malformed_json_and_oversized_body() -> None:
    async with serve(settings=ServerSettings(max_body_bytes=1000)) as srv:
        broken = await srv.http.post("/v1/chat/completions", content=b'{"model": "jane",', headers={
            "content-type": "application/json"})
        big = await srv.http.post("/v1/chat/completions", json=chat_body("x" * 2000))

        async def parts() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"{" + b" " * 600

        chunked = await srv.http.post("/v1/chat/completions", content=parts())
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    assert "line 1" in broken.json()["error"]["message"]
    assert big.status_code == 413 and chunked.status_code == 413


async def test_unknown_path_and_wrong_method_get_json_errors() -> None:
    async with serve() as srv:
        missing = await srv.http.get("/v1/nothing")
        wrong = await srv.http.get("/v1/chat/completions")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert wrong.status_code == 405 and "error" in wrong.json()


# --- auth ---------------------------------------------------------------------------------

KEY = "sk-valis-test-0123456789"


async def test_auth_on_requires_a_key_bearer_or_x_api_key(caplog: pytest.LogCaptureFixture) -> None:
    async with serve(settings=ServerSettings(api_keys=(KEY, "second-key"))) as srv:
        none = await srv.http.post("/v1/chat/completions", json=chat_body())
        wrong = await srv.http.post("/v1/chat/completions", json=chat_body(), headers={"x-api-key": "nope"})
        models = await srv.http.get("/v1/models")
        with pytest.raises(openai.AuthenticationError):
            await srv.openai(api_key="wrong").chat.completions.create(
                model="jane", messages=[{"role": "user", "content": "hi"}])
        ok = await srv.openai(api_key=KEY).chat.completions.create(
            model="jane", messages=[{"role": "user", "content": "hi"}])
        via_header = await srv.http.post("/v1/chat/completions", json=chat_body("x"), headers={"x-api-key": KEY})
        health = await srv.http.get("/healthz")
    assert none.status_code == wrong.status_code == models.status_code == 401
    assert none.json()["error"]["type"] == "authentication_error"
    assert ok.choices[0].message.content == "scripted: hi"
    assert via_header.status_code == 200 and health.status_code == 200
    assert KEY not in caplog.text and "nope" not in caplog.text


async def test_auth_off_accepts_an_empty_or_placeholder_bearer() -> None:
    async with serve() as srv:
        empty = await srv.http.post("/v1/chat/completions", json=chat_body(), headers={"authorization": "Bearer"})
        dummy = await srv.http.post("/v1/chat/completions", json=chat_body("b"), headers={"authorization": "Bearer x"})
    assert empty.status_code == dummy.status_code == 200


def test_no_keys_refuses_a_non_loopback_host(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from valis_actors import cli

    config = tmp_path / "config.json"
    config.write_text('{"memory": {"backend": "memory"}}')
    code = cli.main(["serve", "--host", "0.0.0.0", "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "VALIS_SERVER_API_KEYS" in err and "127.0.0.1" in err
    assert "Traceback" not in err


# --- CORS -----------------------------------------------------------------------------------


async def test_cors_off_by_default_and_on_when_configured() -> None:
    preflight = {
        "origin": "http://ui.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, x-stainless-os, x-stainless-retry-count",
    }
    async with serve() as srv:
        off = await srv.http.post("/v1/chat/completions", json=chat_body(), headers={"origin": "http://ui.example"})
    async with serve(settings=ServerSettings(cors_origins=("http://ui.example",))) as srv:
        allowed = await srv.http.options("/v1/chat/completions", headers=preflight)
        other = await srv.http.options("/v1/chat/completions", headers={**preflight, "origin": "http://evil.example"})
        simple = await srv.http.post("/v1/chat/completions", json=chat_body(),
                                     headers={"origin": "http://ui.example"})
    assert "access-control-allow-origin" not in off.headers
    assert allowed.status_code == 200
    assert "x-stainless-os" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert simple.headers["access-control-allow-origin"] == "http://ui.example"
    assert "x-valis-provider" in simple.headers["access-control-expose-headers"]


# --- drain ----------------------------------------------------------------------------------


async def test_drain_refuses_new_requests_and_finishes_in_flight() -> None:
    async with serve(make_config(GATE)) as srv:
        gate = srv.provider("gate")
        results: dict[str, Any] = {}

        async def in_flight() -> None:
            results["first"] = await srv.http.post("/v1/chat/completions", json=chat_body("keep"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(in_flight)
            await gate.entered.wait()
            srv.handle.drain()
            results["new"] = await srv.http.post("/v1/chat/completions", json=chat_body("late"))
            results["ready"] = await srv.http.get("/readyz")
            gate.release.set()
    first, new, ready = results["first"], results["new"], results["ready"]
    assert first.status_code == 200 and first.json()["choices"][0]["message"]["content"] == "Hello world"
    assert new.status_code == 503 and new.headers["retry-after"] == "5" and new.headers["x-should-retry"] == "true"
    assert new.json()["error"]["code"] == "shutting_down"
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert gate.calls == 1


async def test_readyz_lists_circuits() -> None:
    config = make_config({"name": "a", "type": "scripted"}, {"name": "b", "type": "scripted"})
    async with serve(config) as srv:
        ready = await srv.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["circuits"] == {"a": "closed", "b": "closed"}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
async def test_sigterm_drains_and_exits_zero(tmp_path: Any, backend: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(make_config_json())
    command = [sys.executable, "-m", "valis_actors.cli", "serve", "--port", "0", "--backend", backend,
               "--config", str(config)]
    async with await anyio.open_process(command) as process:
        assert process.stderr is not None
        seen = b""
        with anyio.fail_after(20):
            while b"/v1 on" not in seen:  # the announce line, printed once it listens
                seen += await process.stderr.receive()
        url = seen.decode().split("valis serve: ")[1].split("/v1")[0]
        import httpx

        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.post("/v1/chat/completions", json=chat_body())
        process.terminate()
        with anyio.fail_after(20):
            code = await process.wait()
    assert answer.status_code == 200
    assert code == 0


def test_a_port_in_use_is_one_clear_line(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from valis_actors import cli

    config = tmp_path / "config.json"
    config.write_text('{"memory": {"backend": "memory"}}')
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        code = cli.main(["serve", "--port", str(port), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def make_config_json() -> str:
    import json

    from .server_support import PERSONAS

    return json.dumps({"providers": [{"name": "scripted", "type": "scripted"}], "personas_dir": PERSONAS,
                       "memory": {"backend": "memory"}, "server": {"dedupe_window": 5}})


def test_valis_error_map_covers_every_error_a_caller_can_get() -> None:
    from valis_actors.server._cluster import cluster_error_map
    from valis_actors.server._errors import ERROR_MAP

    mapped_classes = {**ERROR_MAP, **cluster_error_map()}  # imports valis_actors.cluster: its errors too

    def subclasses(cls: type) -> set[type]:
        out = set(cls.__subclasses__())
        for sub in list(out):
            out |= subclasses(sub)
        return out

    for cls in subclasses(va.ValisError):
        if cls.__module__.startswith("valis_actors."):
            assert any(issubclass(cls, mapped) for mapped in mapped_classes), cls


@va.register_provider("test_stubborn")
class StubbornProvider(va.BaseProvider):
    """Holds its answer until released, deaf to the deadline: the session stays busy."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.entered = anyio.Event()
        self.release = anyio.Event()

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        self.entered.set()
        with anyio.CancelScope(shield=True), anyio.fail_after(10):
            await self.release.wait()
        return va.ProviderResponse("late", "stubborn")


async def test_a_full_mailbox_is_a_429_that_says_retry() -> None:
    accepted = anyio.Event()
    count = 0

    def hook(event: va.RuntimeEvent) -> None:
        nonlocal count
        if event.kind == va.EventKind.MESSAGE_ACCEPTED:
            count += 1
            if count == 2:
                accepted.set()

    config = make_config({"name": "stubborn", "type": "test_stubborn"}, session={"mailbox_size": 1},
                         response_deadline=0.5)
    results: dict[str, Any] = {}
    async with serve(config, hook=hook) as srv:
        gate = srv.provider("stubborn")
        headers = {"X-Session-Id": "busy"}

        async def post(name: str) -> None:
            results[name] = await srv.http.post("/v1/chat/completions", json=chat_body(name), headers=headers)

        async with anyio.create_task_group() as tg:
            tg.start_soon(post, "running")
            await gate.entered.wait()
            tg.start_soon(post, "queued")
            await accepted.wait()  # the mailbox (size 1) is full now
            await post("refused")  # waits for space until its deadline, then gives up
            gate.release.set()
    refused = results["refused"]
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "session_busy"
    assert refused.headers["x-should-retry"] == "true" and refused.headers["retry-after"] == "5"
    assert results["running"].status_code == 200
