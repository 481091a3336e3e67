"""The breaker actor: the one owner of every provider's circuit state.

    closed --(threshold consecutive failures)--> open
    open --(timeout elapsed, a permit is asked)--> half_open (one probe permit)
    half_open --(probe succeeds)--> closed
    half_open --(probe fails)--> open
    half_open --(probe cancelled / cut by the deadline)--> half_open, permit returned

Only the actor task changes state. It publishes an immutable snapshot per
provider that attempts read without a round trip while the circuit is closed
(or open and not yet due); a permit round trip through the mailbox is needed only
where a permit is scarce (open and due, or half-open). Outcomes are reported with
``send_nowait`` on an unbounded mailbox, so reporting never blocks an attempt.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._clock import Clock
from .._events import Emitter, EventKind
from ._outcomes import Verdict

__all__ = ["BreakerActor", "BreakerStatistics", "CircuitState", "Gate"]


class CircuitState(str, enum.Enum):
    """The state of a provider's circuit."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


LEGAL_TRANSITIONS = frozenset(
    {
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
        (CircuitState.HALF_OPEN, CircuitState.OPEN),
    }
)


class Gate(enum.Enum):
    """What the published snapshot says an attempt may do without asking the actor."""

    GO = "go"  # closed: attempt without a permit
    SKIP = "skip"  # open and not yet due: skip at once
    ASK = "ask"  # a probe permit is needed: round trip to the actor


@attrs.frozen
class BreakerStatistics:
    """A provider's circuit, as last published by the breaker actor."""

    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    open_until: float = 0.0
    probes_in_flight: int = 0
    times_opened: int = 0


@attrs.define(slots=True)
class _PermitRequest:
    provider: str
    done: anyio.Event = attrs.field(factory=anyio.Event)
    granted: bool = False
    abandoned: bool = False


@attrs.frozen
class _Report:
    provider: str
    outcome: Verdict
    probe: bool


class BreakerActor:
    """Owns the circuit of every provider; see the module docstring for the state machine.

    Args:
        providers: Names of the providers that have a circuit.
        threshold: Consecutive failures that open a closed circuit.
        timeout: Seconds a circuit stays open before it lets one probe through.
        emit: Emits a ``breaker_transition`` event for every state change.
    """

    def __init__(
        self,
        providers: list[str],
        *,
        threshold: int,
        timeout: float,
        emit: Emitter | None = None,
        clock: Clock = anyio.current_time,
    ) -> None:
        self._now = clock
        self._threshold = threshold
        self._timeout = timeout
        self._emit = emit if emit is not None else Emitter(None, clock)
        self._running = False
        self.view: dict[str, BreakerStatistics] = {name: BreakerStatistics() for name in providers}
        self._send: MemoryObjectSendStream[Any]
        self._receive: MemoryObjectReceiveStream[Any]
        self._send, self._receive = anyio.create_memory_object_stream[Any](math.inf)

    # -- used by attempts (any task) ---------------------------------------------------

    def gate(self, provider: str) -> Gate:
        """Decide from the published snapshot; no round trip, no state change."""
        snap = self.view[provider]
        if snap.state is CircuitState.CLOSED:
            return Gate.GO
        if snap.state is CircuitState.OPEN and self._now() < snap.open_until:
            return Gate.SKIP
        if snap.state is CircuitState.HALF_OPEN and snap.probes_in_flight:
            return Gate.SKIP
        return Gate.ASK

    async def acquire_probe(self, provider: str) -> bool:
        """Ask the actor for the probe permit; True if granted (then report the outcome!)."""
        request = _PermitRequest(provider)
        self._send.send_nowait(request)
        try:
            await request.done.wait()
        except BaseException:
            request.abandoned = True
            if request.granted:
                self.report(provider, Verdict.RELEASE, probe=True)
            raise
        return request.granted

    def report(self, provider: str, outcome: Verdict, *, probe: bool = False) -> None:
        """Tell the actor how an attempt ended. Never blocks."""
        snap = self.view[provider]
        if (
            outcome is Verdict.SUCCESS
            and not probe
            and snap.state is CircuitState.CLOSED
            and snap.consecutive_failures == 0
        ):
            return  # nothing would change: spare the actor a message on the hot path
        try:
            self._send.send_nowait(_Report(provider, outcome, probe))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the runtime is closing; circuit state no longer matters

    # -- the actor ----------------------------------------------------------------------

    async def run(self) -> None:
        """Process permit requests and reports until :meth:`close`."""
        self._running = True
        try:
            async with self._receive:
                async for item in self._receive:
                    if isinstance(item, _PermitRequest):
                        self._grant(item)
                    else:
                        self._apply(item)
        except anyio.ClosedResourceError:
            return  # closed before this task began: the runtime closed at once

    def close(self) -> None:
        """Stop the actor once the messages already sent are processed. Idempotent.

        If its task never started, the mailbox is released at once (the task closes it
        otherwise, when it has drained it).
        """
        self._send.close()
        if not self._running:
            self._receive.close()

    def _grant(self, request: _PermitRequest) -> None:
        if not request.abandoned:
            snap = self.view[request.provider]
            now = self._now()
            if snap.state is CircuitState.OPEN and now >= snap.open_until:
                snap = self._transition(request.provider, snap, CircuitState.HALF_OPEN)
            if snap.state is CircuitState.HALF_OPEN and snap.probes_in_flight == 0:
                self.view[request.provider] = attrs.evolve(snap, probes_in_flight=1)
                request.granted = True
            elif snap.state is CircuitState.CLOSED:
                request.granted = True  # closed meanwhile: go ahead (not a probe)
        request.done.set()

    def _apply(self, report: _Report) -> None:
        name = report.provider
        snap = self.view[name]
        if report.probe and snap.state is CircuitState.HALF_OPEN:
            snap = attrs.evolve(snap, probes_in_flight=max(0, snap.probes_in_flight - 1))
            self.view[name] = snap
            if report.outcome is Verdict.SUCCESS:
                self._transition(name, snap, CircuitState.CLOSED)
            elif report.outcome is Verdict.FAILURE:
                self._transition(name, snap, CircuitState.OPEN)
            return
        if report.outcome is Verdict.SUCCESS:
            if snap.state is CircuitState.CLOSED:
                self.view[name] = attrs.evolve(snap, consecutive_failures=0)
        elif report.outcome is Verdict.FAILURE and snap.state is CircuitState.CLOSED:
            failures = snap.consecutive_failures + 1
            snap = attrs.evolve(snap, consecutive_failures=failures)
            self.view[name] = snap
            if failures >= self._threshold:
                self._transition(name, snap, CircuitState.OPEN)
        # Late reports for an open circuit change nothing: it is already open.

    def _transition(self, name: str, snap: BreakerStatistics, to: CircuitState) -> BreakerStatistics:
        now = self._now()
        if to is CircuitState.OPEN:
            new = BreakerStatistics(
                state=to,
                consecutive_failures=snap.consecutive_failures,
                open_until=now + self._timeout,
                times_opened=snap.times_opened + 1,
            )
        elif to is CircuitState.CLOSED:
            new = BreakerStatistics(state=to, times_opened=snap.times_opened)
        else:
            new = attrs.evolve(snap, state=to, probes_in_flight=0)
        self.view[name] = new
        self._emit(EventKind.BREAKER_TRANSITION, provider=name, data={"from": snap.state.value, "to": to.value})
        return new
