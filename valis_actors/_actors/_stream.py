"""``ReplyStream``: what ``Runtime.stream`` yields — the chunks, then the reply's metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

from .._errors import IncompleteAnswerError
from .._messages import Attempt, Reply, Restart, Segment, Usage

if TYPE_CHECKING:
    from .._cascade import Delivery
    from ._envelope import Envelope

__all__ = ["ReplyStream"]


class ReplyStream:
    """An answer arriving in chunks. Iterate it; once it has ended, read the metadata.

    Example::

        async with runtime.stream("s1", "jane", "hello") as chunks:
            async for text in chunks:
                print(text, end="")
        print(chunks.provider, chunks.model, chunks.usage)

    A cut answer is continued where a provider can continue it: the chunks go on as
    one answer. Where none can, plain iteration ends with ``IncompleteAnswerError``
    (``.received`` holds what arrived); iterate :meth:`events` instead to get a
    ``Restart`` and then a new answer from its start.

    Raises (while iterating):
        IncompleteAnswerError: The answer was cut after it started; what arrived is incomplete.
        MemoryStoreError, ActorCrashedError, RuntimeClosedError: as for ``ask``.
    """

    def __init__(self, envelope: Envelope, delivery: Delivery) -> None:
        self._envelope = envelope
        self._delivery = delivery
        self._chunks = delivery.receive
        self._received: list[str] = []

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        item = await self._next()
        if isinstance(item, Restart):
            # Only reachable when `events()` was started and then left for plain iteration.
            error = IncompleteAnswerError(f"the answer was withdrawn: {item.reason}")
            error.received = "".join(self._received)
            raise error
        self._received.append(item)
        return item

    def events(self) -> AsyncIterator[str | Restart]:
        """The answer as events: text chunks (``str``) and ``Restart`` markers.

        After a ``Restart``, drop what was shown: the text that follows is a new answer
        from its start, and the chunks after the last ``Restart``, joined, equal
        ``reply.text``. Call it before the first chunk arrives (right after entering
        ``runtime.stream``): only then can a cut answer be restarted for you.
        """
        self._delivery.restartable = True
        return self._events()

    async def _events(self) -> AsyncIterator[str | Restart]:
        while True:
            try:
                item = await self._next()
            except StopAsyncIteration:
                return
            if isinstance(item, Restart):
                self._received.clear()
            else:
                self._received.append(item)
            yield item

    async def _next(self) -> str | Restart:
        try:
            return await self._chunks.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            pass
        await self._envelope.done.wait()
        if self._envelope.error is not None:
            raise self._envelope.error
        raise StopAsyncIteration

    @property
    def reply(self) -> Reply | None:
        """The complete reply once the stream has ended successfully, else None."""
        return self._envelope.reply

    def _require(self) -> Reply:
        if self._envelope.reply is None:
            raise RuntimeError("the stream has not ended with a complete answer yet")
        return self._envelope.reply

    @property
    def text(self) -> str:
        return self._require().text

    @property
    def provider(self) -> str:
        return self._require().provider

    @property
    def model(self) -> str | None:
        return self._require().model

    @property
    def usage(self) -> Usage | None:
        return self._require().usage

    @property
    def fallback_used(self) -> bool:
        return self._require().fallback_used

    @property
    def segments(self) -> tuple[Segment, ...]:
        return self._require().segments

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        reply = self._envelope.reply
        if reply is not None:
            return reply.attempts
        return tuple(getattr(self._envelope.error, "attempts", ()))
