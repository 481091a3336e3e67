"""Request bodies -> one ``ChatRequest``: validation, and history paired into turns.

Both front doors (OpenAI Chat Completions, Anthropic Messages) parse into the same
``ChatRequest``. Every problem is an ``ApiError`` (400) naming the field, before
anything reaches the runtime.

How a message list becomes (history, new message):

- system (and ``developer``) messages, wherever they are, are joined into the
  client's system text;
- everything after the last assistant message is the new message (several user
  messages in a row are joined with a blank line);
- before it, consecutive messages of one role are joined the same way, and each
  user run is paired with the assistant run that follows it into a ``va.Turn``;
- an assistant run with no user before it (a character's greeting) is paired with
  the placeholder user text ``(the conversation starts)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

import valis_actors as va

from ._errors import ApiError

__all__ = ["OPENING", "ChatRequest", "pair_turns", "parse_anthropic", "parse_openai"]

OPENING = "(the conversation starts)"
_OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@attrs.frozen
class ChatRequest:
    """One chat request, whatever its wire format.

    Attributes:
        persona: The ``model`` field: a persona id.
        message: The new user message.
        history: The turns the client sent before it (possibly none).
        sent_history: True when the client sent any earlier message.
        system: The client's system text, or None.
        stream: Stream the answer (SSE).
        include_usage: OpenAI ``stream_options.include_usage``.
        metadata_session: ``metadata.session_id``, if given.
        user: ``user`` (OpenAI) or ``metadata.user_id`` (Anthropic), if given.
        first_user: The conversation's first user text (for the session hash).
    """

    persona: str
    message: str
    history: tuple[va.Turn, ...]
    sent_history: bool
    system: str | None
    stream: bool
    include_usage: bool = False
    metadata_session: str | None = None
    user: str | None = None
    first_user: str = ""


def _bad(message: str, param: str, code: str = "invalid_type") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _typed(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _bad(f"'{key}' must be {what} (got {type(value).__name__})", key)
    return value


def _text(content: Any, param: str) -> str:
    """A message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for index, part in enumerate(content):
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise _bad("each content part must be an object with a 'type'", f"{param}[{index}]")
            if part["type"] != "text":
                raise _bad(
                    f"content parts of type {part['type']!r} are not supported; send text",
                    f"{param}[{index}].type",
                    "unsupported_content",
                )
            if not isinstance(part.get("text"), str):
                raise _bad("a text part needs a string 'text'", f"{param}[{index}].text")
            parts.append(part["text"])
        return "\n".join(parts)
    raise _bad(f"content must be a string or a list of text parts (got {type(content).__name__})", param)


def pair_turns(messages: Sequence[tuple[str, str]]) -> tuple[tuple[va.Turn, ...], str, bool]:
    """(role, text) pairs, user/assistant only -> (history turns, new message, sent history).

    Raises:
        ApiError: No user message after the last assistant message.
    """
    runs: list[tuple[str, str]] = []
    for role, text in messages:
        if runs and runs[-1][0] == role:
            runs[-1] = (role, runs[-1][1] + "\n\n" + text)
        else:
            runs.append((role, text))
    if not runs or runs[-1][0] != "user":
        raise _bad("the last message must be from the user: there is nothing to answer", "messages", "no_user_message")
    new = runs.pop()[1]
    turns: list[va.Turn] = []
    pending: str | None = None
    for role, text in runs:
        if role == "user":
            pending = text
        else:
            turns.append(va.Turn(OPENING if pending is None else pending, text))
            pending = None
    return tuple(turns), new, bool(runs)


def _check_count(messages: list[Any], max_messages: int) -> None:
    if not messages:
        raise _bad("'messages' is empty; send at least one user message", "messages", "empty_messages")
    if len(messages) > max_messages:
        raise _bad(
            f"{len(messages)} messages, over the server's limit of {max_messages}; send fewer",
            "messages",
            "too_many_messages",
        )


def _checked_text(text: str, param: str, max_chars: int) -> str:
    if len(text) > max_chars:
        raise _bad(
            f"{param} is {len(text)} characters, over max_message_chars={max_chars}; shorten it",
            param,
            "message_too_long",
        )
    return text


def _common(body: Any) -> tuple[str, list[Any]]:
    if not isinstance(body, Mapping):
        raise _bad(f"the request body must be a JSON object (got {type(body).__name__})", "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("'model' must be a persona id (a non-empty string); GET /v1/models lists them", "model")
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _bad("'messages' must be a list of messages", "messages")
    return model, messages


def _metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = _typed(body, "metadata", Mapping, "an object")
    return meta if meta is not None else {}


def parse_openai(body: Any, *, max_messages: int, max_chars: int) -> ChatRequest:
    """Validate a Chat Completions body."""
    model, messages = _common(body)
    _check_count(messages, max_messages)
    system: list[str] = []
    dialog: list[tuple[str, str]] = []
    for index, item in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(item, Mapping):
            raise _bad(f"{where} must be an object with 'role' and 'content'", where)
        role = _OPENAI_ROLES.get(item.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise _bad(
                f"{where}.role must be one of system, developer, user, assistant (got {item.get('role')!r})",
                f"{where}.role",
                "unsupported_role",
            )
        text = _checked_text(_text(item.get("content"), f"{where}.content"), f"{where}.content", max_chars)
        if role == "system":
            system.append(text)
        else:
            dialog.append((role, text))
    history, new, sent = pair_turns(dialog)
    stream = _typed(body, "stream", bool, "true or false") or False
    options = _typed(body, "stream_options", Mapping, "an object") or {}
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise _bad("'stream_options.include_usage' must be true or false", "stream_options.include_usage")
    n = _typed(body, "n", int, "an integer")
    if n is not None and n != 1:
        raise _bad("only n=1 is supported: a persona gives one answer", "n", "unsupported_value")
    meta = _metadata(body)
    session = meta.get("session_id")
    if session is not None and not isinstance(session, str):
        raise _bad("'metadata.session_id' must be a string", "metadata.session_id")
    return ChatRequest(
        persona=model,
        message=new,
        history=history,
        sent_history=sent,
        system="\n\n".join(system) if system else None,
        stream=stream,
        include_usage=include_usage,
        metadata_session=session,
        user=_typed(body, "user", str, "a string"),
        first_user=next((text for role, text in dialog if role == "user"), new),
    )


def parse_anthropic(body: Any, *, max_messages: int, max_chars: int) -> ChatRequest:
    """Validate a Messages body."""
    model, messages = _common(body)
    _check_count(messages, max_messages)
    raw_system = body.get("system")
    system = None if raw_system is None else _checked_text(_text(raw_system, "system"), "system", max_chars)
    dialog: list[tuple[str, str]] = []
    for index, item in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(item, Mapping):
            raise _bad(f"{where} must be an object with 'role' and 'content'", where)
        role = item.get("role")
        if role not in ("user", "assistant"):
            raise _bad(f"{where}.role must be user or assistant (got {role!r})", f"{where}.role", "unsupported_role")
        dialog.append((role, _checked_text(_text(item.get("content"), f"{where}.content"), f"{where}.content", max_chars)))
    history, new, sent = pair_turns(dialog)
    meta = _metadata(body)
    user = meta.get("user_id")
    if user is not None and not isinstance(user, str):
        raise _bad("'metadata.user_id' must be a string", "metadata.user_id")
    session = meta.get("session_id")
    if session is not None and not isinstance(session, str):
        raise _bad("'metadata.session_id' must be a string", "metadata.session_id")
    return ChatRequest(
        persona=model,
        message=new,
        history=history,
        sent_history=sent,
        system=system or None,
        stream=_typed(body, "stream", bool, "true or false") or False,
        metadata_session=session,
        user=user,
        first_user=next((text for role, text in dialog if role == "user"), new),
    )
