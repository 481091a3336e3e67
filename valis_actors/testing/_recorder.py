"""``EventRecorder``: collect the runtime's events and check its invariants over a run.

Pass it as ``open_runtime(config, event_hook=recorder)``. After the run (or at
any step) call the ``check_*`` methods, or :meth:`check_all`; each raises
``InvariantViolation`` naming the events that break it.

Your app's own steps join the same checks two ways: a step run with
``runtime.run_in_session`` is a message of the session (accepted, started,
delivered or failed, provider ``"app"``), and :meth:`EventRecorder.record_app`
records a point event of your app (a handoff, a moderation verdict) that
``check_fifo`` requires to happen in the session's order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import anyio
import attrs

from .._cascade._breaker import LEGAL_TRANSITIONS, CircuitState
from .._config import Config
from .._events import EventKind, RuntimeEvent

__all__ = ["APP_EVENT", "EventRecorder", "InvariantViolation"]

#: The ``kind`` of the events :meth:`EventRecorder.record_app` records.
APP_EVENT = "app_event"
#: The ``provider`` of a ``reply_delivered`` event that ended an app step (``run_in_session``).
APP_PROVIDER = "app"
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
    # Per session: the message running now and the task running it (the session actor's),
    # so record_app can tell an event inside the session's step from one beside it.
    _running: dict[str, tuple[int | None, int]] = attrs.field(factory=dict, init=False, repr=False)

    def __call__(self, event: RuntimeEvent) -> None:
        self.events.append(event)
        if event.kind == EventKind.MESSAGE_STARTED and event.session_id is not None:
            # The hook runs synchronously in the emitting actor: this is the session's task.
            self._running[event.session_id] = (event.seq, anyio.get_current_task().id)

    def of_kind(self, *kinds: str) -> list[RuntimeEvent]:
        """The events of the given kinds, in order."""
        return [e for e in self.events if e.kind in kinds]

    def clear(self) -> None:
        self.events.clear()

    def record_app(self, session_id: str, name: str, **data: Any) -> None:
        """Record an event of your app's own in session ``session_id``, now.

        Call it where the app acts on its own (hands a conversation to a human,
        refuses a message). Called from inside a step of the session (the body of a
        ``runtime.run_in_session`` step, a ``SessionLifecycle`` hook), the event's
        ``seq`` is that step's; called from anywhere else, ``seq`` is None.
        ``check_fifo`` then requires that the event overtook no message: inside a
        step, none before the step is unanswered (FIFO); outside, none at all. An app
        that acts beside the runtime instead of in the session's order fails the check.

        Args:
            session_id: The session the app acted in.
            name: What the app did (``data["name"]`` of the event).
            **data: Anything else to keep with the event.
        """
        running = self._running.get(session_id)
        inside = running is not None and running[1] == anyio.get_current_task().id
        seq = running[0] if running is not None and inside else None
        self.events.append(RuntimeEvent(APP_EVENT, anyio.current_time(), session_id, seq, data={"name": name, **data}))

    def app_events(self, session_id: str | None = None, name: str | None = None) -> list[RuntimeEvent]:
        """The events recorded with :meth:`record_app` (of one session, of one name), in order."""
        return [
            e for e in self.of_kind(APP_EVENT)
            if session_id in (None, e.session_id) and name in (None, e.data.get("name"))
        ]

    # -- invariants -------------------------------------------------------------------

    def check_fifo(self) -> None:
        """Per session: messages start in acceptance order, each after the previous one ended.

        App steps (``run_in_session``) are messages like any other; an app event
        (:meth:`record_app`) must not overtake a message of its session: recorded
        inside a step of the session, every message before that step has ended;
        recorded beside the runtime, every message of the session has.
        """
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
            elif event.kind == APP_EVENT:
                # Inside the running step of its session: only messages before that step
                # count. Beside the runtime: every unanswered message was overtaken.
                inside = event.seq is not None and busy.get(sid) == event.seq and event.seq not in ended
                overtaken = [
                    s for s in accepted[sid] if s not in ended and not (inside and s >= (event.seq or 0))
                ]
                if overtaken:
                    raise InvariantViolation(
                        f"session {sid!r}: app event {event.data.get('name')!r} at t={event.time:.6g} "
                        f"overtook unanswered message(s) {overtaken}; run the app's step in the "
                        "session's order with runtime.run_in_session"
                    )

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
        """Every reply was delivered by its message's deadline.

        App steps (``run_in_session``) are the app's own code, bounded by their callers,
        not by the response deadline: they are not checked.
        """
        for event in self.of_kind(EventKind.REPLY_DELIVERED):
            if event.provider == APP_PROVIDER:
                continue
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
