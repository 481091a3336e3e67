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

Sharing (cluster mode): given a ``BreakerSync``, the actor stays the one owner of the
process's circuits but lets the sync decide: it forwards each report and probe request
to it and adopts the ``SharedState`` it answers (moving through legal transitions), and
re-reads every circuit every ``refresh_interval`` seconds (a message to itself, so
state changes stay in mailbox order). A sync answering None (its store unreachable)
leaves the decision to the local state machine above: circuits fail open to local state.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Protocol

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._clock import Clock
from .._events import Emitter, EventKind
from ._outcomes import Verdict

__all__ = ["BreakerActor", "BreakerStatistics", "BreakerSync", "CircuitState", "Gate", "SharedState"]


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
    """A provider's circuit, as last published by the breaker actor.

    ``quiet`` (derived) is True when the circuit is closed and has counted no failure:
    a success (not a probe's) would change nothing, so the attempt does not report it.
    """

    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    open_until: float = 0.0
    probes_in_flight: int = 0
    times_opened: int = 0
    # Computed once per snapshot (a circuit changes rarely) and read on every attempt.
    quiet: bool = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "quiet", self.state is CircuitState.CLOSED and not self.consecutive_failures)


@attrs.frozen
class SharedState:
    """A circuit as the processes sharing it see it, for the breaker actor to adopt.

    Attributes:
        state: closed, open, or half_open (a probe may run).
        open_for: Seconds an open circuit stays open.
        failures: Failures counted toward the threshold (by every process).
        probe_in_flight: Some process holds the half-open probe permit.
    """

    state: CircuitState
    open_for: float = 0.0
    failures: int = 0
    probe_in_flight: bool = False


class BreakerSync(Protocol):
    """Where the breaker actor shares circuit state with other processes (cluster mode).

    Every call answers None when the shared state cannot be reached: the actor then
    decides from its local state machine (circuits fail open to local state).
    """

    #: Seconds between two re-reads of every circuit.
    refresh_interval: float

    async def read(self, provider: str) -> SharedState | None:
        """The provider's shared circuit."""

    async def report(self, provider: str, success: bool, probe: bool) -> SharedState | None:
        """Count an attempt's outcome; the circuit after it."""

    async def acquire_probe(self, provider: str) -> tuple[bool, bool] | None:
        """Ask for the half-open permit: ``(granted, is_probe)``."""

    async def release_probe(self, provider: str) -> None:
        """Give back a probe permit whose attempt ended without a verdict."""


@attrs.frozen
class _Refresh:
    """Time to re-read every circuit from the sync."""


# Legal steps from one state to another, for adopting a shared state.
_PATHS = {
    (CircuitState.CLOSED, CircuitState.HALF_OPEN): (CircuitState.OPEN, CircuitState.HALF_OPEN),
    (CircuitState.OPEN, CircuitState.CLOSED): (CircuitState.HALF_OPEN, CircuitState.CLOSED),
}


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
        sync: Shares circuit state with other processes (see the module docstring).
    """

    def __init__(
        self,
        providers: list[str],
        *,
        threshold: int,
        timeout: float,
        emit: Emitter | None = None,
        clock: Clock = anyio.current_time,
        sync: BreakerSync | None = None,
    ) -> None:
        self._now = clock
        self._sync = sync
        self._shared_probes: set[str] = set()  # providers whose shared probe permit we hold
        self._sync_down_until = -math.inf  # after a None answer: decide locally until the next refresh
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
        """Tell the actor how an attempt ended. Never blocks.

        A success (not a probe's) on a ``quiet`` circuit would change nothing: the attempt
        does not report it, which spares the actor a message per answer.
        """
        try:
            self._send.send_nowait(_Report(provider, outcome, probe))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the runtime is closing; circuit state no longer matters

    # -- the actor ----------------------------------------------------------------------

    async def run(self) -> None:
        """Process permit requests and reports until :meth:`close`."""
        self._running = True
        try:
            if self._sync is None:
                async with self._receive:
                    async for item in self._receive:
                        if isinstance(item, _PermitRequest):
                            self._grant(item)
                        else:
                            self._apply(item)
                return
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._tick, self._sync.refresh_interval, name="breaker refresh")
                async with self._receive:
                    async for item in self._receive:
                        await self._handle_shared(self._sync, item)
                tg.cancel_scope.cancel()
        except anyio.ClosedResourceError:
            return  # closed before this task began: the runtime closed at once

    async def _tick(self, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                self._send.send_nowait(_Refresh())
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return

    async def _handle_shared(self, sync: BreakerSync, item: Any) -> None:
        """One mailbox item, decided by the sync (or locally when it answers None)."""
        if isinstance(item, _Refresh):
            for name in self.view:
                shared = await sync.read(name)
                if shared is None:
                    self._sync_down(sync)
                    break
                self._sync_down_until = -math.inf
                self._adopt(name, shared)
            return
        # While the sync is down, decide locally (each call to it would wait out its timeout);
        # the next refresh tries it again.
        local = self._now() < self._sync_down_until
        if isinstance(item, _PermitRequest):
            verdict = None if item.abandoned or local else await sync.acquire_probe(item.provider)
            if verdict is None:
                if not item.abandoned and not local:
                    self._sync_down(sync)
                self._grant(item)
                return
            item.granted, probe = verdict
            if item.granted and probe:
                self._shared_probes.add(item.provider)
                snap = self._adopt(item.provider, SharedState(CircuitState.HALF_OPEN, probe_in_flight=True))
                self.view[item.provider] = attrs.evolve(snap, probes_in_flight=1)
            item.done.set()
            return
        report: _Report = item
        shared_probe = report.probe and report.provider in self._shared_probes
        if shared_probe:
            self._shared_probes.discard(report.provider)
        if report.outcome is Verdict.RELEASE:
            if shared_probe:
                await sync.release_probe(report.provider)
            self._apply(report)
            return
        shared = None if local else await sync.report(report.provider, report.outcome is Verdict.SUCCESS, shared_probe)
        if shared is None:
            if not local:
                self._sync_down(sync)
            self._apply(report)
        else:
            self._adopt(report.provider, shared)

    def _sync_down(self, sync: BreakerSync) -> None:
        self._sync_down_until = self._now() + sync.refresh_interval

    def _adopt(self, name: str, shared: SharedState) -> BreakerStatistics:
        """Take the shared state as this process's, through legal transitions."""
        snap = self.view[name]
        for step in _PATHS.get((snap.state, shared.state), (shared.state,)):
            if step is not snap.state:
                snap = self._transition(name, snap, step)
        now = self._now()
        if shared.state is CircuitState.OPEN:
            snap = attrs.evolve(snap, open_until=now + shared.open_for, consecutive_failures=shared.failures)
        elif shared.state is CircuitState.HALF_OPEN:
            held = name in self._shared_probes
            snap = attrs.evolve(
                snap, open_until=min(snap.open_until, now), probes_in_flight=int(held or shared.probe_in_flight)
            )
        else:
            snap = attrs.evolve(snap, consecutive_failures=shared.failures)
        self.view[name] = snap
        return snap

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
