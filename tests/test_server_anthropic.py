"""``POST /v1/messages`` through the official anthropic SDK, on both backends."""

from __future__ import annotations

import anthropic
import pytest

from .server_support import make_config, serve

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_messages_create_answers_as_the_persona() -> None:
    async with serve() as srv:
        raw = await srv.anthropic().messages.with_raw_response.create(
            model="jane", max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "hello"}]
        )
        call = srv.scripted().calls[0]
    message = await raw.parse()
    assert message.model == "jane" and message.role == "assistant" and message.stop_reason == "end_turn"
    assert [block.text for block in message.content if block.type == "text"] == ["scripted: hello"]
    assert message.usage.output_tokens == 2
    assert raw.headers["x-valis-provider"] == "scripted"
    assert call.system_prompt.endswith("\n\nBe brief.")  # appended to the persona's prompt


async def test_messages_stream_sends_every_event_in_order() -> None:
    async with serve(make_config({"name": "scripted", "type": "scripted", "chunks": 3})) as srv:
        async with srv.anthropic().messages.stream(
            model="coach_emma", max_tokens=100,
            messages=[{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
                      {"role": "user", "content": [{"type": "text", "text": "three"}]}],
        ) as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_message()
        call = srv.scripted().calls[0]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "content_block_stop" in kinds and "message_delta" in kinds
    assert final.content[0].type == "text" and final.content[0].text == "scripted: three"
    assert [(t.user, t.assistant) for t in call.history] == [("one", "two")]


async def test_messages_errors_use_the_anthropic_shape() -> None:
    async with serve() as srv:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await srv.anthropic().messages.create(
                model="nobody", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
        bad = await srv.http.post("/v1/messages", json={"model": "jane", "messages": [{"role": "system",
                                                                                        "content": "x"}]})
    assert missing.value.status_code == 404
    assert bad.status_code == 400
    body = bad.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "messages[0].role" in body["error"]["message"]


async def test_messages_stream_cut_raises_in_the_sdk() -> None:
    config = make_config({"name": "scripted", "type": "scripted", "default": {"kind": "cut", "after_chunks": 1}})
    async with serve(config) as srv:
        with pytest.raises(anthropic.APIError):
            async with srv.anthropic().messages.stream(
                model="jane", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                async for _ in stream:
                    pass


async def test_messages_auth_with_x_api_key() -> None:
    from valis_actors.server import ServerSettings

    async with serve(settings=ServerSettings(api_keys=("ant-key",))) as srv:
        with pytest.raises(anthropic.AuthenticationError):
            await srv.anthropic(api_key="wrong").messages.create(
                model="jane", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
        ok = await srv.anthropic(api_key="ant-key").messages.create(
            model="jane", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert ok.content[0].type == "text"
