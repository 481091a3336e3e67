"""The memory actor: the one owner of the conversation store.

Every read and write goes through its mailbox. It works in batches: it takes
whatever has arrived, commits all the writes in one transaction (in its worker
thread for SQLite), answers the reads, then takes the next batch — turns that
arrive while a commit runs go into the next transaction. With durability
``"commit"`` a turn's ``record`` returns only once its transaction committed;
with ``"async"`` it returns at once (a crash may lose the last batch).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._config import MemorySettings
from ._errors import MemoryStoreError, RuntimeClosedError
from ._provider import Turn
from ._store import ConversationStore, InProcessStore, SqliteStore, default_memory_path

__all__ = ["Memory", "open_memory"]


@attrs.define(slots=True)
class _Request:
    kind: str  # "append" | "recent" | "forget"
    args: tuple[Any, ...]
    done: anyio.Event | None = None
    result: Any = None
    error: BaseException | None = None


class Memory:
    """The runtime's handle on the memory actor."""

    def __init__(self, store: ConversationStore, settings: MemorySettings) -> None:
        self.store = store
        self.settings = settings
        self.max_turns = settings.max_turns
        self._send: MemoryObjectSendStream[_Request]
        self._receive: MemoryObjectReceiveStream[_Request]
        self._send, self._receive = anyio.create_memory_object_stream[_Request](math.inf)
        self._limiter = anyio.CapacityLimiter(1)  # the actor's one worker thread at a time
        self.background_error: MemoryStoreError | None = None

    async def _call(self, kind: str, *args: Any) -> Any:
        request = _Request(kind, args, anyio.Event())
        try:
            self._send.send_nowait(request)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise RuntimeClosedError("the memory store is closed") from None
        assert request.done is not None
        await request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    async def history(self, session_id: str, persona_id: str | None = None, limit: int | None = None) -> list[Turn]:
        """The last turns of a session (of one persona if given), oldest first."""
        return list(await self._call("recent", session_id, persona_id, self.max_turns if limit is None else limit))

    async def record(self, session_id: str, turn: Turn) -> None:
        """Store a turn; with ``durability="commit"`` return once it is committed."""
        if self.settings.durability == "commit":
            await self._call("append", session_id, turn)
        else:
            try:
                self._send.send_nowait(_Request("append", (session_id, turn)))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                raise RuntimeClosedError("the memory store is closed") from None

    async def forget(self, session_id: str) -> int:
        """Delete a session's turns; return how many were deleted."""
        return int(await self._call("forget", session_id))

    async def _run_blocking(self, func: Any, *args: Any) -> Any:
        if self.store.blocking:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter)
        return func(*args)

    async def run(self) -> None:
        """The actor loop: batch, commit, answer; until the mailbox is closed and empty."""
        receive = self._receive
        async with receive:
            while True:
                try:
                    batch = [await receive.receive()]
                except anyio.EndOfStream:
                    return
                while True:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await self._process(batch)

    async def _process(self, batch: list[_Request]) -> None:
        writes = [r for r in batch if r.kind == "append"]
        if writes:
            error: BaseException | None = None
            try:
                await self._run_blocking(
                    self.store.append, [r.args for r in writes], self.settings.max_turns_stored
                )
            except MemoryStoreError as exc:
                error = exc
                if any(r.done is None for r in writes):
                    self.background_error = exc
            for request in writes:
                request.error = error
                if request.done is not None:
                    request.done.set()
        for request in batch:
            if request.kind == "append":
                continue
            try:
                method = self.store.recent if request.kind == "recent" else self.store.forget
                request.result = await self._run_blocking(method, *request.args)
            except MemoryStoreError as exc:
                request.error = exc
            assert request.done is not None
            request.done.set()

    def close(self) -> None:
        """Stop the actor once what was already sent is processed."""
        self._send.close()


def _open_store(settings: MemorySettings) -> ConversationStore:
    if settings.backend == "memory":
        return InProcessStore()
    return SqliteStore(settings.path or default_memory_path())


@asynccontextmanager
async def open_memory(settings: MemorySettings) -> AsyncIterator[Memory | None]:
    """Open the store and run its actor; yields None when memory is disabled.

    Raises:
        MemoryStoreError: The store cannot be opened (e.g. a corrupt file), raised as itself.
    """
    if not settings.enabled:
        yield None
        return
    if settings.backend == "memory":
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
            store.close()
