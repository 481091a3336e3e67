"""Run a runtime with SQLite memory and print every acknowledged turn (for the kill -9 test).

Usage: python memory_load.py DB_PATH
"""

from __future__ import annotations

import sys

import anyio

import valis_actors as va


async def main(path: str) -> None:
    config = va.Config.from_dict(
        {
            "providers": [{"type": "scripted", "name": "p1"}],
            "memory": {"path": path, "durability": "commit"},
        }
    )
    async with va.open_runtime(config) as runtime:
        async def session(n: int) -> None:
            for i in range(100_000):
                message = f"s{n}-m{i}"
                await runtime.ask(f"s{n}", "jane", message)
                print(f"s{n} {message}", flush=True)

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(session, n)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
