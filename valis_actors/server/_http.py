"""What every endpoint does first: the service, the caller's key, the body as JSON."""

from __future__ import annotations

import json
from typing import Any

import attrs
from starlette.requests import ClientDisconnect, Request

from ._errors import ApiError
from ._service import Service

__all__ = ["Incoming", "read_incoming", "service_of"]


@attrs.frozen
class Incoming:
    """An authenticated request with its parsed JSON body."""

    service: Service
    key: str | None
    headers: dict[str, str]
    body: bytes
    data: Any


def service_of(request: Request) -> Service:
    service = getattr(request.app.state, "valis", None)
    if not isinstance(service, Service):
        raise ApiError(
            503, "the server is starting or stopping; retry in a moment", type="overloaded_error", retry=True,
            retry_after=1,
        )
    return service


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_big = ApiError(
        413, f"the request body is over the server's limit of {limit} bytes", code="request_too_large"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise too_big
            parts.append(part)
    except ClientDisconnect:
        raise ApiError(400, "the client went away while sending the body", code="client_closed") from None
    return b"".join(parts)


async def read_incoming(request: Request) -> Incoming:
    """Authenticate, then read and parse the body.

    Raises:
        ApiError: 401, 413, or 400 for a body that is not JSON.
    """
    service = service_of(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    key = service.authenticate(headers)
    body = await _read_body(request, service.settings.max_body_bytes)
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ApiError(400, f"the request body is not valid JSON{where}", code="invalid_json") from None
    return Incoming(service, key, headers, body, data)
