"""Helpers shared by the built-in providers: keys, redaction, Retry-After, the error table, streams.

Every provider translates its SDK's errors once, at its boundary, into our
``ProviderError`` types. The SDK-specific part (which attribute holds the status,
the body, the headers) lives in each provider; the decision (what a 429 with this
body means) lives here, so that Anthropic and OpenAI answer the same question the
same way. Nothing here imports an SDK.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import anyio
import attrs

from .._errors import (
    ContentPolicyError,
    PermanentProviderError,
    PrefillRejectedError,
    ProviderError,
    RateLimitedError,
    TransientProviderError,
)
from .._validation import Between

__all__ = [
    "ErrorInfo",
    "Redactor",
    "between",
    "classify_error",
    "clip",
    "describe_exception",
    "drain",
    "is_secret_name",
    "parse_event",
    "read_api_key",
    "redacted_traceback",
    "retry_after_seconds",
    "scrub",
    "shown_env",
    "unexpected_error",
]

REDACTED = "[redacted]"
# Shorter secrets are not redacted by substring: replacing every "abc" in a message
# would garble it and protect nothing (a 3-character key is not a secret).
_MIN_SECRET = 4
# Fragments of a key this long or longer are treated as the key (error bodies echo
# keys whole, truncated, or masked as ``sk-abc****wxyz``).
_MIN_FRAGMENT = 8
_KEYISH = re.compile(rf"[A-Za-z0-9_\-.*]{{{_MIN_FRAGMENT},}}")
_MAX_MESSAGE = 500

_QUOTA_WORDS = ("insufficient_quota", "quota", "spend limit", "spend_limit", "credit balance", "billing")
_CONTEXT_WORDS = (
    "context_length",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "reduce the length",
)
# How servers refuse a conversation that ends with an assistant message (a prefill):
# Anthropic's newer models, its whitespace rule, llama.cpp's template check.
_PREFILL_WORDS = (
    "prefill",
    "must end with a user message",
    "final assistant content",
    "assistant messages at the end",
)
_POLICY_WORDS = (
    "content_policy",
    "content policy",
    "content_filter",
    "content filter",
    "content management policy",
    "safety system",
    "usage policies",
    "usage policy",
    "flagged",
)
_RATE_TYPES = ("rate_limit",)


# Environment variables whose names contain one of these hold secrets: their values are
# redacted from errors and never printed (``repr``, ``valis config check``).
SECRET_NAMES = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def is_secret_name(name: object) -> bool:
    """Whether an environment variable named ``name`` holds a secret (``API_TOKEN``, ``db_password``)."""
    return isinstance(name, str) and any(word in name.upper() for word in SECRET_NAMES)


def shown_env(env: Mapping[Any, Any]) -> dict[Any, Any]:
    """``env`` as it may be shown: the values of secret-named variables replaced by ``[redacted]``."""
    return {name: REDACTED if is_secret_name(name) else value for name, value in env.items()}


def read_api_key(env_name: str) -> str | None:
    """The key in ``os.environ[env_name]``, or None when unset or blank."""
    value = os.environ.get(env_name, "").strip()
    return value or None


class Redactor:
    """Removes configured secrets, and recognisable fragments of them, from text.

    Args:
        secrets: The values to hide (API keys, tokens). Short or empty ones are ignored.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = tuple(
            sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True)
        )

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def __call__(self, text: str) -> str:
        if not self._secrets or not text:
            return text
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _KEYISH.sub(self._fragment, text)

    def _fragment(self, match: re.Match[str]) -> str:
        token = match.group(0)
        bare = token.strip(".-_")
        visible = [p for p in bare.split("*") if p]
        for secret in self._secrets:
            if "*" in bare:
                # A masked echo (``sk-ab****wxyz``): every visible part comes from the
                # key and one end matches it.
                if (
                    visible
                    and all(p in secret for p in visible)
                    and (secret.startswith(visible[0]) or secret.endswith(visible[-1]))
                ):
                    return REDACTED
            elif len(bare) >= _MIN_FRAGMENT and (
                bare in secret or _longest_common(bare, secret) >= _MIN_FRAGMENT + 4
            ):
                return REDACTED
        return token


def _longest_common(a: str, b: str) -> int:
    match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match()
    return match.size


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date).

    Returns None when neither header is present or parseable; never a negative number.
    """
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return max(0.0, value)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        from email.utils import parsedate_to_datetime  # rare (an HTTP-date Retry-After); 10 ms to import

        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    return max(0.0, value) if math.isfinite(value) else None


@attrs.frozen
class ErrorInfo:
    """What a provider's SDK said about a failed request, extracted from its exception.

    Attributes:
        status: The HTTP status (200 for an error event inside a stream, or an error
            body a proxy sent as a success).
        type: The error body's type (``rate_limit_error``, ``insufficient_quota``...).
        code: A finer machine-readable code, when the body has one.
        message: The body's human-readable message (not yet redacted).
        headers: The response headers (for Retry-After).
        in_stream: The error arrived as an event inside a streamed answer.
    """

    status: int
    type: str | None = None
    code: str | None = None
    message: str | None = None
    headers: Mapping[str, str] | None = attrs.field(default=None, eq=False, hash=False)
    in_stream: bool = False


def classify_error(info: ErrorInfo, *, key_env: str, redact: Redactor) -> ProviderError:
    """Translate a provider's error response into our error type (the mapping table).

    Args:
        info: The status, body fields and headers of the error.
        key_env: The env var holding the key, named in authentication errors.
        redact: Applied to the provider's message (bodies may echo the key).
    """
    status = info.status
    text = " ".join(x for x in (info.type, info.code, info.message) if x).lower()
    said = clip(redact(info.message or info.type or f"HTTP {status}"))
    if info.in_stream or status < 400:
        # An error sent under a success status, as a stream event or as the whole body
        # (some proxies): nothing says it is final, so it is transient.
        where, what = ("in stream", "error event") if info.in_stream else (f"with status {status}", "error body")
        if _any(info.type, info.code, words=_RATE_TYPES):
            return RateLimitedError(f"rate limited {where}: {said}", retry_after=None)
        return TransientProviderError(f"{what} {where} ({info.type or 'error'}): {said}")
    if 400 <= status < 500 and status != 401 and any(w in text for w in _QUOTA_WORDS):
        # OpenAI says 429 insufficient_quota, Anthropic 400 "credit balance is too low"
        # or 429 *_spend_limit_reached: retrying cannot help.
        return PermanentProviderError(
            f"quota or spend limit reached ({status}): {said}; retrying will not help until the account is topped up"
        )
    if status == 429:
        return RateLimitedError(f"rate limited (429): {said}", retry_after=retry_after_seconds(info.headers))
    if status == 401:
        return PermanentProviderError(f"the API key was rejected (401): {said}; check {key_env}")
    if status == 403:
        return PermanentProviderError(
            f"permission denied (403): {said}; check {key_env} and the account's access to this model"
        )
    if status == 402:
        return PermanentProviderError(f"payment required (402): {said}")
    if status in (408, 409, 425) or status >= 500:
        return TransientProviderError(f"server error ({status}, {info.type or 'error'}): {said}")
    if status in (400, 422) and any(w in text for w in _PREFILL_WORDS):
        return PrefillRejectedError(f"will not continue a partial answer ({status}): {said}")
    if any(w in text for w in _POLICY_WORDS):
        return ContentPolicyError(f"refused by the provider's content policy: {said}")
    if any(w in text for w in _CONTEXT_WORDS) or status == 413:
        return PermanentProviderError(f"context length exceeded ({status}): {said}")
    if status == 404:
        return PermanentProviderError(f"not found (404): {said}; check the model name and base_url")
    return PermanentProviderError(f"request refused ({status}, {info.type or 'error'}): {said}")


# The string attributes an exception may show besides its args: OSError's strerror and
# file names, the SDKs' and httpx's ``message``, aiohttp's ``message``/``reason``.
_TEXT_ATTRIBUTES = ("message", "strerror", "filename", "filename2", "reason", "msg")


def scrub(exc: BaseException, redact: Callable[[str], str]) -> None:
    """Redact, in place, every message reachable from ``exc``; never raises.

    Our error is raised ``from`` the SDK's, and the SDK's message may hold the body
    that echoed the key: a logged traceback must not show it. Walked: causes,
    contexts and ExceptionGroup members (cycles too); cleaned: ``args``, notes and the
    string attributes above. What Python does not let us change (an ExceptionGroup's
    read-only ``message``, a property) is left alone, or, for a group met as a cause or
    context, replaced by a copy with the message redacted. Log with
    :func:`redacted_traceback`, which redacts the text whatever is left.
    """
    if isinstance(redact, Redactor) and not redact:
        return  # no secrets configured
    seen: set[int] = set()
    stack = [exc]
    while stack:
        link = stack.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        _scrub_one(link, redact)
        for name in ("__cause__", "__context__"):
            nxt = getattr(link, name, None)
            if isinstance(nxt, BaseExceptionGroup):
                nxt = _regroup(nxt, redact)
                _try_setattr(link, name, nxt)
            if isinstance(nxt, BaseException):
                stack.append(nxt)
        if isinstance(link, BaseExceptionGroup):
            stack.extend(link.exceptions)


def _scrub_one(link: BaseException, redact: Callable[[str], str]) -> None:
    try:
        args = link.args
    except Exception:  # noqa: BLE001 - redaction must never raise, whatever the exception does
        args = ()
    cleaned = tuple(_redact_text(arg, redact) for arg in args)
    if cleaned != args:
        _try_setattr(link, "args", cleaned)
    for name in _TEXT_ATTRIBUTES:
        try:
            value = getattr(link, name, None)
        except Exception:  # noqa: BLE001, S112 - a property that raises: nothing to clean there
            continue
        if isinstance(value, str) and (red := _redact_text(value, redact)) != value:
            _try_setattr(link, name, red)  # read-only ones (ExceptionGroup.message) stay
    notes = getattr(link, "__notes__", None)
    if isinstance(notes, list):
        _try_setattr(link, "__notes__", [_redact_text(note, redact) for note in notes])


def _redact_text(value: Any, redact: Callable[[str], str]) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return redact(value)
    except Exception:  # noqa: BLE001 - a redactor that fails hides everything rather than nothing
        return REDACTED


def _try_setattr(obj: object, name: str, value: object) -> None:
    try:
        setattr(obj, name, value)
    except Exception:  # noqa: BLE001, S110 - read-only attributes, slots, properties: leave them
        pass


def _regroup(group: BaseExceptionGroup[Any], redact: Callable[[str], str]) -> BaseExceptionGroup[Any]:
    """``group``, or a copy whose (read-only) message is redacted, with the same links."""
    message = _redact_text(group.message, redact)
    if message == group.message:
        return group
    try:
        copy = BaseExceptionGroup(message, list(group.exceptions))
    except Exception:  # noqa: BLE001 - keep the original rather than fail
        return group
    copy.__cause__, copy.__context__, copy.__traceback__ = group.__cause__, group.__context__, group.__traceback__
    copy.__suppress_context__ = group.__suppress_context__
    notes = getattr(group, "__notes__", None)
    if notes is not None:
        copy.__notes__ = list(notes)
    return copy


def redacted_traceback(exc: BaseException, redact: Callable[[str], str]) -> str:
    """The whole traceback of ``exc`` as text, redacted: causes, contexts, notes, group members.

    For logging an exception that came from a provider: ``logger.exception`` would print
    the raw messages, and a bug's message may hold the key. Never raises.
    """
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception as problem:  # noqa: BLE001 - a pathological exception: say what it was
        text = f"{type(exc).__name__} (its traceback could not be formatted: {type(problem).__name__})"
    return str(_redact_text(text, redact))


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` for any exception, even one whose ``__str__`` raises."""
    try:
        detail = str(exc)
    except Exception:  # noqa: BLE001 - a provider's broken exception must not break the cascade
        detail = "<str() failed>"
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def unexpected_error(exc: BaseException, *, redact: Redactor) -> TransientProviderError:
    """Anything the SDK raised that the mapping does not know: transient, named by its type."""
    detail = clip(redact(str(exc)))
    return TransientProviderError(f"unexpected {type(exc).__name__}" + (f": {detail}" if detail else ""))


def between(low: float, high: float) -> Any:
    """An attrs validator: an optional number within [low, high] (its range is in the JSON Schema)."""
    return Between(low, high)


def _any(*values: str | None, words: tuple[str, ...]) -> bool:
    return any(v and any(w in v.lower() for w in words) for v in values)


def clip(text: str) -> str:
    """One line, at most a few hundred characters (error messages end up in logs and replies)."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


async def drain(events: AsyncIterator[Any], grace: float) -> None:
    """Read what follows a complete answer (its terminator), for at most ``grace`` seconds.

    Reading to the end lets the connection go back to the pool; a stream that never
    sends its terminator is complete anyway, so the wait is short.
    """
    with anyio.move_on_after(grace):
        try:
            async for _ in events:
                pass
        except Exception:  # noqa: BLE001 - the answer is complete; a broken tail changes nothing
            return


def parse_body(content: bytes) -> dict[str, Any]:
    """The JSON object of a non-streamed answer; a malformed one is a transient failure."""
    return _json_object(content, "response body", "invalid JSON")


def parse_event(data: str) -> dict[str, Any]:
    """The JSON object of one event; a malformed one is a transient failure."""
    return _json_object(data, "stream event", f"invalid JSON: {clip(data[:60])!r}")


def _json_object(data: str | bytes, what: str, invalid: str) -> dict[str, Any]:
    try:
        payload = json.loads(data)
    except ValueError as exc:  # invalid JSON, or bytes that are not UTF-8
        raise TransientProviderError(f"malformed {what} ({invalid})") from exc
    if not isinstance(payload, dict):
        raise TransientProviderError(f"malformed {what} (a JSON {type(payload).__name__}, not an object)")
    return payload
