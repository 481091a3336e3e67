"""The ``valis`` command line.

    valis ask PERSONA MESSAGE [--session ID] [--config PATH] [--json]
    valis chat PERSONA [--session ID] [--config PATH]
    valis personas [--config PATH]
    valis history SESSION [--config PATH]
    valis forget SESSION [--config PATH]
    valis config check [PATH]
    valis config schema
    valis serve [--host 127.0.0.1] [--port 8000] [--backend asyncio|trio] [--config PATH]

Errors are one clear line on stderr and a non-zero exit (2 for bad config or
input), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

import anyio

from .._actors import open_runtime
from .._config import load_config
from .._errors import ConfigError, InvalidRequestError, InvalidSessionIdError, ValisError
from .._personas import PersonaStore
from .._validation import describe_surrogate, lone_surrogate
from ._output import describe, reply_json

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="valis", description="Answer chat messages as personas.")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop to run on")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="PATH", help="config file (default: $VALIS_CONFIG or ./config.json)")
        return p

    ask = with_config(sub.add_parser("ask", help="answer one message as a persona"))
    ask.add_argument("persona")
    ask.add_argument("message")
    ask.add_argument("--session", default="cli", help="session id (default: cli)")
    ask.add_argument("--json", action="store_true", help="print the whole reply as JSON")

    chat = with_config(sub.add_parser("chat", help="talk with a persona in the terminal"))
    chat.add_argument("persona")
    chat.add_argument("--session", default="chat", help="session id (default: chat)")

    with_config(sub.add_parser("personas", help="list the personas"))
    history = with_config(sub.add_parser("history", help="show a session's conversation"))
    history.add_argument("session")
    forget = with_config(sub.add_parser("forget", help="delete a session's conversation"))
    forget.add_argument("session")

    serve = with_config(sub.add_parser("serve", help="serve the personas over HTTP (OpenAI and Anthropic APIs)"))
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    serve.add_argument("--backend", choices=("asyncio", "trio"), default=None, dest="serve_backend",
                       help="event loop to run on")

    config = sub.add_parser("config", help="check the config or print its JSON Schema")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="print the effective config, or its errors (exit 2)")
    check.add_argument("path", nargs="?")
    config_sub.add_parser("schema", help="print the JSON Schema of config.json")
    return parser


async def _ask(args: argparse.Namespace, out: TextIO) -> int:
    config = await anyio.to_thread.run_sync(load_config, args.config)
    async with open_runtime(config) as runtime:
        reply = await runtime.ask(args.session, args.persona, args.message)
    if args.json:
        print(json.dumps(reply_json(reply), indent=2), file=out)
    else:
        print(reply.text, file=out)
        print(describe(reply), file=out)
    return 0


async def _personas(args: argparse.Namespace, out: TextIO) -> int:
    config = await anyio.to_thread.run_sync(load_config, args.config)
    store = await anyio.to_thread.run_sync(PersonaStore.load_dir, config.personas_dir)
    for persona in sorted(store, key=lambda p: p.id):
        aliases = f" (aliases: {', '.join(persona.aliases)})" if persona.aliases else ""
        print(f"{persona.id:<14} {persona.name}{aliases}: {persona.description}", file=out)
    for problem in store.problems:
        print(f"not loaded: {problem}", file=sys.stderr)
    return 0


async def _history(args: argparse.Namespace, out: TextIO) -> int:
    from .._memory import open_memory

    index = lone_surrogate(args.session)
    if index is not None:  # undecodable bytes in argv (`valis history $'s\xff'`), as ask refuses them
        raise InvalidSessionIdError(describe_surrogate("session id", args.session, index))
    config = await anyio.to_thread.run_sync(load_config, args.config)
    if not config.memory.enabled:
        raise ConfigError("memory is disabled in the config (memory.enabled: false): there is no history")
    async with open_memory(config.memory) as memory:
        if memory is None:  # open_memory yields None only when memory is disabled, refused above
            raise ConfigError("memory is disabled in the config: there is no history")
        if args.command == "forget":
            count = await memory.forget(args.session)
            print(f"forgot {count} turn{'s' if count != 1 else ''} of session {args.session!r}", file=out)
            return 0
        turns = await memory.history(args.session, None, config.memory.max_turns_stored)
    if not turns:
        print(f"no turns stored for session {args.session!r}", file=out)
    for turn in turns:
        print(f"you: {turn.user}", file=out)
        print(f"{turn.persona_id} [{turn.provider}]: {turn.assistant}", file=out)
    return 0


def _config_check(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.path) if args.path else load_config()
    print(json.dumps(config.to_json(), indent=2), file=out)
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``valis`` command; return its exit code."""
    if out is None:
        out = sys.stdout
        # A provider's answer may hold a lone surrogate (JSON "\ud83d"), which no
        # terminal encoding takes: show it escaped rather than end in a traceback.
        reconfigure = getattr(out, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    args = _parser().parse_args(argv)
    try:
        if args.command == "config":
            if args.config_command == "schema":
                from .._config._schema import config_schema

                print(json.dumps(config_schema(), indent=2), file=out)
                return 0
            return _config_check(args, out)
        if args.command == "serve":
            try:
                from ..server import serve
            except ImportError as exc:
                raise ConfigError(f"valis serve needs the server extra: pip install 'valis_actors[server]' ({exc})") from None
            return serve(args.config, host=args.host, port=args.port, backend=args.serve_backend or args.backend)
        commands = {"ask": _ask, "personas": _personas, "history": _history, "forget": _history}
        if args.command == "chat":
            from ._chat import chat

            return anyio.run(chat, args, out, backend=args.backend)
        return anyio.run(commands[args.command], args, out, backend=args.backend)
    except (ConfigError, InvalidRequestError) as exc:
        print(f"valis: {exc}", file=sys.stderr)
        return 2
    except ValisError as exc:
        print(f"valis: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("valis: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
