"""Any ``str`` the API accepts is safe end to end; lone surrogates are refused at the door.

A web client can send a lone surrogate (``json.loads('"\\ud83d"')``) and a shell hands
Python undecodable bytes as ``\\udcXX``: such text cannot be encoded as UTF-8, so it
is refused with ``InvalidRequestError`` before any mailbox. Everything else (NUL,
1 MB, RTL marks, combining marks, emoji) goes through ``ask``, ``stream``, the SQLite
store and the CLI unchanged. Real time: the store runs in a worker thread.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

import valis_actors as va
from valis_actors.cli import main
from valis_actors.testing import Step

from .support import make_config, provider, scripted

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent

HOSTILE = [
    "nul \x00 in the middle\x00",
    "rtl \u202eevil\u202c and \u200f marks \u2067isolate\u2069",
    "combining e\u0301\u0301\u0301 and zero width \u200b\ufeff joiner \u200d",
    "emoji \U0001f600 astral \U00010348 and CJK 你好",
    "control \x01\x1b[31m\x7f and \r\n lines",
    "x" * 1_000_000,
]
SURROGATES = ["caf\udcff", "\ud83d", "a\udfffb", "\ud800\ud800"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # A virtual clock would jump while the worker thread talks to SQLite.
    return str(request.param)


def sqlite_config(path: Path, *providers: dict[str, Any], **overrides: Any) -> va.Config:
    return make_config(
        *(providers or (scripted("p1"),)),
        memory={"backend": "sqlite", "path": str(path)},
        max_message_chars=2_000_000,
        **overrides,
    )


def _calls(
    text: str,
) -> list[tuple[str, tuple[Any, ...], dict[str, Any], type[va.InvalidRequestError]]]:
    turn_user = va.Turn(text, "fine", "jane")
    turn_reply = va.Turn("fine", text, "jane")
    return [
        ("message", ("s", "jane", text), {}, va.InvalidRequestError),
        ("session id", (text, "jane", "hi"), {}, va.InvalidSessionIdError),
        ("persona id", ("s", text, "hi"), {}, va.InvalidPersonaIdError),
        ("history", ("s", "jane", "hi"), {"history": [turn_user]}, va.InvalidRequestError),
        ("history", ("s", "jane", "hi"), {"history": [turn_reply]}, va.InvalidRequestError),
        ("system prompt", ("s", "jane", "hi"), {"system_prompt": text}, va.InvalidRequestError),
    ]


@pytest.mark.parametrize("text", SURROGATES)
@pytest.mark.parametrize("memory", ["sqlite", "off"])
async def test_lone_surrogates_are_refused_before_any_mailbox(tmp_path: Path, text: str, memory: str) -> None:
    config = sqlite_config(tmp_path / "m.db") if memory == "sqlite" else make_config(memory={"enabled": False})
    async with va.open_runtime(config) as runtime:
        for what, args, kwargs, error in _calls(text):
            with pytest.raises(error, match=f"{what}.*lone surrogate"):
                await runtime.ask(*args, **kwargs)
            with pytest.raises(error, match=f"{what}.*lone surrogate"):
                async with runtime.stream(*args, **kwargs):
                    pass  # pragma: no cover - refused on entry
        assert runtime.statistics().live_sessions == 0
        assert provider(runtime).calls == []
        # The runtime and every session still answer.
        reply = await runtime.ask("s", "jane", "still there?")
        assert reply.provider == "p1"
        for _ in range(6):  # more than session.max_restarts: nothing counted as a crash
            with pytest.raises(va.InvalidRequestError):
                await runtime.ask("s", "jane", text)
        assert (await runtime.ask("s", "jane", "and now?")).provider == "p1"


@pytest.mark.parametrize(
    "turn", [va.Turn(5, "a"), va.Turn("u", None), va.Turn("u", "a", persona_id=3), va.Turn("u", "a", model=b"m")]  # type: ignore[arg-type]
)
async def test_history_turns_that_are_not_text_are_refused(tmp_path: Path, turn: va.Turn) -> None:
    async with va.open_runtime(sqlite_config(tmp_path / "m.db")) as runtime:
        with pytest.raises(va.InvalidRequestError, match=r"history\[0\]\.\w+ must be a string"):
            await runtime.ask("s", "jane", "hi", history=[turn])
        assert provider(runtime).calls == []


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
async def test_hostile_text_round_trips_through_ask_stream_and_sqlite(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.db"
    async with va.open_runtime(sqlite_config(path)) as runtime:
        reply = await runtime.ask(text[:200], "jane", text)
        assert reply.text == f"p1: {text}"
        async with runtime.stream(text[:200], "jane", text) as stream:
            chunks = [chunk async for chunk in stream]
        assert "".join(chunks) == f"p1: {text}"
        assert provider(runtime).calls[-1].history[-1].user == text
    # A new runtime reads the turns back from the file, byte for byte.
    async with va.open_runtime(sqlite_config(path)) as runtime:
        await runtime.ask(text[:200], "jane", "again")
        history = provider(runtime).calls[-1].history
        assert [t.user for t in history] == [text, text]
        assert [t.assistant for t in history] == [f"p1: {text}"] * 2


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
async def test_hostile_text_is_answered_by_the_persona_fallback(tmp_path: Path, text: str) -> None:
    config = sqlite_config(tmp_path / "m.db", scripted("p1", default=Step.permanent()))
    async with va.open_runtime(config) as runtime:
        for _ in range(2):  # the second time with the first turn as history
            reply = await runtime.ask("s", "jane", text)
            assert reply.fallback_used and reply.text
            async with runtime.stream("s", "jane", text) as stream:
                assert "".join([chunk async for chunk in stream])
            assert stream.fallback_used


async def test_a_provider_answer_with_a_lone_surrogate_is_delivered_and_stored(tmp_path: Path) -> None:
    # Providers parse JSON, which may carry "\ud83d": the caller gets the text as sent;
    # the store, which must write UTF-8, keeps it with U+FFFD in place of the surrogate.
    path = tmp_path / "m.db"
    config = sqlite_config(path, scripted("p1", Step.answer("half \ud83d emoji")))
    async with va.open_runtime(config) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
        assert (reply.provider, reply.text) == ("p1", "half \ud83d emoji")
    async with va.open_runtime(sqlite_config(path)) as runtime:
        await runtime.ask("s", "jane", "again")
        assert provider(runtime).calls[-1].history[0].assistant == "half \ufffd emoji"


async def test_the_memory_actor_survives_a_store_that_raises_anything() -> None:
    from valis_actors._config import MemorySettings
    from valis_actors._memory import Memory

    class Broken:
        blocking = False

        def append(self, rows: Any, max_stored: int) -> None:
            raise RuntimeError("append bug")

        def recent(self, session_id: str, persona_id: str | None, limit: int) -> list[va.Turn]:
            raise UnicodeEncodeError("utf-8", session_id, 0, 1, "surrogates not allowed")

        def forget(self, session_id: str) -> int:
            raise KeyError(session_id)

        def close(self) -> None:
            pass

    memory = Memory(Broken(), MemorySettings())
    async with anyio.create_task_group() as tg:
        tg.start_soon(memory.run)
        for _ in range(2):
            with pytest.raises(va.MemoryStoreError, match="UnicodeEncodeError"):
                await memory.history("s")
            with pytest.raises(va.MemoryStoreError, match="RuntimeError: append bug"):
                await memory.record("s", va.Turn("a", "b"))
            with pytest.raises(va.MemoryStoreError, match="KeyError"):
                await memory.forget("s")
        memory.close()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    data: dict[str, Any] = {
        "personas_dir": str(ROOT / "personas"),
        "providers": [{"type": "scripted", "name": "p1"}],
        "memory": {"path": str(tmp_path / "memory.sqlite3")},
        "max_message_chars": 2_000_000,
        "retry_schedule": [],
    }
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["ask", "jane", "caf\udcff"],  # what Python makes of `valis ask jane $'caf\xff'`
        ["ask", "jane", "hi", "--session", "s\udcff"],
        ["history", "s\udcff"],
        ["forget", "s\udcff"],
    ],
)
def test_cli_refuses_undecodable_arguments_in_one_line_exit_2(
    config_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    out = io.StringIO()
    code = main([*argv, "--config", str(config_file)], out=out)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("valis: ")
    assert "lone surrogate" in err and "Traceback" not in err
    assert out.getvalue() == ""


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:12]))
def test_cli_answers_hostile_text_and_shows_it_in_history(config_file: Path, text: str) -> None:
    out = io.StringIO()
    assert main(["ask", "jane", text, "--session", "h", "--json", "--config", str(config_file)], out=out) == 0
    assert json.loads(out.getvalue())["text"] == f"p1: {text}"
    out = io.StringIO()
    assert main(["history", "h", "--config", str(config_file)], out=out) == 0
    assert f"you: {text}\n" in out.getvalue()


def test_cli_prints_an_answer_holding_a_lone_surrogate(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = tmp_path / "config.json"
    entry = {"type": "scripted", "name": "p1", "default": {"kind": "answer", "text": "half \ud83d emoji"}}
    path.write_text(json.dumps({"providers": [entry], "memory": {"enabled": False}}))
    env = {**os.environ, "VALIS_CONFIG": str(path), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "-m", "valis_actors.cli", "ask", "jane", "hi"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("half \\ud83d emoji\n")  # shown escaped, not a traceback
    assert "Traceback" not in result.stderr


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.parametrize("field", ["content", "session"])
async def test_the_http_server_refuses_a_lone_surrogate_with_a_400(field: str) -> None:
    from .server_support import serve

    content, session = ("caf\ud83d", "s") if field == "content" else ("hi", "s\udcff")
    # json.dumps writes a lone surrogate as the escape "\ud83d", as a web client would.
    body = json.dumps({"model": "jane", "messages": [{"role": "user", "content": content}],
                       "metadata": {"session_id": session}})
    async with serve() as srv:
        response = await srv.http.post(
            "/v1/chat/completions", content=body.encode(), headers={"content-type": "application/json"}
        )
        assert srv.scripted().calls == []
        ok = await srv.http.post("/v1/chat/completions", json={"model": "jane", "messages": [
            {"role": "user", "content": "still there?"}]})
    assert response.status_code == 400, response.text
    assert "lone surrogate" in response.json()["error"]["message"]
    assert ok.status_code == 200
