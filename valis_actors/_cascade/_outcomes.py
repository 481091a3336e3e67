"""What an attempt's outcome means: one table, read by the cascade and the breaker.

Every ``ProviderError`` subclass maps to one ``AttemptOutcome`` (``ERROR_OUTCOMES``; a
test fails when a subclass has no row), and every outcome has one ``Rule``: whether the
same provider is tried again (after the ``retry_schedule`` delay, or a longer
Retry-After), whether the cascade moves on to the next provider, and what the circuit
breaker hears.

| outcome        | retry same | next provider              | breaker hears |
|----------------|------------|----------------------------|---------------|
| success        | -          | -                          | success       |
| transient      | yes        | after the retries          | failure       |
| rate_limited   | yes        | after the retries          | failure       |
| timeout        | no (``retry_timeouts: true``: yes) | yes          | failure       |
| permanent      | no         | yes                        | success (the provider is up; the request was bad) |
| content_policy | no         | if ``content_policy_failover`` | success   |
| unavailable    | no         | yes, at once (no network)  | release       |
| unreachable    | no         | yes, at once (nothing was sent) | failure  |
| circuit_open   | no         | yes, at once               | release       |
| error          | no         | yes (a bug in the provider) | failure      |
| cancelled      | no         | -                          | release       |
| deadline       | no         | - (the fallback answers)   | release       |
| prefill_rejected | no       | yes, to continue the cut answer | success (the provider is up) |
"""

from __future__ import annotations

import enum

import attrs

from .._errors import (
    ContentPolicyError,
    PermanentProviderError,
    PrefillRejectedError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    ProviderUnreachableError,
    RateLimitedError,
    TransientProviderError,
)
from .._messages import AttemptOutcome

__all__ = ["ERROR_OUTCOMES", "RULES", "Rule", "Verdict", "outcome_of", "rule_of"]


class Verdict(enum.Enum):
    """What the breaker hears about an attempt."""

    SUCCESS = "success"
    FAILURE = "failure"
    RELEASE = "release"  # says nothing about the provider (a probe gives its permit back)


@attrs.frozen
class Rule:
    """What one outcome means for the cascade and the breaker."""

    retry_same: bool
    next_provider: bool
    breaker: Verdict


RULES: dict[AttemptOutcome, Rule] = {
    AttemptOutcome.SUCCESS: Rule(retry_same=False, next_provider=False, breaker=Verdict.SUCCESS),
    AttemptOutcome.TRANSIENT: Rule(retry_same=True, next_provider=True, breaker=Verdict.FAILURE),
    AttemptOutcome.RATE_LIMITED: Rule(retry_same=True, next_provider=True, breaker=Verdict.FAILURE),
    # A timeout says little about the next try on the same provider; the next provider
    # usually does better. `retry_timeouts` in config.json turns retries back on.
    AttemptOutcome.TIMEOUT: Rule(retry_same=False, next_provider=True, breaker=Verdict.FAILURE),
    AttemptOutcome.PERMANENT: Rule(retry_same=False, next_provider=True, breaker=Verdict.SUCCESS),
    # next_provider here is the default; `content_policy_failover` in config.json decides.
    AttemptOutcome.CONTENT_POLICY: Rule(retry_same=False, next_provider=False, breaker=Verdict.SUCCESS),
    AttemptOutcome.UNAVAILABLE: Rule(retry_same=False, next_provider=True, breaker=Verdict.RELEASE),
    # No connection was made (DNS, refused, TLS): retrying within the message only
    # waits; the breaker hears a failure, so once it opens the next asks skip it at once.
    AttemptOutcome.UNREACHABLE: Rule(retry_same=False, next_provider=True, breaker=Verdict.FAILURE),
    AttemptOutcome.CIRCUIT_OPEN: Rule(retry_same=False, next_provider=True, breaker=Verdict.RELEASE),
    AttemptOutcome.ERROR: Rule(retry_same=False, next_provider=True, breaker=Verdict.FAILURE),
    AttemptOutcome.CANCELLED: Rule(retry_same=False, next_provider=False, breaker=Verdict.RELEASE),
    AttemptOutcome.DEADLINE: Rule(retry_same=False, next_provider=False, breaker=Verdict.RELEASE),
    # The model will not continue a cut answer; it would answer a fresh request. The next
    # provider that can is asked (and this one is not asked to continue again).
    AttemptOutcome.PREFILL_REJECTED: Rule(retry_same=False, next_provider=True, breaker=Verdict.SUCCESS),
}

# Most specific first is not needed: lookups walk the error's MRO.
ERROR_OUTCOMES: dict[type[ProviderError], AttemptOutcome] = {
    ProviderError: AttemptOutcome.ERROR,
    TransientProviderError: AttemptOutcome.TRANSIENT,
    RateLimitedError: AttemptOutcome.RATE_LIMITED,
    ProviderTimeoutError: AttemptOutcome.TIMEOUT,
    PermanentProviderError: AttemptOutcome.PERMANENT,
    ContentPolicyError: AttemptOutcome.CONTENT_POLICY,
    ProviderUnavailableError: AttemptOutcome.UNAVAILABLE,
    PrefillRejectedError: AttemptOutcome.PREFILL_REJECTED,
    ProviderUnreachableError: AttemptOutcome.UNREACHABLE,
}


def outcome_of(error: ProviderError) -> AttemptOutcome:
    """The outcome an error means: the row of its class, or of its nearest listed base."""
    for cls in type(error).__mro__:
        outcome = ERROR_OUTCOMES.get(cls)
        if outcome is not None:
            return outcome
    return AttemptOutcome.ERROR  # pragma: no cover - ProviderError itself has a row


def rule_of(outcome: AttemptOutcome) -> Rule:
    """The rule of an outcome (every outcome has one)."""
    return RULES[outcome]
