"""The web chat page: ``GET /`` and ``GET /static/{name}``, served from package data.

The page is plain HTML, CSS and JS (no build step, no CDN) and talks to the server's own
``/v1/models`` and ``/v1/chat/completions`` like any other client. It holds no key: when the
server has keys, the person types one into the page. These routes need no key themselves.
"""

from __future__ import annotations

from importlib import resources

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ._errors import ApiError, openai_body
from ._replies import error_response

__all__ = ["index", "static_file"]

_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Everything the page loads comes from this server: no inline script, no other origin.
_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
_cache: dict[str, bytes] = {}


def _read(name: str) -> bytes:
    return resources.files("valis_actors.server").joinpath("static", name).read_bytes()


async def _serve(name: str) -> Response:
    body = _cache.get(name)
    if body is None:  # read once, off the event loop
        body = _cache[name] = await anyio.to_thread.run_sync(_read, name)
    return Response(body, media_type=_TYPES[name], headers=_HEADERS)


async def index(request: Request) -> Response:
    """The chat page."""
    return await _serve("index.html")


async def static_file(request: Request) -> Response:
    """One of the page's own files (a fixed list: no path from the request reaches the disk)."""
    name = request.path_params["name"]
    if name not in _TYPES or name == "index.html":
        return error_response(ApiError(404, f"no such file: /static/{name}", type="not_found_error",
                                       code="404"), openai_body)
    return await _serve(name)
