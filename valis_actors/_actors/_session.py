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

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import anyio

from .._cascade import FALLBACK_RESERVE, MessageScope
from .._errors import (
    ActorCrashedError,
    IncompleteAnswerError,
    MemoryStoreError,
    RuntimeClosedError,
    SessionFailedError,
    ValisError,
)
from .._events import EventKind
from .._messages import ProviderRequest, Turn
from ._context import MessageInfo, SessionContext
from ._envelope import Envelope, EnvelopeState, _Park
from ._mailbox import Mailbox

__all__ = ["SessionActor"]

logger = logging.getLogger("valis_actors.session")


class SessionActor:
    """The actor of one session. Created and supervised by the runtime.

    An idle actor is *parked*: its task ends but the actor and its mailbox stay, so
    an idle session costs a few objects and no task; the next message starts a new
    task. After ``idle_timeout`` it is *passivated*: removed, mailbox closed.
    """

    __slots__ = (
        "_context",
        "_deadlines",
        "_history",
        "_own_cutoff",
        "_restarts",
        "_running",
        "_space",
        "_token",
        "failed",
        "failed_until",
        "idle_since",
        "mailbox",
        "running",
        "session_id",
    )

    def __init__(self, context: SessionContext, session_id: str, mailbox_size: int) -> None:
        self._context = context
        self.session_id = session_id
        self.mailbox: Mailbox[Envelope | _Park] = Mailbox(mailbox_size, context.new_event)
        self._history: dict[str, list[Turn]] | None = None
        # Deadline inheritance (see note_accepted): candidate minimum deadlines of the
        # queued messages, and the deadline scope of the message being answered.
        self._deadlines: dict[int, float] | None = None  # seq -> deadline of queued messages
        self._running: anyio.CancelScope | MessageScope | None = None
        self._own_cutoff = float("inf")  # the running message's own deadline, less the reserve
        self._restarts: deque[float] | None = None
        self._token: int | None = None  # the fencing token the cached history was read under
        self.failed: SessionFailedError | None = None
        self.failed_until = 0.0
        self.idle_since: float | None = None  # when the mailbox last ran empty
        self.running = False  # whether a task is processing (or waiting on) the mailbox
        self._space: anyio.Event | None = None  # set when the actor takes a message (senders wait)

    def space_freed(self) -> anyio.Event:
        """An event set the next time the actor takes a message from its mailbox (or closes)."""
        if self._space is None:
            self._space = anyio.Event()
        return self._space

    def _took(self) -> None:
        space = self._space
        if space is not None:
            self._space = None
            space.set()

    def note_accepted(self, seq: int, deadline: float) -> None:
        """A message was put in the mailbox: make sure FIFO never makes it late.

        Message k+1 cannot start before message k is answered, so a message's
        effective deadline is the earliest deadline among itself and every message
        queued behind it. A caller with a tighter deadline tightens the running
        message's deadline scope (the fallback then answers both in time).
        """
        cutoff = deadline - FALLBACK_RESERVE
        running = self._running
        if running is not None and cutoff < running.deadline:
            running.deadline = cutoff
        queued = self._deadlines
        if queued is None:
            queued = self._deadlines = {}
        queued[seq] = deadline

    def note_dropped(self, seq: int) -> None:
        """A queued message's caller gave up: undo what its deadline did to the running one."""
        queued = self._deadlines
        if not queued or queued.pop(seq, None) is None:
            return
        if self._running is not None:
            tightest = min(queued.values(), default=float("inf")) - FALLBACK_RESERVE
            self._running.deadline = min(self._own_cutoff, tightest)

    def _effective_deadline(self, envelope: Envelope) -> float:
        queued = self._deadlines
        if not queued:
            return envelope.deadline
        queued.pop(envelope.seq, None)
        if not queued:
            self._deadlines = None  # idle sessions keep no table
            return envelope.deadline
        return min(envelope.deadline, min(queued.values()))

    def depth(self) -> int:
        """Messages waiting in the mailbox."""
        return len(self.mailbox.items)

    async def run(self) -> None:
        """Process the mailbox until it is empty and the actor is parked, or it ends.

        The task ends in three ways: parked (the janitor's PARK token found an empty
        mailbox: the actor and its mailbox stay, the next message starts a new task),
        stopped (the mailbox closed: passivation or the runtime closing), or failed
        (restart intensity exceeded).
        """
        mailbox = self.mailbox
        context = self._context
        book = context.book
        now = context.now
        parked = False
        await self._lifecycle("activate")
        try:
            while True:
                envelope = mailbox.take()
                if envelope is None:
                    # Wait without a timer (the janitor parks idle actors).
                    self.idle_since = now()
                    book.waiting.add(self)
                    waiter = mailbox.waiter()
                    try:
                        if waiter is not None:
                            await waiter.wait()
                    finally:
                        book.waiting.discard(self)
                    envelope = mailbox.take()
                    if envelope is None:  # pragma: no cover - a wake-up always comes with mail or a close
                        continue
                self._took()
                if isinstance(envelope, _Park):
                    if self.depth():
                        continue  # messages came in behind the token: keep going
                    parked = True
                    self.running = False
                    book.parked.append((self.idle_since if self.idle_since is not None else now(), self))
                    return
                self.idle_since = None
                if not envelope.accepted:
                    context.accept(self, envelope)
                if envelope.state is EnvelopeState.DROPPED:
                    if envelope.delivery is not None:
                        envelope.delivery.close()  # its caller left while it was queued
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
            with anyio.CancelScope(shield=True):
                await self._lifecycle("passivate")

    async def serve(self, envelope: Envelope) -> None:
        """Answer one message in its caller's task: the session was idle, with nothing queued.

        The runtime takes this path for ``ask`` when the lifecycle has no hooks (they are
        owed a task of the session's) and the session has no task: the provider call then
        runs in the task that waits for its answer, which spares a task hop per message
        and keeps the collector's young counter from swinging with every request (see
        docs/performance.md). ``running`` is set by the runtime before the call, so
        messages sent meanwhile queue in the mailbox, and the runtime starts the actor's
        task for them once this one is answered: the session's order is the same.

        A caller who gives up (its task cancelled) drops the message as in the actor's
        task: its attempts are cancelled with it, and the cached history is dropped (a
        turn's commit may still land). A crash is supervised as in ``run``.
        """
        book = self._context.book
        book.idle.discard(self)
        self.idle_since = None
        try:
            await self._process(envelope)
        except anyio.get_cancelled_exc_class():
            if envelope.state is EnvelopeState.RUNNING:
                envelope.abandoned = True
                self._history = None  # the turn's commit may be pending: reload next time
                self._drop(envelope)
            raise
        except Exception as exc:  # noqa: BLE001 - supervision: any crash fails one message
            if not self._supervise(envelope, exc):
                self._fail_queued()
        finally:
            self._running = None
            self.running = False
            if not self.mailbox.items:
                if self.mailbox.closed:
                    self._fail_queued()
                else:
                    self.idle_since = self._context.now()
                    book.idle.add(self)

    async def _lifecycle(self, hook: str, message: MessageInfo | None = None) -> None:
        """Run a lifecycle hook that must not fail the session (activate, after_reply, passivate)."""
        lifecycle = self._context.lifecycle
        try:
            if message is not None:
                await getattr(lifecycle, hook)(message)
            else:
                await getattr(lifecycle, hook)(self.session_id)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception:  # a hook's failure is logged, the session goes on
            logger.exception("session %r: lifecycle hook %s raised", self.session_id, hook)

    async def _process(self, envelope: Envelope) -> None:
        envelope.state = EnvelopeState.RUNNING
        context = self._context
        # Built only for a lifecycle that has hooks around messages (the default has none).
        info = (
            MessageInfo(
                self.session_id, envelope.seq, envelope.persona.id,
                envelope.deadline if envelope.call is None else self._step_deadline(envelope),
            )
            if context.hooks_before_message or context.hooks_after_reply or context.hooks_fence
            else None
        )
        if envelope.call is not None:
            await self._run_call(envelope, info)
        else:
            emit = context.emit
            if emit.enabled:
                emit(EventKind.MESSAGE_STARTED, self.session_id, envelope.seq)
            deadline = self._effective_deadline(envelope)
            self._own_cutoff = envelope.deadline - FALLBACK_RESERVE
            cutoff = deadline - FALLBACK_RESERVE
            delivery = envelope.delivery
            try:
                if info is None or not (context.hooks_before_message or context.hooks_fence):
                    # The default lifecycle: nothing to wait for before the work, no fence around it.
                    await self._answer(envelope, deadline, cutoff, None)
                else:
                    answer = partial(self._answer, envelope, deadline)
                    await self._hooked(envelope, info, cutoff, answer, inherit=True)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                if delivery is None or not delivery.gone:
                    raise
                self._drop(envelope)  # the streaming caller stopped listening
            finally:
                if delivery is not None:
                    delivery.close()
        if info is not None and context.hooks_after_reply:
            await self._lifecycle("after_reply", info)

    async def _hooked(
        self,
        envelope: Envelope,
        info: MessageInfo,
        cutoff: float,
        work: Callable[[float, int | None], Awaitable[None]],
        *,
        inherit: bool,
    ) -> None:
        """Run ``work(cutoff, token)`` after the lifecycle's ``before_message``, inside its fence.

        The shared path of messages and app steps, for a lifecycle with hooks around the
        work. ``before_message`` runs in a scope ending at ``cutoff``, cancelled by a caller
        who gives up; with ``inherit``, callers queued meanwhile tighten it (messages, not
        steps: see ``note_accepted``). The lifecycle's own errors (``ValisError``,
        ``MemoryStoreError``: a lease not taken, a lease lost) fail the envelope here; an
        error of ``work`` itself is re-raised after the fence, for supervision to judge.
        """
        context = self._context
        body_error: Exception | None = None
        try:
            if context.hooks_before_message:
                # The lifecycle hook runs under the message's deadline and is cancelled by a
                # caller who gives up, like the attempts.
                hook = envelope.scope = context.new_scope(deadline=cutoff)
                if inherit:
                    self._running = hook
                with hook:
                    await context.lifecycle.before_message(info)
                if envelope.abandoned:
                    self._running = None
                    self._drop(envelope)
                    return
                cutoff = hook.deadline  # callers queued meanwhile may have tightened it
            # The fence (a lease in cluster mode) spans the whole work: history, providers,
            # memory write. An error of the work itself is kept aside and re-raised below,
            # so that only the fence's own verdict fails the message here.
            with context.lifecycle.fence(info) as token:
                try:
                    await work(cutoff, token)
                except Exception as exc:  # noqa: BLE001 - re-raised below, after the fence
                    body_error = exc
        except (ValisError, MemoryStoreError) as exc:
            self._running = None
            if envelope.state is EnvelopeState.RUNNING:
                self._fail_message(envelope, exc)
            return
        if body_error is not None:
            raise body_error

    async def _answer(self, envelope: Envelope, deadline: float, cutoff: float, token: int | None) -> None:
        """History, providers and memory write of one message, inside its lifecycle's fence."""
        context = self._context
        emit = context.emit
        persona = envelope.persona
        if token != self._token:
            # A new fencing token (a new lease grant): another process may have written
            # the session meanwhile, so the cached history is no longer the stored one.
            self._history = None
            self._token = token
        # The caller's history (a tuple) replaces the stored one; the stored one is the
        # session's cached list, which the turn is appended to once it is recorded.
        history: Sequence[Turn] = envelope.history if envelope.history is not None else ()
        loaded: list[Turn] | None = None
        if envelope.history is None and context.memory is not None:
            # The history load runs under the message's deadline and is cancelled by a caller
            # who gives up. Nothing to load (memory off): no scope, no timer.
            prepare = envelope.scope = self._running = context.new_scope(deadline=cutoff)
            try:
                with prepare:
                    history = loaded = await self._load_history(persona.id)
            except (ValisError, MemoryStoreError) as exc:
                self._running = None
                self._fail_message(envelope, exc)
                return
            if envelope.abandoned:
                self._running = None
                self._drop(envelope)
                return
            if prepare.cancelled_caught:
                # The deadline passed while preparing: no history, and the cascade (its scope
                # already due) answers with the persona fallback at once.
                logger.warning("session %r: message %d prepared past its deadline; answering without history",
                               self.session_id, envelope.seq)
            cutoff = prepare.deadline  # callers queued meanwhile may have tightened it
        # Positional (session_id, persona, message, system_prompt, history, deadline): a frozen
        # attrs class sets each field through a call, and keywords cost a third more again.
        request = ProviderRequest(
            self.session_id,
            persona,
            envelope.message,
            envelope.system_prompt or context.system_prompt(persona, self.session_id, history, envelope.message),
            tuple(history),
            deadline,
        )
        # The message's cancel handle: a caller who gives up cancels it (marking the
        # envelope), callers queued behind tighten its deadline, which bounds the provider
        # attempts. The common message's one cancel scope is its attempt's (see Cascade.answer).
        scope = envelope.scope = self._running = MessageScope(cutoff, context.new_scope)
        if envelope.delivery is not None:
            envelope.delivery.scope = scope
        try:
            result = await context.cascade.answer(request, seq=envelope.seq, delivery=envelope.delivery, scope=scope)
        finally:
            self._running = None
            envelope.scope = None  # nothing to cancel any more: freed now, not with the envelope
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
        elapsed = context.now() - envelope.started
        memory = context.memory
        if memory is not None:
            turn = Turn(envelope.message, response.text, persona.id, result.provider, response.model, time.time())
            try:
                with anyio.move_on_after(max(0.0, envelope.deadline - context.now())) as recording:
                    await memory.record(self.session_id, turn, token=token)
                if recording.cancelled_caught:
                    # The commit goes on in the memory actor; the reply does not wait past its deadline.
                    logger.warning("session %r: the turn's commit was still pending at the deadline", self.session_id)
                lost = memory.take_lost(self.session_id)
                if lost is not None:
                    # An earlier turn of this session was lost by a background commit: say so.
                    raise MemoryStoreError(f"an earlier turn of this session was not stored: {lost}") from lost
            except MemoryStoreError as exc:
                # Not a crash: the store failed (full disk...). This caller learns it; others go on.
                self._fail_message(envelope, exc)
                return
            # The session's cached history follows the store, whatever history this turn was sent with.
            cached = loaded if envelope.history is None else (self._history or {}).get(persona.id)
            if memory.max_turns and cached is not None:
                cached.append(turn)
                del cached[: -memory.max_turns]
        # The caller's task builds the Reply from these (Envelope.reply); a message its first
        # attempt answered leaves no object of the actor's but the response.
        if result.duration is not None:
            envelope.response = response
            envelope.provider = result.provider
            envelope.duration = result.duration
        else:
            envelope.answer = result
        envelope.elapsed = elapsed
        envelope.state = EnvelopeState.DONE
        envelope.done.set()
        context.book.delivered += 1
        if emit.enabled:
            emit(
                EventKind.REPLY_DELIVERED, self.session_id, envelope.seq, result.provider,
                {"deadline": envelope.deadline, "fallback_used": result.fallback_used},
            )

    def _step_deadline(self, envelope: Envelope) -> float:
        """The deadline of an app step's lease wait: ``response_deadline`` from its start.

        A step has no deadline of its own, so the one it was accepted with (``response_deadline``
        after the call) may be long past once the messages ahead of it are answered.
        """
        return self._context.now() + (envelope.deadline - envelope.started)

    async def _run_call(self, envelope: Envelope, info: MessageInfo | None) -> None:
        """Run an app step (``Runtime.run_in_session``) as this session's next message.

        Its exception goes to its caller as it is (not a crash of the session); a caller
        who gives up cancels it. Messages queued behind it do not tighten its deadline:
        it is the app's code, bounded by its caller.

        It runs under the lifecycle's hooks like a message (``before_message``, then the
        step inside ``fence``, then ``after_reply``), so in cluster mode a session runs one
        message or step at a time across processes. The lease wait is the only part with a
        deadline: ``response_deadline`` from the step's start (``info.deadline``); a lease
        still held elsewhere then fails the step with ``LeaseTimeoutError``, before it ran.
        A lease lost while it runs cancels the step, which fails with ``LeaseLostError``.
        Either error (any ``ValisError`` of the lifecycle) goes to the step's caller.
        """
        context = self._context
        emit = context.emit
        if emit.enabled:
            emit(EventKind.MESSAGE_STARTED, self.session_id, envelope.seq)
        # Out of the queued deadlines: left there, it would cut short every later message.
        self._effective_deadline(envelope)
        if info is None or not (context.hooks_before_message or context.hooks_fence):
            await self._run_step(envelope)
            return
        await self._hooked(envelope, info, info.deadline, partial(self._run_step, envelope), inherit=False)

    async def _run_step(self, envelope: Envelope, cutoff: float = 0.0, token: int | None = None) -> None:
        """The app step itself, inside its lifecycle's fence (``cutoff`` and ``token`` are unused)."""
        call = envelope.call
        if call is None:  # pragma: no cover - _process checked
            return
        scope = envelope.scope = anyio.CancelScope()
        try:
            with scope:
                result = await call()
        except Exception as exc:  # noqa: BLE001 - the app's own error, handed to the app as it is
            self._fail_message(envelope, exc)
            return
        if scope.cancelled_caught or envelope.abandoned:
            self._drop(envelope)
            return
        envelope.result = result
        envelope.state = EnvelopeState.DONE
        envelope.done.set()
        emit = self._context.emit
        if emit.enabled:
            emit(EventKind.REPLY_DELIVERED, self.session_id, envelope.seq, "app", {"deadline": envelope.deadline, "fallback_used": False})

    def _drop(self, envelope: Envelope) -> None:
        """The caller gave up while its message ran: nobody waits for a reply."""
        envelope.state = EnvelopeState.DROPPED
        envelope.done.set()
        self._context.emit(EventKind.MESSAGE_DROPPED, self.session_id, envelope.seq)

    def _fail_message(self, envelope: Envelope, error: BaseException) -> None:
        envelope.fail(error)
        emit = self._context.emit
        if emit.enabled:
            emit(EventKind.MESSAGE_FAILED, self.session_id, envelope.seq, data={"error": repr(error)})

    async def _load_history(self, persona_id: str) -> list[Turn]:
        memory = self._context.memory
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
        context = self._context
        now = context.now()
        logger.error("session %r crashed on message %d", self.session_id, envelope.seq, exc_info=exc)
        if isinstance(exc, ValisError) and not isinstance(exc, RuntimeClosedError):
            error: ValisError = exc  # e.g. a MemoryStoreError: give it to the caller as it is
        else:
            error = ActorCrashedError(f"session {self.session_id!r} crashed while answering: {exc!r}")
            error.__cause__ = exc
        self._fail_message(envelope, error)
        settings = context.settings
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
            self.mailbox.close()  # the runtime checks `failed` before sending; nothing else may come in
            return False
        context.emit(EventKind.ACTOR_RESTARTED, self.session_id, data={"restarts": len(restarts)})
        return True

    def _fail_queued(self) -> None:
        """Give every message still queued an error: nothing is left waiting forever."""
        error: ValisError = self.failed or RuntimeClosedError("the runtime closed before this message was answered")
        mailbox = self.mailbox
        while True:
            try:
                envelope = mailbox.take()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                break
            if envelope is None:
                break
            if not isinstance(envelope, Envelope):
                continue
            if envelope.state is EnvelopeState.QUEUED:
                self._fail_message(envelope, error)
            if envelope.delivery is not None:
                envelope.delivery.close()
        mailbox.leave()

    def refusal(self, now: float) -> SessionFailedError | None:
        """The error to refuse new messages with, while the session is failed."""
        if self.failed is not None and now < self.failed_until:
            return self.failed
        return None

    def close(self) -> None:
        """Close the mailbox of a parked actor (no task is there to do it)."""
        self.mailbox.close()
        self._took()  # waiting senders wake up and find it closed
        if not self.running:
            self._fail_queued()
