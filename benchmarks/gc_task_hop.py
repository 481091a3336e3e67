"""Young collections over HTTP: the same SDK call in the caller's task, in another task, and through the runtime.

    python benchmarks/gc_task_hop.py [--quick] [--json OUT] [--api anthropic] [--backend asyncio]
        [--duration 3] [--reps 2]

One process, one loopback fake server, 64 callers back to back (``_common.drive`` with its
GC meter), four legs alternating:

- bare: the SDK call in the caller's own task (``bench_http.bare_client``);
- bare + 25 held: the same, each call keeping 25 extra GC-tracked objects alive across it
  (what a message in flight keeps on the runtime's path);
- other task: the same SDK call run by a worker task per caller, the caller waiting on an
  event (a bare actor: no runtime code at all);
- runtime: ``Runtime.ask`` with the one provider.

Prints young objects per call, collections per 1 000 calls per generation, req/s, p99 and
CPU per call. What it shows (docs/performance.md, "Issue 16, third pass"): the young
collections follow the task hop, not the objects held in flight.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import _common as c
import bench_http as h

KEYS = {"OPENAI_API_KEY": "sk-bench-not-a-real-key", "ANTHROPIC_API_KEY": "sk-ant-bench-not-a-real-key"}
CALLERS = 64
FIELDS = (
    "gc_young_objects_per_call", "gc_gen0_per_1000_calls", "gc_gen1_per_1000_calls",
    "gc_gen2_per_1000_calls", "rate", "p99_us", "cpu_us_per_call",
)


async def legs(api: str, url: str, duration: float, reps: int) -> dict[str, list[dict[str, float]]]:
    import anyio

    import valis_actors as va

    client, http, call = await h.bare_client(api, url)

    async def held(i: int) -> Any:
        keep = [[] for _ in range(25)]
        result = await call(i)
        del keep
        return result

    inboxes: list[Any] = []

    async def worker(i: int, inbox: Any) -> None:
        async for done, box in inbox:
            box.append(await call(i))
            done.set()

    async def other_task(i: int) -> Any:
        done, box = anyio.Event(), []
        inboxes[i].send_nowait((done, box))
        await done.wait()
        return box[0]

    config = va.Config.from_dict({"providers": [h.provider_entry(api, url)], "memory": {"enabled": False}})
    try:
        async with va.open_runtime(config) as runtime, anyio.create_task_group() as tg:
            for i in range(CALLERS):
                send, receive = anyio.create_memory_object_stream[Any](4)
                inboxes.append(send)
                tg.start_soon(worker, i, receive)

            async def through_runtime(i: int) -> va.Reply:
                return await runtime.ask(f"session-{i}", "jane", h.MESSAGE)

            variants = {"bare": call, "bare + 25 held": held, "other task": other_task, "runtime": through_runtime}
            results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
            rows = []
            for _, name in c.alternating(reps, list(variants)):
                c.settle()
                result = await c.drive(CALLERS, variants[name], duration, gc_meter=True)
                results[name].append({f: result[f] for f in FIELDS})
                rows.append([name, *(c.fmt(result[f], ".4g") for f in FIELDS)])
            for inbox in inboxes:
                inbox.close()
            c.table(f"{api}, {CALLERS} callers, {duration:g}s runs", ["leg", *FIELDS], rows)
            return results
    finally:
        with anyio.CancelScope(shield=True):
            await client.close()
            await http.aclose()


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--api", choices=h.APIS, default="anthropic")
    p.add_argument("--backend", choices=c.BACKENDS, default="asyncio")
    p.add_argument("--duration", type=float, help="seconds per run (default 3; --quick 0.2)")
    p.add_argument("--reps", type=int, help="runs per leg (default 2; --quick 1)")
    args = p.parse_args()
    duration = args.duration or (0.2 if args.quick else 3.0)
    reps = args.reps or (1 if args.quick else 2)
    os.environ.update(KEYS)
    import anyio

    with c.fake_servers([], backend=args.backend) as (url,):
        results = anyio.run(legs, args.api, url, duration, reps, backend=args.backend)
    print(
        "(a diagnosis for the HTTP targets, overhead <= 5 % and p99 within 1.2x the bare SDK's: "
        "compare the young collections of the legs)"
    )
    c.write_json(args.json, "gc_task_hop", results, api=args.api, backend=args.backend)
    return 0


if __name__ == "__main__":
    sys.exit(main())
