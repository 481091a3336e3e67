"""Redaction never raises and leaves no key, on the exception chains the SDKs really raise.

The chains are made by really failing: connecting to a closed loopback port, a name
that does not resolve, a server that resets the connection, one that never answers;
through both SDKs (aiohttp on asyncio, httpx2 on trio) and httpx2 itself. Each link is
then poisoned with the key (arguments, ``strerror``, notes, and every attribute
that takes a string) and ``scrub`` must clean them all without raising: trio's
connect errors are caused by an ExceptionGroup whose ``message`` is read-only.
Real time: real sockets.
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

import valis_actors as va
from valis_actors.providers import provider_class
from valis_actors.providers._common import Redactor, redacted_traceback, scrub
from valis_actors.providers._connect import exception_links
from valis_actors.testing.fakeserver import FakeLLMServer, Fault, open_fake_llm_server

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

KEY = "sk-test-Zq81vLw0PpX3mN7rT5yB2cK9"
REDACT = Redactor([KEY])
FAILURES = ["refused", "dns", "reset", "timeout"]
CLIENTS = ["openai", "anthropic", "httpx2"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with open_fake_llm_server() as srv:
        yield srv


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poison(exc: BaseException) -> None:
    """Put the key everywhere an exception can hold text (where Python lets us)."""
    for link in exception_links(exc):
        link.args = (*link.args, f"key={KEY}")
        link.add_note(f"note with {KEY}")
        for name in ("strerror", "filename", "message", "reason", "msg"):
            try:
                setattr(link, name, f"{name} {KEY}")
            except (AttributeError, TypeError):
                pass  # read-only (ExceptionGroup.message) or not settable: nothing to poison


def assert_clean(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    for link in exception_links(exc):
        text += str(link) + repr(link) + repr(link.args) + repr(getattr(link, "__notes__", ""))
        text += "".join(repr(getattr(link, n, "")) for n in ("strerror", "filename", "message", "reason", "msg"))
    assert KEY not in text
    assert KEY[8:20] not in text  # nor a recognisable fragment


def base_url(failure: str, server: FakeLLMServer, client: str) -> str:
    if failure == "refused":
        return f"http://127.0.0.1:{closed_port()}"
    if failure == "dns":
        return "http://valis-no-such-host.invalid"
    return server.anthropic_base_url if client == "anthropic" else server.openai_base_url.removesuffix("/v1")


async def raise_real(client: str, failure: str, server: FakeLLMServer) -> tuple[BaseException, va.ProviderError | None]:
    """The exception ``client`` really raises for ``failure``, and what our provider maps it to."""
    if failure == "reset":
        server.set_default(Fault.reset())
    elif failure == "timeout":
        server.set_default(Fault.no_response())
    url = base_url(failure, server, client)
    if client == "httpx2":
        import httpx2

        async with httpx2.AsyncClient(timeout=0.3) as http:
            try:
                body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                response = await http.post(
                    url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
                )
                await response.aread()
            except Exception as exc:  # noqa: BLE001 - whatever it raises is what we want
                return exc, None
        raise AssertionError("no failure")
    entry = {"name": client, "type": client, "base_url": url + ("/v1" if client == "openai" else ""), "timeout": 0.3}
    settings = va.Config.from_dict({"providers": [entry]}).providers[0]
    provider = provider_class(client)(settings)
    await provider.aopen()
    try:
        call: Callable[[], Awaitable[Any]]
        if client == "openai":
            call = lambda: provider.client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
        else:
            call = lambda: provider.client.messages.create(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        raw: BaseException | None = None
        try:
            with anyio.fail_after(10):
                await call()
        except Exception as exc:  # noqa: BLE001 - whatever it raises is what we want
            raw = exc
        assert raw is not None, "no failure"
        persona = await anyio.to_thread.run_sync(_persona)
        request = va.ProviderRequest(session_id="s", persona=persona, message="hi", system_prompt="")
        mapped: va.ProviderError | None = None
        try:
            with anyio.fail_after(10):
                await provider.get_response(request)
        except va.ProviderError as exc:  # anything else (AttributeError from scrub...) fails the test
            mapped = exc
        return raw, mapped
    finally:
        await provider.aclose()


def _persona() -> Any:
    from valis_actors._personas import PersonaStore

    return PersonaStore.load_dir(None).get("jane")


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("client", CLIENTS)
async def test_scrub_never_raises_and_leaves_no_key_on_real_chains(
    server: FakeLLMServer, client: str, failure: str
) -> None:
    raw, mapped = await raise_real(client, failure, server)
    if client != "httpx2":
        assert mapped is not None, "the provider let a non-ProviderError out"
        assert_clean(mapped)  # the provider scrubbed the chain it raised from
    poison(raw)
    assert KEY in "".join(traceback.format_exception(raw))
    scrub(raw, REDACT)
    assert_clean(raw)
    scrub(raw, REDACT)  # twice is harmless


def test_scrub_survives_what_no_sdk_raises_but_python_allows() -> None:
    class Stubborn(Exception):
        @property
        def message(self) -> str:
            raise RuntimeError("a property that raises")

        def __str__(self) -> str:
            raise ValueError("and a __str__ that raises")

    class NoArgs(Exception):
        def __init__(self) -> None:
            pass  # never calls super().__init__: no args

    group = ExceptionGroup(f"group {KEY}", [ValueError(KEY), NoArgs(), Stubborn(KEY)])
    top = RuntimeError(f"top {KEY}")
    top.__cause__ = group
    loop = OSError(111, f"refused {KEY}")
    loop.__context__ = loop  # a cycle
    top.__context__ = loop
    scrub(top, REDACT)
    scrub(group, REDACT)  # a group at the top: its message cannot be replaced in place
    scrub(Stubborn(), REDACT)
    assert KEY not in "".join(traceback.format_exception(top)).replace(f"group {KEY}", "")
    assert KEY not in redacted_traceback(top, REDACT)
    assert KEY not in redacted_traceback(group, REDACT)
    assert "Stubborn" in redacted_traceback(Stubborn(), REDACT)
