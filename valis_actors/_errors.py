"""The exceptions of valis_actors.

Every error a caller can get is a ``ValisError``; third-party errors (SDK, httpx,
sqlite, subprocess) are translated into these at the boundary where they occur.

    ValisError
    ├── ConfigError (also ValueError)
    │   └── PersonaError
    │       └── CardError          (a character card file that cannot be used)
    ├── InvalidRequestError (also ValueError)
    │   ├── EmptyMessageError
    │   ├── MessageTooLongError
    │   ├── InvalidSessionIdError
    │   └── InvalidPersonaIdError
    ├── UnknownPersonaError (also LookupError)
    ├── RuntimeClosedError
    ├── MailboxFullError
    ├── SessionFailedError
    ├── ActorCrashedError
    ├── MemoryStoreError
    ├── IncompleteAnswerError
    └── ProviderError                  (raised by providers, recorded on attempts)
        ├── TransientProviderError     (retry the same provider)
        │   ├── RateLimitedError       (retry after ``retry_after`` seconds)
        │   └── ProviderTimeoutError
        ├── PermanentProviderError     (no retry; next provider)
        │   ├── ContentPolicyError
        │   └── PrefillRejectedError   (will not continue a cut answer; next provider)
        ├── ProviderUnreachableError   (no connection made: next provider, no retry)
        └── ProviderUnavailableError   (skip now, no wait, no network)
"""

from __future__ import annotations

__all__ = [
    "ActorCrashedError",
    "CardError",
    "ConfigError",
    "ContentPolicyError",
    "EmptyMessageError",
    "IncompleteAnswerError",
    "InvalidPersonaIdError",
    "InvalidRequestError",
    "InvalidSessionIdError",
    "MailboxFullError",
    "MemoryStoreError",
    "MessageTooLongError",
    "PermanentProviderError",
    "PersonaError",
    "PrefillRejectedError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "ProviderUnreachableError",
    "RateLimitedError",
    "RuntimeClosedError",
    "SessionFailedError",
    "TransientProviderError",
    "UnknownPersonaError",
    "ValisError",
]


class ValisError(Exception):
    """Base class of every error raised by valis_actors."""


class ConfigError(ValisError, ValueError):
    """The configuration is invalid; the message names the path, the problem and the fix.

    Attributes:
        problems: One line per problem found (all of them, not only the first).
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class PersonaError(ConfigError):
    """A persona file cannot be used (bad JSON, wrong field type, bad id)."""


class CardError(PersonaError):
    """A character card cannot be read, parsed or written; the message starts with the file name.

    Attributes:
        source: The file (or label) the card came from.
        problem: What is wrong, without the file name.
    """

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class InvalidRequestError(ValisError, ValueError):
    """The arguments of ``ask`` or ``stream`` were refused before reaching a mailbox."""


class EmptyMessageError(InvalidRequestError):
    """The message is empty or only whitespace."""


class MessageTooLongError(InvalidRequestError):
    """The message is longer than ``max_message_chars``."""


class InvalidSessionIdError(InvalidRequestError):
    """The session id is empty, too long, or not a string."""


class InvalidPersonaIdError(InvalidRequestError):
    """The persona id is not a valid identifier (it never reaches the file system)."""


class UnknownPersonaError(ValisError, LookupError):
    """No persona has this id, and ``unknown_persona`` is ``"error"``."""


class RuntimeClosedError(ValisError):
    """The runtime is closed (or closing) and accepts no more messages."""


class MailboxFullError(ValisError):
    """The session's mailbox stayed full until the response deadline."""


class SessionFailedError(ValisError):
    """The session actor crashed more often than its restart intensity allows."""


class ActorCrashedError(ValisError):
    """The session actor crashed while processing this message; the cause is chained."""


class MemoryStoreError(ValisError):
    """The conversation store could not be opened, read or written."""


class IncompleteAnswerError(ValisError):
    """A streamed answer was cut after its first chunk: what was received is incomplete.

    Attributes:
        provider: The provider whose answer was cut.
        attempts: Every attempt made for the message (``va.Attempt``).
        received: The text that reached the caller before the cut (the chunks, joined).
    """

    provider: str | None = None
    attempts: tuple[object, ...] = ()
    received: str = ""


class ProviderError(ValisError):
    """A provider attempt failed. Providers raise only subclasses of this.

    Args:
        message: What went wrong, safe to show (no secrets).
        provider: The provider name, filled in by the cascade when missing.
    """

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        return self.message


class TransientProviderError(ProviderError):
    """A failure that may go away: retry the same provider after the schedule's delay."""


class RateLimitedError(TransientProviderError):
    """The provider asked us to slow down.

    Args:
        retry_after: Seconds the provider asked us to wait, if it said.
    """

    def __init__(
        self, message: str = "rate limited", *, retry_after: float | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.retry_after = retry_after


class ProviderTimeoutError(TransientProviderError):
    """The attempt did not finish within the provider's timeout."""


class PermanentProviderError(ProviderError):
    """A failure that retrying cannot fix (bad key, context too long): go to the next provider."""


class ContentPolicyError(PermanentProviderError):
    """The provider refused the content. Whether other providers are tried is a config switch."""


class PrefillRejectedError(PermanentProviderError):
    """The provider refused to continue an assistant prefill (a cut answer sent back to it).

    Some models reject a conversation that ends with an assistant message (a 400). The
    cascade recognises it, never shows it as the final error, and tries the next provider.
    """

class ProviderUnreachableError(ProviderError):
    """No connection was ever made: the host did not resolve, refused, or failed the TLS handshake.

    Nothing was sent, so retrying the same provider within the message only waits;
    the cascade moves on at once and the circuit breaker counts a failure.

    Args:
        message: What went wrong and what to check, naming the URL (never a key).
        url: The provider's base URL, as shown (no credentials, no query).
        reason: The cause in a few words (``connection refused``, ``cannot resolve host x``).
    """

    def __init__(
        self, message: str, *, url: str | None = None, reason: str | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message, provider=provider)
        self.url = url
        self.reason = reason


class ProviderUnavailableError(ProviderError):
    """The provider cannot be used now (missing key, missing executable): skip it at once."""
