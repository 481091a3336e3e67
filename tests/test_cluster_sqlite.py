"""The epoch check of the SQLite store, inside its write transaction (a real sqlite file, no Redis)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from valis_actors import Turn
from valis_actors.cluster import FencedSqliteStore, StaleEpochError


def turn(n: int) -> Turn:
    return Turn(f"u{n}", f"a{n}", "jane", "openai", None, float(n))


def test_sqlite_fence_rejects_an_older_owner_once_a_newer_one_claimed(tmp_path: Path) -> None:
    store = FencedSqliteStore(tmp_path / "m.sqlite3")
    store.append([("s", turn(1))], 10, epochs={"s": 5})
    store.claim_epoch("s", 6)  # the new owner, right after its grant
    with pytest.raises(StaleEpochError, match="epoch 5, current 6") as info:
        store.append([("s", turn(2))], 10, epochs={"s": 5})
    assert info.value.rejected == {"s": (5, 6)}
    store.append([("s", turn(3))], 10, epochs={"s": 6})
    assert store.recent("s", "jane", 10) == [turn(1), turn(3)]
    assert store.current_epoch("s") == 6 and store.current_epoch("new") == 0
    with pytest.raises(StaleEpochError):
        store.claim_epoch("s", 4)
    store.close()


def test_sqlite_fence_commits_the_fresh_sessions_of_a_batch(tmp_path: Path) -> None:
    store = FencedSqliteStore(tmp_path / "m.sqlite3")
    store.claim_epoch("a", 9)
    with pytest.raises(StaleEpochError) as info:
        store.append([("a", turn(1)), ("b", turn(2)), ("b", turn(3))], 1, epochs={"a": 8, "b": 1})
    assert set(info.value.rejected) == {"a"}
    assert store.recent("a", None, 10) == []
    assert store.recent("b", None, 10) == [turn(3)]  # trimmed to max_stored
    assert store.forget("b") == 1 and store.current_epoch("b") == 1  # forgetting keeps the epoch
    store.close()


def test_sqlite_fence_sees_the_other_process_epoch_in_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    one, two = FencedSqliteStore(path), FencedSqliteStore(path)  # two processes' connections
    one.claim_epoch("s", 2)
    with pytest.raises(StaleEpochError):
        two.append([("s", turn(1))], 10, epochs={"s": 1})
    two.append([("s", turn(2))], 10, epochs={"s": 3})
    with pytest.raises(StaleEpochError):
        one.append([("s", turn(3))], 10, epochs={"s": 2})
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(turns)")}
    assert {"session_id", "persona_id", "user_text", "reply_text"} <= columns  # the core store's schema
    one.close()
    two.close()
