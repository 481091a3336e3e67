"""A support bot: a Starlette app that embeds the runtime in its lifespan.

One business rule of its own: a message containing "human" is handed off to a
human agent instead of answered. The handoff runs with ``runtime.run_in_session``,
so it keeps the session's order: it happens after the session's earlier messages
are answered, and later ones wait for it. The ordering comes from the runtime's
mailbox, not from a chain of the app's own.

Run ``python examples/support_bot/app.py`` for a short scripted conversation, or serve
``create_app(va.load_config())`` with any ASGI server (hypercorn, uvicorn).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import valis_actors as va

__all__ = ["HANDOFF_TEXT", "STATUS", "Chat", "Desk", "HandoffDesk", "answer", "create_app", "status_for", "wants_human"]

HANDOFF_TEXT = "I'm handing you over to a human colleague; they will reply here shortly."
PERSONA = "jane"

# Every error a call to the runtime can raise -> the HTTP status the app answers with
# (the table of docs/embedding.md; `valis serve` uses the same statuses). Most specific first.
STATUS: dict[type[va.ValisError], int] = {
    va.InvalidPersonaIdError: 404,
    va.InvalidRequestError: 400,  # EmptyMessageError, MessageTooLongError, InvalidSessionIdError
    va.UnknownPersonaError: 404,
    va.MailboxFullError: 429,  # retry once the session's earlier messages are answered
    va.RuntimeClosedError: 503,  # shutting down: another instance can take it
    va.SessionFailedError: 503,
    va.ActorCrashedError: 500,
    va.MemoryStoreError: 500,
    va.IncompleteAnswerError: 502,
    va.ProviderError: 502,
    va.ConfigError: 500,
}


def status_for(error: va.ValisError) -> int:
    """The HTTP status for a runtime error: the row of its nearest class in ``STATUS``."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


class HandoffDesk(Protocol):
    """Where handed-off conversations go (a ticket system, a chat queue for agents)."""

    async def hand_off(self, session_id: str, message: str) -> None: ...


@attrs.define
class Desk:
    """A handoff desk that keeps the tickets in memory."""

    tickets: list[tuple[str, str]] = attrs.field(factory=list)

    async def hand_off(self, session_id: str, message: str) -> None:
        self.tickets.append((session_id, message))


def wants_human(message: str) -> bool:
    """The business rule: a message that asks for a human is handed off."""
    return "human" in message.lower()


@attrs.frozen
class Answer:
    text: str
    provider: str
    handed_off: bool

    def json(self) -> dict[str, Any]:
        return {"text": self.text, "provider": self.provider, "handed_off": self.handed_off}


Chat = Callable[[va.Runtime, HandoffDesk, str, str], Awaitable[Answer]]


async def answer(runtime: va.Runtime, desk: HandoffDesk, session_id: str, message: str) -> Answer:
    """Answer one message, or hand the conversation off, in the session's order."""
    if not wants_human(message):
        reply = await runtime.ask(session_id, PERSONA, message)
        return Answer(reply.text, reply.provider, handed_off=False)

    async def hand_off() -> Answer:
        await desk.hand_off(session_id, message)
        return Answer(HANDOFF_TEXT, "handoff", handed_off=True)

    return await runtime.run_in_session(session_id, hand_off, label="handoff")


def create_app(
    config: va.Config,
    *,
    desk: HandoffDesk | None = None,
    event_hook: Callable[[va.RuntimeEvent], None] | None = None,
    chat: Chat = answer,
) -> Starlette:
    """The bot: ``POST /chat`` with ``{"session_id": ..., "message": ...}``.

    Args:
        config: The runtime's configuration.
        desk: Where handoffs go (a ``Desk`` in memory by default).
        event_hook: The runtime's event hook (tests pass an ``EventRecorder``).
        chat: How a message is answered (``answer``; tests swap it to check the rule).
    """
    handoffs: HandoffDesk = desk if desk is not None else Desk()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The runtime lives exactly as long as the app: opened at startup, closed (its
        # sessions answering what they hold) at shutdown.
        async with va.open_runtime(config, event_hook=event_hook) as runtime:
            app.state.runtime = runtime
            yield

    async def post_chat(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        session_id, message = (body.get("session_id"), body.get("message")) if isinstance(body, dict) else (None, None)
        if not isinstance(session_id, str) or not isinstance(message, str):
            return JSONResponse({"error": 'send {"session_id": "...", "message": "..."}'}, status_code=400)
        runtime: va.Runtime = request.app.state.runtime
        try:
            result = await chat(runtime, handoffs, session_id, message)
        except va.ValisError as exc:
            return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_code=status_for(exc))
        return JSONResponse(result.json())

    return Starlette(routes=[Route("/chat", post_chat, methods=["POST"])], lifespan=lifespan)


def demo_config() -> va.Config:
    """A config with a scripted provider, so the demo needs no API key."""
    return va.Config.from_dict(
        {"providers": [{"type": "scripted", "name": "llm", "default": {"kind": "answer", "delay": 0.01}}],
         "memory": {"backend": "memory"}}
    )


async def demo() -> None:
    import httpx

    app = create_app(demo_config())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            for message in ["My laptop will not boot", "Can I talk to a human?", "Thanks"]:
                response = await client.post("/chat", json={"session_id": "alice", "message": message})
                print(f"> {message}\n< {response.status_code} {response.json()}")
            refused = await client.post("/chat", json={"session_id": "alice", "message": "   "})
            print(f"> (blank)\n< {refused.status_code} {refused.json()['type']}")
            assert refused.status_code == 400


if __name__ == "__main__":
    import sys

    import anyio

    anyio.run(demo, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
