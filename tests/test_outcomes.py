"""One table says what every provider error means (httpx checks its exception map the same way)."""

from __future__ import annotations

import pytest

import valis_actors as va
from valis_actors._cascade._outcomes import ERROR_OUTCOMES, RULES, Verdict, outcome_of


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_provider_error_subclass_has_a_row() -> None:
    ours = {c for c in _subclasses(va.ProviderError) | {va.ProviderError} if c.__module__.startswith("valis_actors")}
    missing = ours - set(ERROR_OUTCOMES)
    assert not missing, f"add these to ERROR_OUTCOMES in _cascade/_outcomes.py: {sorted(c.__name__ for c in missing)}"


def test_every_outcome_has_a_rule() -> None:
    assert set(RULES) == set(va.AttemptOutcome)


@pytest.mark.parametrize(
    ("error", "outcome", "retried", "breaker"),
    [
        (va.RateLimitedError("slow down", retry_after=2), va.AttemptOutcome.RATE_LIMITED, True, Verdict.FAILURE),
        (va.ProviderTimeoutError("late"), va.AttemptOutcome.TIMEOUT, False, Verdict.FAILURE),
        (va.TransientProviderError("503"), va.AttemptOutcome.TRANSIENT, True, Verdict.FAILURE),
        (va.PermanentProviderError("bad key"), va.AttemptOutcome.PERMANENT, False, Verdict.SUCCESS),
        (va.ContentPolicyError("refused"), va.AttemptOutcome.CONTENT_POLICY, False, Verdict.SUCCESS),
        (va.ProviderUnavailableError("no key"), va.AttemptOutcome.UNAVAILABLE, False, Verdict.RELEASE),
        (va.ProviderError("odd"), va.AttemptOutcome.ERROR, False, Verdict.FAILURE),
    ],
)
def test_an_error_means_what_its_row_says(
    error: va.ProviderError, outcome: va.AttemptOutcome, retried: bool, breaker: Verdict
) -> None:
    assert outcome_of(error) is outcome
    assert RULES[outcome].retry_same is retried
    assert RULES[outcome].breaker is breaker


def test_a_third_party_subclass_takes_its_nearest_base_row() -> None:
    class VendorOverload(va.TransientProviderError):
        pass

    assert outcome_of(VendorOverload("overloaded")) is va.AttemptOutcome.TRANSIENT
