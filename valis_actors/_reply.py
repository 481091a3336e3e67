"""What a caller gets back: the reply and the record of every attempt behind it."""

from __future__ import annotations

import enum

import attrs

from ._provider import Usage

__all__ = ["Attempt", "AttemptOutcome", "Reply"]


class AttemptOutcome(str, enum.Enum):
    """How one provider attempt ended."""

    SUCCESS = "success"
    TRANSIENT = "transient"  # retried after the schedule's delay, if time allows
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    PERMANENT = "permanent"  # next provider, no retry
    CONTENT_POLICY = "content_policy"
    UNAVAILABLE = "unavailable"  # skipped at once (missing key, missing executable)
    CIRCUIT_OPEN = "circuit_open"  # skipped at once by the breaker
    ERROR = "error"  # the provider raised something that is not a ProviderError: a bug in it
    CANCELLED = "cancelled"  # lost a hedge race, or the caller gave up
    DEADLINE = "deadline"  # cut or not started because the response deadline was near

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

    def skipped(self) -> list[str]:
        """Human lines saying why each provider before the answering one did not answer."""
        lines: list[str] = []
        for attempt in self.attempts:
            if attempt.outcome is not AttemptOutcome.SUCCESS:
                lines.append(f"{attempt.provider}: {attempt.error or attempt.outcome.value}")
        return lines
