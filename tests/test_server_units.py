"""The server's parts without sockets: pairing, sessions, settings, flights, the import surface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import valis_actors as va
import valis_actors.observability
import valis_actors.server
from valis_actors.server import (
    ApiError,
    ChatRequest,
    ServerSettings,
    load_server_config,
    pair_turns,
    resolve_session,
)
from valis_actors.server._flights import FlightTable
from valis_actors.server._requests import parse_openai

SERVER_DEPS = ("starlette", "hypercorn", "prometheus_client", "opentelemetry")


def test_import_valis_actors_imports_no_server_dependency() -> None:
    code = (
        "import sys, valis_actors, valis_actors.observability;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_DEPS!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", [valis_actors.server, valis_actors.observability])
def test_all_is_sorted_complete_and_documented(module: object) -> None:
    names: list[str] = module.__all__  # type: ignore[attr-defined]
    public = {n for n in dir(module) if not n.startswith("_")} - {"annotations"}
    assert names == sorted(names) and set(names) == public
    assert all(getattr(getattr(module, n), "__doc__", None) for n in names)


# --- pairing --------------------------------------------------------------------------------


def turns(*pairs: tuple[str, str]) -> tuple[va.Turn, ...]:
    return tuple(va.Turn(u, a) for u, a in pairs)


@pytest.mark.parametrize(
    ("messages", "history", "new"),
    [
        ([("user", "hi")], (), "hi"),
        ([("user", "a"), ("assistant", "b"), ("user", "c")], turns(("a", "b")), "c"),
        ([("assistant", "greet"), ("user", "x")], turns(("(the conversation starts)", "greet")), "x"),
        ([("user", "a"), ("user", "b"), ("assistant", "c"), ("assistant", "d"), ("user", "e"), ("user", "f")],
         turns(("a\n\nb", "c\n\nd")), "e\n\nf"),
    ],
    ids=["single", "pair", "greeting-first", "runs-joined"],
)
def test_pair_turns(messages: list[tuple[str, str]], history: tuple[va.Turn, ...], new: str) -> None:
    got_history, got_new, sent = pair_turns(messages)
    assert (got_history, got_new, sent) == (history, new, len(messages) > 1)


def test_pair_turns_needs_a_user_message_last() -> None:
    with pytest.raises(ApiError, match="last message must be from the user"):
        pair_turns([("user", "a"), ("assistant", "b")])


def test_system_and_developer_messages_join_the_system_text() -> None:
    body = {"model": "jane", "messages": [{"role": "system", "content": "A"}, {"role": "user", "content": "q"},
                                          {"role": "developer", "content": [{"type": "text", "text": "B"}]}]}
    request = parse_openai(body, max_messages=10, max_chars=100)
    assert request.system == "A\n\nB" and request.message == "q" and not request.sent_history


# --- sessions -------------------------------------------------------------------------------


def request(**extra: object) -> ChatRequest:
    return parse_openai({"model": "jane", "messages": [{"role": "user", "content": "hi"}], **extra},
                        max_messages=10, max_chars=100)


def test_session_resolution_order() -> None:
    chat = request(metadata={"session_id": "meta"}, user="u1")
    all_headers = {"x-session-id": "a", "x-openwebui-chat-id": "b", "x-conversation-id": "c"}
    assert resolve_session(all_headers, chat, None).session_id == "a"
    assert resolve_session({"x-openwebui-chat-id": "b", "x-conversation-id": "c"}, chat, None).session_id == "b"
    assert resolve_session({"x-conversation-id": "c"}, chat, None).session_id == "c"
    meta = resolve_session({}, chat, None)
    assert (meta.session_id, meta.strong) == ("meta", True)
    user = resolve_session({}, request(user="u1"), None)
    assert (user.session_id, user.strong) == ("user:u1", False)


def test_session_hash_is_stable_and_depends_on_key_model_system_and_first_message() -> None:
    base = resolve_session({}, request(), None)
    assert base == resolve_session({}, request(), None)
    assert not base.strong and base.session_id.startswith("h:")
    assert base != resolve_session({}, request(), "key-fingerprint")
    other = parse_openai({"model": "jane", "messages": [{"role": "user", "content": "hello"}]},
                         max_messages=10, max_chars=100)
    assert base != resolve_session({}, other, None)


# --- settings -------------------------------------------------------------------------------


def test_settings_errors_name_the_field() -> None:
    with pytest.raises(va.ConfigError, match="server"):
        ServerSettings.from_dict({"system_message": "shout"})
    with pytest.raises(va.ConfigError, match="unknown_key"):
        ServerSettings.from_dict({"unknown_key": 1})
    with pytest.raises(va.ConfigError, match="api_keys"):
        ServerSettings.from_dict({"api_keys": [""]})


def test_settings_take_keys_from_the_environment_and_never_show_them() -> None:
    settings = ServerSettings.from_dict({"api_keys": ["k1"]}, environ={"VALIS_SERVER_API_KEYS": "k2, k3"})
    assert settings.api_keys == ("k1", "k2", "k3")
    assert "k1" not in repr(settings) and "k2" not in repr(settings)


def test_load_server_config_takes_the_server_section_out(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"personas_dir": "p", "server": {"dedupe_window": 3, "cors_origins": ["http://x"]}}))
    config, settings = load_server_config(file)
    assert config.personas_dir == str(tmp_path / "p")
    assert settings.dedupe_window == 3 and settings.cors_origins == ("http://x",)
    file.write_text(json.dumps({"memory": {"backend": "memory"}}))
    assert load_server_config(file)[1] == ServerSettings()


# --- flights (virtual time) ---------------------------------------------------------------


@pytest.mark.anyio
async def test_a_joiner_waits_for_the_first_answer_and_finished_ones_expire() -> None:
    release = anyio.Event()
    jobs = 0

    async def job(flight: object) -> va.Reply:
        nonlocal jobs
        jobs += 1
        await release.wait()
        return va.Reply("answer", "p", "jane", "s", False)

    async with anyio.create_task_group() as tg:
        table = FlightTable(tg, window=10.0)
        first, started = table.get_or_start(("k",), "d", job)
        joined, started_again = table.get_or_start(("k",), "d", job)
        assert started and not started_again and joined is first
        with pytest.raises(ApiError, match="different request body"):
            table.get_or_start(("k",), "other", job)
        release.set()
        await first.done.wait()
        assert first.reply is not None and first.reply.text == "answer" and jobs == 1
        await anyio.sleep(11)  # virtual: past the window
        fresh, started_fresh = table.get_or_start(("k",), "d", job)
        assert started_fresh and fresh is not first
        await fresh.done.wait()


@pytest.mark.anyio
async def test_the_last_subscriber_leaving_cancels_the_flight() -> None:
    async def job(flight: object) -> va.Reply:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with anyio.create_task_group() as tg:
        table = FlightTable(tg, window=10.0)
        flight, _ = table.get_or_start(("k",), "d", job)
        async with flight.subscribed(), flight.subscribed():
            pass
        await flight.done.wait()
    assert isinstance(flight.error, ApiError) and flight.error.code == "client_closed"
    assert len(table) == 0 and table.idle.is_set()


def test_server_and_observability_use_only_the_public_api() -> None:
    """The layers: the server and the hooks sit on ``valis_actors``' public names, never its privates."""
    import ast

    root = Path(valis_actors.__file__).parent
    for path in [*(root / "server").glob("*.py"), *(root / "observability").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level >= 2 or (node.level == 0 and module.startswith("valis_actors.")):
                    assert module in ("valis_actors.observability", "valis_actors.cluster"), f"{path.name} imports {module!r}"
