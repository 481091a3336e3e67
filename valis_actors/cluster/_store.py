"""Conversation turns in Redis, fenced by the session's epoch inside one Lua script.

The shape follows ``valis_actors._memory._store.ConversationStore`` (append / recent / forget /
sessions / close), async because the store talks to Redis from the event loop, and ``append``
carries the epoch each session's writer holds. Turns are kept per (session, persona)
in a list trimmed to ``max_stored``; a set per session indexes its personas.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence

import anyio

from .. import Turn
from .._memory import SessionSummary
from . import _scripts
from ._connection import RedisConnection, session_tag
from ._errors import StaleEpochError

__all__ = ["RedisConversationStore"]


def _dump(turn: Turn) -> str:
    return json.dumps(
        [turn.user, turn.assistant, turn.persona_id, turn.provider, turn.model, turn.created_at],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _load(raw: str) -> Turn:
    user, assistant, persona_id, provider, model, created_at = json.loads(raw)
    return Turn(user, assistant, persona_id, provider, model, created_at)


_GLOB = re.compile(r"[*?\[\]\\]")
_ESCAPED = re.compile(r"%([0-9A-F]{2})")


def _untag(tag: str) -> str:
    """The session id of a ``session_tag`` (``{...}`` with ``{``, ``}`` and ``%`` escaped)."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), tag[1:-1])


class RedisConversationStore:
    """Turns shared by every process through Redis; writes of a stale owner are rejected.

    Args:
        connection: From :func:`open_redis`.
        epoch_key: ``SessionLeases.epoch_key``: where the session's current epoch lives.
    """

    blocking = False

    def __init__(self, connection: RedisConnection, epoch_key: Callable[[str], str]) -> None:
        self.connection = connection
        self._epoch_key = epoch_key

    def _list_prefix(self, session_id: str) -> str:
        return self.connection.key("turns", session_tag(session_id), "")

    def _index_key(self, session_id: str) -> str:
        return self.connection.key("personas", session_tag(session_id))

    async def append(
        self, rows: Sequence[tuple[str, Turn]], max_stored: int, *, epochs: Mapping[str, int]
    ) -> None:
        """Store turns ``(session_id, turn)``; each session's rows atomically, if its epoch is current.

        Args:
            rows: The turns, in order.
            max_stored: Turns kept per (session, persona); older ones are trimmed.
            epochs: The epoch each session's writer holds (its lease grant's epoch).

        Each session's rows are one script; the scripts of several sessions run at once.

        Raises:
            StaleEpochError: Some session's epoch is not its current one; those rows were
                discarded, the other sessions' rows were stored.
            ClusterUnavailableError: Redis cannot be reached; nothing is known to be stored.
        """
        by_session: dict[str, list[Turn]] = {}
        for session_id, turn in rows:
            by_session.setdefault(session_id, []).append(turn)
        for session_id in by_session:
            if session_id not in epochs:
                raise KeyError(f"no epoch given for session {session_id!r}")
        rejected: dict[str, tuple[int, int | None]] = {}
        failures: list[BaseException] = []

        async def store(session_id: str, turns: list[Turn]) -> None:
            epoch = epochs[session_id]
            prefix = self._list_prefix(session_id)
            keys = [self._epoch_key(session_id), self._index_key(session_id)]
            args: list[str | int] = [str(epoch), max(1, max_stored)]
            for turn in turns:
                key = prefix + turn.persona_id
                if key not in keys:
                    keys.append(key)
                args += [keys.index(key) + 1, turn.persona_id, _dump(turn)]
            try:
                result = await self.connection.script(
                    f"store turns of session {session_id!r}", _scripts.APPEND_TURNS, keys, args
                )
            except Exception as exc:  # noqa: BLE001 - raised below, unwrapped, after the others
                failures.append(exc)
                return
            if not int(result[0]):
                current = result[1] if len(result) > 1 else None
                rejected[session_id] = (epoch, int(current) if current else None)

        if len(by_session) == 1:
            [(session_id, turns)] = by_session.items()
            await store(session_id, turns)
        else:
            # One script per session, all in flight at once: a batch of many sessions costs
            # about one round trip, not one per session.
            async with anyio.create_task_group() as tg:
                for session_id, turns in by_session.items():
                    tg.start_soon(store, session_id, turns)
        if failures:
            raise failures[0]
        if rejected:
            raise StaleEpochError(rejected)

    async def recent(self, session_id: str, persona_id: str | None, limit: int) -> list[Turn]:
        """The last ``limit`` turns of a session (of one persona, if given), oldest first."""
        if limit <= 0:
            return []
        prefix = self._list_prefix(session_id)
        action = f"read turns of session {session_id!r}"
        if persona_id is not None:
            raw = await self.connection.call(action, lambda c: c.lrange(prefix + persona_id, -limit, -1))
            return [_load(r) for r in raw]
        personas = await self.connection.call(action, lambda c: c.smembers(self._index_key(session_id)))
        turns: list[Turn] = []
        for persona in sorted(personas):
            key = prefix + persona
            raw = await self.connection.call(action, lambda c: c.lrange(key, -limit, -1))  # noqa: B023
            turns += [_load(r) for r in raw]
        turns.sort(key=lambda t: t.created_at)  # stable: one persona's turns keep their order
        return turns[-limit:]

    async def forget(self, session_id: str) -> int:
        """Delete a session's turns; return how many there were."""
        return int(
            await self.connection.script(
                f"forget session {session_id!r}",
                _scripts.FORGET_TURNS,
                [self._index_key(session_id)],
                [self._list_prefix(session_id)],
            )
        )

    async def sessions(self, limit: int) -> list[SessionSummary]:
        """The stored sessions, most recently active first (at most ``limit``).

        Walks the per-session persona indexes with SCAN (never KEYS: it does not block
        Redis), so it costs a round trip per session: meant for an operator's listing.
        """
        if limit <= 0:
            return []
        head = self.connection.key("personas", "")
        pattern = _GLOB.sub(r"\\\g<0>", head) + "{*}"
        action = "list the stored sessions"
        index_keys: set[str] = set()
        cursor = 0
        while True:
            cursor, found = await self.connection.call(
                action, lambda c: c.scan(cursor, match=pattern, count=500)  # noqa: B023
            )
            index_keys.update(found)
            if not cursor:
                break
        summaries: list[SessionSummary] = []
        for key in index_keys:
            session_id = _untag(key[len(head):])
            prefix = self._list_prefix(session_id)
            personas = sorted(await self.connection.call(action, lambda c: c.smembers(key)))  # noqa: B023
            count, last = 0, 0.0
            for persona in personas:
                list_key = prefix + persona
                count += int(await self.connection.call(action, lambda c: c.llen(list_key)))  # noqa: B023
                raw = await self.connection.call(action, lambda c: c.lindex(list_key, -1))  # noqa: B023
                if raw is not None:
                    last = max(last, _load(raw).created_at)
            if count:
                summaries.append(SessionSummary(session_id, count, last, tuple(personas)))
        summaries.sort(key=lambda s: (-s.last_activity, s.session_id))
        return summaries[:limit]

    async def close(self) -> None:
        """Nothing to release: the connection belongs to :func:`open_redis`."""
