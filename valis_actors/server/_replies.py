"""Pieces both front doors use to answer: error responses, headers, the ``valis`` object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

import valis_actors as va

from ._errors import ApiError, from_valis_error
from ._service import Accepted

__all__ = ["api_error", "error_response", "reply_headers", "usage_of", "valis_info"]


def api_error(error: BaseException | None) -> ApiError:
    """The HTTP error for whatever ended a flight (no traceback, no internals)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, va.ValisError):
        return from_valis_error(error)
    return ApiError(500, "internal error while answering; see the server log", type="server_error",
                    code="internal_error", retry=False)


def error_response(error: ApiError, render: Callable[[ApiError], bytes]) -> Response:
    return Response(render(error), status_code=error.status, headers=error.headers(), media_type="application/json")


def reply_headers(reply: va.Reply | None, accepted: Accepted) -> dict[str, str]:
    headers = {"x-valis-session-id": accepted.session.session_id}
    if not accepted.started:
        headers["x-valis-deduplicated"] = "true"
    if reply is not None:
        headers["x-valis-provider"] = reply.provider
        headers["x-valis-model"] = reply.model or reply.provider
        headers["x-valis-fallback"] = "true" if reply.fallback_used else "false"
    # Session ids can come from a JSON body: keep header values to printable ASCII.
    return {k: "".join(ch if " " <= ch <= "~" else "?" for ch in v) for k, v in headers.items()}


def usage_of(reply: va.Reply) -> va.Usage:
    return reply.usage if reply.usage is not None else va.Usage()


def valis_info(reply: va.Reply, accepted: Accepted) -> dict[str, Any]:
    """Who really answered, for clients that look (extra fields are ignored by the SDKs)."""
    return {
        "provider": reply.provider,
        "model": reply.model,
        "persona": reply.persona_id,
        "session_id": accepted.session.session_id,
        "fallback_used": reply.fallback_used,
        "deduplicated": not accepted.started,
        # Why the providers before the answering one did not answer (errors are redacted).
        "attempts": [
            {"provider": a.provider, "outcome": str(a.outcome), "reason": a.error, "duration": round(a.duration, 3)}
            for a in reply.attempts
        ],
    }
