"""The cascade: how one message is answered, provider after provider, by the deadline.

For each enabled provider in config order: skip it at once if it is unavailable
or its circuit is open; otherwise attempt it under its timeout and the runtime-wide
concurrency limit, retrying transient failures after the ``retry_schedule``
delays (a longer Retry-After wins). Permanent failures go to the next provider.
Nothing is started that cannot end before the response deadline; the persona
fallback answers when every other provider has failed or the deadline is near.

Provider errors arrive only as our own ``ProviderError`` types (each provider
maps its third-party errors at its boundary); anything else a provider raises is
a bug in it, logged with its traceback and counted as a failed attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio
import attrs

from ._breaker import BreakerActor, Gate, Outcome
from ._errors import (
    ContentPolicyError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    TransientProviderError,
)
from ._events import EventHook, EventKind, RuntimeEvent
from ._provider import BaseProvider, ProviderRequest, ProviderResponse
from ._reply import Attempt, AttemptOutcome

__all__ = ["Cascade", "CascadeResult"]

logger = logging.getLogger("valis_actors.cascade")

# Time kept back from the deadline for the persona fallback, which answers locally
# in microseconds; attempts that would end later than this are cut.
FALLBACK_RESERVE = 0.002
# An attempt given less than this is not started: it could not finish.
MIN_ATTEMPT_TIME = 0.001

_BREAKER_OUTCOME = {
    AttemptOutcome.SUCCESS: Outcome.SUCCESS,
    AttemptOutcome.PERMANENT: Outcome.SUCCESS,  # the provider is up; the request was bad
    AttemptOutcome.CONTENT_POLICY: Outcome.SUCCESS,
    AttemptOutcome.TRANSIENT: Outcome.FAILURE,
    AttemptOutcome.RATE_LIMITED: Outcome.FAILURE,
    AttemptOutcome.TIMEOUT: Outcome.FAILURE,
    AttemptOutcome.ERROR: Outcome.FAILURE,
}


@attrs.frozen
class CascadeResult:
    """What the cascade produced for one message."""

    response: ProviderResponse
    provider: str
    fallback_used: bool
    attempts: tuple[Attempt, ...]
    refusal: str | None = None


@attrs.define
class _Trial:
    """The outcome of one call to a provider (internal)."""

    attempt: Attempt
    response: ProviderResponse | None = None
    retry_after: float | None = None


class Cascade:
    """Runs the provider cascade for messages; shared by every session actor.

    It holds no per-message state: each call to :meth:`answer` has its own.
    """

    def __init__(
        self,
        providers: Sequence[BaseProvider],
        fallback: BaseProvider,
        *,
        breaker: BreakerActor,
        limiter: anyio.Semaphore,
        retry_schedule: Sequence[float],
        provider_timeout: float,
        content_policy_failover: bool = False,
        hook: EventHook | None = None,
    ) -> None:
        self.providers = tuple(providers)
        self.fallback = fallback
        self._breaker = breaker
        self._limiter = limiter
        self._schedule = tuple(retry_schedule)
        self._provider_timeout = provider_timeout
        self._policy_failover = content_policy_failover
        self._hook = hook

    async def answer(self, request: ProviderRequest, *, seq: int | None = None) -> CascadeResult:
        """Answer ``request`` by ``request.deadline``: a provider's answer, or the fallback's."""
        attempts: list[Attempt] = []
        refusal: str | None = None
        with anyio.CancelScope(deadline=request.deadline - FALLBACK_RESERVE):
            for provider in self.providers:
                trial = await self._run_provider(provider, request, attempts, seq)
                if trial is not None and trial.response is not None:
                    return CascadeResult(trial.response, provider.name, False, tuple(attempts))
                last = attempts[-1] if attempts else None
                if last is not None and last.outcome is AttemptOutcome.CONTENT_POLICY:
                    refusal = last.error
                    if not self._policy_failover:
                        break
        response = await self.fallback.get_response(request)
        return CascadeResult(response, self.fallback.name, True, tuple(attempts), refusal)

    async def _run_provider(
        self, provider: BaseProvider, request: ProviderRequest, attempts: list[Attempt], seq: int | None
    ) -> _Trial | None:
        """Try one provider with retries; the successful trial, or None to move on."""
        for retry in range(len(self._schedule) + 1):
            trial = await self._attempt(provider, request, attempts, seq)
            if trial is None:
                return None  # deadline reached while waiting: the scope is cancelled
            attempts.append(trial.attempt)
            outcome = trial.attempt.outcome
            if outcome is AttemptOutcome.SUCCESS:
                return trial
            if outcome not in (AttemptOutcome.TRANSIENT, AttemptOutcome.RATE_LIMITED, AttemptOutcome.TIMEOUT):
                return None
            if retry == len(self._schedule):
                return None
            delay = self._schedule[retry]
            if trial.retry_after is not None and trial.retry_after > delay:
                delay = trial.retry_after
            if anyio.current_time() + delay >= request.deadline - FALLBACK_RESERVE:
                attempts.append(
                    Attempt(provider.name, AttemptOutcome.DEADLINE, f"retry in {delay:g}s would miss the deadline")
                )
                return None
            await anyio.sleep(delay)
        return None

    async def _attempt(
        self, provider: BaseProvider, request: ProviderRequest, attempts: list[Attempt], seq: int | None
    ) -> _Trial | None:
        name = provider.name
        reason = provider.unavailable_reason()
        if reason is not None:
            return _Trial(Attempt(name, AttemptOutcome.UNAVAILABLE, provider.redact(reason)))
        gate = self._breaker.gate(name)
        probe = False
        if gate is Gate.SKIP:
            return _Trial(Attempt(name, AttemptOutcome.CIRCUIT_OPEN, "circuit open"))
        if gate is Gate.ASK:
            if not await self._breaker.acquire_probe(name):
                return _Trial(Attempt(name, AttemptOutcome.CIRCUIT_OPEN, "circuit open (probe in flight)"))
            probe = True
        verdict: Outcome = Outcome.RELEASE
        try:
            timeout = min(
                provider.settings.timeout or self._provider_timeout,
                request.deadline - FALLBACK_RESERVE - anyio.current_time(),
            )
            if timeout < MIN_ATTEMPT_TIME:
                return _Trial(Attempt(name, AttemptOutcome.DEADLINE, "no time left before the deadline"))
            async with self._limiter:
                trial = await self._call(provider, request, timeout, attempts, seq)
            verdict = _BREAKER_OUTCOME.get(trial.attempt.outcome, Outcome.RELEASE)
            return trial
        finally:
            if probe or verdict is not Outcome.RELEASE:
                self._breaker.report(name, verdict, probe=probe)

    async def _call(
        self,
        provider: BaseProvider,
        request: ProviderRequest,
        timeout: float,
        attempts: list[Attempt],
        seq: int | None,
    ) -> _Trial:
        name = provider.name
        hook = self._hook
        started = anyio.current_time()
        if hook is not None:
            hook(RuntimeEvent(EventKind.ATTEMPT_STARTED, started, request.session_id, seq, name))
        trial: _Trial
        try:
            with anyio.move_on_after(timeout) as scope:
                response = await provider.get_response(request)
            if scope.cancelled_caught:
                raise ProviderTimeoutError(f"no answer within {timeout:g}s")
            if not isinstance(response, ProviderResponse) or not isinstance(response.text, str):
                raise TypeError(f"get_response returned {type(response).__name__}, not a ProviderResponse")
            trial = _Trial(
                Attempt(
                    name,
                    AttemptOutcome.SUCCESS,
                    duration=anyio.current_time() - started,
                    model=response.model,
                    usage=response.usage,
                ),
                response,
            )
        except anyio.get_cancelled_exc_class():
            now = anyio.current_time()
            cut = now >= request.deadline - FALLBACK_RESERVE
            outcome = AttemptOutcome.DEADLINE if cut else AttemptOutcome.CANCELLED
            reason = "cut by the response deadline" if cut else "cancelled"
            attempts.append(Attempt(name, outcome, reason, now - started))
            if hook is not None:
                hook(
                    RuntimeEvent(
                        EventKind.ATTEMPT_FINISHED, now, request.session_id, seq, name, {"outcome": outcome.value}
                    )
                )
            raise
        except ProviderError as exc:
            trial = self._failure(provider, exc, anyio.current_time() - started)
        except Exception as exc:
            logger.error("provider %r raised %s: a bug in the provider", name, type(exc).__name__, exc_info=True)
            message = provider.redact(f"{type(exc).__name__}: {exc}")
            trial = _Trial(Attempt(name, AttemptOutcome.ERROR, message, anyio.current_time() - started))
        if hook is not None:
            hook(
                RuntimeEvent(
                    EventKind.ATTEMPT_FINISHED, anyio.current_time(), request.session_id, seq, name,
                    {"outcome": trial.attempt.outcome.value, "error": trial.attempt.error},
                )
            )
        return trial

    @staticmethod
    def _failure(provider: BaseProvider, exc: ProviderError, duration: float) -> _Trial:
        message = provider.redact(str(exc))
        name = provider.name
        if isinstance(exc, RateLimitedError):
            attempt = Attempt(name, AttemptOutcome.RATE_LIMITED, message, duration, retry_after=exc.retry_after)
            return _Trial(attempt, retry_after=exc.retry_after)
        if isinstance(exc, ProviderTimeoutError):
            return _Trial(Attempt(name, AttemptOutcome.TIMEOUT, message, duration))
        if isinstance(exc, TransientProviderError):
            return _Trial(Attempt(name, AttemptOutcome.TRANSIENT, message, duration))
        if isinstance(exc, ContentPolicyError):
            return _Trial(Attempt(name, AttemptOutcome.CONTENT_POLICY, message, duration))
        if isinstance(exc, PermanentProviderError):
            return _Trial(Attempt(name, AttemptOutcome.PERMANENT, message, duration))
        if isinstance(exc, ProviderUnavailableError):
            return _Trial(Attempt(name, AttemptOutcome.UNAVAILABLE, message, duration))
        return _Trial(Attempt(name, AttemptOutcome.ERROR, message, duration))
