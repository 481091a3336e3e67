"""The data that flows through the runtime: requests, responses, turns, attempts, replies.

This module depends on nothing else of ours at run time (``Persona`` is named only in
annotations), so every layer can use it: providers build ``ProviderResponse``s from
``ProviderRequest``s, memory stores ``Turn``s, the cascade records ``Attempt``s, and the
session actor returns a ``Reply``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._personas import Persona

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "ProviderRequest",
    "ProviderResponse",
    "Reply",
    "Restart",
    "Segment",
    "Turn",
    "Usage",
]


@attrs.frozen
class Usage:
    """Token usage reported by the provider that answered."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@attrs.frozen
class Turn:
    """One earlier exchange of a conversation: what the user said and what was answered."""

    user: str
    assistant: str
    persona_id: str = ""
    provider: str = ""
    model: str | None = None
    created_at: float = 0.0


@attrs.frozen
class ProviderRequest:
    """Everything a provider needs to answer one message.

    Attributes:
        session_id: The conversation this message belongs to.
        persona: The persona to answer as.
        message: The user's message (validated: non-empty, within limits).
        system_prompt: The persona rendered as a system prompt for remote models.
        history: Earlier turns of this (session, persona) conversation, oldest first.
        deadline: The absolute time (``anyio.current_time()``) the reply is due by.
        prefill: The start of the answer, already shown to the user, when a cut answer
            is being continued: providers send it as a final assistant message and
            answer only what comes after it. Empty for a fresh answer.
    """

    session_id: str
    persona: Persona
    message: str
    system_prompt: str
    history: tuple[Turn, ...] = ()
    deadline: float = float("inf")
    prefill: str = ""

    def messages(self) -> list[dict[str, str]]:
        """The history and the message as chat messages (``role``/``content``), oldest first.

        With a ``prefill``, the last message is the assistant's partial answer.
        """
        out: list[dict[str, str]] = []
        for turn in self.history:
            out.append({"role": "user", "content": turn.user})
            out.append({"role": "assistant", "content": turn.assistant})
        out.append({"role": "user", "content": self.message})
        if self.prefill:
            out.append({"role": "assistant", "content": self.prefill})
        return out


@attrs.frozen
class ProviderResponse:
    """A provider's answer."""

    text: str
    model: str | None = None
    usage: Usage | None = None


class AttemptOutcome(str, enum.Enum):
    """How one provider attempt ended."""

    SUCCESS = "success"
    TRANSIENT = "transient"  # retried after the schedule's delay, if time allows
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    PERMANENT = "permanent"  # next provider, no retry
    CONTENT_POLICY = "content_policy"
    UNAVAILABLE = "unavailable"  # skipped at once (missing key, missing executable)
    UNREACHABLE = "unreachable"  # no connection could be made (DNS, refused, TLS): next provider at once
    CIRCUIT_OPEN = "circuit_open"  # skipped at once by the breaker
    ERROR = "error"  # the provider raised something that is not a ProviderError: a bug in it
    CANCELLED = "cancelled"  # lost a hedge race, or the caller gave up
    DEADLINE = "deadline"  # cut or not started because the response deadline was near
    PREFILL_REJECTED = "prefill_rejected"  # would not continue a cut answer: the next provider is tried

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Attempt:
    """One provider attempt (or skip) made for a message.

    Attributes:
        provider: The config entry's name.
        outcome: How it ended.
        error: Why it failed or was skipped (secrets redacted), None on success.
        duration: Seconds it took (0 for skips).
        model: The model that answered, on success.
        usage: Token usage, on success.
        retry_after: The wait the provider asked for, on rate limits.
    """

    provider: str
    outcome: AttemptOutcome
    error: str | None = None
    duration: float = 0.0
    model: str | None = None
    usage: Usage | None = None
    retry_after: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome is AttemptOutcome.SUCCESS


@attrs.frozen
class Segment:
    """The part of an answer one provider produced (a continued answer has several).

    Attributes:
        provider: The config entry's name.
        model: The model that produced it, if the provider said.
        characters: How many characters of ``Reply.text`` it produced.
    """

    provider: str
    model: str | None
    characters: int


@attrs.frozen
class Restart:
    """In ``ReplyStream.events()``: the answer so far is withdrawn; a new one follows from its start.

    Attributes:
        discarded: The text delivered before the restart (now void).
        reason: Why the first answer could not be completed or continued.
    """

    discarded: str
    reason: str


@attrs.frozen
class Reply:
    """The answer to one message.

    Attributes:
        text: The answer.
        provider: The name of the config entry that answered.
        persona_id: The persona that answered (``"neutral"`` for unknown ids).
        session_id: The session the message belongs to.
        fallback_used: True when the local persona fallback answered.
        attempts: Every attempt made, in order; only the last successful one answered.
        model: The model that answered, as the provider reported it.
        usage: The answering provider's token usage (failed attempts never count).
        elapsed: Seconds from ``ask`` to the reply.
        refusal: A provider's content-policy reason, when one refused the message.
        segments: Which provider produced which part of ``text``, in order: one segment,
            or several when a cut streamed answer was continued by another attempt.
    """

    text: str
    provider: str
    persona_id: str
    session_id: str
    fallback_used: bool
    attempts: tuple[Attempt, ...] = ()
    model: str | None = None
    usage: Usage | None = None
    elapsed: float = 0.0
    refusal: str | None = None
    segments: tuple[Segment, ...] = ()

    def skipped(self) -> list[str]:
        """Human lines saying why each provider before the answering one did not answer."""
        lines: list[str] = []
        for attempt in self.attempts:
            if attempt.outcome is not AttemptOutcome.SUCCESS:
                lines.append(f"{attempt.provider}: {attempt.error or attempt.outcome.value}")
        return lines
