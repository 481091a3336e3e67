"""The ``desktop_commander`` provider (legacy ``desktop_commander_mcp``): a local command.

It runs the configured command (``claude -p``, ``llm``, ``ollama run MODEL``...)
as an anyio subprocess, gives it the prompt on stdin or as its last argument, and
answers with what it prints on stdout.

- Nothing blocks the event loop: the executable is looked up once, in a worker
  thread, when the runtime opens; the prompt and stderr go through unlinked
  temporary files created in a worker thread, so the process is fed and drained
  without extra tasks (and a chatty stderr can never fill a pipe and stall it).
- The command runs in its own process group. A timeout, a cancellation or an
  oversized answer kills the whole group and reaps the child (shielded): no zombie,
  no orphan left holding the pipes.
- A non-zero exit is transient and carries the tail of stderr; so is empty output.
"""

from __future__ import annotations

import codecs
import math
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import IO, TYPE_CHECKING, Any

import anyio
import attrs
from anyio.abc import Process

from .._errors import (
    PermanentProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    TransientProviderError,
)
from .._messages import ProviderRequest, ProviderResponse, Usage
from .._validation import at_least, one_of
from ._base import BaseProvider, provider_options, register_provider
from ._common import Redactor, is_secret_name, shown_env

if TYPE_CHECKING:
    from .._config import ProviderSettings

__all__ = ["DesktopCommanderOptions", "DesktopCommanderProvider"]

STDERR_TAIL = 500
_READ_SIZE = 65536


def _argv(value: Any) -> tuple[str, ...] | None:
    return tuple(value) if value else None


@attrs.frozen
class DesktopCommanderOptions:
    """Options of a ``desktop_commander`` entry in config.json.

    Attributes:
        command: The command line as a list (argv), e.g. ``["claude", "-p"]``; null
            leaves the provider unavailable.
        prompt_via: ``"stdin"`` (the prompt is written to stdin, then stdin is closed)
            or ``"argument"`` (the prompt is appended as the last argument).
        include_system_prompt: Put the persona's system prompt before the message.
        env: Variables added to the command's environment (values whose names
            contain KEY, TOKEN, SECRET or PASSWORD are redacted from errors).
        max_output_bytes: A longer answer is refused (the process is killed).
        model: The label ``reply.model`` reports; default: the executable's name.
    """

    command: tuple[str, ...] | None = attrs.field(default=None, converter=_argv)
    prompt_via: str = attrs.field(default="stdin", validator=one_of("stdin", "argument"))
    include_system_prompt: bool = True
    env: Mapping[str, str] = attrs.field(factory=dict, hash=False, repr=lambda env: repr(shown_env(env)))
    max_output_bytes: int = attrs.field(default=1_000_000, validator=at_least(1))
    model: str | None = None


@register_provider("desktop_commander", aliases=("desktop_commander_mcp",))
class DesktopCommanderProvider(BaseProvider):
    """Answers by running a local command; unavailable when it is not configured or not found."""

    options_type = DesktopCommanderOptions
    suspends = True  # an answer comes from a subprocess (and a worker thread before it)

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self.options: DesktopCommanderOptions = provider_options(settings, DesktopCommanderOptions)
        self._executable: str | None = None
        self._reason: str | None = (
            None if self.options.command else "no command configured (set \"command\" in its config.json entry)"
        )
        self._resolved = self._reason is not None
        self._redact = Redactor(
            v for k, v in self.options.env.items() if is_secret_name(k)
        )
        command = self.options.command or ("",)
        self.model = self.options.model or os.path.basename(command[0]) or "desktop-commander"

    async def aopen(self) -> None:
        await self._resolve()

    async def _resolve(self) -> None:
        """Find the executable once, in a worker thread (``shutil.which`` touches the disk)."""
        if self._resolved:
            return
        name = self.options.command[0] if self.options.command else ""
        path = self.options.env.get("PATH")
        found = await anyio.to_thread.run_sync(lambda: shutil.which(name, path=path))
        if found is None:
            self._reason = f"executable {name!r} not found on PATH"
        self._executable = found
        self._resolved = True

    def unavailable_reason(self) -> str | None:
        return self._reason

    def redact(self, text: str) -> str:
        return self._redact(text)

    def prompt(self, request: ProviderRequest) -> str:
        """The text given to the command: system prompt, earlier turns, then the message."""
        sections: list[str] = []
        if self.options.include_system_prompt and request.system_prompt:
            sections.append(request.system_prompt)
        if request.history:
            lines = ["Earlier in this conversation:"]
            for turn in request.history:
                lines += [f"User: {turn.user}", f"You: {turn.assistant}"]
            sections.append("\n".join(lines))
        sections.append(request.message)
        return "\n\n".join(sections)

    async def get_response(self, request: ProviderRequest) -> ProviderResponse:
        async with aclosing(self._run(request)) as items:
            async for item in items:
                if isinstance(item, ProviderResponse):
                    return item
        raise TransientProviderError("the command ended without an answer")  # _run always ends with one

    def stream_response(self, request: ProviderRequest) -> AsyncIterator[str | ProviderResponse]:
        return self._run(request)

    async def _run(self, request: ProviderRequest) -> AsyncGenerator[str | ProviderResponse, None]:
        await self._resolve()
        if self._reason is not None or self._executable is None or not self.options.command:
            raise ProviderUnavailableError(self._reason or "no command configured (set \"command\" in its config.json entry)")
        text = self.prompt(request)
        argv = [self._executable, *self.options.command[1:]]
        if self.options.prompt_via == "argument":
            argv.append(text)
        # Set once: the entry's timeout holds when the provider is used directly too
        # (the runtime also cuts the attempt with its own cancel scope).
        timeout = self.settings.timeout
        deadline = anyio.current_time() + timeout if timeout else math.inf
        stdin, stderr = await anyio.to_thread.run_sync(
            _temp_files, text.encode() if self.options.prompt_via == "stdin" else None
        )
        process: Process | None = None
        try:
            try:
                process = await anyio.open_process(
                    argv,
                    stdin=stdin if stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env={**os.environ, **self.options.env} if self.options.env else None,
                    start_new_session=True,
                )
            except OSError as exc:
                raise TransientProviderError(self.redact(f"cannot run {argv[0]}: {exc}")) from exc
            stdout = process.stdout
            if stdout is None:  # stdout=PIPE always gives one
                raise TransientProviderError("no stdout pipe")
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            received = 0
            parts: list[str] = []
            while True:
                # The cancel scope never spans a yield: a scope left open across a
                # yield would cancel the consumer's code instead of this read.
                with anyio.CancelScope(deadline=deadline) as scope:
                    try:
                        data = await stdout.receive(_READ_SIZE)
                    except anyio.EndOfStream:
                        break
                if scope.cancelled_caught:
                    raise ProviderTimeoutError(f"the command did not finish within {timeout:g}s")
                received += len(data)
                if received > self.options.max_output_bytes:
                    raise PermanentProviderError(
                        f"the command printed more than max_output_bytes ({self.options.max_output_bytes})"
                    )
                chunk = decoder.decode(data)
                if chunk:
                    parts.append(chunk)
                    yield chunk
            chunk = decoder.decode(b"", final=True)
            if chunk:
                parts.append(chunk)
                yield chunk
            with anyio.CancelScope(deadline=deadline) as scope:
                returncode = await process.wait()
            if scope.cancelled_caught:
                raise ProviderTimeoutError(
                    f"the command closed its output but did not exit within {timeout:g}s"
                )
            if returncode != 0:
                detail = await anyio.to_thread.run_sync(_tail, stderr)
                raise TransientProviderError(
                    self.redact(
                        f"{argv[0]} exited with status {returncode}" + (f": {detail}" if detail else "")
                    )
                )
            answer = "".join(parts).strip()
            if not answer:
                raise TransientProviderError(f"{os.path.basename(argv[0])} printed nothing")
            yield ProviderResponse(text=answer, model=self.model, usage=Usage(0, 0))
        finally:
            with anyio.CancelScope(shield=True):
                if process is not None:
                    await _kill_and_reap(process)
                await anyio.to_thread.run_sync(_close_files, stdin, stderr)


async def _kill_and_reap(process: Process) -> None:
    if process.returncode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        except AttributeError:  # no process groups (Windows)
            process.kill()
    await process.aclose()


def _temp_files(prompt: bytes | None) -> tuple[IO[bytes] | None, IO[bytes]]:
    stdin = None
    if prompt is not None:
        stdin = tempfile.TemporaryFile()  # noqa: SIM115 - owned and closed by the caller
        stdin.write(prompt)
        stdin.seek(0)
    return stdin, tempfile.TemporaryFile()


def _tail(stderr: IO[bytes]) -> str:
    size = stderr.seek(0, os.SEEK_END)
    stderr.seek(max(0, size - STDERR_TAIL * 4))
    text = stderr.read().decode("utf-8", errors="replace").strip()
    return text[-STDERR_TAIL:]


def _close_files(*files: IO[bytes] | None) -> None:
    for file in files:
        if file is not None:
            file.close()
