"""Structured runtime events, delivered to one hook (the testing recorder, observability).

The hook is a plain callable run synchronously by the emitting actor: it must be
quick and must not block. When no hook is set, nothing is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["EventHook", "EventKind", "RuntimeEvent"]


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
