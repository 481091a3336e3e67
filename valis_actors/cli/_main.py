"""The ``valis`` command line.

    valis ask PERSONA MESSAGE|- [--session ID] [--config PATH] [--json]
    valis chat PERSONA [--session ID] [--config PATH]
    valis personas [--config PATH]
    valis personas import PATH... [--replace] [--config PATH]
    valis personas export ID --format json|png [-o FILE] [--config PATH]
    valis personas show ID [--config PATH]
    valis history [SESSION] [--config PATH]
    valis forget SESSION [--config PATH]
    valis config check [PATH]
    valis config schema
    valis serve [--host 127.0.0.1] [--port 8000] [--backend asyncio|trio] [--workers N] [--config PATH]

Errors are one clear line on stderr (a config lists every problem) and a non-zero
exit, never a traceback: 2 for bad config or input, 1 for a runtime failure
(``EXIT_CODES``, shown by ``valis --help``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import anyio
import attrs

from .._actors import open_runtime
from .._cards import export_card, import_cards
from .._config import Config, MemorySettings, load_config
from .._errors import (
    ConfigError,
    InvalidRequestError,
    InvalidSessionIdError,
    MessageTooLongError,
    PersonaError,
    UnknownPersonaError,
    ValisError,
)
from .._memory import SessionSummary
from .._personas import PERSONA_ID_PATTERN, PersonaStore
from .._validation import describe_surrogate, lone_surrogate
from ._output import describe, reply_json

__all__ = ["main"]


EXIT_CODES = """\
exit codes:
  0    done
  1    a runtime failure: the memory store, a session or the runtime failed
  2    bad input or config: usage, config.json, personas_dir or a persona file,
       the message or session id, an unknown persona under unknown_persona "error"
  130  interrupted (Ctrl-C)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="valis",
        description="Answer chat messages as personas.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop to run on")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", metavar="PATH", help="config file (default: $VALIS_CONFIG or ./config.json)")
        return p

    ask = with_config(sub.add_parser("ask", help="answer one message as a persona"))
    ask.add_argument("persona")
    ask.add_argument("message", help="the message, or - to read it from stdin")
    ask.add_argument(
        "--session", default=None, help="session id to remember the turn in (default: a one-off question, nothing stored)"
    )
    ask.add_argument("--json", action="store_true", help="print the whole reply as JSON")

    chat = with_config(sub.add_parser("chat", help="talk with a persona in the terminal"))
    chat.add_argument("persona")
    chat.add_argument(
        "--session", default=None, help="resume this session (default: a new session, its id printed)"
    )

    personas = with_config(sub.add_parser("personas", help="list, import, export or show personas"))
    personas_sub = personas.add_subparsers(dest="personas_command", metavar="ACTION")
    imp = with_config(personas_sub.add_parser("import", help="copy character cards into personas_dir"))
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("--replace", action="store_true", help="overwrite a different file of the same name")
    exp = with_config(personas_sub.add_parser("export", help="write a character card as JSON or PNG"))
    exp.add_argument("id")
    exp.add_argument("--format", choices=("json", "png"), default="json", dest="fmt")
    exp.add_argument("-o", "--output", metavar="FILE", help="file to write (default: stdout)")
    show = with_config(personas_sub.add_parser("show", help="print the system prompt a persona gets"))
    show.add_argument("id")
    history = with_config(sub.add_parser("history", help="list the stored sessions, or show one's conversation"))
    history.add_argument("session", nargs="?", help="the session to show (default: list the sessions)")
    forget = with_config(sub.add_parser("forget", help="delete a session's conversation"))
    forget.add_argument("session")

    serve = with_config(sub.add_parser("serve", help="serve the personas over HTTP (OpenAI and Anthropic APIs)"))
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    serve.add_argument("--backend", choices=("asyncio", "trio"), default=None, dest="serve_backend",
                       help="event loop to run on")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes sharing the port (default: 1; more needs cluster mode)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker of --workers

    config = sub.add_parser("config", help="check the config or print its JSON Schema")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser("check", help="print the effective config, or its errors (exit 2)")
    check.add_argument("path", nargs="?")
    config_sub.add_parser("schema", help="print the JSON Schema of config.json")
    return parser


async def _ask(args: argparse.Namespace, out: TextIO) -> int:
    config = await anyio.to_thread.run_sync(load_config, args.config)
    message = args.message
    if message == "-":
        message = await anyio.to_thread.run_sync(read_stdin_message, sys.stdin, config.max_message_chars)
    session = args.session
    if session is None:
        # A one-off question: its own session, and nothing written to the store (unrelated
        # questions must not pile up as history sent to an LLM as context).
        session = f"cli-{uuid.uuid4().hex[:12]}"
        config = attrs.evolve(config, memory=attrs.evolve(config.memory, backend="memory"))
    async with open_runtime(config) as runtime:
        warn_unknown_persona(runtime.personas, args.persona, config.unknown_persona)
        reply = await runtime.ask(session, args.persona, message)
    if args.json:
        print(json.dumps(reply_json(reply), indent=2), file=out)
    else:
        print(reply.text, file=out)
        print(describe(reply), file=out)
    return 0


def read_stdin_message(stream: TextIO, limit: int) -> str:
    """``valis ask PERSONA -``: the message from stdin, read up to ``limit`` characters only.

    Raises:
        MessageTooLongError: stdin holds more than ``limit`` characters (reading stops there).
        InvalidRequestError: stdin is not text in its encoding.
    """
    if stream.isatty():
        print("valis: reading the message from stdin; end it with Ctrl-D", file=sys.stderr)
    try:
        text = stream.read(limit + 2)  # one past the limit after the final newline
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            f"the message on stdin is not {exc.encoding} text (at byte {exc.start}); send UTF-8"
        ) from None
    text = text.removesuffix("\n")  # the newline that ends a piped file or `echo`
    if len(text) > limit:
        raise MessageTooLongError(
            f"the message on stdin is over max_message_chars={limit} characters; "
            "shorten it or raise max_message_chars in config.json"
        )
    return text


def warn_unknown_persona(store: PersonaStore, persona_id: str, unknown: str) -> None:
    """An unknown (well-formed) id answers as the neutral persona: say so, and name the known ids."""
    if unknown == "error" or store.is_known(persona_id) or not PERSONA_ID_PATTERN.fullmatch(persona_id):
        return  # an error follows, or nothing to warn about
    known = ", ".join(sorted(store.personas)) or "none"
    print(f"valis: warning: unknown persona {persona_id!r}; answering as the neutral persona. Known: {known}",
          file=sys.stderr)


async def _personas(args: argparse.Namespace, out: TextIO) -> int:
    config = await anyio.to_thread.run_sync(load_config, args.config)
    action = getattr(args, "personas_command", None)
    if action == "import":
        return await anyio.to_thread.run_sync(_import, config, args, out)
    store = await anyio.to_thread.run_sync(
        functools.partial(PersonaStore.load_dir, config.personas_dir, user_name=config.user_name)
    )
    if action == "show":
        print(store.system_prompt(args.id), file=out)
        return 0
    if action == "export":
        return await anyio.to_thread.run_sync(_export, store, args, out)
    for persona in sorted(store, key=lambda p: p.id):
        aliases = f" (aliases: {', '.join(persona.aliases)})" if persona.aliases else ""
        kind = " [card]" if persona.id in store.cards else ""
        print(f"{persona.id:<14} {persona.name}{aliases}{kind}: {persona.description}", file=out)
    for problem in store.problems:
        print(f"not loaded: {problem}", file=sys.stderr)
    for warning in store.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _import(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    if config.personas_dir is None:
        raise ConfigError("set personas_dir in config.json to the folder cards are imported into")
    failed = 0
    for result in import_cards(args.paths, config.personas_dir, replace=args.replace):
        if result.problem is not None:
            failed += 1
            print(f"not imported: {result.problem}", file=sys.stderr)
        else:
            verb = "imported" if result.copied else "already there:"
            print(f"{verb} {result.source.name} as {result.persona_id} ({result.path})", file=out)
    return 2 if failed else 0


def _export(store: PersonaStore, args: argparse.Namespace, out: TextIO) -> int:
    card = store.card(args.id)
    if card is None or card.path is None:
        store.system_prompt(args.id)  # an unknown or malformed id: its own error
        raise PersonaError(f"{args.id!r} is a VALIS persona file, not a character card; only cards export")
    data = export_card(card.path, args.fmt)
    if args.output:
        try:
            Path(args.output).write_bytes(data)
        except OSError as exc:
            raise InvalidRequestError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
        print(f"wrote {args.output} ({len(data)} bytes)", file=out)
    elif args.fmt == "json":
        print(data.decode(), file=out)
    else:
        raise InvalidRequestError("a PNG is binary: pass -o FILE to write it")
    return 0


async def _history(args: argparse.Namespace, out: TextIO) -> int:
    from .._memory import open_memory

    if args.session is not None:
        index = lone_surrogate(args.session)
        if index is not None:  # undecodable bytes in argv (`valis history $'s\xff'`), as ask refuses them
            raise InvalidSessionIdError(describe_surrogate("session id", args.session, index))
    config = await anyio.to_thread.run_sync(load_config, args.config)
    if not config.memory.enabled:
        raise ConfigError("memory is disabled in the config (memory.enabled: false): there is no history")
    async with open_memory(config.memory) as memory:
        if memory is None:  # open_memory yields None only when memory is disabled, refused above
            raise ConfigError("memory is disabled in the config: there is no history")
        if args.session is None:
            sessions = await memory.sessions(SESSIONS_LISTED)
            _print_sessions(sessions, config.memory, out)
            return 0
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


SESSIONS_LISTED = 100  # `valis history` lists the most recent sessions, at most this many


def _print_sessions(sessions: Sequence[SessionSummary], settings: MemorySettings, out: TextIO) -> None:
    """One line per session, most recent first: id, turns, last activity (local time), personas."""
    if not sessions:
        where = "in this process's memory" if settings.backend == "memory" else "yet"
        print(f"no sessions stored {where}", file=out)
        return
    width = max(7, *(len(s.session_id) for s in sessions))
    print(f"{'SESSION':<{width}}  TURNS  LAST ACTIVITY     PERSONAS", file=out)
    for s in sessions:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_activity))
        print(f"{s.session_id:<{width}}  {s.turns:>5}  {when}  {', '.join(s.personas)}", file=out)
    if len(sessions) == SESSIONS_LISTED:
        print(f"(the {SESSIONS_LISTED} most recent; `valis history SESSION` shows one)", file=out)


def _config_check(args: argparse.Namespace, out: TextIO) -> int:
    """The effective config, or every problem of the config and of its persona files (exit 2)."""
    source = args.path or os.environ.get("VALIS_CONFIG") or (
        "config.json" if Path("config.json").is_file() else "the default config"
    )
    config = load_config(args.path) if args.path else load_config()
    try:
        store = PersonaStore.load_dir(config.personas_dir, config.unknown_persona, user_name=config.user_name)
    except PersonaError as exc:  # personas_dir is not a folder: nothing else can be checked
        raise ConfigError(f"{source}: 1 problem\n  - {exc}") from None
    for warning in store.warnings:
        print(f"valis: warning: {warning}", file=sys.stderr)
    if store.problems:
        count = len(store.problems)
        lines = "".join(f"\n  - {problem}" for problem in store.problems)
        folder = config.personas_dir or "the shipped personas"
        raise PersonaError(
            f"{source}: {count} persona file{'s' if count != 1 else ''} in {folder} cannot be used{lines}"
        )
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
        backend = (getattr(args, "serve_backend", None) or args.backend) if args.command == "serve" else args.backend
        if backend == "trio" and importlib.util.find_spec("trio") is None:
            raise ConfigError("--backend trio needs trio: pip install 'valis_actors[trio]'")
        if args.command == "serve":
            try:
                from ..server import serve
            except ImportError as exc:
                raise ConfigError(f"valis serve needs the server extra: pip install 'valis_actors[server]' ({exc})") from None
            return serve(args.config, host=args.host, port=args.port, backend=args.serve_backend or args.backend,
                         workers=args.workers, reuse_port=args.reuse_port)
        commands = {"ask": _ask, "personas": _personas, "history": _history, "forget": _history}
        if args.command == "chat":
            from ._chat import chat

            return anyio.run(chat, args, out, backend=args.backend)
        return anyio.run(commands[args.command], args, out, backend=args.backend)
    except (ConfigError, InvalidRequestError, UnknownPersonaError) as exc:  # input errors: exit 2
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
