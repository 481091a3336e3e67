"""``ReplyStream``: what ``Runtime.stream`` yields — the chunks, then the reply's metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from .._messages import Attempt, Reply, Usage

if TYPE_CHECKING:
    from ._envelope import Envelope

__all__ = ["ReplyStream"]


class ReplyStream:
    """An answer arriving in chunks. Iterate it; once it has ended, read the metadata.

    Example::

        async with runtime.stream("s1", "jane", "hello") as chunks:
            async for text in chunks:
                print(text, end="")
        print(chunks.provider, chunks.model, chunks.usage)

    Raises (while iterating):
        IncompleteAnswerError: The answer was cut after it started; what arrived is incomplete.
        MemoryStoreError, ActorCrashedError, RuntimeClosedError: as for ``ask``.
    """

    def __init__(self, envelope: Envelope, chunks: MemoryObjectReceiveStream[str]) -> None:
        self._envelope = envelope
        self._chunks = chunks

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
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
    def attempts(self) -> tuple[Attempt, ...]:
        reply = self._envelope.reply
        if reply is not None:
            return reply.attempts
        return tuple(getattr(self._envelope.error, "attempts", ()))
