"""Listing the stored sessions: every store of the ``ConversationStore`` protocol, and the memory actor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import valis_actors as va
from valis_actors import Turn
from valis_actors._memory import SessionSummary, open_memory
from valis_actors._memory._sqlite import SqliteStore
from valis_actors._memory._store import ConversationStore, InProcessStore
from valis_actors.cluster import FencedSqliteStore

ROWS = [
    ("old", Turn("u1", "a1", "jane", "p", None, 100.0)),
    ("busy", Turn("u2", "a2", "jane", "p", None, 200.0)),
    ("busy", Turn("u3", "a3", "guide_sam", "p", None, 300.0)),
    ("old", Turn("u4", "a4", "jane", "p", None, 150.0)),
    ("one", Turn("u5", "a5", "coach_emma", "p", None, 250.0)),
]
EXPECTED = [
    SessionSummary("busy", 2, 300.0, ("guide_sam", "jane")),
    SessionSummary("one", 1, 250.0, ("coach_emma",)),
    SessionSummary("old", 2, 150.0, ("jane",)),
]


def _fenced(path: Path) -> Any:
    store = FencedSqliteStore(path)

    class Unfenced:  # the fenced store's append takes the writers' epochs
        blocking = True
        sessions = store.sessions
        forget = store.forget
        close = store.close

        def append(self, rows: Any, max_stored: int) -> None:
            store.append(rows, max_stored, epochs=dict.fromkeys({sid for sid, _ in rows}, 1))

    return Unfenced()


STORES: dict[str, Callable[[Path], Any]] = {
    "in-process": lambda path: InProcessStore(),
    "sqlite": lambda path: SqliteStore(path / "m.db"),
    "fenced-sqlite": lambda path: _fenced(path / "f.db"),
}


@pytest.mark.parametrize("kind", STORES)
def test_store_lists_sessions_most_recent_first_with_counts(kind: str, tmp_path: Path) -> None:
    store: ConversationStore = STORES[kind](tmp_path)
    try:
        assert store.sessions(10) == []
        store.append(ROWS, max_stored=100)
        assert store.sessions(10) == EXPECTED
        assert store.sessions(2) == EXPECTED[:2]
        assert store.sessions(0) == []
        assert store.forget("busy") == 2
        assert [s.session_id for s in store.sessions(10)] == ["one", "old"]
    finally:
        store.close()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)  # real time: the SQLite store runs in a worker thread


@pytest.mark.anyio
async def test_memory_actor_lists_the_sessions_a_runtime_stored(tmp_path: Path) -> None:
    settings = va.MemorySettings(path=str(tmp_path / "m.db"))
    async with open_memory(settings) as memory:
        assert memory is not None
        for session, turn in ROWS:
            await memory.record(session, turn)
        assert await memory.sessions() == EXPECTED
        assert await memory.sessions(limit=1) == EXPECTED[:1]
