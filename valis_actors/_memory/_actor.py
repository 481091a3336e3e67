"""The memory actor: the one owner of the conversation store.

Every read and write goes through its mailbox. It works in batches: it takes
whatever has arrived, commits all the writes in one transaction (in its worker
thread for SQLite), answers the reads, then takes the next batch — turns that
arrive while a commit runs go into the next transaction. With durability
``"commit"`` a turn's ``record`` returns only once its transaction committed;
with ``"async"`` it returns at once (a crash may lose the last batch).

Fencing: a turn may carry a fencing token (``record(..., token=)``, the lease epoch in
cluster mode). A batch collects one token per session (a session's turns with another
token start a new batch), and a *fenced* store (``fenced = True``) receives them as
``append(rows, max_stored, epochs={session: token})`` and rejects stale ones inside its
transaction. A store's calls may also be coroutines (a network store that is not
``blocking``); they are awaited in the actor's task.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._config import MemorySettings
from .._errors import MemoryStoreError, RuntimeClosedError
from .._messages import Turn
from ._store import ConversationStore, InProcessStore, SessionSummary

__all__ = ["Memory", "open_memory"]

logger = logging.getLogger("valis_actors.memory")


@attrs.define(slots=True)
class _Request:
    """A read or a delete for the actor; subclasses say which store call it is."""

    done: anyio.Event
    result: Any = None
    error: BaseException | None = None

    def call(self, store: ConversationStore) -> tuple[Any, tuple[Any, ...]]:
        raise NotImplementedError


@attrs.define(slots=True)
class _Recent(_Request):
    session_id: str = ""
    persona_id: str | None = None
    limit: int = 0

    def call(self, store: ConversationStore) -> tuple[Any, tuple[Any, ...]]:
        return store.recent, (self.session_id, self.persona_id, self.limit)


@attrs.define(slots=True)
class _Forget(_Request):
    session_id: str = ""

    def call(self, store: ConversationStore) -> tuple[Any, tuple[Any, ...]]:
        return store.forget, (self.session_id,)


@attrs.define(slots=True)
class _Sessions(_Request):
    limit: int = 0

    def call(self, store: ConversationStore) -> tuple[Any, tuple[Any, ...]]:
        return store.sessions, (self.limit,)


@attrs.define(slots=True)
class _Batch:
    """Turns waiting for the next transaction, and the one event their writers wait on."""

    rows: list[tuple[str, Turn]]
    done: anyio.Event
    epochs: dict[str, int] = attrs.field(factory=dict)  # the fencing token of each session's turns
    error: MemoryStoreError | None = None
    waited: bool = False  # some writer waits for the commit (durability "commit")


class Memory:
    """The runtime's handle on the memory actor."""

    def __init__(self, store: ConversationStore, settings: MemorySettings) -> None:
        self.store = store
        self.settings = settings
        self.max_turns = settings.max_turns
        # Reads and forgets are requests; a batch in the mailbox means "commit it now".
        self._send: MemoryObjectSendStream[_Request | _Batch]
        self._receive: MemoryObjectReceiveStream[_Request | _Batch]
        self._send, self._receive = anyio.create_memory_object_stream[_Request | _Batch](math.inf)
        self._limiter = anyio.CapacityLimiter(1)  # the actor's one worker thread at a time
        self._open: _Batch | None = None  # the batch new turns join, until the actor takes it
        # Background commits (durability "async") that failed: counted, logged, and handed
        # to the next caller of each session whose turns were lost.
        self.background_errors = 0
        self._lost: dict[str, MemoryStoreError] = {}

    def _post(self, request: _Request | _Batch) -> None:
        try:
            self._send.send_nowait(request)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise RuntimeClosedError("the memory store is closed") from None

    async def _call(self, request: _Request) -> Any:
        self._post(request)
        await request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    async def history(self, session_id: str, persona_id: str | None = None, limit: int | None = None) -> list[Turn]:
        """The last turns of a session (of one persona if given), oldest first."""
        limit = self.max_turns if limit is None else limit
        return list(await self._call(_Recent(anyio.Event(), session_id=session_id, persona_id=persona_id, limit=limit)))

    async def record(self, session_id: str, turn: Turn, *, token: int | None = None) -> None:
        """Store a turn; with ``durability="commit"`` return once it is committed.

        Turns join the open batch; only the first turn of a batch sends the actor a
        message, and every writer of the batch waits on the same event.

        Args:
            token: The writer's fencing token (the lease epoch in cluster mode); a fenced
                store rejects the turn (a ``MemoryStoreError``) if it is not the session's current one.
        """
        batch = self._open
        if batch is not None and token is not None and batch.epochs.get(session_id, token) != token:
            batch = self._open = None  # another token for this session: its own transaction
        if batch is None:
            batch = self._open = _Batch([], anyio.Event())
            self._post(batch)
        batch.rows.append((session_id, turn))
        if token is not None:
            batch.epochs[session_id] = token
        if self.settings.durability != "commit":
            return
        batch.waited = True
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error

    async def forget(self, session_id: str) -> int:
        """Delete a session's turns; return how many were deleted."""
        return int(await self._call(_Forget(anyio.Event(), session_id=session_id)))

    async def sessions(self, limit: int = 100) -> list[SessionSummary]:
        """The stored sessions, most recently active first (at most ``limit``)."""
        return list(await self._call(_Sessions(anyio.Event(), limit=limit)))

    def take_lost(self, session_id: str) -> MemoryStoreError | None:
        """The error of a background commit that lost turns of this session, once."""
        if not self._lost:
            return None
        return self._lost.pop(session_id, None)

    async def _run_blocking(self, func: Any, *args: Any) -> Any:
        """Call the store; whatever it raises comes out as ``MemoryStoreError``.

        The store is the boundary: ours translate their errors, but a store's bug (or a
        value its driver cannot take) must fail one caller, never end this actor, whose
        death would take the whole runtime down with it.
        """
        try:
            if self.store.blocking:
                return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
            result = func(*args)
            if inspect.isawaitable(result):
                result = await result
            return result
        except MemoryStoreError:
            raise
        except Exception as exc:
            logger.error("memory: the store's %s raised %s", getattr(func, "__name__", "call"), type(exc).__name__,
                         exc_info=exc)
            raise MemoryStoreError(f"the memory store failed: {type(exc).__name__}: {exc}") from exc

    async def run(self) -> None:
        """The actor loop, in mailbox order: commit batches, answer reads; until closed."""
        receive = self._receive
        async with receive:
            async for request in receive:
                if isinstance(request, _Batch):
                    await self._commit(request)
                    continue
                try:
                    method, args = request.call(self.store)
                    request.result = await self._run_blocking(method, *args)
                except MemoryStoreError as exc:
                    request.error = exc
                request.done.set()

    async def _commit(self, batch: _Batch) -> None:
        if self._open is batch:
            self._open = None  # turns arriving during the commit start the next batch
        try:
            store: Any = self.store  # a fenced store's append takes the batch's epochs too
            append = functools.partial(store.append, epochs=batch.epochs) if getattr(store, "fenced", False) else store.append
            await self._run_blocking(append, batch.rows, self.settings.max_turns_stored)
        except MemoryStoreError as exc:
            batch.error = exc
            if not batch.waited:
                self.background_errors += 1
                sessions = sorted({session for session, _ in batch.rows})
                logger.error("memory: a background commit of %d turns failed: %s", len(batch.rows), exc)
                for session in sessions:
                    self._lost[session] = exc
        batch.done.set()

    def close(self) -> None:
        """Stop the actor once what was already sent is processed."""
        self._send.close()


def _open_store(settings: MemorySettings) -> ConversationStore:
    from ._sqlite import SqliteStore, default_memory_path  # sqlite3 only when it is used

    if settings.backend == "memory":
        return InProcessStore()
    return SqliteStore(settings.path or default_memory_path())


@asynccontextmanager
async def open_memory(
    settings: MemorySettings, store: ConversationStore | None = None
) -> AsyncIterator[Memory | None]:
    """Open the store and run its actor; yields None when memory is disabled.

    Args:
        settings: The ``memory`` section.
        store: A store to use instead of the one ``settings.backend`` names (cluster
            mode's fenced stores); the memory actor owns it from here and closes it.

    Raises:
        MemoryStoreError: The store cannot be opened (e.g. a corrupt file), raised as itself.
    """
    if not settings.enabled:
        yield None
        return
    if store is not None:
        pass
    elif settings.backend == "memory":
        store = _open_store(settings)
    else:
        store = await anyio.to_thread.run_sync(_open_store, settings)
    memory = Memory(store, settings)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(memory.run, name="memory")
            try:
                yield memory
            finally:
                memory.close()
    finally:
        memory._send.close()
        memory._receive.close()
        if store.blocking:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(store.close, limiter=memory._limiter)
        else:
            closed = getattr(store, "close")()  # noqa: B009 - may be a coroutine (a network store)
            if inspect.isawaitable(closed):
                with anyio.CancelScope(shield=True):
                    await closed
