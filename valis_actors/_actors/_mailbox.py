"""``Mailbox``: a session actor's bounded FIFO queue, one reader (the actor's task), many writers.

A memory object stream does more than a mailbox needs, on every message: its ``receive()``
yields to the loop before it looks (a checkpoint costs about as much as the rest of the
mailbox round trip) and tries the buffer twice, raising ``WouldBlock`` each time it is
empty. Here writers never wait inside the mailbox (a full mailbox refuses; the runtime
waits for the actor's "space freed" event and tries again), so the queue is a deque, and
the one reader waits on an event made only when it finds the deque empty.

The errors are the memory stream's, so callers read as they did:

    put_nowait   WouldBlock when full, ClosedResourceError once closed, BrokenResourceError
                 once the reader has gone
    take         the next item, or None when empty; EndOfStream once closed and drained
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

from ._signal import Signal

__all__ = ["Mailbox"]

T = TypeVar("T")


class Mailbox(Generic[T]):
    """A bounded FIFO queue with one reader; see the module docstring."""

    __slots__ = ("_closed", "_gone", "_new_event", "_size", "_waiter", "items")

    def __init__(self, size: int, new_event: Callable[[], Signal]) -> None:
        # The queue itself: read its length (the hot path's "anything queued?" is a truth
        # test of it, no call), never change it but through the methods below.
        self.items: deque[T] = deque()
        self._size = size
        self._new_event = new_event
        self._waiter: Signal | None = None  # the reader's, while it waits on an empty queue
        self._closed = False  # no more items may come in; the reader drains what is there
        self._gone = False  # the reader left: nothing is read any more

    def __len__(self) -> int:
        return len(self.items)

    @property
    def closed(self) -> bool:
        """True once closed (or left): no more items come in."""
        return self._closed or self._gone

    def put_nowait(self, item: T) -> None:
        """Queue ``item``, or refuse it at once.

        Raises:
            anyio.WouldBlock: The mailbox is full.
            anyio.ClosedResourceError: The mailbox is closed.
            anyio.BrokenResourceError: The reader has gone.
        """
        if self._gone:
            raise anyio.BrokenResourceError
        if self._closed:
            raise anyio.ClosedResourceError
        items = self.items
        if len(items) >= self._size:
            raise anyio.WouldBlock
        items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def take(self) -> T | None:
        """The next item, or None when the mailbox is empty.

        Raises:
            anyio.EndOfStream: The mailbox is closed and empty.
            anyio.ClosedResourceError: The reader has gone.
        """
        if self._gone:
            raise anyio.ClosedResourceError
        items = self.items
        if items:
            return items.popleft()
        if self._closed:
            raise anyio.EndOfStream
        return None

    def waiter(self) -> Signal | None:
        """A signal set when an item is queued or the mailbox closes; None if either is so already.

        The reader awaits ``waiter.wait()`` itself: no coroutine of the mailbox's own
        stays suspended per idle session.
        """
        if self.items or self._closed or self._gone:
            return None
        waiter = self._waiter = self._new_event()
        return waiter

    def close(self) -> None:
        """No more items come in; the reader drains the queue, then gets EndOfStream."""
        self._closed = True
        self._wake()

    def leave(self) -> None:
        """The reader is done: writers get BrokenResourceError, the queue is dropped."""
        self._gone = True
        self.items.clear()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()
