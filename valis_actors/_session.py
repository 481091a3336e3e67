"""The session actor: one mailbox, one task, messages answered strictly in order.

Only the actor's task touches the session's state (its history cache, its
restart record), so no lock guards it. Callers talk to it through ``Envelope``
objects put in its bounded mailbox, and wait on the envelope's event.

Lifecycle: created on the first message, passivated after ``idle_timeout``
seconds with an empty mailbox (its memory given back), re-created on the next
message. Supervision: an unexpected exception while processing a message fails
that message with ``ActorCrashedError`` and restarts the actor with fresh state
(the mailbox and its queued messages survive); more than ``max_restarts`` in
``restart_window`` seconds and the session refuses messages with
``SessionFailedError`` until the window has passed.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._cascade import FALLBACK_RESERVE
from ._delivery import Delivery
from ._errors import (
    ActorCrashedError,
    IncompleteAnswerError,
    MemoryStoreError,
    RuntimeClosedError,
    SessionFailedError,
    ValisError,
)
from ._events import EventKind, RuntimeEvent
from ._personas import Persona
from ._provider import ProviderRequest, Turn
from ._reply import Reply

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ["Envelope", "SessionActor"]

logger = logging.getLogger("valis_actors.session")


class EnvelopeState(enum.Enum):
    QUEUED = 0
    RUNNING = 1
    DONE = 2
    DROPPED = 3


class Envelope:
    """One message on its way through a session actor, and the slot for its reply."""

    __slots__ = (
        "abandoned",
        "deadline",
        "delivery",
        "done",
        "error",
        "history",
        "message",
        "persona",
        "reply",
        "scope",
        "seq",
        "started",
        "state",
        "system_prompt",
    )

    def __init__(self, persona: Persona, message: str, started: float, deadline: float, done: anyio.Event) -> None:
        self.persona = persona
        self.message = message
        self.started = started
        self.deadline = deadline
        self.done = done
        self.abandoned = False
        self.state = EnvelopeState.QUEUED
        self.reply: Reply | None = None
        self.error: BaseException | None = None
        self.scope: anyio.CancelScope | None = None
        self.seq = -1
        self.delivery: Delivery | None = None
        # Caller-supplied context (the HTTP server passes the client's history and system prompt).
        self.history: tuple[Turn, ...] | None = None
        self.system_prompt: str | None = None

    def fail(self, error: BaseException) -> None:
        """Complete the envelope with an error for its caller."""
        if self.state is not EnvelopeState.DROPPED:
            self.state = EnvelopeState.DONE
        self.error = error
        self.done.set()


class _Park:
    """The janitor's token: "end your task if your mailbox is empty"."""

    __slots__ = ()


PARK = _Park()


class SessionActor:
    """The actor of one session. Created and supervised by the runtime.

    An idle actor is *parked*: its task ends but the actor and its mailbox stay, so
    an idle session costs a few objects and no task; the next message starts a new
    task. After ``idle_timeout`` it is *passivated*: removed, mailbox closed.
    """

    __slots__ = (
        "_deadlines",
        "_history",
        "_receive",
        "_restarts",
        "_running",
        "_runtime",
        "failed",
        "failed_until",
        "idle_since",
        "running",
        "send",
        "session_id",
    )

    def __init__(self, runtime: Runtime, session_id: str, mailbox_size: int) -> None:
        self._runtime = runtime
        self.session_id = session_id
        self.send: MemoryObjectSendStream[Envelope | _Park]
        self._receive: MemoryObjectReceiveStream[Envelope | _Park]
        self.send, self._receive = anyio.create_memory_object_stream[Envelope | _Park](mailbox_size)
        self._history: dict[str, list[Turn]] | None = None
        # Deadline inheritance (see note_accepted): candidate minimum deadlines of the
        # queued messages, and the deadline scope of the message being answered.
        self._deadlines: deque[tuple[int, float]] | None = None
        self._running: anyio.CancelScope | None = None
        self._restarts: deque[float] | None = None
        self.failed: SessionFailedError | None = None
        self.failed_until = 0.0
        self.idle_since: float | None = None  # when the mailbox last ran empty
        self.running = False  # whether a task is processing (or waiting on) the mailbox

    def note_accepted(self, seq: int, deadline: float) -> None:
        """A message was put in the mailbox: make sure FIFO never makes it late.

        Message k+1 cannot start before message k is answered, so a message's
        effective deadline is the earliest deadline among itself and every message
        queued behind it. A caller with a tighter deadline tightens the running
        message's deadline scope (the fallback then answers both in time).
        """
        cutoff = deadline - FALLBACK_RESERVE
        if self._running is not None and cutoff < self._running.deadline:
            self._running.deadline = cutoff
        queue = self._deadlines
        if queue is None:
            queue = self._deadlines = deque()
        while queue and queue[-1][1] >= deadline:
            queue.pop()
        queue.append((seq, deadline))

    def _effective_deadline(self, envelope: Envelope) -> float:
        queue = self._deadlines
        if not queue:
            return envelope.deadline
        while queue and queue[0][0] <= envelope.seq:
            queue.popleft()
        if not queue:
            self._deadlines = None  # idle sessions keep no deque
            return envelope.deadline
        return min(envelope.deadline, queue[0][1])

    def depth(self) -> int:
        """Messages waiting in the mailbox."""
        return self._receive.statistics().current_buffer_used

    async def run(self) -> None:
        """Process the mailbox until it is empty and the actor is parked, or it ends.

        The task ends in three ways: parked (the janitor's PARK token found an empty
        mailbox: the actor and its mailbox stay, the next message starts a new task),
        stopped (the mailbox closed: passivation or the runtime closing), or failed
        (restart intensity exceeded).
        """
        receive = self._receive
        runtime = self._runtime
        now = runtime._now
        parked = False
        try:
            while True:
                envelope: Envelope | _Park | None = None
                try:
                    envelope = receive.receive_nowait()
                except anyio.WouldBlock:
                    pass
                if envelope is None:
                    # Wait without a timer (the janitor parks idle actors), and outside the
                    # except block: an idle actor keeps no exception, reply or request alive.
                    self.idle_since = now()
                    runtime._waiting.add(self)
                    try:
                        envelope = await receive.receive()
                    finally:
                        runtime._waiting.discard(self)
                if isinstance(envelope, _Park):
                    if self.depth():
                        continue  # messages came in behind the token: keep going
                    parked = True
                    self.running = False
                    runtime._parked(self)
                    return
                self.idle_since = None
                if envelope.seq < 0:
                    runtime._mark_accepted(self, envelope)
                if envelope.state is EnvelopeState.DROPPED:
                    continue
                try:
                    await self._process(envelope)
                except anyio.get_cancelled_exc_class():
                    if envelope.state is EnvelopeState.RUNNING:
                        error = RuntimeClosedError("the runtime closed while answering this message")
                        self._fail_message(envelope, error)
                    raise
                except Exception as exc:  # noqa: BLE001 - supervision: any crash fails one message
                    if not self._supervise(envelope, exc):
                        return
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return
        finally:
            if not parked:
                self.running = False
                self._fail_queued()

    async def _process(self, envelope: Envelope) -> None:
        envelope.state = EnvelopeState.RUNNING
        delivery = envelope.delivery
        try:
            await self._answer(envelope)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            if delivery is None or not delivery.gone:
                raise
            self._drop(envelope)  # the streaming caller stopped listening
        finally:
            if delivery is not None:
                delivery.close()

    async def _answer(self, envelope: Envelope) -> None:
        runtime = self._runtime
        hook = runtime._hook
        persona = envelope.persona
        if hook is not None:
            hook(RuntimeEvent(EventKind.MESSAGE_STARTED, runtime._now(), self.session_id, envelope.seq))
        history: list[Turn] = []
        if envelope.history is not None:
            history = list(envelope.history)  # the caller's history replaces the stored one
        elif runtime._memory is not None:
            try:
                history = await self._load_history(persona.id)
            except MemoryStoreError as exc:
                self._fail_message(envelope, exc)
                return
        deadline = self._effective_deadline(envelope)
        request = ProviderRequest(
            session_id=self.session_id,
            persona=persona,
            message=envelope.message,
            system_prompt=envelope.system_prompt or runtime._system_prompt(persona),
            history=tuple(history),
            deadline=deadline,
        )
        # One scope per message: its deadline bounds the provider attempts (callers behind
        # may tighten it), and a caller who gives up cancels it (marking the envelope).
        scope = envelope.scope = self._running = anyio.CancelScope(deadline=deadline - FALLBACK_RESERVE)
        if envelope.delivery is not None:
            envelope.delivery.scope = scope
        try:
            result = await runtime._cascade.answer(
                request, seq=envelope.seq, delivery=envelope.delivery, deadline_scope=scope
            )
        finally:
            self._running = None
        if envelope.abandoned:
            self._drop(envelope)
            return
        response = result.response
        if response is None:  # a streamed answer was cut after its first chunk
            error = result.incomplete or IncompleteAnswerError("the answer was cut after it started")
            error.attempts = result.attempts
            error.provider = result.provider
            self._fail_message(envelope, error)
            return
        reply = Reply(
            text=response.text,
            provider=result.provider,
            persona_id=persona.id,
            session_id=self.session_id,
            fallback_used=result.fallback_used,
            attempts=result.attempts,
            model=response.model,
            usage=response.usage,
            elapsed=runtime._now() - envelope.started,
            refusal=result.refusal,
        )
        memory = runtime._memory
        if memory is not None:
            turn = Turn(envelope.message, reply.text, persona.id, reply.provider, reply.model, time.time())
            try:
                await memory.record(self.session_id, turn)
            except MemoryStoreError as exc:
                # Not a crash: the store failed (full disk...). This caller learns it; others go on.
                self._fail_message(envelope, exc)
                return
            # The session's cached history follows the store, whatever history this turn was sent with.
            cached = history if envelope.history is None else (self._history or {}).get(persona.id)
            if memory.max_turns and cached is not None:
                cached.append(turn)
                del cached[: -memory.max_turns]
        envelope.reply = reply
        envelope.state = EnvelopeState.DONE
        envelope.done.set()
        runtime._delivered += 1
        if hook is not None:
            hook(
                RuntimeEvent(
                    EventKind.REPLY_DELIVERED,
                    runtime._now(),
                    self.session_id,
                    envelope.seq,
                    reply.provider,
                    {"deadline": envelope.deadline, "fallback_used": reply.fallback_used},
                )
            )

    def _drop(self, envelope: Envelope) -> None:
        """The caller gave up while its message ran: nobody waits for a reply."""
        envelope.state = EnvelopeState.DROPPED
        envelope.done.set()
        hook = self._runtime._hook
        if hook is not None:
            hook(RuntimeEvent(EventKind.MESSAGE_DROPPED, self._runtime._now(), self.session_id, envelope.seq))

    def _fail_message(self, envelope: Envelope, error: BaseException) -> None:
        envelope.fail(error)
        hook = self._runtime._hook
        if hook is not None:
            hook(
                RuntimeEvent(
                    EventKind.MESSAGE_FAILED, anyio.current_time(), self.session_id, envelope.seq,
                    data={"error": repr(error)},
                )
            )

    async def _load_history(self, persona_id: str) -> list[Turn]:
        memory = self._runtime._memory
        if memory is None:
            return []
        if self._history is None:
            self._history = {}
        history = self._history.get(persona_id)
        if history is None:
            history = list(await memory.history(self.session_id, persona_id))
            self._history[persona_id] = history
        return history

    def _supervise(self, envelope: Envelope, exc: Exception) -> bool:
        """Handle a crash while processing; True to go on with fresh state, False to stop."""
        runtime = self._runtime
        now = runtime._now()
        logger.error("session %r crashed on message %d", self.session_id, envelope.seq, exc_info=exc)
        if isinstance(exc, ValisError) and not isinstance(exc, RuntimeClosedError):
            error: ValisError = exc  # e.g. a MemoryStoreError: give it to the caller as it is
        else:
            error = ActorCrashedError(f"session {self.session_id!r} crashed while answering: {exc!r}")
            error.__cause__ = exc
        self._fail_message(envelope, error)
        settings = runtime.config.session
        restarts = self._restarts = self._restarts or deque()
        restarts.append(now)
        while restarts and restarts[0] < now - settings.restart_window:
            restarts.popleft()
        # A restart: the actor's state is rebuilt from scratch; the mailbox survives.
        self._history = None
        if len(restarts) > settings.max_restarts:
            self.failed = SessionFailedError(
                f"session {self.session_id!r} crashed {len(restarts)} times in {settings.restart_window:g}s "
                f"(max_restarts={settings.max_restarts}); it refuses messages for {settings.restart_window:g}s. "
                f"Last error: {exc!r}"
            )
            self.failed_until = now + settings.restart_window
            self.send.close()  # the runtime checks `failed` before sending; nothing else may come in
            return False
        if runtime._hook is not None:
            runtime._hook(
                RuntimeEvent(EventKind.ACTOR_RESTARTED, now, self.session_id, data={"restarts": len(restarts)})
            )
        return True

    def _fail_queued(self) -> None:
        """Give every message still queued an error: nothing is left waiting forever."""
        error: ValisError = self.failed or RuntimeClosedError("the runtime closed before this message was answered")
        while True:
            try:
                envelope = self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
            if isinstance(envelope, Envelope) and envelope.state is EnvelopeState.QUEUED:
                self._fail_message(envelope, error)
        self._receive.close()

    def close(self) -> None:
        """Close the mailbox of a parked actor (no task is there to do it)."""
        self.send.close()
        if not self.running:
            self._fail_queued()
