"""Conversation stores: where turns live. Blocking, and owned by the memory actor.

A store is a small synchronous interface; the memory actor calls it from its own
worker thread (SQLite, in ``_sqlite.py``) or inline (the process-local store here,
which never hops threads and so works on trio's virtual clock).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import attrs

from .._messages import Turn

__all__ = ["ConversationStore", "InProcessStore", "SessionSummary"]


@attrs.frozen
class SessionSummary:
    """One stored session, as ``valis history`` lists it.

    Attributes:
        session_id: The session.
        turns: How many turns are stored for it.
        last_activity: When its latest stored turn was made (seconds since the epoch).
        personas: The persona ids it holds turns of, sorted.
    """

    session_id: str
    turns: int
    last_activity: float
    personas: tuple[str, ...] = ()


class ConversationStore(Protocol):
    """What the memory actor needs from a storage backend (all calls blocking)."""

    #: True if calls may block and must run in a worker thread.
    blocking: bool
    # Optional: ``fenced = True`` if ``append`` takes ``epochs={session_id: fencing token}``
    # and rejects stale tokens (cluster mode's stores). A store that is not blocking may
    # also define its calls as coroutines, which the memory actor awaits.

    def append(self, rows: Sequence[tuple[str, Turn]], max_stored: int) -> None:
        """Store turns ``(session_id, turn)`` in one transaction; trim each session to ``max_stored``."""

    def recent(self, session_id: str, persona_id: str | None, limit: int) -> list[Turn]:
        """The last ``limit`` turns of a session (of one persona, if given), oldest first."""

    def forget(self, session_id: str) -> int:
        """Delete a session's turns; return how many there were."""

    def sessions(self, limit: int) -> list[SessionSummary]:
        """The stored sessions, most recently active first, at most ``limit`` of them."""

    def close(self) -> None:
        """Release the store."""


class InProcessStore:
    """Turns kept in this process only: for tests and ephemeral apps."""

    blocking = False

    def __init__(self) -> None:
        self._turns: dict[str, list[Turn]] = defaultdict(list)

    def append(self, rows: Sequence[tuple[str, Turn]], max_stored: int) -> None:
        for session_id, turn in rows:
            turns = self._turns[session_id]
            turns.append(turn)
            if len(turns) > max_stored:
                del turns[:-max_stored]

    def recent(self, session_id: str, persona_id: str | None, limit: int) -> list[Turn]:
        turns = self._turns.get(session_id, [])
        if persona_id is not None:
            turns = [t for t in turns if t.persona_id == persona_id]
        return list(turns[-limit:]) if limit > 0 else []

    def forget(self, session_id: str) -> int:
        return len(self._turns.pop(session_id, []))

    def sessions(self, limit: int) -> list[SessionSummary]:
        found = [
            SessionSummary(sid, len(turns), max(t.created_at for t in turns), tuple(sorted({t.persona_id for t in turns})))
            for sid, turns in self._turns.items()
            if turns
        ]
        found.sort(key=lambda s: s.last_activity, reverse=True)
        return found[:max(0, limit)]

    def close(self) -> None:
        self._turns.clear()
