"""Structured runtime events, delivered to one hook (the testing recorder, observability).

The hook is a plain callable run synchronously by the emitting actor: it must be
quick and must not block. When no hook is set, nothing is built. A hook that raises
never stops the runtime: the failure is logged once and counted (``Emitter.failures``,
in ``Runtime.statistics()``), and the event is dropped for that hook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["Emitter", "EventHook", "EventKind", "RuntimeEvent"]

logger = logging.getLogger("valis_actors.events")


class EventKind:
    """The kinds of event the runtime emits (plain strings, so hooks can match cheaply)."""

    MESSAGE_ACCEPTED = "message_accepted"
    MESSAGE_STARTED = "message_started"
    ATTEMPT_STARTED = "attempt_started"
    ATTEMPT_FINISHED = "attempt_finished"
    BREAKER_TRANSITION = "breaker_transition"
    REPLY_DELIVERED = "reply_delivered"
    MESSAGE_DROPPED = "message_dropped"
    MESSAGE_FAILED = "message_failed"
    ACTOR_RESTARTED = "actor_restarted"
    SESSION_ACTIVATED = "session_activated"
    SESSION_PASSIVATED = "session_passivated"


@attrs.frozen
class RuntimeEvent:
    """One thing that happened in the runtime.

    Attributes:
        kind: One of the ``EventKind`` values.
        time: ``anyio.current_time()`` when it happened (virtual under a mock clock).
        session_id: The session concerned, if any.
        seq: The message's number: runtime-wide, from 0, increasing in acceptance order.
        provider: The provider concerned, if any.
        data: Kind-specific details (outcome, from/to states, deadline...).
    """

    kind: str
    time: float
    session_id: str | None = None
    seq: int | None = None
    provider: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)


EventHook = Callable[[RuntimeEvent], None]


class Emitter:
    """The one way the runtime emits events: ``emit(kind, session_id, seq, provider, data)``.

    Hot paths test ``emit.enabled`` before building ``data``; with no hook, nothing is built.
    """

    __slots__ = ("_clock", "_hook", "enabled", "failures")

    def __init__(self, hook: EventHook | None, clock: Callable[[], float]) -> None:
        self._hook = hook
        self._clock = clock
        self.enabled = hook is not None
        self.failures = 0  # how many times the hook raised

    def __call__(
        self,
        kind: str,
        session_id: str | None = None,
        seq: int | None = None,
        provider: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        hook = self._hook
        if hook is None:
            return
        event = RuntimeEvent(kind, self._clock(), session_id, seq, provider, data if data is not None else {})
        try:
            hook(event)
        except Exception:  # a user's observer must never stop the runtime
            self.failures += 1
            if self.failures == 1:
                logger.exception("the event hook raised on a %s event; later failures are only counted", kind)
