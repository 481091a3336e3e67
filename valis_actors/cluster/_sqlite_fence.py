"""The epoch check for the SQLite store (one host, several processes): inside the write transaction.

Same ``turns`` table as ``valis_actors._sqlite`` (the file stays readable by it), plus

    session_epochs (session_id PRIMARY KEY, epoch)  -- the highest epoch that claimed or wrote

``append`` runs in one ``BEGIN IMMEDIATE`` transaction (SQLite's write lock, taken
before reading): for each session it reads the stored epoch, rejects the rows if the
writer's epoch is older, else inserts them and raises the stored epoch to the writer's.
A new owner calls :meth:`claim_epoch` right after its lease grant, so an older owner is
rejected even before the new one has written anything. Epochs in the file survive a
Redis restart: pass :meth:`current_epoch` as ``epoch_floor`` to ``SessionLeases.acquire``.
Blocking: call it from the memory actor's worker thread, as the SQLite store is.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import MemoryStoreError, Turn
from .._memory._sqlite import TURNS_SCHEMA, select_recent, select_sessions
from .._memory._store import SessionSummary
from ._errors import StaleEpochError

__all__ = ["FencedSqliteStore"]

# The core store's schema, plus the fencing table: both stores can open one file.
_SCHEMA = TURNS_SCHEMA + """
CREATE TABLE IF NOT EXISTS session_epochs (
    session_id TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL
);
"""


class FencedSqliteStore:
    """Turns in a SQLite file (WAL mode) whose writes carry the writer's epoch. One thread at a time."""

    blocking = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise MemoryStoreError(f"cannot open memory file {str(self.path)!r}: {exc}") from exc

    def _fail(self, action: str, exc: Exception) -> MemoryStoreError:
        return MemoryStoreError(f"cannot {action} memory file {str(self.path)!r}: {exc}")

    def _stored_epoch(self, session_id: str) -> int | None:
        row = self._db.execute(
            "SELECT epoch FROM session_epochs WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def _raise_epoch(self, session_id: str, epoch: int) -> None:
        self._db.execute(
            "INSERT INTO session_epochs (session_id, epoch) VALUES (?, ?)"
            " ON CONFLICT (session_id) DO UPDATE SET epoch = max(epoch, excluded.epoch)",
            (session_id, epoch),
        )

    def current_epoch(self, session_id: str) -> int:
        """The highest epoch that claimed or wrote the session (0 if none): the lease's ``epoch_floor``."""
        try:
            return self._stored_epoch(session_id) or 0
        except sqlite3.Error as exc:
            raise self._fail("read", exc) from exc

    def claim_epoch(self, session_id: str, epoch: int) -> None:
        """Record a new owner's epoch, so that every older owner's writes are rejected from now on.

        Raises:
            StaleEpochError: A newer epoch already claimed the session.
        """
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                stored = self._stored_epoch(session_id)
                if stored is not None and stored > epoch:
                    raise StaleEpochError({session_id: (epoch, stored)})
                self._raise_epoch(session_id, epoch)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail("write to", exc) from exc

    def append(self, rows: Sequence[tuple[str, Turn]], max_stored: int, *, epochs: Mapping[str, int]) -> None:
        """Store turns whose session's epoch is current, in one transaction; trim each session.

        Raises:
            StaleEpochError: Some sessions' epochs were older than stored: their rows were
                discarded, every other session's rows were committed.
        """
        rejected: dict[str, tuple[int, int | None]] = {}
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                accepted = []
                for sid in dict.fromkeys(sid for sid, _ in rows):
                    epoch = epochs[sid]
                    stored = self._stored_epoch(sid)
                    if stored is not None and stored > epoch:
                        rejected[sid] = (epoch, stored)
                    else:
                        self._raise_epoch(sid, epoch)
                        accepted.append(sid)
                self._db.executemany(
                    "INSERT INTO turns (session_id, persona_id, user_text, reply_text, provider, model, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (sid, t.persona_id, t.user, t.assistant, t.provider, t.model, t.created_at)
                        for sid, t in rows
                        if sid not in rejected
                    ],
                )
                for sid in accepted:
                    self._db.execute(
                        "DELETE FROM turns WHERE session_id = ? AND id <= "
                        "(SELECT id FROM turns WHERE session_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (sid, sid, max_stored),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail("write to", exc) from exc
        if rejected:
            raise StaleEpochError(rejected)

    def recent(self, session_id: str, persona_id: str | None, limit: int) -> list[Turn]:
        """The last ``limit`` turns of a session (of one persona, if given), oldest first."""
        try:
            return select_recent(self._db, session_id, persona_id, limit)
        except sqlite3.Error as exc:
            raise self._fail("read", exc) from exc

    def forget(self, session_id: str) -> int:
        """Delete a session's turns (its epoch stays: fencing must survive a forget)."""
        try:
            with self._db:
                self._db.execute("BEGIN")
                return self._db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,)).rowcount
        except sqlite3.Error as exc:
            raise self._fail("delete from", exc) from exc

    def sessions(self, limit: int) -> list[SessionSummary]:
        """The stored sessions, most recently active first (at most ``limit``)."""
        try:
            return select_sessions(self._db, limit)
        except sqlite3.Error as exc:
            raise self._fail("read", exc) from exc

    def close(self) -> None:
        """Close the file."""
        self._db.close()
