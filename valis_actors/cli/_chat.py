"""``valis chat``: an interactive conversation in the terminal, streamed as it arrives.

Each run starts a new session (its id is printed) unless ``--session ID`` resumes one.
Ctrl-C during an answer cancels it and returns to the prompt. Ctrl-C at the prompt
clears the line, as in Python's REPL, and says how to leave; a second Ctrl-C in a row
(nothing entered between them) leaves, as does Ctrl-D (end of input). After each answer
a line says who answered and in how long.

One task owns SIGINT for the whole chat and cancels whatever is waiting (the prompt or
the answer). The prompt waits for stdin on the event loop (``anyio.wait_readable``), not
in a worker thread, so a Ctrl-C can stop the wait and no thread is left blocked reading.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import anyio
import anyio.abc

from .._actors import Runtime, open_runtime
from .._config import load_config
from .._errors import InvalidRequestError, ValisError
from .._messages import Restart
from ._main import warn_unknown_persona

__all__ = ["chat"]

LEAVE_HINT = "(Ctrl-C cleared the line; press it again or Ctrl-D to leave)"


async def chat(args: argparse.Namespace, out: TextIO) -> int:
    """Run the chat loop until end of input or a second Ctrl-C at the prompt."""
    config = await anyio.to_thread.run_sync(load_config, args.config)
    session = args.session or f"chat-{uuid.uuid4().hex[:12]}"
    lines = _Lines(sys.stdin)
    async with open_runtime(config) as runtime, anyio.create_task_group() as tg:
        interrupts = _Interrupts()
        await tg.start(interrupts.watch)
        persona = runtime.personas.get(args.persona)
        warn_unknown_persona(runtime.personas, args.persona, config.unknown_persona)
        how = "resumed" if args.session else f"new; resume it with --session {session}"
        print(f"Talking with {persona.name} (session {session!r}, {how}). "
              "Ctrl-C stops an answer, Ctrl-D leaves.", file=out, flush=True)
        greeting = runtime.personas.greeting(args.persona, session)  # a character card's first message
        if greeting:
            print(f"{persona.name}: {greeting}", file=out, flush=True)
        await _converse(runtime, args.persona, session, lines, interrupts, out)
        tg.cancel_scope.cancel()
    return 0


async def _converse(
    runtime: Runtime, persona: str, session: str, lines: _Lines, interrupts: _Interrupts, out: TextIO
) -> None:
    cleared = False  # the last thing at the prompt was a Ctrl-C
    while True:
        print("you> ", end="", file=out, flush=True)
        with interrupts.catch() as prompt:
            line = await lines.readline()
        if prompt.cancelled_caught:
            if cleared:
                print(file=out, flush=True)
                return
            cleared = True
            print(f"\n{LEAVE_HINT}", file=out, flush=True)
            continue
        cleared = False
        if line is None:  # Ctrl-D
            print(file=out, flush=True)
            return
        message = line.strip()
        if message:
            await _answer(runtime, persona, session, message, interrupts, out)


async def _answer(
    runtime: Runtime, persona: str, session: str, message: str, interrupts: _Interrupts, out: TextIO
) -> None:
    from ._output import describe

    with interrupts.catch() as scope:
        try:
            async with runtime.stream(session, persona, message) as chunks:
                name = runtime.personas.get(persona).name
                print(f"{name}> ", end="", file=out, flush=True)
                # Events, so that an answer no provider could continue is restarted, not lost.
                async for event in chunks.events():
                    if isinstance(event, Restart):
                        print(f"\n[the answer was cut and starts again: {event.reason}]\n{name}> ", end="", file=out, flush=True)
                    else:
                        print(event, end="", file=out, flush=True)
            print(file=out)
            reply = chunks.reply
            if reply is not None:
                print(describe(reply), file=out, flush=True)
        except (InvalidRequestError, ValisError) as exc:
            print(f"\n[error: {exc}]", file=out, flush=True)
    if scope.cancelled_caught:
        print("\n[answer cancelled]", file=out, flush=True)


class _Interrupts:
    """The chat's one SIGINT receiver: a Ctrl-C cancels the scope that is waiting, if any."""

    def __init__(self) -> None:
        self._scope: anyio.CancelScope | None = None

    async def watch(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            task_status.started()
            async for _ in signals:
                if self._scope is not None:
                    self._scope.cancel()

    @contextmanager
    def catch(self) -> Iterator[anyio.CancelScope]:
        """A cancel scope that the next Ctrl-C cancels (check ``cancelled_caught`` after it)."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                yield scope
            finally:
                self._scope = None


class _Lines:
    """Lines of stdin, read on the event loop when stdin can be polled (a terminal, a pipe).

    A regular file or a stream without a file descriptor cannot be polled; it is read in
    a worker thread, which never blocks for long on them.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._encoding = stream.encoding or "utf-8"
        self._buffer = b""
        self._eof = False
        try:
            self._fd: int | None = stream.fileno()
        except (OSError, ValueError, AttributeError):  # io.StringIO, a closed stream
            self._fd = None
        self._pollable = self._fd is not None

    async def readline(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        if self._fd is None:
            text: str = await anyio.to_thread.run_sync(self._stream.readline)
            return text.rstrip("\n") if text else None
        while b"\n" not in self._buffer and not self._eof:
            chunk = await self._read(self._fd)
            self._eof = not chunk
            self._buffer += chunk
        if not self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        # Bytes that are not text in the terminal's encoding become U+FFFD: a typo must not end the chat.
        return line.decode(self._encoding, "replace")

    async def _read(self, fd: int) -> bytes:
        if self._pollable:
            try:
                await anyio.wait_readable(fd)
            except OSError:  # EPERM: a regular file or /dev/null, which epoll refuses
                self._pollable = False
            else:
                return os.read(fd, 65536)
        return await anyio.to_thread.run_sync(os.read, fd, 65536)
