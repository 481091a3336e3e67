"""Connect failures: telling "no connection was ever made" from "the connection broke".

A DNS failure, a refused connection, a failed TLS handshake or a connect timeout means
nothing was sent: the provider is unreachable (``ProviderUnreachableError``, outcome
``unreachable``), and retrying it within the message only waits. A reset or a read
error after the request went out may have reached the server: that stays transient.
Each HTTP client says which happened in its own exception types; this module reads
them by module and class name, so it imports no SDK and no HTTP client.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

from .._errors import ProviderUnreachableError
from ._common import REDACTED, clip

__all__ = ["connect_failure", "exception_links", "shown_url", "unreachable_error"]


def exception_links(exc: BaseException) -> Iterator[BaseException]:
    """Every exception reachable from ``exc``: causes, contexts and group members, each once."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        link = stack.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        for name in ("__cause__", "__context__"):
            nxt = getattr(link, name, None)
            if isinstance(nxt, BaseException):
                stack.append(nxt)
        if isinstance(link, BaseExceptionGroup):
            stack.extend(link.exceptions)


# What "no connection was ever made" looks like in each client's exceptions, by module
# prefix and class name (this module imports no SDK): aiohttp's connector errors (DNS,
# refused, TLS) and its connect timeout; httpx2's and httpcore2's connect errors, which
# they raise only while opening the connection.
_AIOHTTP_CONNECT = frozenset({"ClientConnectorError", "ConnectionTimeoutError"})
_HTTPX_CONNECT = frozenset({"ConnectError", "ConnectTimeout"})
_HTTPX_MODULES = ("httpx", "httpcore")


def _classes(link: BaseException, prefix: str | tuple[str, ...]) -> set[str]:
    return {cls.__name__ for cls in type(link).__mro__ if cls.__module__.startswith(prefix)}


def connect_failure(exc: BaseException, *, host: str | None = None) -> tuple[str, str] | None:
    """Why no connection could be made, if that is what ``exc`` says; None for anything else.

    Returns ``(kind, reason)``: ``kind`` is ``dns``, ``refused``, ``tls``, ``timeout`` or
    ``network``; ``reason`` is a few words (``connection refused``, ``cannot resolve host
    api.example.com``). A reset, a read error or a read timeout *after* the connection was
    made is not a connect failure (None): the request may have reached the server.

    The aiohttp adapter of the SDKs reports every aiohttp connection error, a reset
    included, as ``httpx2.ConnectTimeout``; so when aiohttp is in the chain, only its own
    connector errors count. Under trio the cause is an ``OSError`` caused by an
    ExceptionGroup of one error per address tried: the whole graph is searched.
    """
    links = list(exception_links(exc))
    from_aiohttp = [link for link in links if type(link).__module__.startswith("aiohttp")]
    if from_aiohttp:
        connecting = any(_classes(link, "aiohttp") & _AIOHTTP_CONNECT for link in from_aiohttp)
    else:
        connecting = any(_classes(link, _HTTPX_MODULES) & _HTTPX_CONNECT for link in links) or any(
            isinstance(link, (socket.gaierror, ConnectionRefusedError)) for link in links
        )
    if not connecting:
        return None
    # The class names of the client that spoke: with aiohttp, httpx2's wrappers say nothing.
    client = ("aiohttp",) if from_aiohttp else _HTTPX_MODULES
    names: set[str] = set().union(*(_classes(link, client) for link in links))
    return _connect_reason(links, names, host)


def _connect_reason(links: list[BaseException], names: set[str], host: str | None) -> tuple[str, str]:
    def first(*types: type[BaseException]) -> BaseException | None:
        return next((link for link in links if isinstance(link, types)), None)

    if first(socket.gaierror) is not None or "ClientConnectorDNSError" in names:
        return "dns", f"cannot resolve host {host}" if host else "cannot resolve the host name"
    if first(ConnectionRefusedError) is not None or any(
        isinstance(link, OSError) and link.errno == errno.ECONNREFUSED for link in links
    ):
        return "refused", "connection refused"
    cert = first(ssl.SSLCertVerificationError)
    if cert is not None:
        detail = getattr(cert, "verify_message", None) or "not trusted"
        return "tls", f"TLS certificate check failed: {detail}"
    tls = first(ssl.SSLError)
    if tls is not None or names & {"ClientSSLError", "ClientConnectorSSLError", "ClientConnectorCertificateError"}:
        detail = getattr(tls, "reason", None)
        return "tls", "TLS handshake failed" + (f": {str(detail).lower().replace('_', ' ')}" if detail else "")
    if first(TimeoutError) is not None or names & {"ConnectTimeout", "ConnectionTimeoutError"}:
        return "timeout", "connect timed out"
    oserror = next((link for link in links if isinstance(link, OSError) and link.strerror), None)
    if oserror is not None and oserror.strerror:
        return "network", oserror.strerror[:1].lower() + oserror.strerror[1:]
    return "network", "connection failed"


_CONNECT_HINTS = {
    "refused": "is the server running?",
    "dns": "check the host name and the network connection",
    "tls": "check the URL's scheme (http or https) and the server's certificate",
    "timeout": "is the host reachable?",
    "network": "is the host reachable?",
}


def shown_url(url: str) -> str:
    """``url`` as it may be shown: without credentials, query or fragment, and without a trailing slash."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")
    except ValueError:
        return "the configured base_url"


def unreachable_error(
    exc: BaseException, *, url: str, redact: Callable[[str], str]
) -> ProviderUnreachableError | None:
    """Our error for ``exc`` if no connection to ``url`` was ever made, else None.

    The message names the URL (never credentials or a key) and what to check:
    ``cannot connect to http://127.0.0.1:9/v1 (connection refused) — is the server running?``
    """
    shown = _safe_redact(shown_url(url), redact)
    try:
        host = urlsplit(url).hostname
    except ValueError:
        host = None
    failure = connect_failure(exc, host=_safe_redact(host, redact) if host else None)
    if failure is None:
        return None
    kind, reason = failure
    reason = clip(_safe_redact(reason, redact))
    return ProviderUnreachableError(
        f"cannot connect to {shown} ({reason}) — {_CONNECT_HINTS[kind]}", url=shown, reason=reason
    )


def _safe_redact(value: str, redact: Callable[[str], str]) -> str:
    try:
        return redact(value)
    except Exception:  # noqa: BLE001 - a redactor that fails hides everything rather than nothing
        return REDACTED
