"""``valis chat``: an interactive conversation in the terminal, streamed as it arrives.

Ctrl-C cancels the answer being streamed and returns to the prompt; Ctrl-D (end
of input) leaves. After each answer a line says who answered and in how long.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TextIO

import anyio

from .._actors import Runtime, open_runtime
from .._config import load_config
from .._errors import InvalidRequestError, ValisError
from ._main import warn_unknown_persona

__all__ = ["chat"]


async def chat(args: argparse.Namespace, out: TextIO) -> int:
    """Run the chat loop until end of input."""
    config = await anyio.to_thread.run_sync(load_config, args.config)
    stdin = anyio.wrap_file(sys.stdin)
    async with open_runtime(config) as runtime:
        persona = runtime.personas.get(args.persona)
        warn_unknown_persona(runtime.personas, args.persona, config.unknown_persona)
        print(f"Talking with {persona.name} (session {args.session!r}). Ctrl-C stops an answer, Ctrl-D leaves.",
              file=out, flush=True)
        greeting = runtime.personas.greeting(args.persona, args.session)  # a character card's first message
        if greeting:
            print(f"{persona.name}: {greeting}", file=out, flush=True)
        while True:
            print("you> ", end="", file=out, flush=True)
            line = await stdin.readline()
            if not line:
                print(file=out, flush=True)
                return 0
            message = line.strip()
            if message:
                await _answer(runtime, args, message, out)


async def _answer(runtime: Runtime, args: argparse.Namespace, message: str, out: TextIO) -> None:
    from ._output import describe

    async def watch_for_ctrl_c(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                scope.cancel()
                return

    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()
        tg.start_soon(watch_for_ctrl_c, scope)
        with scope:
            try:
                async with runtime.stream(args.session, args.persona, message) as chunks:
                    print(f"{runtime.personas.get(args.persona).name}> ", end="", file=out, flush=True)
                    async for text in chunks:
                        print(text, end="", file=out, flush=True)
                print(file=out)
                reply = chunks.reply
                if reply is not None:
                    print(describe(reply), file=out, flush=True)
            except (InvalidRequestError, ValisError) as exc:
                print(f"\n[error: {exc}]", file=out, flush=True)
        if scope.cancelled_caught:
            print("\n[answer cancelled]", file=out, flush=True)
        tg.cancel_scope.cancel()
