"""One message on its way through a session actor, and the slot for its reply."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._cascade import Delivery, MessageScope
from .._messages import Reply, Turn
from .._personas import Persona
from ._signal import Signal

__all__ = ["PARK", "Envelope", "EnvelopeState"]


class EnvelopeState(enum.Enum):
    QUEUED = 0
    RUNNING = 1
    DONE = 2
    DROPPED = 3


class Envelope:
    """One message on its way through a session actor, and the slot for its reply."""

    __slots__ = (
        "abandoned",
        "accepted",
        "call",
        "deadline",
        "delivery",
        "done",
        "error",
        "history",
        "message",
        "persona",
        "reply",
        "result",
        "scope",
        "seq",
        "started",
        "state",
        "system_prompt",
    )

    def __init__(self, persona: Persona, message: str, started: float, deadline: float, done: Signal) -> None:
        self.persona = persona
        self.message = message
        self.started = started
        self.deadline = deadline
        self.done = done
        self.abandoned = False
        self.state = EnvelopeState.QUEUED
        self.reply: Reply | None = None
        self.error: BaseException | None = None
        # An app step run in the session's order (Runtime.run_in_session) instead of a message.
        self.call: Callable[[], Awaitable[Any]] | None = None
        self.result: Any = None
        self.scope: anyio.CancelScope | MessageScope | None = None
        self.seq = -1  # numbered in mailbox order (see SessionContext.accept)
        self.accepted = False
        self.delivery: Delivery | None = None
        # Caller-supplied context (the HTTP server passes the client's history and system prompt).
        self.history: tuple[Turn, ...] | None = None
        self.system_prompt: str | None = None

    def abandon(self) -> bool:
        """The caller gave up. True if the message was still queued (it is dropped, never started);
        a running message has its cancel scope cancelled instead."""
        self.abandoned = True
        if self.state is EnvelopeState.QUEUED:
            self.state = EnvelopeState.DROPPED
            return True
        if self.state is EnvelopeState.RUNNING and self.scope is not None:
            self.scope.cancel()
        return False

    def fail(self, error: BaseException) -> None:
        """Complete the envelope with an error for its caller."""
        if self.state is not EnvelopeState.DROPPED:
            self.state = EnvelopeState.DONE
        self.error = error
        self.done.set()


class _Park:
    """The janitor's token: "end your task if your mailbox is empty"."""

    __slots__ = ()


PARK = _Park()
