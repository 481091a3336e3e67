"""The desktop_commander provider against real processes (tests/scripts/fake_cli.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest

import valis_actors as va
from valis_actors._personas import NEUTRAL
from valis_actors.providers._desktop_commander import STDERR_TAIL, DesktopCommanderProvider

pytestmark = pytest.mark.anyio

SCRIPT = str(Path(__file__).parent / "scripts" / "fake_cli.py")
REQUEST = va.ProviderRequest(
    session_id="s1",
    persona=NEUTRAL,
    message="How do I ask for a raise?",
    system_prompt="You are Jane, an HR partner.",
    history=(va.Turn(user="Hi Jane", assistant="Hello!"),),
)
PROMPT = (
    "You are Jane, an HR partner.\n\n"
    "Earlier in this conversation:\nUser: Hi Jane\nYou: Hello!\n\n"
    "How do I ask for a raise?"
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    # Real processes: real time on both backends.
    return str(request.param)


async def opened(*args: str, timeout: float | None = 10.0, **options: object) -> DesktopCommanderProvider:
    command = [sys.executable, SCRIPT, *args] if args else options.pop("command", None)
    settings = va.ProviderSettings(
        name="cli", type="desktop_commander", timeout=timeout, options={"command": command, **options}
    )
    provider = DesktopCommanderProvider(settings)
    await provider.aopen()
    return provider


async def stream_items(provider: va.BaseProvider) -> AsyncIterator[str | va.ProviderResponse]:
    stream = provider.stream_response(REQUEST)
    assert stream is not None
    async with aclosing(stream) as items:
        async for item in items:
            yield item


def gone(pid: int) -> bool:
    """Not running: no such process, or a zombie left for init (not our child) to reap."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


async def test_desktop_commander_answers_from_stdout_with_prompt_on_stdin() -> None:
    provider = await opened("echo", model="claude-cli")
    response = await provider.get_response(REQUEST)
    assert response.text == "echo: " + PROMPT
    assert response.model == "claude-cli"
    assert provider.unavailable_reason() is None


async def test_desktop_commander_prompt_as_last_argument_without_system_prompt() -> None:
    provider = await opened("arg", prompt_via="argument", include_system_prompt=False)
    response = await provider.get_response(REQUEST)
    assert (
        response.text
        == "echo: Earlier in this conversation:\nUser: Hi Jane\nYou: Hello!\n\nHow do I ask for a raise?"
    )
    assert response.model == os.path.basename(sys.executable)


async def test_desktop_commander_finds_the_executable_on_the_configured_path() -> None:
    python = Path(sys.executable)
    provider = await opened(
        command=[python.name, SCRIPT, "env", "GREETING"],
        env={"PATH": str(python.parent), "GREETING": "hi from env"},
    )
    assert provider.unavailable_reason() is None
    assert (await provider.get_response(REQUEST)).text == "hi from env"


async def test_desktop_commander_streams_utf8_safely_then_a_final_response() -> None:
    provider = await opened("stream")
    items = [item async for item in stream_items(provider)]
    chunks, final = items[:-1], items[-1]
    assert isinstance(final, va.ProviderResponse)
    assert all(isinstance(chunk, str) for chunk in chunks)
    assert len(chunks) > 3
    assert "".join(chunks).strip() == final.text == "héllo wörld " + PROMPT
    assert "\ufffd" not in final.text


async def test_desktop_commander_nonzero_exit_is_transient_with_the_stderr_tail() -> None:
    provider = await opened("fail")
    with pytest.raises(va.TransientProviderError) as caught:
        await provider.get_response(REQUEST)
    message = str(caught.value)
    assert type(caught.value) is va.TransientProviderError
    assert "exited with status 3" in message
    assert message.endswith("FATAL: model not loaded")
    assert len(message) < STDERR_TAIL + len(sys.executable) + 40


async def test_desktop_commander_failure_after_output_ends_the_stream_with_an_error() -> None:
    provider = await opened("fail-after-output")
    chunks: list[str | va.ProviderResponse] = []
    with pytest.raises(va.TransientProviderError, match="status 3"):
        async for item in stream_items(provider):
            chunks.append(item)
    assert chunks == ["partial answer"]


async def test_desktop_commander_empty_output_is_transient() -> None:
    provider = await opened("silent")
    with pytest.raises(va.TransientProviderError, match="printed nothing"):
        await provider.get_response(REQUEST)


async def test_desktop_commander_oversized_output_is_refused() -> None:
    provider = await opened("big", "5000", max_output_bytes=1000)
    with pytest.raises(va.PermanentProviderError, match="max_output_bytes"):
        await provider.get_response(REQUEST)


async def test_desktop_commander_redacts_secrets_passed_in_env() -> None:
    secret = "tok-9f8e7d6c5b4a39281706"
    provider = await opened("leak", "CLI_API_TOKEN", env={"CLI_API_TOKEN": secret})
    with pytest.raises(va.TransientProviderError) as caught:
        await provider.get_response(REQUEST)
    assert "auth failed for token" in str(caught.value)
    assert secret not in str(caught.value)


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_desktop_commander_hang_is_killed_and_reaped(tmp_path: Path, how: str) -> None:
    pidfile = tmp_path / "pids"
    provider = await opened("hang", str(pidfile), timeout=0.5 if how == "timeout" else None)
    started = anyio.current_time()
    if how == "timeout":
        with pytest.raises(va.ProviderTimeoutError):
            await provider.get_response(REQUEST)
    else:
        with anyio.move_on_after(0.5) as scope:  # the runtime's per-attempt cancel scope
            await provider.get_response(REQUEST)
        assert scope.cancelled_caught
    assert anyio.current_time() - started < 3.0
    child, grandchild = (int(pid) for pid in pidfile.read_text().split())
    # The child is ours: killed and reaped before the call returned (no zombie).
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    # The grandchild was in the killed process group; init reaps it.
    with anyio.fail_after(5):
        while not gone(grandchild):
            await anyio.sleep(0.02)


async def test_desktop_commander_abandoned_stream_kills_the_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    provider = await opened("hang", str(pidfile))
    stream = provider.stream_response(REQUEST)
    assert stream is not None
    async with aclosing(stream) as items:
        assert await items.__anext__() == "thinking"
    child, _ = (int(pid) for pid in pidfile.read_text().split())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


async def test_desktop_commander_missing_executable_is_unavailable() -> None:
    provider = await opened(command=["valis-no-such-cli", "-p"])
    assert provider.unavailable_reason() == "executable 'valis-no-such-cli' not found on PATH"
    with pytest.raises(va.ProviderUnavailableError):
        await provider.get_response(REQUEST)


@pytest.mark.parametrize("command", [None, []])
async def test_desktop_commander_without_command_is_unavailable(command: list[str] | None) -> None:
    settings = va.ProviderSettings(name="cli", type="desktop_commander_mcp", options={"command": command})
    provider = DesktopCommanderProvider(settings)
    assert provider.unavailable_reason() == "no command configured (set \"command\" in its config.json entry)"
    await provider.aopen()
    assert provider.unavailable_reason() == "no command configured (set \"command\" in its config.json entry)"


async def test_desktop_commander_works_without_aopen() -> None:
    settings = va.ProviderSettings(
        name="cli", type="desktop_commander", options={"command": [sys.executable, SCRIPT, "echo"]}
    )
    provider = DesktopCommanderProvider(settings)
    assert (await provider.get_response(REQUEST)).text == "echo: " + PROMPT
