"""A character card answering through the runtime, its system prompt checked at the loopback fake server.

Real time (short durations): the SDK talks over a real socket, where a virtual clock would jump.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import valis_actors as va
from tests.test_cards_build import png, text_chunk, v2
from valis_actors.testing.fakeserver import FakeLLMServer, open_fake_llm_server

pytestmark = [
    pytest.mark.anyio,
    # The SDKs leave async generators unfinished under trio (see providers/_http.py).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

KEY = "sk-test-SECRET-0123456789"
BOOK = {
    "entries": [
        {"keys": ["storm"], "content": "Storms here last three days.", "enabled": True, "insertion_order": 0},
    ]
}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLLMServer]:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    async with open_fake_llm_server(text="Mind the stairs.", chunks=2) as srv:
        yield srv


def config(server: FakeLLMServer, personas_dir: Path, **overrides: Any) -> va.Config:
    data: dict[str, Any] = {
        "providers": [{"name": "openai", "type": "openai", "base_url": server.openai_base_url, "model": "m"}],
        "retry_schedule": [],
        "provider_timeout": 2,
        "response_deadline": 5,
        "personas_dir": str(personas_dir),
        "user_name": "Ann",
        "memory": {"backend": "memory"},
    }
    data.update(overrides)
    return va.Config.from_dict(data)


@pytest.fixture
def personas_dir(tmp_path: Path) -> Path:
    (tmp_path / "mira.png").write_bytes(png(text_chunk("chara", v2(character_book=BOOK))))
    (tmp_path / "jane.json").write_text(json.dumps({"id": "jane", "name": "Jane"}))
    return tmp_path


def system_of(request: Any) -> str:
    messages = request.body["messages"]
    assert messages[0]["role"] == "system"
    return str(messages[0]["content"])


async def test_a_card_answers_with_its_rendered_system_prompt(server: FakeLLMServer, personas_dir: Path) -> None:
    async with va.open_runtime(config(server, personas_dir)) as runtime:
        assert runtime.personas.problems == []
        reply = await runtime.ask("s1", "Mira", "Hello, is anyone here?")
        stormy = await runtime.ask("s1", "mira", "Is a storm coming?")
        greeting = runtime.personas.greeting("mira", "s1")
    assert reply.text == stormy.text == "Mind the stairs." and reply.persona_id.startswith("mira-")
    first, second = (system_of(r) for r in server.requests)
    assert first.startswith("Write Mira's next reply in a fictional chat between Mira and Ann")
    assert "Mira is a lighthouse keeper." in first  # the description, macros expanded
    assert "NOTES-NEVER-IN-PROMPT" not in first  # creator notes never reach a prompt
    assert "Storms here" not in first and "Storms here last three days." in second  # the lorebook, per message
    assert second.count("Hello, is anyone here?") == 0  # the history goes as messages, not in the prompt
    assert [m["role"] for m in server.requests[1].body["messages"]] == ["system", "user", "assistant", "user"]
    assert greeting == "Come in, Ann, out of the rain."


async def test_a_card_persona_falls_back_in_its_own_words(server: FakeLLMServer, personas_dir: Path) -> None:
    (personas_dir / "mira.png").write_bytes(
        png(
            text_chunk(
                "chara",
                v2(mes_example="<START>\n{{user}}: Hi\n{{char}}: The sea forgives nothing. Will you stay for tea?"),
            )
        )
    )
    settings = config(server, personas_dir, providers=["persona_fallback"])
    async with va.open_runtime(settings) as runtime:
        reply = await runtime.ask("s1", "mira", "Is it safe?")
    assert reply.fallback_used
    assert "The sea forgives nothing." in reply.text and "Will you stay for tea?" in reply.text
    assert "Jane" not in reply.text
