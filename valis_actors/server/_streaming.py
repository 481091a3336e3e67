"""An ASGI response that runs one producer and cancels it when the client goes away.

Starlette's ``StreamingResponse`` iterates a generator in a child task; here the
producer owns the whole exchange (status, headers, body) in one task, so an error
before the first byte can still choose the status, and ``http.disconnect``
cancels the producer (the flight it reads from then loses a subscriber).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["Producer", "ProducerResponse", "Sender", "sse"]


class Sender:
    """What a producer writes with: a start line once, then body parts."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.status = 0

    async def start(self, status: int, headers: dict[str, str], content_type: str) -> None:
        raw = [(b"content-type", content_type.encode())]
        raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.started = True
        self.status = status
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, *, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def whole(self, status: int, headers: dict[str, str], data: bytes) -> None:
        """A complete response in one go (JSON)."""
        await self.start(status, {**headers, "content-length": str(len(data))}, "application/json")
        await self.body(data, more=False)


Producer = Callable[[Sender], Awaitable[None]]


class ProducerResponse(Response):
    """Runs ``producer``, which sends the start and every body part, ending with ``more=False``.

    A client disconnect cancels it.

    Args:
        producer: Writes the whole response through a ``Sender``.
        on_done: Called with the status sent (0 if none) once the exchange is over.
    """

    def __init__(self, producer: Producer, on_done: Callable[[int], None] | None = None) -> None:
        # No Response.__init__: the status and headers are the producer's to choose, later.
        self.producer = producer
        self.on_done = on_done
        self.background = None
        self.status_code = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = Sender(send)
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                await self.producer(sender)
                tg.cancel_scope.cancel()
        except OSError:
            pass  # the peer went away mid-write: same as a disconnect
        finally:
            if self.on_done is not None:
                self.on_done(sender.status)


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (``data`` JSON-encoded unless it is already bytes)."""
    payload = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"
