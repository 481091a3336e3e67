"""The runtime: ``open_runtime`` owns every actor; ``Runtime.ask`` is the front door.

Task tree (all structured; leaving ``open_runtime`` leaves no task behind):

    open_runtime
    ├── breaker actor                  (one; circuit state of every provider)
    ├── memory actor                   (one, when memory is enabled)
    └── sessions task group
        └── session actor × live sessions   (one per session id)

On a normal exit the runtime stops accepting messages, lets every session actor
answer what is already in its mailbox (each bounded by its deadline), then stops
the breaker and memory actors. On an error exit everything is cancelled and the
callers still waiting get ``RuntimeClosedError``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar, overload

import anyio
import attrs
from anyio.abc import TaskGroup

from .._cascade import BreakerActor, BreakerStatistics, BreakerSync, Cascade, Delivery
from .._clock import Clock, backend_clock
from .._config import Config, ProviderSettings
from .._errors import (
    ActorCrashedError,
    ConfigError,
    EmptyMessageError,
    InvalidPersonaIdError,
    InvalidRequestError,
    InvalidSessionIdError,
    MailboxFullError,
    MessageTooLongError,
    RuntimeClosedError,
)
from .._events import Emitter, EventHook, EventKind
from .._memory import ConversationStore, Memory, open_memory
from .._messages import Reply, Turn
from .._personas import NEUTRAL, Persona, PersonaStore, render_system_prompt
from .._util import NoPublicConstructor
from .._validation import describe_surrogate, lone_surrogate
from ..providers import BaseProvider, provider_class
from ..providers._common import redacted_traceback
from ._context import SessionContext, SessionLifecycle
from ._envelope import PARK, Envelope, EnvelopeState
from ._session import SessionActor
from ._signal import Signal, checkpoint_function, scope_class, signal_class
from ._stream import ReplyStream

__all__ = ["Runtime", "RuntimeStatistics", "open_runtime"]

logger = logging.getLogger("valis_actors.runtime")

T = TypeVar("T")
ProviderT = TypeVar("ProviderT", bound=BaseProvider)

MAX_SESSION_ID_CHARS = 256


@attrs.frozen
class RuntimeStatistics:
    """A snapshot of the runtime, from ``Runtime.statistics()``.

    Attributes:
        live_sessions: Session actors currently alive (not passivated).
        waiting_sessions: Live sessions whose task waits on an empty mailbox (not yet parked).
        queued_messages: Messages waiting in all mailboxes.
        mailbox_depths: Waiting messages per session, for sessions with any.
        attempts_in_flight: Provider attempts running now (the persona fallback excluded).
        max_concurrent_requests: The configured bound on ``attempts_in_flight``.
        replies_delivered: Replies delivered since the runtime opened.
        breakers: Each provider's circuit.
        closed: True once the runtime stopped accepting messages.
        hook_failures: Times the event hook raised (each logged once, never fatal).
        memory_errors: Background commits that failed (``durability: "async"``).
    """

    live_sessions: int
    queued_messages: int
    mailbox_depths: Mapping[str, int]
    attempts_in_flight: int
    max_concurrent_requests: int
    replies_delivered: int
    breakers: Mapping[str, BreakerStatistics]
    closed: bool
    hook_failures: int = 0
    memory_errors: int = 0
    waiting_sessions: int = 0


class Runtime(metaclass=NoPublicConstructor):
    """A running VALIS runtime. Get one from :func:`open_runtime`; it cannot be constructed."""

    def __init__(
        self,
        config: Config,
        personas: PersonaStore,
        providers: list[BaseProvider],
        breaker: BreakerActor,
        memory: Memory | None,
        emit: Emitter,
        clock: Clock,
        lifecycle: SessionLifecycle,
    ) -> None:
        self._now = clock
        # The backend's Event class, looked up once (anyio.Event() finds the backend each time).
        self._new_event: Callable[[], Signal] = signal_class()
        self._checkpoint = checkpoint_function()
        self.config = config
        self.personas = personas
        self.providers = tuple(providers)
        # Providers whose every answer suspends the task (network I/O): a message they
        # answered in its caller's task needs no checkpoint after it (``_drive``).
        self._suspending = frozenset(p.name for p in providers if p.suspends)
        self._emit = emit
        self._memory = memory
        self._breaker = breaker
        self._limiter = anyio.Semaphore(config.max_concurrent_requests)
        new_scope = scope_class()  # like the Event class above: looked up once
        cascade = Cascade(
            [p for p in providers if not p.local],
            providers[-1],
            breaker=breaker,
            limiter=self._limiter,
            retry_schedule=config.retry_schedule,
            provider_timeout=config.provider_timeout,
            content_policy_failover=config.content_policy_failover,
            retry_timeouts=config.retry_timeouts,
            hedge_after=config.hedge_after,
            emit=emit,
            clock=clock,
            new_scope=new_scope,
        )
        self._prompts: dict[str, str] = {}
        self._context = SessionContext(
            cascade, memory, config.session, clock, emit, self._system_prompt, lifecycle,
            new_scope=new_scope,
            new_event=self._new_event,
        )
        self._book = self._context.book
        self._sessions: dict[str, SessionActor] = {}
        self._sessions_tg: TaskGroup | None = None
        self._closed = False
        self._aborted = False  # the body of open_runtime raised: everything is being cancelled
        self._janitor_scope = anyio.CancelScope()
        # Messages being answered in their callers' tasks (``_drive``), and the signal set when
        # the last of them ends while ``open_runtime`` waits for them to close.
        self._driven: set[Envelope] = set()
        self._drivers_left: Signal | None = None

    @overload
    def provider(self, name: str) -> BaseProvider: ...

    @overload
    def provider(self, name: str, kind: type[ProviderT]) -> ProviderT: ...

    def provider(self, name: str, kind: type[BaseProvider] = BaseProvider) -> BaseProvider:
        """The provider instance created for the config entry ``name``.

        Args:
            name: The entry's name.
            kind: The class you expect; the result is typed as it (e.g.
                ``runtime.provider("llm", ScriptedProvider).script(...)`` passes mypy --strict).

        Raises:
            KeyError: No enabled provider has that name.
            TypeError: The provider is not an instance of ``kind``.
        """
        for provider in self.providers:
            if provider.name == name:
                if not isinstance(provider, kind):
                    raise TypeError(
                        f"provider {name!r} is a {type(provider).__name__} (type {provider.settings.type!r}), "
                        f"not a {kind.__name__}; check the entry's type in the config"
                    )
                return provider
        raise KeyError(f"no enabled provider named {name!r}; enabled: {', '.join(p.name for p in self.providers)}")

    @property
    def closed(self) -> bool:
        """True once the runtime accepts no more messages."""
        return self._closed

    async def ask(
        self,
        session_id: str,
        persona_id: str,
        message: str,
        *,
        deadline: float | None = None,
        history: Sequence[Turn] | None = None,
        system_prompt: str | None = None,
    ) -> Reply:
        """Answer ``message`` as ``persona_id`` in session ``session_id``.

        Messages of one session are answered strictly in the order they were
        accepted; different sessions run concurrently. A reply always arrives by
        the deadline (the persona fallback answers if no provider can).

        Args:
            session_id: The conversation (1-256 characters).
            persona_id: A persona id or alias; unknown ids get the neutral persona
                (or an error, per ``unknown_persona``).
            message: The user's message: non-empty, at most ``max_message_chars``.
            deadline: Seconds for this call, overriding ``response_deadline``.
            history: Earlier turns to send instead of the stored ones (a stateless
                client that resends its conversation). The turn is still recorded.
            system_prompt: A system prompt to send instead of the persona's rendered one.

        Raises:
            InvalidRequestError: A bad argument (refused before reaching a mailbox), e.g.
                text holding a lone surrogate, which is not valid Unicode.
            UnknownPersonaError: Unknown persona with ``unknown_persona: "error"``.
            RuntimeClosedError: The runtime is closed.
            MailboxFullError: The session's mailbox stayed full until the deadline.
            SessionFailedError: The session crashed too often and is refusing messages.
            ActorCrashedError: The session crashed while answering this message.
        """
        envelope = self._accept(session_id, persona_id, message, deadline, history, system_prompt)
        actor = self._actor_for(session_id)
        mailbox = actor.mailbox
        if self._context.plain and not actor.running and not mailbox.items and not mailbox.closed:
            await self._drive(actor, envelope)
        else:
            await self._settle(session_id, envelope)
        reply = envelope.reply  # built here, in the caller's task, from what the actor left
        if reply is None:  # the actor sets one or the other; never neither
            raise ActorCrashedError(f"session {session_id!r} ended a message without a reply or an error")
        return reply

    @asynccontextmanager
    async def stream(
        self,
        session_id: str,
        persona_id: str,
        message: str,
        *,
        deadline: float | None = None,
        history: Sequence[Turn] | None = None,
        system_prompt: str | None = None,
    ) -> AsyncIterator[ReplyStream]:
        """Answer like :meth:`ask`, streaming the answer as it arrives.

        Same ordering, cascade and errors as ``ask``. Failover is free until the first
        chunk reaches you; after it, a cut, stalled or malformed stream is continued by
        a provider that can continue a partial answer (you see one answer, nothing
        repeated or missing). When none can, ``chunks.events()`` gives a ``Restart``
        and a new answer; plain iteration ends with ``IncompleteAnswerError``. The
        deadline bounds the whole answer. Leaving the block early gives up the message
        (its attempts are cancelled).

        Yields:
            A ``ReplyStream``: iterate it for text chunks, then read ``provider``,
            ``model``, ``usage``, ``attempts``, ``fallback_used``.
        """
        envelope = self._accept(session_id, persona_id, message, deadline, history, system_prompt)
        delivery = envelope.delivery = Delivery(self.config.first_token_timeout, self.config.stream_idle_timeout)
        try:
            await self._enqueue(session_id, envelope)
        except BaseException:
            delivery.close()  # refused (full mailbox, closed runtime): no actor will ever own it
            delivery.receive.close()
            raise
        try:
            yield ReplyStream(envelope, delivery)
        finally:
            delivery.receive.close()
            if not envelope.done.is_set():
                self._abandon(session_id, envelope)

    async def run_in_session(self, session_id: str, step: Callable[[], Awaitable[T]], *, label: str = "app step") -> T:
        """Run ``step()`` as a step of the session's mailbox, in order with its messages.

        It starts after every message of ``session_id`` accepted before it has been
        answered, and messages accepted after it wait for it: app logic of your own (a
        handoff rule, moderation, a ``/reset`` command) keeps the session's order without a
        chain of your own. The same guarantees as ``ask``: FIFO, exactly one outcome
        (its result, or the exception it raised, as it is), a full mailbox refuses it
        with ``MailboxFullError`` after ``response_deadline``, and cancelling the caller
        cancels the step (queued: never started; running: cancelled).

        Args:
            session_id: The session whose order the step joins.
            step: An async callable taking no arguments.
            label: What the step is called in runtime events (``message`` of
                ``message_accepted``), so ``EventRecorder`` checks cover app steps too.

        Raises:
            InvalidRequestError, RuntimeClosedError, MailboxFullError, SessionFailedError:
                as for ``ask``; and whatever ``step`` raises.
        """
        if not callable(step):
            raise InvalidRequestError(f"step must be an async callable, got {type(step).__name__}")
        envelope = self._accept(session_id, NEUTRAL.id, label, None)
        envelope.call = step
        await self._settle(session_id, envelope)
        return envelope.result  # type: ignore[no-any-return]

    async def _settle(self, session_id: str, envelope: Envelope) -> None:
        """Enqueue an envelope and wait for its outcome; a caller who leaves abandons it."""
        full = self._enqueue_nowait(session_id, envelope)
        if full is not None:
            await self._enqueue_when_space(full, envelope)
        try:
            await envelope.done.wait()
        except BaseException:
            self._abandon(session_id, envelope)
            raise
        if envelope.error is not None:
            raise envelope.error

    async def _drive(self, actor: SessionActor, envelope: Envelope) -> None:
        """Answer a message of an idle session in the caller's task (see ``SessionActor.serve``).

        The message is numbered as if it went through the mailbox, and messages sent to
        the session meanwhile queue behind it; the actor's task starts for them after it.
        """
        actor.running = True
        self._context.accept(actor, envelope, queued=False)
        driven = self._driven
        driven.add(envelope)
        try:
            await actor.serve(envelope)
            if envelope.error is not None or self._answered_by(envelope) not in self._suspending:
                # The answer may have come without the task suspending once (the persona
                # fallback, a provider that answers from memory): yield, or a caller
                # asking in a loop would starve every other task.
                await self._checkpoint()
        finally:
            driven.discard(envelope)
            if not driven and self._drivers_left is not None:
                self._drivers_left.set()
            if actor.mailbox.items and not actor.running:
                if self._aborted:
                    actor.close()  # everything is being cancelled: the queued messages fail, unstarted
                else:
                    self._start(actor)
        if envelope.error is not None:
            raise envelope.error
        if envelope.state is EnvelopeState.DROPPED:  # the runtime aborted while it was answered
            raise RuntimeClosedError("the runtime closed while answering this message")

    @staticmethod
    def _answered_by(envelope: Envelope) -> str:
        answer = envelope.answer
        return envelope.provider if answer is None else answer.provider

    async def _drivers_done(self) -> None:
        """Wait for the messages being answered in their callers' tasks (each bounded by its deadline).

        Cancelled meanwhile, the rest are abandoned (their attempts cancelled) and waited
        for all the same: they use the breaker and memory actors, which stop after this.
        """
        try:
            await self._wait_drivers()
        except BaseException:
            self._abandon_driven()
            with anyio.CancelScope(shield=True):
                await self._wait_drivers()
            raise

    async def _wait_drivers(self) -> None:
        while self._driven:
            left = self._drivers_left = self._new_event()
            await left.wait()
        self._drivers_left = None

    def _abandon_driven(self) -> None:
        for envelope in list(self._driven):
            envelope.abandon()

    async def _enqueue(self, session_id: str, envelope: Envelope) -> None:
        full = self._enqueue_nowait(session_id, envelope)
        if full is not None:
            await self._enqueue_when_space(full, envelope)

    def _enqueue_nowait(self, session_id: str, envelope: Envelope) -> SessionActor | None:
        """Put the envelope in its session's mailbox and number it; the actor if the mailbox is full.

        Synchronous, so the common case (room in the mailbox) costs no coroutine.
        """
        actor = self._actor_for(session_id)
        try:
            actor.mailbox.put_nowait(envelope)
            if not actor.running:
                self._start(actor)
        except anyio.WouldBlock:
            return actor
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise RuntimeClosedError("the runtime is closed; open a new one with open_runtime()") from None
        self._context.accept(actor, envelope)
        return None

    async def _enqueue_when_space(self, actor: SessionActor, envelope: Envelope) -> None:
        """Wait for room in a full mailbox (up to the message's deadline), then number the envelope."""
        await self._send_with_backpressure(actor, envelope)
        self._context.accept(actor, envelope)

    def _start(self, actor: SessionActor) -> None:
        """Start (or restart, after parking) the task of an actor with mail."""
        if self._sessions_tg is None:
            raise RuntimeClosedError("the runtime is not open; use `async with open_runtime(...)`")
        actor.running = True
        self._sessions_tg.start_soon(actor.run, name=f"session:{actor.session_id}")

    def _accept(
        self,
        session_id: object,
        persona_id: object,
        message: object,
        deadline: float | None,
        history: Sequence[Turn] | None = None,
        system_prompt: str | None = None,
    ) -> Envelope:
        """Validate the arguments and build the envelope; nothing reaches a mailbox on error."""
        if self._closed:
            raise RuntimeClosedError("the runtime is closed; open a new one with open_runtime()")
        if not isinstance(session_id, str):
            raise InvalidSessionIdError(f"session id must be a string, got {type(session_id).__name__}")
        if not session_id or len(session_id) > MAX_SESSION_ID_CHARS:
            raise InvalidSessionIdError(
                f"session id must be 1 to {MAX_SESSION_ID_CHARS} characters (got {len(session_id)})"
            )
        if not session_id.isascii():  # ASCII (the common case) holds no surrogate: no call
            _refuse_surrogates("session id", session_id, InvalidSessionIdError)
        if not isinstance(message, str):
            raise InvalidRequestError(f"message must be a string, got {type(message).__name__}")
        if not message.strip():
            raise EmptyMessageError("message is empty; send some text")
        limit = self.config.max_message_chars
        if len(message) > limit:
            raise MessageTooLongError(
                f"message is {len(message)} characters, over max_message_chars={limit}; "
                "shorten it or raise max_message_chars in config.json"
            )
        if not message.isascii():  # after the length: never encode an oversized one
            _refuse_surrogates("message", message)
        if not isinstance(persona_id, str):
            raise InvalidRequestError(f"persona id must be a string, got {type(persona_id).__name__}")
        if not persona_id.isascii():
            _refuse_surrogates("persona id", persona_id, InvalidPersonaIdError)
        persona = self.personas.get(persona_id)
        if deadline is None:
            deadline = self.config.response_deadline
        elif isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not deadline > 0:
            raise InvalidRequestError(f"deadline must be a number of seconds > 0 (got {deadline!r})")
        if history is not None:
            history = tuple(history)
            if not all(isinstance(turn, Turn) for turn in history):
                raise InvalidRequestError("history must be a sequence of va.Turn")
            for index, turn in enumerate(history):
                for field in ("user", "assistant", "persona_id", "provider", "model"):
                    value = getattr(turn, field)
                    if isinstance(value, str):
                        _refuse_surrogates(f"history[{index}].{field}", value)
                    elif value is not None or field != "model":  # only the model may be None
                        raise InvalidRequestError(
                            f"history[{index}].{field} must be a string, got {type(value).__name__}"
                        )
        if system_prompt is not None and not isinstance(system_prompt, str):
            raise InvalidRequestError(f"system prompt must be a string, got {type(system_prompt).__name__}")
        if system_prompt is not None:
            _refuse_surrogates("system prompt", system_prompt)
        now = self._now()
        envelope = Envelope(session_id, persona, message, now, now + deadline, self._new_event())
        envelope.history = history
        envelope.system_prompt = system_prompt
        return envelope

    def _actor_for(self, session_id: str) -> SessionActor:
        actor = self._sessions.get(session_id)
        if actor is not None:
            if actor.failed is None:
                return actor
            refusal = actor.refusal(self._now())
            if refusal is not None:
                raise refusal
        actor = SessionActor(self._context, session_id, self.config.session.mailbox_size)
        self._sessions[session_id] = actor
        self._emit(EventKind.SESSION_ACTIVATED, session_id)
        return actor

    async def _send_with_backpressure(self, actor: SessionActor, envelope: Envelope) -> None:
        # Not `await send()`: a sender blocked in the stream enters the mailbox when the
        # actor takes an item, but resumes whenever the scheduler says (trio shuffles),
        # so its number would not follow mailbox order. Waiters retry send_nowait when
        # the actor frees space, and are numbered at once by the caller (see _enqueue).
        wait = envelope.deadline - self._now()
        try:
            with anyio.move_on_after(wait):
                while True:
                    await actor.space_freed().wait()
                    try:
                        actor.mailbox.put_nowait(envelope)
                    except anyio.WouldBlock:
                        continue  # another waiter took the space
                    if not actor.running:
                        self._start(actor)
                    return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise RuntimeClosedError("the runtime closed while this message waited for mailbox space") from None
        raise MailboxFullError(
            f"session {actor.session_id!r}: mailbox full ({self.config.session.mailbox_size} messages) "
            f"for {wait:.3g}s; wait for replies before sending more, or raise session.mailbox_size"
        )

    def _abandon(self, session_id: str, envelope: Envelope) -> None:
        """The caller gave up: drop a queued message, cancel a running one's attempts."""
        if envelope.abandon():
            actor = self._sessions.get(session_id)
            if actor is not None and envelope.accepted:
                actor.note_dropped(envelope.seq)
            self._emit(EventKind.MESSAGE_DROPPED, session_id, envelope.seq)

    async def _janitor(self) -> None:
        """Park idle actors and passivate sessions idle for ``session.idle_timeout``.

        One periodic sweep instead of a timer per actor (arming and disarming an idle
        timer on every message cost more than the rest of the mailbox round trip). Every
        tick (1 s, or a quarter of ``idle_timeout`` if shorter) the actors waiting on an
        empty mailbox since the last tick get a PARK token and end their task; parked
        sessions idle for ``idle_timeout`` are passivated, within one tick.
        """
        idle = self.config.session.idle_timeout
        tick = min(1.0, idle / 4)
        with self._janitor_scope:
            while True:
                await anyio.sleep(tick)
                now = self._now()
                book = self._book
                for actor in [a for a in book.waiting if a.idle_since is not None and now - a.idle_since >= tick]:
                    try:
                        actor.mailbox.put_nowait(PARK)
                    except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass  # busy after all, or closing: nothing to park
                parked = book.parked
                if book.idle:
                    # Sessions answered in their callers' tasks have no task to park: they are
                    # parked as they are, in the order they went idle.
                    resting = sorted(
                        ((a.idle_since, a) for a in book.idle if not a.running and a.idle_since is not None),
                        key=_since,
                    )
                    book.idle.clear()
                    parked.extend(resting)
                while parked:
                    since, actor = parked[0]
                    if actor.running or actor.idle_since != since:
                        parked.popleft()  # it woke up since: a newer entry exists if it parked again
                    elif now - since >= idle:
                        parked.popleft()
                        self._passivate(actor)
                    else:
                        break

    def _passivate(self, actor: SessionActor) -> bool:
        """Retire an idle actor: it leaves the table, and its mailbox closes."""
        if actor.running or actor.depth() or self._sessions.get(actor.session_id) is not actor:
            return False
        del self._sessions[actor.session_id]
        actor.close()
        self._emit(EventKind.SESSION_PASSIVATED, actor.session_id)
        return True

    def _system_prompt(self, persona: Persona, session_id: str, history: Sequence[Turn], message: str) -> str:
        prompt = self._prompts.get(persona.id)
        if prompt is not None:
            return prompt
        personas = self.personas
        if persona.id in personas.cards:
            # A card's prompt depends on the message and the history (macros, lorebook): never cached.
            texts = [text for turn in history for text in (turn.user, turn.assistant)]
            card_prompt = personas.prompt_for(persona, session_id, [*texts, message])
            if card_prompt is not None:
                return card_prompt
        prompt = render_system_prompt(persona)
        if personas.find(persona.id) is persona:  # unknown ids (neutral under their own id) are not cached
            self._prompts[persona.id] = prompt
        return prompt

    def _begin_close(self) -> None:
        """Refuse new messages; let actors finish their mailboxes and exit. Idempotent."""
        self._closed = True
        for actor in list(self._sessions.values()):
            actor.close()
        self._sessions.clear()

    def statistics(self) -> RuntimeStatistics:
        """A snapshot of sessions, mailboxes, attempts in flight and circuits."""
        depths = {sid: d for sid, actor in self._sessions.items() if (d := actor.depth())}
        limit = self.config.max_concurrent_requests
        return RuntimeStatistics(
            live_sessions=len(self._sessions),
            queued_messages=sum(depths.values()),
            mailbox_depths=depths,
            attempts_in_flight=limit - self._limiter.value,
            max_concurrent_requests=limit,
            replies_delivered=self._book.delivered,
            breakers=dict(self._breaker.view),
            closed=self._closed,
            hook_failures=self._emit.failures,
            waiting_sessions=len(self._book.waiting),
            memory_errors=self._memory.background_errors if self._memory is not None else 0,
        )

    def _attach(self, sessions: TaskGroup) -> None:
        """``open_runtime`` hands the runtime the task group its session actors run in."""
        self._sessions_tg = sessions

    def _abort(self) -> None:
        """The body of ``open_runtime`` raised: accept nothing more (everything is being cancelled).

        Messages answered in their callers' tasks are abandoned: their callers get
        ``RuntimeClosedError``, as those waiting on a session's task do.
        """
        self._closed = self._aborted = True
        self._abandon_driven()

    def _finish(self) -> None:
        """Close every mailbox and stop the janitor (the actors answer what they hold)."""
        self._begin_close()
        self._janitor_scope.cancel()


def _since(entry: tuple[float, SessionActor]) -> float:
    return entry[0]


def _refuse_surrogates(what: str, text: str, error: type[InvalidRequestError] = InvalidRequestError) -> None:
    # Refused, not repaired: text that cannot be UTF-8 cannot reach SQLite, an HTTP body
    # or a terminal, and guessing what the client meant would store something it never sent.
    index = lone_surrogate(text)
    if index is not None:
        raise error(describe_surrogate(what, text, index))


def _create_provider(settings: ProviderSettings) -> BaseProvider:
    try:
        cls = provider_class(settings.type)
        # `settings` is set before __init__ runs, so a subclass that does not call
        # super().__init__ (the documented contract allows it) still has its name and options.
        provider = cls.__new__(cls)
        provider.settings = settings
        provider.__init__(settings)  # type: ignore[misc]
        return provider
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"provider {settings.name!r} (type {settings.type!r}) cannot be created: {exc}") from exc


@asynccontextmanager
async def open_runtime(
    config: Config | None = None,
    *,
    event_hook: EventHook | None = None,
    lifecycle: SessionLifecycle | None = None,
    memory_store: ConversationStore | None = None,
    breaker_sync: BreakerSync | None = None,
) -> AsyncIterator[Runtime]:
    """Open a runtime: start its actors, yield it, and close it cleanly on exit.

    Args:
        config: The configuration (``load_config()`` reads config.json); ``None`` means ``Config()``.
        event_hook: Called synchronously with every ``RuntimeEvent`` (see ``valis_actors.testing``).
            A hook that raises is logged once and counted, never fatal.
        lifecycle: Hook points around each session's life (see ``SessionLifecycle``).
        memory_store: The conversation store to use instead of the one ``config.memory``
            names (a fenced store in cluster mode); the runtime closes it on exit.
        breaker_sync: Where the breaker actor shares circuit state with other processes
            (see ``BreakerSync``; cluster mode's shared breaker).

    Raises:
        ConfigError: A provider cannot be created, or the personas folder is missing.
        MemoryStoreError: The conversation store cannot be opened.

    Errors raised by the body come out as themselves, never wrapped in an ExceptionGroup.
    """
    config = config if config is not None else Config()
    clock = backend_clock()
    emit = Emitter(event_hook, clock)
    personas = await anyio.to_thread.run_sync(
        functools.partial(
            PersonaStore.load_dir, config.personas_dir, config.unknown_persona, user_name=config.user_name
        )
    )
    for problem in personas.problems:
        logger.warning("persona not loaded: %s", problem)
    for warning in personas.warnings:
        logger.warning("persona: %s", warning)
    providers = [_create_provider(s) for s in config.providers if s.enabled]
    breaker = BreakerActor(
        [p.name for p in providers if not p.local],
        threshold=config.circuit_breaker_threshold,
        timeout=config.circuit_breaker_timeout,
        emit=emit,
        clock=clock,
        sync=breaker_sync,
    )
    body_error: BaseException | None = None
    opened: list[BaseProvider] = []
    try:
        for provider in providers:
            await provider.aopen()
            opened.append(provider)
        async with open_memory(config.memory, memory_store) as memory:
            runtime = Runtime._create(
                config, personas, providers, breaker, memory, emit, clock, lifecycle or SessionLifecycle()
            )
            async with anyio.create_task_group() as actors:
                actors.start_soon(breaker.run, name="breaker")
                actors.start_soon(runtime._janitor, name="janitor")
                try:
                    async with anyio.create_task_group() as sessions:
                        runtime._attach(sessions)
                        try:
                            yield runtime
                        except BaseException as exc:  # noqa: BLE001 - re-raised below, unwrapped
                            # Kept aside and re-raised below as itself: raising it through the
                            # task groups would wrap it in an ExceptionGroup.
                            body_error = exc
                            runtime._abort()
                            # The abandoned messages still answered in their callers' tasks end
                            # at once; the breaker and memory actors must outlive them.
                            with anyio.CancelScope(shield=True):
                                await runtime._drivers_done()
                            actors.cancel_scope.cancel()
                        else:
                            runtime._begin_close()
                            await runtime._drivers_done()
                finally:
                    runtime._finish()
                    breaker.close()
    finally:
        breaker.close()
        with anyio.CancelScope(shield=True):
            for provider in reversed(opened):
                try:
                    await provider.aclose()
                except Exception as exc:  # noqa: BLE001 - logged (redacted); the others still close
                    logger.error(
                        "closing provider %r failed\n%s", provider.name, redacted_traceback(exc, provider.redact)
                    )
    if body_error is not None:
        raise body_error
