"""What a session actor is handed: the narrow context it may use, and the lifecycle hook points.

A session actor never sees the runtime. It gets one ``SessionContext`` (shared by every
session of a runtime) holding exactly what answering a message needs — the cascade, the
memory, the prompt renderer, the clock, event emission, the session settings — plus
``SessionBook``, the one piece of state that the runtime and its actors share on
purpose (who is waiting, who parked, how many messages were accepted and answered),
and a ``SessionLifecycle``: the hook points around a session's life.

``SessionLifecycle`` is where coordination beyond one process plugs in (a per-session
lease in cluster mode): ``activate`` when a session's task starts, ``before_message``
before each message is answered (inside the message's deadline and cancel scope),
``fence`` around the message's work once ``before_message`` succeeded (it may stop
the work, and yields the fencing token the memory write carries), ``after_reply`` once
the reply (or error) is settled, ``passivate`` when the task ends. The default does
nothing and its fence yields no token. An app step (``Runtime.run_in_session``) goes
through ``before_message``, ``fence`` and ``after_reply`` like a message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import anyio
import attrs

from .._cascade import Cascade
from .._clock import Clock
from .._config import SessionSettings
from .._events import Emitter, EventKind
from .._memory import Memory
from .._messages import Turn
from .._personas import Persona
from ._signal import Signal

if TYPE_CHECKING:
    from ._envelope import Envelope
    from ._session import SessionActor

__all__ = ["MessageInfo", "SessionBook", "SessionContext", "SessionLifecycle"]


@attrs.frozen
class MessageInfo:
    """What a lifecycle hook learns about the message being answered (or the app step being run).

    Attributes:
        session_id: The session.
        seq: The message's runtime-wide number.
        persona_id: The persona answering it (the neutral persona's for an app step).
        deadline: Its absolute deadline (the runtime clock). An app step has none of its own:
            this is ``response_deadline`` from the step's start, which bounds ``before_message``.
    """

    session_id: str
    seq: int
    persona_id: str
    deadline: float


class SessionLifecycle:
    """Hook points around a session's life; subclass and pass to ``open_runtime``.

    Each hook runs in the session actor's task, so a session's hooks never overlap.
    ``before_message`` runs inside the message's deadline and cancel scope: a hook that
    must wait (for a lease) waits at most until the deadline, and a caller who gives up
    cancels it. An exception from ``before_message`` fails that message (a ``ValisError``
    reaches the caller as it is); from the other hooks it is logged.
    """

    async def activate(self, session_id: str) -> None:
        """A task for ``session_id`` starts processing its mailbox."""

    async def before_message(self, message: MessageInfo) -> None:
        """A message is about to be answered (history load, providers, memory write)."""

    def fence(self, message: MessageInfo) -> AbstractContextManager[int | None]:
        """The scope the message's work runs in: history load, providers, memory write.

        Entered in the session's task right after ``before_message`` returned, exited
        before the reply is handed over. It yields the message's fencing token (or None):
        the memory write of the turn carries it (``Memory.record(..., token=)``) and a
        fenced store rejects a token older than the session's current one. A fence that
        stops the work (it cancels its own cancel scope: a lease was lost) raises a
        ``ValisError`` on exit, and the message fails with it; the reply is never handed
        over. Raising on entry fails the message before any work.
        """
        return nullcontext(None)

    async def after_reply(self, message: MessageInfo) -> None:
        """The message's reply or error was handed to its caller."""

    async def passivate(self, session_id: str) -> None:
        """The session's task ends (parked, passivated, or the runtime closing)."""


def _overrides(lifecycle: SessionLifecycle, hook: str) -> bool:
    """Whether ``lifecycle`` has its own ``hook`` (on its class or the instance), not the no-op."""
    own = getattr(type(lifecycle), hook, None) is not getattr(SessionLifecycle, hook)
    return own or hook in getattr(lifecycle, "__dict__", {})


@attrs.define(eq=False)
class SessionBook:
    """Bookkeeping shared by the runtime and its session actors, by design.

    The runtime's janitor reads ``waiting`` and ``parked`` to park and passivate idle
    actors; actors record themselves there. Nothing else of either side is shared.
    """

    waiting: set[SessionActor] = attrs.field(factory=set)  # tasks waiting on an empty mailbox
    # Sessions whose last message was answered in its caller's task (no task of their own),
    # idle since then; the janitor moves them to ``parked``.
    idle: set[SessionActor] = attrs.field(factory=set)
    # (idle since, actor) in the order they parked: idle-since times only grow along it.
    parked: deque[tuple[float, SessionActor]] = attrs.field(factory=deque)
    accepted: int = 0
    delivered: int = 0


@attrs.define(eq=False)
class SessionContext:
    """Everything a session actor may use (one per runtime, shared by its sessions)."""

    cascade: Cascade
    memory: Memory | None
    settings: SessionSettings
    now: Clock
    emit: Emitter
    # (persona, session id, history, message): a character card's prompt depends on all four.
    system_prompt: Callable[[Persona, str, Sequence[Turn], str], str]
    lifecycle: SessionLifecycle
    book: SessionBook = attrs.field(factory=SessionBook)
    # Builds a message's cancel scope: the backend's own class, which the runtime looks up
    # once (``anyio.CancelScope(...)`` finds the backend on every call).
    new_scope: Callable[..., anyio.CancelScope] = anyio.CancelScope
    # Makes the signal a mailbox's reader waits on (``_signal.signal_class()``).
    new_event: Callable[[], Signal] = anyio.Event
    # Whether the lifecycle overrides these hooks: the default ones do nothing, and a message
    # spares their coroutine, its MessageInfo and (before_message) a cancel scope and timer.
    hooks_before_message: bool = attrs.field(init=False)
    hooks_after_reply: bool = attrs.field(init=False)
    hooks_fence: bool = attrs.field(init=False)
    # The lifecycle overrides no hook at all: an idle session's message may be answered in
    # its caller's task (``SessionActor.serve``), since no hook needs a task of the session's.
    plain: bool = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.hooks_before_message = _overrides(self.lifecycle, "before_message")
        self.hooks_after_reply = _overrides(self.lifecycle, "after_reply")
        self.hooks_fence = _overrides(self.lifecycle, "fence")
        self.plain = not any(
            _overrides(self.lifecycle, hook) for hook in ("activate", "before_message", "fence", "after_reply", "passivate")
        )

    def accept(self, actor: SessionActor, envelope: Envelope, *, queued: bool = True) -> None:
        """Number an envelope that entered a mailbox. Idempotent.

        Called by the caller right after its ``send_nowait`` succeeded (no await in
        between, so numbers follow mailbox order), and by the actor when it takes an
        envelope (a safety net: the bookkeeping must precede the message's start).
        A message answered at once in its caller's task (``queued=False``: the session
        is idle, nothing runs, nothing is queued) has no message ahead of it whose
        deadline it could tighten, nor one behind it yet: its deadline is its own.
        """
        if envelope.accepted:
            return
        envelope.accepted = True
        book = self.book
        envelope.seq = book.accepted  # runtime-wide, increasing in mailbox order
        book.accepted += 1
        if queued:
            actor.note_accepted(envelope.seq, envelope.deadline)
        if self.emit.enabled:
            self.emit(
                EventKind.MESSAGE_ACCEPTED, actor.session_id, envelope.seq,
                data={"deadline": envelope.deadline, "message": envelope.message},
            )
