"""Streaming delivery: moving chunks from a provider attempt to the caller, safely.

Failover is free until the first chunk reaches the caller. The first attempt to
deliver a chunk *claims* the delivery; from then on only it may speak. When a
claimed stream is cut, stalls or turns malformed, the cascade ``release``s the
delivery to an attempt that continues the answer from what was sent (``text``),
or ``restart``s it for a caller that reads events; otherwise the answer ends with
``IncompleteAnswerError``. A truncated answer is never presented as a complete one:
a provider stream is complete only when it yields its final ``ProviderResponse``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._errors import ProviderError, ProviderTimeoutError, TransientProviderError
from .._messages import AttemptOutcome, ProviderResponse, Restart
from ._scope import MessageScope

__all__ = ["Delivery", "Incomplete", "LostRace"]


class Incomplete(Exception):
    """Internal: the claiming attempt failed after its first chunk reached the caller.

    ``outcome`` is the attempt's outcome (the outcome table says whether the same
    provider may continue the answer after its retry delay); ``model`` the model the
    provider was asked for, for the answer's segments.
    """

    def __init__(
        self, provider: str, error: ProviderError, outcome: AttemptOutcome, model: str | None = None
    ) -> None:
        super().__init__(str(error))
        self.provider = provider
        self.error = error
        self.outcome = outcome
        self.model = model


class LostRace(Exception):
    """Internal: a hedge racer finished after another racer had claimed the delivery."""

    def __init__(self, provider: str, owner: str) -> None:
        super().__init__(f"{owner!r} was already streaming the answer")
        self.provider = provider


class Delivery:
    """The chunk channel of one streamed message, and who owns it.

    Args:
        first_token_timeout: Seconds an attempt may take to produce its first chunk.
        idle_timeout: Seconds allowed between chunks.
        on_claim: Called with the provider name when an attempt claims the delivery
            (hedging uses it to cancel the other racers).
    """

    def __init__(self, first_token_timeout: float | None, idle_timeout: float | None, buffer: int = 32) -> None:
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.owner: str | None = None
        self.on_claim: Callable[[str], None] | None = None
        self.gone = False  # the caller stopped listening
        self.scope: anyio.CancelScope | MessageScope | None = None  # the message's: cancelled when the caller goes
        self.restartable = False  # the caller reads events, so it can take a Restart
        self.parts: list[str] = []  # the text the caller received, chunk by chunk
        self.send: MemoryObjectSendStream[str | Restart]
        self.receive: MemoryObjectReceiveStream[str | Restart]
        self.send, self.receive = anyio.create_memory_object_stream[str | Restart](buffer)

    def claimed_by(self, provider: str) -> bool:
        return self.owner == provider

    @property
    def started(self) -> bool:
        """Some text of the answer reached the caller."""
        return bool(self.parts)

    def text(self) -> str:
        """The text the caller received so far."""
        return "".join(self.parts)

    def release(self) -> None:
        """Let another attempt continue the answer: its first chunk claims the delivery."""
        self.owner = None
        self.on_claim = None

    async def restart(self, reason: str) -> None:
        """Withdraw what was sent (the caller gets a ``Restart`` event); a new answer may follow."""
        self.owner = None
        self.on_claim = None
        discarded, self.parts = self.text(), []
        try:
            await self.send.send(Restart(discarded, reason))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._caller_gone()
            raise

    async def emit(self, provider: str, chunk: str) -> None:
        """Send a chunk to the caller, claiming the delivery on the first one.

        The claim and the first chunk happen in one step (``send_nowait`` into an empty
        buffer never blocks): an attempt owns the delivery exactly when its first chunk
        reached the caller's buffer, never before a send that could still be cancelled.

        Raises:
            LostRace: Another attempt owns the delivery.
        """
        if not chunk:
            return
        try:
            if self.owner is None:
                try:
                    self.send.send_nowait(chunk)
                except anyio.WouldBlock:
                    # Only after a release or restart: the buffer may still hold earlier
                    # chunks, and no other attempt is racing for the claim.
                    await self.send.send(chunk)
                self.owner = provider
                self.parts.append(chunk)
                if self.on_claim is not None:
                    self.on_claim(provider)
                await anyio.lowlevel.checkpoint()
                return
            if self.owner != provider:
                raise LostRace(provider, self.owner)
            await self.send.send(chunk)
            self.parts.append(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._caller_gone()
            await anyio.lowlevel.checkpoint()
            raise

    def _caller_gone(self) -> None:
        # The caller stopped listening: like a caller that gave up, drop the message.
        self.gone = True
        if self.scope is not None:
            self.scope.cancel()

    async def pump(self, provider: str, stream: AsyncIterator[Any], timeout: float) -> ProviderResponse:
        """Relay ``stream`` to the caller; return its final response.

        Raises:
            ProviderTimeoutError: No first chunk, or a stall between chunks.
            TransientProviderError: The stream ended without its final response.
            ProviderError: Whatever the provider's stream raised.
        """
        first = min(timeout, self.first_token_timeout or math.inf)
        idle = self.idle_timeout or timeout
        started = False
        try:
            # `timeout` (provider_timeout) bounds the whole attempt; first_token_timeout and
            # stream_idle_timeout bound the waits for the first chunk and between chunks.
            with anyio.move_on_after(timeout):
                while True:
                    wait = idle if started else first
                    with anyio.move_on_after(wait) as scope:
                        item = await stream.__anext__()
                    if scope.cancelled_caught:
                        if started:
                            raise ProviderTimeoutError(f"stream stalled: no chunk for {wait:g}s")
                        raise ProviderTimeoutError(f"no first token within {wait:g}s")
                    if isinstance(item, ProviderResponse):
                        return item
                    if not isinstance(item, str):
                        raise TransientProviderError(f"stream yielded {type(item).__name__}, not text")
                    started = True
                    await self.emit(provider, item)
            # The loop only returns or raises: reaching here means `whole` ran out.
            raise ProviderTimeoutError(f"no complete answer within {timeout:g}s")
        except StopAsyncIteration:
            raise TransientProviderError("stream ended before the answer was complete") from None
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await aclose()

    def close(self) -> None:
        self.send.close()
