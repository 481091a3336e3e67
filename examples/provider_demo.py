"""Run the worked provider example end to end: ``python examples/provider_demo.py``.

Starts a tiny server for the made-up echo API on 127.0.0.1 (a stand-in for a real
LLM service), then answers through ``echo_llm`` — and, when the server refuses
the key, through the persona fallback. Works on asyncio and trio
(``python examples/provider_demo.py trio``).
"""

from __future__ import annotations

import json
import os
import sys

import anyio
from anyio.abc import SocketStream

sys.path.insert(0, os.path.dirname(__file__))

import valis_echo_provider  # noqa: F401  (registers echo_llm)

import valis_actors as va

KEY = "echo-secret-key"


async def handle(stream: SocketStream) -> None:
    """Answer one HTTP/1.1 request of the echo API, then close."""
    async with stream:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive()
        head, _, body = data.partition(b"\r\n\r\n")
        headers = dict(
            line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
        )
        length = int({k.lower(): v for k, v in headers.items()}.get("content-length", 0))
        while len(body) < length:
            body += await stream.receive()
        request = json.loads(body)
        if {k.lower(): v for k, v in headers.items()}.get("authorization") != f"Bearer {KEY}":
            status, payload = "401 Unauthorized", {"error": "bad key"}
        else:
            last = request["messages"][-1]["content"]
            status, payload = "200 OK", {"text": f"echo: {last}", "model": request["model"], "tokens": {"in": 3, "out": 2}}
        raw = json.dumps(payload).encode()
        await stream.send(
            f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(raw)}\r\n"
            "connection: close\r\n\r\n".encode() + raw
        )


async def main() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    config = va.Config.from_dict(
        {
            "providers": [{"type": "echo_llm", "base_url": f"http://127.0.0.1:{port}", "model": "echo-1"}],
            "memory": {"enabled": False},
        }
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        os.environ["ECHO_API_KEY"] = KEY
        async with va.open_runtime(config) as runtime:
            reply = await runtime.ask("demo", "jane", "hello echo")
            print(f"{reply.provider} ({reply.model}): {reply.text}")
            assert reply.text == "echo: hello echo" and reply.usage == va.Usage(3, 2)
        os.environ["ECHO_API_KEY"] = "wrong-key"
        async with va.open_runtime(config) as runtime:
            reply = await runtime.ask("demo", "jane", "hello again")
            print(f"{reply.provider}: {reply.attempts[0].outcome.value} ({reply.attempts[0].error})")
            assert reply.fallback_used and "wrong-key" not in str(reply.attempts)
        tg.cancel_scope.cancel()
    await listener.aclose()


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
