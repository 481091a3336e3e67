"""Which session a stateless HTTP request belongs to.

Chat UIs resend the whole conversation and most send no session id. The id is
taken from, in order: ``X-Session-Id``, ``X-OpenWebUI-Chat-Id``,
``X-Conversation-Id``, ``metadata.session_id`` (the *strong* ids: a conversation),
then ``user`` / Anthropic ``metadata.user_id``, else a stable hash of (API key,
model, system text, first user message).

Only a strong id lets the runtime inject stored memory into a request that sends
no history: ``user`` names a person, not a conversation, and a hash of a first
message ("hi") would join unrelated conversations. Requests without a strong id
always use the history they carry (none, for a first message).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs

from ._requests import ChatRequest

__all__ = ["SESSION_HEADERS", "ResolvedSession", "resolve_session"]

SESSION_HEADERS = ("x-session-id", "x-openwebui-chat-id", "x-conversation-id")


@attrs.frozen
class ResolvedSession:
    """A request's session id, where it came from, and whether it names a conversation."""

    session_id: str
    source: str
    strong: bool


def resolve_session(headers: Mapping[str, str], request: ChatRequest, key: str | None) -> ResolvedSession:
    """The session of ``request`` (see the module docstring for the order)."""
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value:
            return ResolvedSession(value, name, True)
    if request.metadata_session:
        return ResolvedSession(request.metadata_session, "metadata.session_id", True)
    if request.user:
        return ResolvedSession(f"user:{request.user}", "user", False)
    digest = hashlib.sha256()
    for part in (key or "", request.persona, request.system or "", request.first_user):
        encoded = part.encode()
        digest.update(len(encoded).to_bytes(8, "big"))  # length-prefixed: no ambiguous joins
        digest.update(encoded)
    return ResolvedSession("h:" + digest.hexdigest()[:32], "hash", False)
