"""HTTP errors: one exception type, rendered in the OpenAI or Anthropic shape.

Every runtime error a request can meet is mapped to a status in one table
(``ERROR_MAP``); a test checks that every ``ValisError`` subclass a caller can get
has a row. ``x-should-retry: false`` goes on every error a retry cannot fix, so the
official SDKs (which retry 408/409/429/5xx) do not send the same turn again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import valis_actors as va

__all__ = ["ERROR_MAP", "ApiError", "anthropic_body", "from_valis_error", "openai_body"]

# OpenAI error ``type`` -> Anthropic error ``type``.
_ANTHROPIC_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "server_error": "api_error",
    "overloaded_error": "overloaded_error",
}


class ApiError(Exception):
    """An error answered with a real status before any byte of the answer.

    Args:
        status: The HTTP status.
        message: What went wrong and what to do (shown by chat UIs).
        type: The OpenAI error type (``invalid_request_error``, ``authentication_error``...).
        code: A short machine-readable code, or None.
        param: The request field at fault, or None.
        retry: False adds ``x-should-retry: false``; True adds ``x-should-retry: true``.
        retry_after: Seconds for a ``Retry-After`` header.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # the wire format's name
        code: str | None = None,
        param: str | None = None,
        retry: bool | None = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.retry = retry
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        """``x-should-retry`` and ``retry-after``, as set."""
        out = {}
        if self.retry is not None:
            out["x-should-retry"] = "true" if self.retry else "false"
        if self.retry_after is not None:
            out["retry-after"] = str(max(1, round(self.retry_after)))
        return out


def openai_body(error: ApiError) -> bytes:
    """``{"error": {"message", "type", "param", "code"}}``."""
    return json.dumps(
        {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}
    ).encode()


def anthropic_body(error: ApiError) -> bytes:
    """``{"type": "error", "error": {"type", "message"}}``."""
    kind = _ANTHROPIC_TYPES.get(error.type, "api_error")
    if error.status == 403:
        kind = "permission_error"
    elif error.status == 413:
        kind = "request_too_large"
    return json.dumps({"type": "error", "error": {"type": kind, "message": error.message}}).encode()


# error class -> (status, OpenAI type, code, x-should-retry). Most specific first.
ERROR_MAP: Mapping[type[va.ValisError], tuple[int, str, str, bool]] = {
    va.MessageTooLongError: (400, "invalid_request_error", "message_too_long", False),
    va.EmptyMessageError: (400, "invalid_request_error", "empty_message", False),
    va.InvalidSessionIdError: (400, "invalid_request_error", "invalid_session_id", False),
    va.InvalidPersonaIdError: (404, "not_found_error", "model_not_found", False),
    va.InvalidRequestError: (400, "invalid_request_error", "invalid_request", False),
    va.UnknownPersonaError: (404, "not_found_error", "model_not_found", False),
    # Retrying helps once the session's earlier messages are answered.
    va.MailboxFullError: (429, "rate_limit_error", "session_busy", True),
    # Another instance (or this one, restarted) can take it: say when.
    va.RuntimeClosedError: (503, "overloaded_error", "shutting_down", True),
    va.SessionFailedError: (503, "server_error", "session_failed", False),
    # The turn may be half-processed: a blind retry could store it twice.
    va.ActorCrashedError: (500, "server_error", "session_crashed", False),
    va.MemoryStoreError: (500, "server_error", "memory_store_error", False),
    va.IncompleteAnswerError: (502, "server_error", "incomplete_answer", False),
    va.ProviderError: (502, "server_error", "provider_error", False),
    va.ConfigError: (500, "server_error", "config_error", False),
}


def from_valis_error(exc: va.ValisError) -> ApiError:
    """The HTTP error for a runtime error (its message is written for users: no secrets).

    Cluster mode's errors have their rows in ``_cluster.cluster_error_map`` (kept there so
    that a server not in cluster mode never imports ``valis_actors.cluster``).
    """
    from ._cluster import cluster_row

    found = cluster_row(exc)
    if found is not None:
        (status, kind, code, retry), retry_after = found
        if retry_after is None and retry:
            retry_after = 5.0
        return ApiError(status, str(exc), type=kind, code=code, retry=retry, retry_after=retry_after)
    for cls in type(exc).__mro__:
        row = ERROR_MAP.get(cls)
        if row is not None:
            status, kind, code, retry = row
            retry_after = 5.0 if status in (429, 503) and retry else None
            return ApiError(status, str(exc), type=kind, code=code, retry=retry, retry_after=retry_after)
    return ApiError(500, str(exc), type="server_error", code="internal_error", retry=False)
