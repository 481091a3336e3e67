"""The cascade: how one message is answered, provider after provider, by the deadline.

For each enabled provider in config order: skip it at once if it is unavailable
or its circuit is open; otherwise attempt it under its timeout and the runtime-wide
concurrency limit, retrying transient failures after the ``retry_schedule``
delays (a longer Retry-After wins). Permanent failures go to the next provider.
Nothing is started that cannot end before the response deadline; the persona
fallback answers when every other provider has failed or the deadline is near.

A streamed answer cut after its first chunk reached the caller is *continued*: the
next provider that can (``BaseProvider.continues_prefill``) gets the conversation
plus the partial answer as a final assistant message and streams only the rest; the
same provider continues after its retry delay when its outcome allows a retry. When
no provider can, a caller that reads events gets a ``Restart`` and a fresh answer;
any other caller gets ``IncompleteAnswerError`` (see docs/architecture.md).

Provider errors arrive only as our own ``ProviderError`` types (each provider
maps its third-party errors at its boundary); anything else a provider raises is
a bug in it, logged with its traceback (redacted) and counted as a failed attempt.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import anyio
import attrs

from .._clock import Clock
from .._errors import (
    IncompleteAnswerError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    TransientProviderError,
)
from .._events import Emitter, EventKind
from .._messages import Attempt, AttemptOutcome, ProviderRequest, ProviderResponse, Reply, Segment, Usage
from ..providers._base import BaseProvider
from ..providers._common import describe_exception, redacted_traceback
from ._breaker import BreakerActor, CircuitState, Gate
from ._delivery import Delivery, Incomplete, LostRace
from ._outcomes import Verdict, outcome_of, rule_of
from ._scope import MessageScope

__all__ = ["Cascade", "CascadeResult", "first_reply"]

logger = logging.getLogger("valis_actors.cascade")

# Time kept back from the deadline for the persona fallback, which answers locally
# in microseconds; attempts that would end later than this are cut.
FALLBACK_RESERVE = 0.002
# An attempt given less than this is not started: it could not finish.
MIN_ATTEMPT_TIME = 0.001


class _Slow(Exception):
    """The first attempt must wait outside its own scope (a slot, a probe): the message's scope is needed."""


class _Cut(Exception):
    """The message was cut (its deadline, its caller gone) during its first attempt."""


@attrs.define  # not frozen: built once per message and only read (frozen costs a call per field)
class CascadeResult:
    """What the cascade produced for one message.

    ``incomplete`` is set (and ``response`` is None) when a streamed answer was cut
    after its first chunk reached the caller.

    ``duration`` is set when the first attempt answered (the common message): its one
    attempt record and segment are then built by :meth:`reply`, which runs in the
    caller's task, instead of in the actor's (``attempts`` and ``segments`` stay empty).
    With thousands of sessions, objects the actor made and kept until each caller woke
    up piled up by the thousand between two wake-ups, and the garbage collector walked
    them all, again and again; objects the caller makes and drops cost it nothing.
    """

    response: ProviderResponse | None
    provider: str
    fallback_used: bool
    attempts: tuple[Attempt, ...]
    refusal: str | None = None
    incomplete: IncompleteAnswerError | None = None
    segments: tuple[Segment, ...] = ()
    duration: float | None = None

    def reply(self, persona_id: str, session_id: str, elapsed: float) -> Reply:
        """The ``Reply`` of an answered message."""
        response = self.response
        if response is None:  # pragma: no cover - an incomplete answer fails its message instead
            raise ValueError("an incomplete answer has no reply")
        if self.duration is not None:
            return first_reply(response, self.provider, self.duration, persona_id, session_id, elapsed)
        return Reply(
            text=response.text,
            provider=self.provider,
            persona_id=persona_id,
            session_id=session_id,
            fallback_used=self.fallback_used,
            attempts=self.attempts,
            model=response.model,
            usage=response.usage,
            elapsed=elapsed,
            refusal=self.refusal,
            segments=self.segments,
        )


def first_reply(
    response: ProviderResponse, provider: str, duration: float, persona_id: str, session_id: str, elapsed: float
) -> Reply:
    """The ``Reply`` of a message its first attempt answered: one attempt, one segment."""
    model, usage, text = response.model, response.usage, response.text
    # Positional, in ``Reply``'s field order (text, provider, persona_id, session_id,
    # fallback_used, attempts, model, usage, elapsed, refusal, segments): a frozen attrs init costs a call per
    # field, and keywords about a third more again; this runs once per message.
    return Reply(
        text, provider, persona_id, session_id, False,
        (Attempt(provider, AttemptOutcome.SUCCESS, None, duration, model, usage),),
        model, usage, elapsed, None, (Segment(provider, model, len(text)),),
    )


class _Trial:
    """The outcome of one call to a provider (internal).

    A success keeps its duration, and builds its attempt record only when asked: the
    common message's record is built with its reply, in the caller's task.
    """

    __slots__ = ("_attempt", "duration", "name", "response")

    def __init__(
        self, attempt: Attempt | None, response: ProviderResponse | None = None, name: str = "", duration: float = 0.0
    ) -> None:
        self._attempt = attempt
        self.response = response
        self.name = name
        self.duration = duration

    @property
    def outcome(self) -> AttemptOutcome:
        attempt = self._attempt
        return AttemptOutcome.SUCCESS if attempt is None else attempt.outcome

    @property
    def attempt(self) -> Attempt:
        attempt = self._attempt
        if attempt is None:
            response = self.response
            model, usage = (response.model, response.usage) if response is not None else (None, None)
            attempt = self._attempt = Attempt(self.name, AttemptOutcome.SUCCESS, None, self.duration, model, usage)
        return attempt


@attrs.define
class _Run:
    """The state of answering one message (internal; one per ``answer`` call)."""

    request: ProviderRequest
    seq: int | None
    delivery: Delivery | None
    scope: MessageScope
    # The first attempt, run in its own scope only (see ``Cascade.answer``).
    fast: bool = False
    attempts: list[Attempt] = attrs.field(factory=list)
    refusal: str | None = None
    # A continued answer: the parts before the current one, and how much text they made.
    segments: list[Segment] = attrs.field(factory=list)
    produced: int = 0
    restarted: bool = False

    @property
    def cutoff(self) -> float:
        """When provider attempts must end (the message's owner may tighten it meanwhile)."""
        return self.scope.deadline

    def must_wait(self) -> None:
        """The attempt is about to wait outside its own scope: only inside the message's scope.

        Raises:
            _Slow: This is the first attempt, which has no message scope around it.
        """
        if self.fast:
            raise _Slow


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
        retry_timeouts: bool = False,
        hedge_after: float | None = None,
        emit: Emitter | None = None,
        clock: Clock = anyio.current_time,
        new_scope: Callable[..., anyio.CancelScope] = anyio.CancelScope,
    ) -> None:
        self._now = clock
        self._new_scope = new_scope
        self.providers = tuple(providers)
        self.fallback = fallback
        self._breaker = breaker
        self._limiter = limiter
        self._schedule = tuple(retry_schedule)
        self._provider_timeout = provider_timeout
        self._policy_failover = content_policy_failover
        self._retry_timeouts = retry_timeouts
        self._hedge_after = hedge_after
        self._emit = emit if emit is not None else Emitter(None, clock)
        # Providers that answered a prefill with a rejection: never asked to continue again.
        self._no_prefill: set[str] = set()

    async def answer(
        self,
        request: ProviderRequest,
        *,
        seq: int | None = None,
        delivery: Delivery | None = None,
        scope: MessageScope | None = None,
    ) -> CascadeResult:
        """Answer ``request`` by ``request.deadline``: a provider's answer, or the fallback's.

        Args:
            delivery: Stream the answer to it as it arrives.
            scope: The message's cancel handle: its owner may cancel it, or tighten its
                deadline, while the attempts run. Its deadline is when they must end; by
                default ``request.deadline`` less the fallback's reserve.
        """
        if scope is None:
            scope = MessageScope(request.deadline - FALLBACK_RESERVE, self._new_scope)
        run = _Run(request, seq, delivery, scope)
        hedge_after = self._hedge_after if len(self.providers) > 1 else None
        first: _Trial | None = None
        if delivery is None and hedge_after is None and self.providers:
            # The common message: its first attempt runs in the attempt's own scope, which the
            # message's handle forwards to, and most messages end there.
            run.fast = True
            try:
                first = await self._attempt(self.providers[0], run)
            except _Slow:
                pass  # it must wait for a slot or a probe: from the start, in the message's scope
            except _Cut:
                return await self._fall_back(run, None)
            run.fast = False
            if first is not None and first.response is not None:
                return CascadeResult(first.response, first.name, False, (), duration=first.duration)
        won: tuple[str, ProviderResponse] | None = None
        cut: Incomplete | None = None
        try:
            with scope.open():
                won, cut = await self._rest(run, first, hedge_after)
        except _Cut:
            pass  # the message's deadline passed, or its caller left: the fallback below
        finally:
            scope.close()
        if won is not None:
            return self._answered(run, *won)
        run.request = request
        return await self._fall_back(run, cut)

    async def _rest(
        self, run: _Run, first: _Trial | None, hedge_after: float | None
    ) -> tuple[tuple[str, ProviderResponse] | None, Incomplete | None]:
        """The message after its first attempt (or from the start), in the message's scope.

        Returns the winner (provider, its response) or None, and the cut that ended a
        streamed answer that could be neither continued nor restarted.
        """
        try:
            if hedge_after is not None:
                return await self._hedged(run, hedge_after), None
            return await self._sequential(run, first), None
        except Incomplete as exc:
            return await self._recover(run, exc)

    async def _fall_back(self, run: _Run, cut: Incomplete | None) -> CascadeResult:
        """The end of a message no provider answered: the persona fallback's answer, or incomplete."""
        if cut is not None:
            return self._incomplete(run, cut.provider, str(cut.error))
        delivery = run.delivery
        if delivery is not None and delivery.started:
            # Chunks of an answer reached the caller and the deadline cut it: the fallback
            # cannot take over a stream that is already speaking.
            return self._incomplete(run, self._speaker(run), "the response deadline passed")
        fallback = self.fallback
        request = run.request
        if delivery is None:
            response = await fallback.get_response(request)
        else:
            stream = fallback.stream_response(request)
            if stream is None:
                response = await fallback.get_response(request)
                await delivery.emit(fallback.name, response.text)
            else:
                response = await delivery.pump(fallback.name, stream, math.inf)
        segments = (Segment(fallback.name, response.model, len(response.text)),)
        return CascadeResult(response, fallback.name, True, tuple(run.attempts), run.refusal, segments=segments)

    @staticmethod
    def _answered(run: _Run, provider: str, response: ProviderResponse) -> CascadeResult:
        if run.segments and run.delivery is not None:
            # A continued answer: the caller received every part; the reply is all of them.
            text = run.delivery.text()
            segments = (*run.segments, Segment(provider, response.model, len(text) - run.produced))
            usages = [a.usage for a in run.attempts if a.usage is not None]
            usage = Usage(sum(u.input_tokens for u in usages), sum(u.output_tokens for u in usages)) if usages else None
            response = ProviderResponse(text, response.model, usage)
        else:
            segments = (Segment(provider, response.model, len(response.text)),)
        return CascadeResult(response, provider, False, tuple(run.attempts), segments=segments)

    @staticmethod
    def _speaker(run: _Run) -> str:
        delivery = run.delivery
        if delivery is not None and delivery.owner is not None:
            return delivery.owner
        return run.segments[-1].provider if run.segments else "?"

    async def _recover(self, run: _Run, cut: Incomplete) -> tuple[tuple[str, ProviderResponse] | None, Incomplete | None]:
        """Continue an answer cut after it reached the caller, or restart it, or give up.

        Returns the winner (provider, its response) or None, and the cut that ended the
        answer when it could be neither continued nor restarted.
        """
        delivery = run.delivery
        if delivery is None:  # pragma: no cover - only a streamed answer can be cut
            return None, cut
        original = run.request
        # Every round ends in a new cut (a continuing attempt that was cut in its turn)
        # or stops; each attempt of each provider can end one round at most.
        for _ in range(len(self.providers) * (len(self._schedule) + 1)):
            text = delivery.text()
            run.segments.append(Segment(cut.provider, cut.model, len(text) - run.produced))
            run.produced = len(text)
            delivery.release()
            run.request = attrs.evolve(original, prefill=text)
            try:
                won = await self._continue(run, cut)
            except Incomplete as again:
                cut = again
                continue
            if won is not None:
                return won, None
            break
        run.request = original
        if not delivery.restartable or run.restarted:
            return None, cut
        run.restarted = True
        run.segments.clear()
        run.produced = 0
        await delivery.restart(f"the answer from {cut.provider!r} was cut ({cut.error}) and no provider could continue it")
        try:
            return await self._sequential(run), None
        except Incomplete as again:
            return await self._recover(run, again)

    def _can_continue(self, provider: BaseProvider) -> bool:
        return provider.name not in self._no_prefill and provider.continues_prefill()

    async def _continue(self, run: _Run, cut: Incomplete) -> tuple[str, ProviderResponse] | None:
        """Ask the providers that can continue ``run.request.prefill``: the others first, then the cut one."""
        failed = {a.provider for a in run.attempts if a.outcome not in (AttemptOutcome.SUCCESS, AttemptOutcome.CANCELLED)}
        for provider in self.providers:
            if provider.name == cut.provider or provider.name in failed or not self._can_continue(provider):
                continue
            trial = await self._run_provider(provider, run)
            if trial is not None and trial.response is not None:
                return provider.name, trial.response
        same = next((p for p in self.providers if p.name == cut.provider), None)
        if same is None or not self._can_continue(same) or not rule_of(cut.outcome).retry_same:
            return None
        delay = self._schedule[0] if self._schedule else 0.0
        if self._now() + delay >= run.cutoff:
            return None
        await anyio.sleep(delay)
        trial = await self._run_provider(same, run)
        if trial is not None and trial.response is not None:
            return same.name, trial.response
        return None

    @staticmethod
    def _incomplete(run: _Run, provider: str, why: str) -> CascadeResult:
        error = IncompleteAnswerError(
            f"the answer from {provider!r} was cut after it started ({why}); what was received is incomplete"
        )
        if run.delivery is not None:
            error.received = run.delivery.text()
        return CascadeResult(None, provider, False, tuple(run.attempts), incomplete=error)

    async def _sequential(self, run: _Run, first: _Trial | None = None) -> tuple[str, ProviderResponse] | None:
        """The providers in order; ``first`` is the first provider's first attempt, if it was made."""
        for provider in self.providers:
            trial = await self._run_provider(provider, run, first)
            first = None
            if trial is not None and trial.response is not None:
                return provider.name, trial.response
            if run.refusal is not None and not self._policy_failover:
                return None
        return None

    async def _hedged(self, run: _Run, hedge_after: float) -> tuple[str, ProviderResponse] | None:
        """Start the next provider whenever the current one has not answered within ``hedge_after``.

        The first success (or, streaming, the first chunk) wins; the other racers are
        cancelled and recorded as cancelled attempts, never as the answer.
        """
        winner: list[tuple[str, ProviderResponse]] = []
        scopes: dict[str, anyio.CancelScope] = {}

        def cancel_others(name: str) -> None:
            for other, scope in scopes.items():
                if other != name:
                    scope.cancel()

        if run.delivery is not None:
            run.delivery.on_claim = cancel_others

        async def race(provider: BaseProvider, scope: anyio.CancelScope, finished: anyio.Event) -> None:
            try:
                with scope:
                    trial = await self._run_provider(provider, run)
                    delivery = run.delivery
                    owns = delivery is None or delivery.owner in (None, provider.name)
                    if trial is not None and trial.response is not None and not winner and owns:
                        winner.append((provider.name, trial.response))
                        cancel_others(provider.name)
            finally:
                finished.set()

        try:
            await self._race_all(run, hedge_after, race, scopes, winner)
        except ExceptionGroup as group:
            # A racer's Incomplete or _Cut comes out of the task group wrapped; it is an
            # answer's end, not a crash. Anything else stays a group (a real bug).
            ended, rest = group.split((Incomplete, _Cut))
            if ended is None or rest is not None:
                raise
            first = ended.exceptions[0]
            while isinstance(first, ExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        return winner[0] if winner else None

    async def _race_all(
        self,
        run: _Run,
        hedge_after: float,
        race: Callable[[BaseProvider, anyio.CancelScope, anyio.Event], Coroutine[Any, Any, None]],
        scopes: dict[str, anyio.CancelScope],
        winner: list[tuple[str, ProviderResponse]],
    ) -> None:
        async with anyio.create_task_group() as tg:
            for provider in self.providers:
                if winner or (run.refusal is not None and not self._policy_failover):
                    break
                if run.delivery is not None and run.delivery.owner is not None:
                    break  # a racer is already streaming the answer
                finished = anyio.Event()
                scopes[provider.name] = anyio.CancelScope()
                tg.start_soon(race, provider, scopes[provider.name], finished)
                with anyio.move_on_after(hedge_after):
                    await finished.wait()

    async def _run_provider(self, provider: BaseProvider, run: _Run, first: _Trial | None = None) -> _Trial | None:
        """Try one provider with retries; the successful trial, or None to move on.

        ``first`` is its first attempt when that was made already (``Cascade.answer``).
        """
        for retry in range(len(self._schedule) + 1):
            if first is None:
                trial = await self._attempt(provider, run)
            else:
                trial, first = first, None
            run.attempts.append(trial.attempt)
            outcome = trial.outcome
            if outcome is AttemptOutcome.SUCCESS:
                return trial
            if outcome is AttemptOutcome.CONTENT_POLICY:
                run.refusal = trial.attempt.error
            if outcome is AttemptOutcome.PREFILL_REJECTED:
                self._no_prefill.add(provider.name)
            retried = rule_of(outcome).retry_same or (outcome is AttemptOutcome.TIMEOUT and self._retry_timeouts)
            if not retried or retry == len(self._schedule):
                return None
            delay = self._schedule[retry]
            retry_after = trial.attempt.retry_after
            if retry_after is not None and retry_after > delay:
                delay = retry_after
            if self._now() + delay >= run.cutoff:
                reason = f"retry in {delay:g}s would miss the deadline"
                run.attempts.append(Attempt(provider.name, AttemptOutcome.DEADLINE, reason))
                return None
            await anyio.sleep(delay)
        return None

    async def _attempt(self, provider: BaseProvider, run: _Run) -> _Trial:
        name = provider.name
        reason = provider.unavailable_reason()
        if reason is not None:
            return _Trial(Attempt(name, AttemptOutcome.UNAVAILABLE, provider.redact(reason)))
        breaker = self._breaker
        # A closed circuit (the common case) needs no call to decide.
        gate = Gate.GO if breaker.view[name].state is CircuitState.CLOSED else breaker.gate(name)
        probe = False
        if gate is Gate.SKIP:
            return _Trial(Attempt(name, AttemptOutcome.CIRCUIT_OPEN, "circuit open"))
        if gate is Gate.ASK:
            run.must_wait()
            if not await self._breaker.acquire_probe(name):
                return _Trial(Attempt(name, AttemptOutcome.CIRCUIT_OPEN, "circuit open (probe in flight)"))
            probe = True
        verdict: Verdict = Verdict.RELEASE
        try:
            now = self._now()
            timeout = min(provider.settings.timeout or self._provider_timeout, run.cutoff - now)
            if timeout < MIN_ATTEMPT_TIME:
                return _Trial(Attempt(name, AttemptOutcome.DEADLINE, "no time left before the deadline"))
            limiter = self._limiter
            try:
                limiter.acquire_nowait()  # the common case: a free slot, no extra trip through the loop
            except anyio.WouldBlock:
                run.must_wait()
                await limiter.acquire()
                if not probe and breaker.gate(name) is not Gate.GO:
                    # The circuit opened while this attempt waited for a slot: only probes pass now.
                    limiter.release()
                    return _Trial(Attempt(name, AttemptOutcome.CIRCUIT_OPEN, "circuit open"))
                now = self._now()
            try:
                trial = await self._call(provider, name, run, timeout, now)
            except Incomplete:
                verdict = Verdict.FAILURE
                raise
            finally:
                limiter.release()
            # Only a success carries a response; its verdict needs no table lookup.
            verdict = Verdict.SUCCESS if trial.response is not None else rule_of(trial.outcome).breaker
            return trial
        finally:
            # A success on a quiet circuit changes nothing: not reported (``BreakerStatistics.quiet``).
            if probe or not (verdict is Verdict.RELEASE or (verdict is Verdict.SUCCESS and breaker.view[name].quiet)):
                breaker.report(name, verdict, probe=probe)

    async def _call(self, provider: BaseProvider, name: str, run: _Run, timeout: float, started: float) -> _Trial:
        """Call ``provider`` (named ``name``) from ``started`` for at most ``timeout`` seconds."""
        request = run.request
        if self._emit.enabled:
            self._emit(EventKind.ATTEMPT_STARTED, request.session_id, run.seq, name)
        trial: _Trial
        try:
            delivery = run.delivery
            if delivery is not None and (stream := provider.stream_response(request)) is not None:
                response = await delivery.pump(name, stream, timeout)
            else:
                # The attempt's one scope: its timeout, which is at the latest the message's
                # deadline. The first attempt's is the message's too: its handle forwards to it.
                handle = run.scope
                fast = run.fast
                scope = handle.open(started + timeout) if fast else self._new_scope(deadline=started + timeout)
                try:
                    with scope:
                        response = await provider.get_response(request)
                finally:
                    if fast:
                        handle.close()
                if scope.cancelled_caught:
                    if handle.cancel_called or self._now() >= run.cutoff:
                        raise _Cut  # the message's end (its deadline, its caller), not the attempt's timeout
                    raise ProviderTimeoutError(f"no answer within {timeout:g}s")
                if not isinstance(response, ProviderResponse) or not isinstance(response.text, str):
                    raise TypeError(f"get_response returned {type(response).__name__}, not a ProviderResponse")
                if delivery is not None:
                    await delivery.emit(name, response.text)
            trial = _Trial(None, response, name, self._now() - started)
        except (_Cut, anyio.get_cancelled_exc_class()):
            now = self._now()
            cut = now >= run.cutoff
            outcome = AttemptOutcome.DEADLINE if cut else AttemptOutcome.CANCELLED
            run.attempts.append(Attempt(name, outcome, "cut by the response deadline" if cut else "cancelled", now - started))
            self._finished(run, name, outcome, None)
            raise
        except LostRace as exc:
            # A hedge racer whose answer came after another racer's first chunk: never the answer.
            attempt = Attempt(name, AttemptOutcome.CANCELLED, f"lost the hedge race: {exc}", self._now() - started)
            trial = _Trial(attempt)
        except ProviderError as exc:
            trial = self._failure(provider, exc, self._now() - started)
        except Exception as exc:  # noqa: BLE001 - a provider bug: an ERROR attempt, logged below
            # Not logger.exception: the raw traceback would show a secret the bug put in a
            # message, an argument's repr, a note or a group member. This one is redacted.
            logger.error(
                "provider %r raised %s: a bug in the provider\n%s",
                name, type(exc).__name__, redacted_traceback(exc, provider.redact),
            )
            message = provider.redact(describe_exception(exc))
            trial = _Trial(Attempt(name, AttemptOutcome.ERROR, message, self._now() - started))
        if self._emit.enabled:  # checked here too: a success's attempt record is built only if read
            self._finished(run, name, trial.outcome, trial.attempt.error)
        if run.delivery is not None and run.delivery.claimed_by(name) and trial.response is None:
            # Chunks of this answer already reached the caller: no failover, no retry.
            run.attempts.append(trial.attempt)
            error = trial.attempt.error or trial.attempt.outcome.value
            model = provider.settings.option("model")
            raise Incomplete(
                name, TransientProviderError(error), trial.attempt.outcome, model if isinstance(model, str) else None
            )
        return trial

    def _finished(self, run: _Run, name: str, outcome: AttemptOutcome, error: str | None) -> None:
        if self._emit.enabled:
            self._emit(
                EventKind.ATTEMPT_FINISHED, run.request.session_id, run.seq, name,
                {"outcome": outcome.value, "error": error},
            )

    @staticmethod
    def _failure(provider: BaseProvider, exc: ProviderError, duration: float) -> _Trial:
        """Record a provider's error as the outcome the outcome table gives its class."""
        retry_after = exc.retry_after if isinstance(exc, RateLimitedError) else None
        outcome = outcome_of(exc)
        return _Trial(Attempt(provider.name, outcome, provider.redact(str(exc)), duration, retry_after=retry_after))
