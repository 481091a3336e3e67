"""A minimal HTTP/1.1 server connection for the fake LLM server, on anyio byte streams.

Just enough of RFC 9112 for the SDKs' connection pools: request line, headers and a
``Content-Length`` body in; ``Content-Length`` or chunked responses out; keep-alive unless
the client sends ``Connection: close``. No h11: the parsing is a few ``bytes.find`` calls,
which keeps the server cheap enough for benchmarks.
"""

from __future__ import annotations

import socket
import struct
from http import HTTPStatus

import anyio
import anyio.abc
import attrs

__all__ = ["Connection", "HttpRequest", "ProtocolError", "chunk", "response_head"]

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
_RECEIVE_BYTES = 65536
_LAST_CHUNK = b"0\r\n\r\n"

# Errors that mean "the peer is gone": the connection is over, nothing to report.
STREAM_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_REASONS[529] = "Site Overloaded"


class ProtocolError(Exception):
    """The request is not HTTP/1.1 we can serve; answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.frozen
class HttpRequest:
    """One parsed request.

    Attributes:
        method: ``POST``, ``GET``...
        target: The request target (path and query).
        headers: Header names lower-cased; repeated headers joined with ``", "``.
        body: The raw body.
        keep_alive: Whether the connection may serve another request afterwards.
    """

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]


def response_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    """The status line and headers of a response, ending with the blank line."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """``data`` framed as one chunk of a chunked body (empty data gives nothing)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk() -> bytes:
    """The zero-length chunk that ends a chunked body."""
    return _LAST_CHUNK


class Connection:
    """The server side of one TCP connection: reads requests, sends bytes, misbehaves on demand."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self._buffer = bytearray()
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        # Streams are sent in several small writes; Nagle would hold them back.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def read_request(self) -> HttpRequest | None:
        """Read the next request; ``None`` when the client closed the connection between requests.

        Raises:
            ProtocolError: The request is malformed or too large.
        """
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise ProtocolError(431, "Request header fields too large")
            try:
                buffer += await self.stream.receive(_RECEIVE_BYTES)
            except STREAM_GONE:
                return None
            end = buffer.find(b"\r\n\r\n", max(0, len(buffer) - _RECEIVE_BYTES - 3))
        head = bytes(buffer[:end]).decode("latin-1")
        del buffer[: end + 4]
        request_line, *header_lines = head.split("\r\n")
        try:
            method, target, version = request_line.split(" ")
        except ValueError:
            raise ProtocolError(400, f"Malformed request line {request_line!r}") from None
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(400, f"Malformed header line {line!r}")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if "chunked" in headers.get("transfer-encoding", ""):
            raise ProtocolError(501, "Chunked request bodies are not supported by the fake server")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise ProtocolError(400, "Invalid Content-Length") from None
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ProtocolError(413, "Request body too large")
        while len(buffer) < length:
            try:
                buffer += await self.stream.receive(_RECEIVE_BYTES)
            except STREAM_GONE:
                return None
        body = bytes(buffer[:length])
        del buffer[:length]
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in connection
        else:
            keep_alive = "keep-alive" in connection
        return HttpRequest(method=method, target=target, headers=headers, body=body, keep_alive=keep_alive)

    async def send(self, data: bytes) -> None:
        """Send ``data`` (raises one of ``STREAM_GONE`` if the client went away)."""
        await self.stream.send(data)

    async def sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds, watching the socket; return ``False`` if the client went away.

        Bytes that arrive meanwhile (a pipelined request) are kept for :meth:`read_request`.
        """
        if delay <= 0:
            return True
        with anyio.move_on_after(delay):
            return await self._receive_until_closed()
        return True

    async def wait_closed(self) -> None:
        """Hold the connection, answering nothing, until the client closes it (or we are cancelled)."""
        await self._receive_until_closed()

    async def _receive_until_closed(self) -> bool:
        while True:
            try:
                data = await self.stream.receive(_RECEIVE_BYTES)
            except STREAM_GONE:
                return False
            if len(self._buffer) < MAX_HEAD_BYTES + MAX_BODY_BYTES:
                self._buffer += data

    async def abort(self) -> None:
        """Close the connection with a TCP RST (``SO_LINGER`` 1, 0) instead of a FIN."""
        raw = self.stream.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await self.stream.aclose()
