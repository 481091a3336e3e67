"""The SQLite conversation store (WAL mode), used from the memory actor's worker thread.

sqlite3 errors (and the ``ValueError`` of text SQLite cannot take) are translated
into ``MemoryStoreError`` here, at the boundary, naming the file. Imported only when a
runtime opens a SQLite store.

Text is stored as given (NUL, any length SQLite allows), with one exception: a lone
surrogate, which UTF-8 cannot encode, in an answer's text is stored as U+FFFD. The
runtime refuses them in what callers send, so only a provider's answer can hold one.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from .._errors import MemoryStoreError
from .._messages import Turn
from .._validation import lone_surrogate
from ._store import SessionSummary

__all__ = ["TURNS_SCHEMA", "SqliteStore", "default_memory_path", "select_recent", "select_sessions"]


def default_memory_path() -> Path:
    """``$XDG_DATA_HOME/valis/memory.sqlite3`` (``~/.local/share/valis/memory.sqlite3``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "valis" / "memory.sqlite3"


TURNS_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    persona_id TEXT NOT NULL,
    user_text TEXT NOT NULL,
    reply_text TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, persona_id, id);
"""


_SURROGATES = re.compile("[\ud800-\udfff]")
# What the driver raises for a value it cannot bind: UnicodeEncodeError (a ValueError)
# for a lone surrogate, OverflowError for an integer past 64 bits.
_BIND_ERRORS = (sqlite3.Error, ValueError, OverflowError)


def _storable(text: str | None) -> str | None:
    if text is None or lone_surrogate(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text)


class SqliteStore:
    """Turns in a SQLite file (WAL mode). Used from one thread at a time."""

    blocking = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._since_trim: dict[str, int] = {}  # turns written per session since its last trim
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except (OSError, *_BIND_ERRORS) as exc:  # ValueError: a NUL byte in the path
            raise MemoryStoreError(f"cannot open memory file {str(self.path)!r}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(TURNS_SCHEMA)
            self._db.execute("SELECT count(*) FROM turns").fetchone()
        except sqlite3.Error as exc:
            self._db.close()
            raise MemoryStoreError(
                f"memory file {str(self.path)!r} is not a usable VALIS database ({exc}); "
                "it was left untouched: move it away or point memory.path elsewhere"
            ) from exc

    def _fail(self, action: str, exc: Exception) -> MemoryStoreError:
        return MemoryStoreError(f"cannot {action} memory file {str(self.path)!r}: {exc}")

    def append(self, rows: Sequence[tuple[str, Turn]], max_stored: int) -> None:
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO turns (session_id, persona_id, user_text, reply_text, provider, model, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            sid, t.persona_id, _storable(t.user), _storable(t.assistant),
                            _storable(t.provider), _storable(t.model), t.created_at,
                        )
                        for sid, t in rows
                    ],
                )
                # Trim each session at most once every `slack` turns (and on its first
                # write in this process): a DELETE per session per batch cost more than
                # the inserts. Between trims a session may hold up to `slack` extra turns.
                slack = max(1, max_stored // 10)
                for sid in {sid for sid, _ in rows}:
                    since = self._since_trim.get(sid)
                    if since is not None and since < slack:
                        continue
                    self._db.execute(
                        "DELETE FROM turns WHERE session_id = ? AND id <= "
                        "(SELECT id FROM turns WHERE session_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (sid, sid, max_stored),
                    )
                    self._since_trim[sid] = 0
            for sid, _ in rows:
                self._since_trim[sid] = self._since_trim.get(sid, 0) + 1
        except _BIND_ERRORS as exc:
            raise self._fail("write to", exc) from exc

    def recent(self, session_id: str, persona_id: str | None, limit: int) -> list[Turn]:
        try:
            return select_recent(self._db, session_id, persona_id, limit)
        except _BIND_ERRORS as exc:
            raise self._fail("read", exc) from exc

    def forget(self, session_id: str) -> int:
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._since_trim.pop(session_id, None)
                return self._db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,)).rowcount
        except _BIND_ERRORS as exc:
            raise self._fail("delete from", exc) from exc

    def sessions(self, limit: int) -> list[SessionSummary]:
        try:
            return select_sessions(self._db, limit)
        except _BIND_ERRORS as exc:
            raise self._fail("read", exc) from exc

    def close(self) -> None:
        self._db.close()


def select_recent(db: sqlite3.Connection, session_id: str, persona_id: str | None, limit: int) -> list[Turn]:
    """The last ``limit`` turns of a session (of one persona, if given), oldest first.

    Shared by every store on the ``turns`` schema; sqlite3 errors propagate to the caller,
    which translates them.
    """
    if limit <= 0:
        return []
    query = "SELECT user_text, reply_text, persona_id, provider, model, created_at FROM turns WHERE session_id = ?"
    args: tuple[object, ...] = (session_id,)
    if persona_id is not None:
        query += " AND persona_id = ?"
        args += (persona_id,)
    rows = db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [Turn(*row) for row in reversed(rows)]


def select_sessions(db: sqlite3.Connection, limit: int) -> list[SessionSummary]:
    """The stored sessions, most recently active first (at most ``limit``).

    Shared by every store on the ``turns`` schema; sqlite3 errors propagate to the caller.
    """
    if limit <= 0:
        return []
    rows = db.execute(
        "SELECT session_id, count(*), max(created_at) FROM turns"
        " GROUP BY session_id ORDER BY max(created_at) DESC, session_id LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        SessionSummary(sid, count, last, tuple(sorted(
            pid for (pid,) in db.execute("SELECT DISTINCT persona_id FROM turns WHERE session_id = ?", (sid,))
        )))
        for sid, count, last in rows
    ]
