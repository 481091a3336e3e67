"""Conversation memory on a real SQLite file (real time: the store runs in a worker thread)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import valis_actors as va

from .support import make_config, provider, scripted

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # A virtual clock would jump while the worker thread talks to SQLite.
    return str(request.param)


def sqlite_config(path: Path, **memory: Any) -> va.Config:
    return make_config(scripted("p1"), memory={"backend": "sqlite", "path": str(path), **memory})


async def test_history_is_injected_into_the_provider_request(tmp_path: Path) -> None:
    async with va.open_runtime(sqlite_config(tmp_path / "m.db")) as runtime:
        for i in range(3):
            await runtime.ask("s", "jane", f"q{i}")
        calls = provider(runtime).calls
    assert [len(c.history) for c in calls] == [0, 1, 2]
    last = calls[-1].history
    assert [(t.user, t.assistant, t.provider) for t in last] == [("q0", "p1: q0", "p1"), ("q1", "p1: q1", "p1")]


async def test_conversation_continues_across_runtime_restarts(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with va.open_runtime(sqlite_config(path)) as runtime:
        await runtime.ask("s", "jane", "remember me")
    async with va.open_runtime(sqlite_config(path)) as runtime:
        await runtime.ask("s", "jane", "do you?")
        (call,) = provider(runtime).calls
    assert [t.user for t in call.history] == ["remember me"]


async def test_sessions_and_personas_do_not_see_each_others_history(tmp_path: Path) -> None:
    async with va.open_runtime(sqlite_config(tmp_path / "m.db")) as runtime:
        async with anyio.create_task_group() as tg:
            for s in range(5):
                tg.start_soon(runtime.ask, f"s{s}", "jane", f"secret of s{s}")
        await runtime.ask("s0", "sam", "hello sam")
        await runtime.ask("s1", "jane", "again")
        calls = {(c.session_id, c.message): c for c in provider(runtime).calls}
    assert calls[("s0", "hello sam")].history == ()
    assert [t.user for t in calls[("s1", "again")].history] == ["secret of s1"]


async def test_trimming_bounds_injected_and_stored_turns(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with va.open_runtime(sqlite_config(path, max_turns=2, max_turns_stored=3)) as runtime:
        for i in range(6):
            await runtime.ask("s", "jane", f"q{i}")
        calls = provider(runtime).calls
    assert [len(c.history) for c in calls] == [0, 1, 2, 2, 2, 2]
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT user_text FROM turns ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["q3", "q4", "q5"]


async def test_passivated_session_reloads_its_history(tmp_path: Path) -> None:
    config = make_config(
        scripted("p1"), memory={"backend": "sqlite", "path": str(tmp_path / "m.db")}, session={"idle_timeout": 0.05}
    )
    async with va.open_runtime(config) as runtime:
        await runtime.ask("s", "jane", "before")
        with anyio.fail_after(5):
            while runtime.statistics().live_sessions:
                await anyio.sleep(0.02)
        await runtime.ask("s", "jane", "after")
        assert [t.user for t in provider(runtime).calls[-1].history] == ["before"]


async def test_fallback_acknowledges_continuity(tmp_path: Path) -> None:
    config = make_config(
        scripted("p1", default=va_step("permanent")), memory={"backend": "sqlite", "path": str(tmp_path / "m.db")}
    )
    async with va.open_runtime(config) as runtime:
        first = await runtime.ask("s", "jane", "hi")
        second = await runtime.ask("s", "jane", "hi again")
    assert "earlier conversation" not in first.text
    assert "earlier conversation" in second.text


async def test_corrupt_file_is_a_clear_error_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    garbage = b"this is not a sqlite database" * 100
    path.write_bytes(garbage)
    with pytest.raises(va.MemoryStoreError, match=r"m\.db.*not a usable VALIS database.*left untouched"):
        async with va.open_runtime(sqlite_config(path)):
            pass
    assert path.read_bytes() == garbage


async def test_memory_disabled_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    config = make_config(scripted("p1"), memory={"enabled": False, "backend": "sqlite", "path": str(path)})
    async with va.open_runtime(config) as runtime:
        await runtime.ask("s", "jane", "hi")
        await runtime.ask("s", "jane", "hi")
        assert provider(runtime).calls[-1].history == ()
    assert not path.exists()


async def test_full_disk_fails_the_affected_ask_and_the_runtime_goes_on(tmp_path: Path) -> None:
    async with va.open_runtime(sqlite_config(tmp_path / "m.db")) as runtime:
        await runtime.ask("s", "jane", "small")
        db = runtime._memory.store._db  # type: ignore[union-attr]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(va.MemoryStoreError, match=r"cannot write to memory file .*m\.db.*full"):
            await runtime.ask("s", "jane", "x" * 20_000)
        db.execute("PRAGMA max_page_count = 1000000")
        reply = await runtime.ask("other", "jane", "still serving")
        assert reply.text == "p1: still serving"
        assert (await runtime.ask("s", "jane", "and this one")).text == "p1: and this one"


async def test_async_durability_returns_before_commit_and_still_stores(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with va.open_runtime(sqlite_config(path, durability="async")) as runtime:
        for i in range(20):
            await runtime.ask(f"s{i % 3}", "jane", f"q{i}")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == 20


def test_kill_9_loses_no_acknowledged_turn(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    script = Path(__file__).parent / "scripts" / "memory_load.py"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    acknowledged: list[tuple[str, str]] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            session, message = line.split()
            acknowledged.append((session, message))
            if len(acknowledged) >= 400:
                break
        proc.send_signal(signal.SIGKILL)
        rest = proc.stdout.read()  # lines printed before the kill landed were acknowledged too
        acknowledged += [tuple(line.split()) for line in rest.splitlines() if line.strip()]  # type: ignore[misc]
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = set(db.execute("SELECT session_id, user_text FROM turns").fetchall())
    missing = [turn for turn in acknowledged if turn not in stored]
    assert len(acknowledged) >= 400
    assert missing == []


def va_step(kind: str) -> Any:
    from valis_actors.testing import Step

    return Step(kind)
