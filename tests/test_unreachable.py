"""A provider that cannot be reached is tried once, named by its URL, and the next one answers.

Real failures through the official SDKs, run by the runtime: a closed loopback port
(connection refused), a name under ``.invalid`` (the resolver is patched to fail for
it, so no DNS query leaves the machine), a server that answers a TLS ClientHello with
plain HTTP, and, for contrast, a reset after the request was sent (still transient).
Both SDKs, both backends (aiohttp on asyncio, httpx2 on trio). Real sockets: real time.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

import valis_actors as va
from valis_actors._cascade._outcomes import RULES, Verdict, outcome_of
from valis_actors.cli import main
from valis_actors.testing.fakeserver import Fault, open_fake_llm_server

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]

KEY = "sk-test-Hq72mZpLw0Xv3Nb8Tr5Yc1Ke"
SDKS = ["openai", "anthropic"]
NOWHERE = "valis-nowhere.invalid"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # Real sockets: real time on both backends (a virtual clock would jump while bytes move).
    return str(request.param)


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, KEY)
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under ``.invalid`` fail to resolve at once, without asking any DNS server."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def entry(sdk: str, base_url: str, name: str | None = None) -> dict[str, Any]:
    """A provider entry; ``base_url`` is the server's root (``/v1`` is added for openai)."""
    url = base_url + ("/v1" if sdk == "openai" else "")
    return {"name": name or sdk, "type": sdk, "base_url": url, "model": "m", "max_tokens": 64}


def config(*providers: dict[str, Any], **overrides: Any) -> va.Config:
    data: dict[str, Any] = {
        "providers": [*providers, "persona_fallback"],
        "personas_dir": str(ROOT / "personas"),
        "memory": {"backend": "memory"},
        # Were connect failures retried, each unreachable provider would cost 7 s here.
        "retry_schedule": [1, 2, 4],
        "provider_timeout": 10,
        "response_deadline": 30,
        **overrides,
    }
    return va.Config.from_dict(data)


def shown(sdk: str, base_url: str) -> str:
    return base_url + ("/v1" if sdk == "openai" else "")


def refused_message(url: str) -> str:
    return f"cannot connect to {url} (connection refused) — is the server running?"


def dns_message(url: str) -> str:
    return f"cannot connect to {url} (cannot resolve host {NOWHERE}) — check the host name and the network connection"


def outcomes(reply: va.Reply) -> list[tuple[str, va.AttemptOutcome]]:
    return [(a.provider, a.outcome) for a in reply.attempts]


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="valis_actors"):
        yield caplog


def assert_logged_once_each_without_traceback(caplog: pytest.LogCaptureFixture, messages: list[str]) -> None:
    records = [r for r in caplog.records if r.name.startswith("valis_actors")]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in records), caplog.text
    assert "Traceback" not in caplog.text
    for message in messages:
        assert sum(message in r.getMessage() for r in records) == 1, (message, caplog.text)
    assert KEY not in caplog.text


def test_unreachable_has_its_own_row() -> None:
    error = va.ProviderUnreachableError("cannot connect", url="http://127.0.0.1:9", reason="connection refused")
    assert outcome_of(error) is va.AttemptOutcome.UNREACHABLE
    rule = RULES[va.AttemptOutcome.UNREACHABLE]
    assert (rule.retry_same, rule.next_provider, rule.breaker) == (False, True, Verdict.FAILURE)
    assert not isinstance(error, va.TransientProviderError)  # nothing was sent: nothing to retry


@pytest.mark.parametrize("streamed", [False, True], ids=["ask", "stream"])
async def test_every_remote_provider_unreachable_is_tried_once_and_the_fallback_answers(
    warnings: pytest.LogCaptureFixture, streamed: bool
) -> None:
    refused = f"http://127.0.0.1:{closed_port()}"
    nowhere = f"http://{NOWHERE}"
    providers = [
        entry("openai", refused, "openai_refused"),
        entry("anthropic", refused, "anthropic_refused"),
        entry("openai", nowhere, "openai_dns"),
        entry("anthropic", nowhere, "anthropic_dns"),
    ]
    async with va.open_runtime(config(*providers)) as runtime:
        if streamed:
            async with runtime.stream("s", "jane", "hi") as chunks:
                text = "".join([chunk async for chunk in chunks])
            reply = chunks.reply
            assert reply is not None and text == reply.text
        else:
            reply = await runtime.ask("s", "jane", "hi")
    assert reply.fallback_used and reply.provider == "persona_fallback"
    # One attempt per provider, no retry, no wait on the 1/2/4 s schedule, no deadline cut.
    assert outcomes(reply) == [(p["name"], va.AttemptOutcome.UNREACHABLE) for p in providers]
    expected = [
        refused_message(shown("openai", refused)),
        refused_message(shown("anthropic", refused)),
        dns_message(shown("openai", nowhere)),
        dns_message(shown("anthropic", nowhere)),
    ]
    assert [a.error for a in reply.attempts] == expected
    assert_logged_once_each_without_traceback(warnings, expected)


@pytest.mark.parametrize("sdk", SDKS)
async def test_an_unreachable_provider_fails_over_to_the_next_one_at_once(sdk: str) -> None:
    async with open_fake_llm_server(text="Here is a real answer.") as server:
        up = server.anthropic_base_url if sdk == "anthropic" else server.openai_base_url.removesuffix("/v1")
        down = f"http://127.0.0.1:{closed_port()}"
        async with va.open_runtime(config(entry(sdk, down, "down"), entry(sdk, up, "up"))) as runtime:
            reply = await runtime.ask("s", "jane", "How do I ask for a raise?")
    assert reply.text == "Here is a real answer." and not reply.fallback_used
    assert outcomes(reply) == [("down", va.AttemptOutcome.UNREACHABLE), ("up", va.AttemptOutcome.SUCCESS)]


@pytest.mark.parametrize("sdk", SDKS)
async def test_the_breaker_hears_a_failure_and_later_asks_skip_the_provider(sdk: str) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    cfg = config(entry(sdk, down), circuit_breaker_threshold=2, circuit_breaker_timeout=300)
    async with va.open_runtime(cfg) as runtime:
        replies = [await runtime.ask("s", "jane", f"question {n}") for n in range(3)]
    assert [outcomes(r) for r in replies] == [
        [(sdk, va.AttemptOutcome.UNREACHABLE)],
        [(sdk, va.AttemptOutcome.UNREACHABLE)],
        [(sdk, va.AttemptOutcome.CIRCUIT_OPEN)],
    ]


async def _plain_http_to_tls(stream: anyio.abc.ByteStream) -> None:
    """Answer a TLS ClientHello with plain HTTP, as a server on the wrong scheme does."""
    async with stream:
        try:
            await stream.receive()
            await stream.send(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass


@pytest.fixture
async def plain_http_port() -> AsyncIterator[int]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _plain_http_to_tls)
        yield int(listener.extra(anyio.abc.SocketAttribute.local_port))
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("sdk", SDKS)
async def test_a_tls_handshake_failure_is_unreachable(plain_http_port: int, sdk: str) -> None:
    url = f"https://127.0.0.1:{plain_http_port}"
    async with va.open_runtime(config(entry(sdk, url))) as runtime:
        reply = await runtime.ask("s", "jane", "hi")
    assert outcomes(reply) == [(sdk, va.AttemptOutcome.UNREACHABLE)]
    error = reply.attempts[0].error or ""
    assert error.startswith(f"cannot connect to {shown(sdk, url)} (TLS handshake failed")
    assert error.endswith("— check the URL's scheme (http or https) and the server's certificate")


@pytest.mark.parametrize("sdk", SDKS)
async def test_a_reset_after_the_request_was_sent_stays_transient_and_is_retried(sdk: str) -> None:
    async with open_fake_llm_server() as server:
        server.set_default(Fault.reset())
        url = server.anthropic_base_url if sdk == "anthropic" else server.openai_base_url.removesuffix("/v1")
        async with va.open_runtime(config(entry(sdk, url), retry_schedule=[0.01])) as runtime:
            reply = await runtime.ask("s", "jane", "hi")
        sent = len(server.requests)
    assert outcomes(reply) == [(sdk, va.AttemptOutcome.TRANSIENT)] * 2
    assert sent == 2  # the server saw both requests: the connection was made each time
    assert all((a.error or "").startswith("connection lost") for a in reply.attempts)


def test_the_url_never_shows_credentials_or_a_query() -> None:
    from valis_actors.providers._connect import shown_url

    assert shown_url("https://user:s3cret@example.com:8443/v1/?key=abc#x") == "https://example.com:8443/v1"
    assert shown_url("http://127.0.0.1:9/v1/") == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cli_ask_with_openai_base_url_on_a_closed_port_answers_via_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "personas_dir": str(ROOT / "personas"),
        "providers": [{"name": "openai", "type": "openai"}, "persona_fallback"],
        "retry_schedule": [1, 2, 4],
    }))
    url = f"http://127.0.0.1:{closed_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    code = main(["--backend", backend, "ask", "jane", "hi", "--config", str(path), "--json"])
    reply = json.loads(capsys.readouterr().out)
    assert code == 0 and reply["fallback_used"] is True
    assert [(a["provider"], a["outcome"]) for a in reply["attempts"]] == [("openai", "unreachable")]
    assert reply["attempts"][0]["error"] == refused_message(url)
    assert KEY not in json.dumps(reply)


def test_cli_footer_names_the_url_and_says_no_llm_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "personas_dir": str(ROOT / "personas"),
        "providers": [{"name": "openai", "type": "openai"}, "persona_fallback"],
    }))
    url = f"http://127.0.0.1:{closed_port()}/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    code = main(["ask", "jane", "hi", "--config", str(path)])
    answer, footer = capsys.readouterr().out.strip().split("\n")
    assert code == 0 and answer.startswith("Hello. I'm Jane")
    assert footer.startswith("-- jane via persona_fallback (persona-fallback) in ")
    assert f"no LLM answered, this is a template reply (to get one: start the server at {url})" in footer
    assert f"openai: {refused_message(url)}" in footer


def _chain(*links: BaseException) -> BaseException:
    """``links[0]`` raised from ``links[1]`` raised from ... (outermost first)."""
    for outer, inner in itertools.pairwise(links):
        outer.__cause__ = inner
    return links[0]


def test_connect_failure_reads_what_each_client_says() -> None:
    import aiohttp
    import httpcore2
    import httpx2

    from valis_actors.providers._connect import connect_failure

    unreachable = OSError(errno.ENETUNREACH, "Network is unreachable")
    assert connect_failure(_chain(httpx2.ConnectError("x"), httpcore2.ConnectError("x"), unreachable)) == (
        "network", "network is unreachable"
    )
    trio_refused = _chain(
        httpx2.ConnectError("all attempts failed"),
        OSError("all attempts to connect to 127.0.0.1:9 failed"),
        ExceptionGroup("attempts", [ConnectionRefusedError(errno.ECONNREFUSED, "refused")]),
    )
    assert connect_failure(trio_refused) == ("refused", "connection refused")
    assert connect_failure(httpx2.ConnectTimeout("x")) == ("timeout", "connect timed out")
    # After the connection was made: not a connect failure, whatever the wrapper's name says.
    assert connect_failure(_chain(httpx2.ReadError("x"), ConnectionResetError(errno.ECONNRESET, "reset"))) is None
    aiohttp_reset = _chain(
        httpx2.ConnectTimeout("reset"), aiohttp.ClientOSError(errno.ECONNRESET, "reset"), ConnectionResetError()
    )
    assert connect_failure(aiohttp_reset) is None
    assert connect_failure(httpx2.ReadTimeout("x")) is None
    assert connect_failure(ValueError("no")) is None
