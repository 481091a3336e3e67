"""``EventRecorder``: collect the runtime's events and check its invariants over a run.

Pass it as ``open_runtime(config, event_hook=recorder)``. After the run (or at
any step) call the ``check_*`` methods, or :meth:`check_all`; each raises
``InvariantViolation`` naming the events that break it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import attrs

from .._cascade._breaker import LEGAL_TRANSITIONS, CircuitState
from .._config import Config
from .._events import EventKind, RuntimeEvent

__all__ = ["EventRecorder", "InvariantViolation"]

TERMINAL = frozenset({EventKind.REPLY_DELIVERED, EventKind.MESSAGE_DROPPED, EventKind.MESSAGE_FAILED})


class InvariantViolation(AssertionError):
    """An invariant of the runtime does not hold for the recorded events."""


@attrs.define
class EventRecorder:
    """An event hook that keeps every event, with invariant checks.

    Attributes:
        events: Every event received, in order.
    """

    events: list[RuntimeEvent] = attrs.field(factory=list)

    def __call__(self, event: RuntimeEvent) -> None:
        self.events.append(event)

    def of_kind(self, *kinds: str) -> list[RuntimeEvent]:
        """The events of the given kinds, in order."""
        return [e for e in self.events if e.kind in kinds]

    def clear(self) -> None:
        self.events.clear()

    # -- invariants -------------------------------------------------------------------

    def check_fifo(self) -> None:
        """Per session: messages start in acceptance order, each after the previous one ended."""
        accepted: dict[str, list[int]] = defaultdict(list)
        busy: dict[str, int | None] = {}
        ended: set[int | None] = set()
        for event in self.events:
            sid = event.session_id or ""
            if event.kind == EventKind.MESSAGE_ACCEPTED:
                accepted[sid].append(event.seq or 0)
            elif event.kind == EventKind.MESSAGE_STARTED:
                current = busy.get(sid)
                if current is not None and current not in ended:
                    raise InvariantViolation(
                        f"session {sid!r}: message {event.seq} started before message {current} ended"
                    )
                earlier = [s for s in accepted[sid] if s < (event.seq or 0) and s not in ended]
                if earlier:
                    raise InvariantViolation(
                        f"session {sid!r}: message {event.seq} started before earlier message(s) {earlier}"
                    )
                busy[sid] = event.seq
            elif event.kind in TERMINAL:
                ended.add(event.seq)

    def check_exactly_once(self) -> None:
        """Every accepted message ends exactly once: delivered, dropped or failed."""
        outcomes: dict[int | None, list[str]] = defaultdict(list)
        accepted = [e.seq for e in self.events if e.kind == EventKind.MESSAGE_ACCEPTED]
        for event in self.events:
            if event.kind in TERMINAL:
                outcomes[event.seq].append(event.kind)
        for seq in accepted:
            if len(outcomes.get(seq, [])) != 1:
                raise InvariantViolation(
                    f"message {seq} ended {outcomes.get(seq, [])} (expected exactly once)"
                )
        unknown = set(outcomes) - set(accepted)
        if unknown:
            raise InvariantViolation(f"messages {sorted(unknown, key=str)} ended without being accepted")

    def check_breakers(self, max_probes: int = 1) -> None:
        """Circuit transitions are legal; in half-open at most ``max_probes`` attempts are in flight."""
        state: dict[str, CircuitState] = defaultdict(lambda: CircuitState.CLOSED)
        legal = {(a.value, b.value) for a, b in LEGAL_TRANSITIONS}
        probes: dict[str, set[tuple[int | None, float]]] = defaultdict(set)
        running: dict[tuple[str | None, int | None], float] = {}
        for event in self.events:
            name = event.provider or ""
            if event.kind == EventKind.BREAKER_TRANSITION:
                move = (event.data["from"], event.data["to"])
                if move not in legal or event.data["from"] != state[name].value:
                    raise InvariantViolation(
                        f"{name}: illegal transition {move} from state {state[name].value}"
                    )
                state[name] = CircuitState(event.data["to"])
                probes[name].clear()
            elif event.kind == EventKind.ATTEMPT_STARTED:
                running[(event.provider, event.seq)] = event.time
                if state[name] is not CircuitState.CLOSED:
                    probes[name].add((event.seq, event.time))
                    if len(probes[name]) > max_probes:
                        raise InvariantViolation(
                            f"{name}: {len(probes[name])} probes in flight while half-open"
                        )
            elif event.kind == EventKind.ATTEMPT_FINISHED:
                started = running.pop((event.provider, event.seq), None)
                probes[name].discard((event.seq, started or 0.0))

    def max_in_flight(self) -> int:
        """The most provider attempts in flight at once (the persona fallback does not count)."""
        current = peak = 0
        for event in self.events:
            if event.kind == EventKind.ATTEMPT_STARTED:
                current += 1
                peak = max(peak, current)
            elif event.kind == EventKind.ATTEMPT_FINISHED:
                current -= 1
        return peak

    def check_concurrency(self, limit: int) -> None:
        """At most ``limit`` provider attempts were ever in flight."""
        peak = self.max_in_flight()
        if peak > limit:
            raise InvariantViolation(f"{peak} attempts in flight, over max_concurrent_requests={limit}")

    def check_deadlines(self, tolerance: float = 0.0) -> None:
        """Every reply was delivered by its message's deadline."""
        for event in self.of_kind(EventKind.REPLY_DELIVERED):
            deadline = event.data["deadline"]
            if event.time > deadline + tolerance:
                raise InvariantViolation(f"message {event.seq} answered {event.time - deadline:.6f}s late")

    def check_all(self, config: Config | None = None, *, deadline_tolerance: float = 0.0) -> None:
        """Every check above; concurrency against ``config.max_concurrent_requests`` if given."""
        self.check_fifo()
        self.check_exactly_once()
        self.check_breakers()
        self.check_deadlines(deadline_tolerance)
        if config is not None:
            self.check_concurrency(config.max_concurrent_requests)

    def replies(self, session_id: str | None = None) -> list[RuntimeEvent]:
        """Delivered replies (of one session if given), in delivery order."""
        return [e for e in self.of_kind(EventKind.REPLY_DELIVERED) if session_id in (None, e.session_id)]

    def sessions(self) -> Iterable[str]:
        return {e.session_id for e in self.of_kind(EventKind.MESSAGE_ACCEPTED) if e.session_id}
