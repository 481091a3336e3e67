"""``open_fake_llm_server`` and the command line of the fake LLM server (see the package)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import anyio
import anyio.abc

from ._faults import APIS, Fault
from ._server import DEFAULT_TEXT, FakeLLMServer

__all__ = ["main", "open_fake_llm_server"]


@asynccontextmanager
async def open_fake_llm_server(
    *,
    text: str = DEFAULT_TEXT,
    chunks: int = 4,
    api_keys: Mapping[str, str] | None = None,
    default: Fault | None = None,
    port: int = 0,
    record: bool = True,
) -> AsyncIterator[FakeLLMServer]:
    """Run a fake LLM server on 127.0.0.1 for the duration of the ``async with`` block.

    Args:
        text: The default answer.
        chunks: Into how many content deltas streamed answers are split (fewer if the text is shorter).
        api_keys: Expected key per API (``{"anthropic": "sk-ant-test", "openai": "sk-test"}``);
            ``None`` accepts any key, and so does an API missing from the mapping.
        default: The step applied when a script queue is empty (``Fault.ok()`` if ``None``).
        port: The TCP port; 0 picks a free one.
        record: Keep a :class:`RecordedRequest` per request (turn off for long benchmarks).

    Yields:
        The running :class:`FakeLLMServer`. Leaving the block closes the listener and every connection.
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1 (got {chunks!r})")
    if api_keys is not None:
        unknown = sorted(set(api_keys) - set(APIS))
        if unknown:
            raise ValueError(f"api_keys has unknown APIs {unknown}; expected keys among {APIS}")
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    server = FakeLLMServer(
        port=listener.extra(anyio.abc.SocketAttribute.local_port),
        text=text,
        chunks=chunks,
        api_keys=api_keys,
        default=default if default is not None else Fault.ok(),
        record=record,
    )
    # The body's own exception is raised after the task group, so that it is not wrapped in
    # an ExceptionGroup (trio's nurseries wrap everything raised inside them).
    body_error: Exception | None = None
    async with listener, anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, server.serve_connection, task_group)
        try:
            yield server
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
            body_error = exc
        finally:
            task_group.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


# --- running as a process ------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m valis_actors.testing.fakeserver",
        description="Fake Anthropic/OpenAI HTTP server on 127.0.0.1, for benchmarks.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = pick a free one)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument(
        "--default", default="ok", help="'ok' or an HTTP error status to answer every request with"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before each answer")
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the answer text")
    parser.add_argument("--chunks", type=int, default=4, help="content deltas per streamed answer")
    args = parser.parse_args(argv)
    if args.default != "ok" and not (args.default.isdigit() and 400 <= int(args.default) <= 599):
        parser.error(f"--default must be 'ok' or an HTTP error status in 400..599 (got {args.default!r})")
    if args.delay < 0:
        parser.error(f"--delay must be >= 0 (got {args.delay})")
    return args


async def _serve_until_signalled(args: argparse.Namespace) -> None:
    if args.default == "ok":
        default = Fault.ok(delay=args.delay)
    else:
        default = Fault.status(int(args.default), delay=args.delay)
    # The signal receiver is in place before the "listening" line, so a SIGTERM sent as soon as
    # the line is read still shuts the server down cleanly.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_fake_llm_server(
            port=args.port, default=default, record=False, text=args.text, chunks=args.chunks
        ) as server:
            print(f"listening on {server.url}", flush=True)
            async for _signum in signals:
                return


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT (the ``python -m`` entry point); returns the exit status."""
    args = _parse_args(argv)
    anyio.run(_serve_until_signalled, args, backend=args.backend)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
