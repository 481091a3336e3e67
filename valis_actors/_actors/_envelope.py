"""One message on its way through a session actor, and the slot for its reply."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._cascade import CascadeResult, Delivery, MessageScope, first_reply
from .._messages import ProviderResponse, Reply, Turn
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
        "_reply",
        "abandoned",
        "accepted",
        "answer",
        "call",
        "deadline",
        "delivery",
        "done",
        "duration",
        "elapsed",
        "error",
        "history",
        "message",
        "persona",
        "provider",
        "response",
        "result",
        "scope",
        "seq",
        "session_id",
        "started",
        "state",
        "system_prompt",
    )

    def __init__(
        self, session_id: str, persona: Persona, message: str, started: float, deadline: float, done: Signal
    ) -> None:
        self.session_id = session_id
        self.persona = persona
        self.message = message
        self.started = started
        self.deadline = deadline
        self.done = done
        self.abandoned = False
        self.state = EnvelopeState.QUEUED
        # What the actor leaves for the caller's task to build the Reply from (see ``reply``):
        # the cascade's result, or for a message its first attempt answered only the
        # response, provider and attempt's duration; and the seconds from ``ask``.
        self.answer: CascadeResult | None = None
        self.response: ProviderResponse | None = None
        self.provider = ""
        self.duration = 0.0
        self.elapsed = 0.0
        self._reply: Reply | None = None
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

    @property
    def reply(self) -> Reply | None:
        """The reply, once the actor answered; built on first read, in the reader's task.

        The actor only leaves its result: a Reply and its records made in the actor's
        task would live until the caller woke up, and with thousands of sessions they
        piled up between wake-ups for the garbage collector to walk.
        """
        reply = self._reply
        if reply is None:
            answer = self.answer
            if answer is not None:
                reply = self._reply = answer.reply(self.persona.id, self.session_id, self.elapsed)
            elif self.response is not None:  # the first attempt answered
                reply = self._reply = first_reply(
                    self.response, self.provider, self.duration, self.persona.id, self.session_id, self.elapsed
                )
        return reply

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
