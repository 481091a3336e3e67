"""Conversation memory on vs off: ``ask`` throughput at 1 000 sessions.

    python benchmarks/bench_memory.py [--quick] [--json OUT] [--sessions N] [--duration S] [--reps N]

The actor path of ``bench_actor_path.py`` (instant in-process provider, one caller per
session asking back to back), with:

- off: ``memory: {"enabled": false}`` (the baseline);
- sqlite commit: SQLite in a fresh temporary file, ``durability: "commit"`` (a reply
  waits for its turn's transaction; the memory actor batches the turns that arrive
  while a commit runs);
- sqlite async: the same with ``durability: "async"`` (a reply does not wait);
- in-process: ``backend: "memory"`` (no file, for reference).

Every turn is stored and the last ``max_turns`` (20) are sent with each request.
The first message of each session (which loads its history) is the warm-up, outside
the window. Each backend runs in a fresh subprocess; variants alternate; medians of
``--reps`` runs. Target: sqlite commit >= 0.8x off.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from typing import Any

import _common as c

import valis_actors as va

MESSAGE = "How do I prepare for a performance review?"
VARIANTS = ("off", "sqlite commit", "sqlite async", "in-process")


@va.register_provider("bench_instant")
class InstantProvider(va.BaseProvider):
    RESPONSE = va.ProviderResponse("An instant answer.", "instant", va.Usage(1, 3))

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        return self.RESPONSE


def memory_settings(variant: str, folder: str, rep: int) -> dict[str, Any]:
    if variant == "off":
        return {"enabled": False}
    if variant == "in-process":
        return {"backend": "memory"}
    durability = variant.split()[1]
    return {
        "backend": "sqlite",
        "path": f"{folder}/memory-{durability}-{rep}.sqlite3",
        "durability": durability,
    }


async def measure(variant: str, folder: str, rep: int, n: int, duration: float) -> dict[str, Any]:
    config = va.Config.from_dict(
        {
            "providers": [{"type": "bench_instant", "name": "p1"}],
            "memory": memory_settings(variant, folder, rep),
        }
    )
    sessions = [f"session-{i}" for i in range(n)]
    async with va.open_runtime(config) as runtime:

        async def call(i: int) -> va.Reply:
            return await runtime.ask(sessions[i], "jane", MESSAGE)

        return await c.drive(n, call, duration)


async def child_main(n: int, duration: float, reps: int) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="valis-bench-memory-")
    try:
        runs: dict[str, list[Any]] = {v: [] for v in VARIANTS}
        for rep, variant in c.alternating(reps, VARIANTS):
            c.settle()
            runs[variant].append(await measure(variant, folder, rep, n, duration))
        return {v: c.summarize(r) for v, r in runs.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, help="sessions, one caller each (default 1000; --quick 50)")
    p.add_argument("--duration", type=float, help="seconds measured per run (default 3; --quick 0.2)")
    p.add_argument("--reps", type=int, help="runs per variant (default 3; --quick 1)")
    p.add_argument("--child", choices=c.BACKENDS, help=argparse_hidden())
    args = p.parse_args()
    n = args.sessions or (50 if args.quick else 1000)
    duration = args.duration or (0.2 if args.quick else 3.0)
    reps = args.reps or (1 if args.quick else 3)

    if args.child:
        import anyio

        print(json.dumps(anyio.run(child_main, n, duration, reps, backend=args.child)))
        return 0

    results = c.per_backend(
        lambda backend: [
            __file__,
            "--sessions",
            str(n),
            "--duration",
            str(duration),
            "--reps",
            str(reps),
            "--child",
            backend,
        ],
        quick=args.quick,
    )
    rows = []
    for backend, per in results.items():
        base = per["off"]
        for variant in VARIANTS:
            r = per[variant]
            r["ratio"] = r["rate"] / base["rate"]
            rows.append(
                [
                    backend,
                    variant,
                    f"{r['rate']:,.0f}",
                    f"{r['ratio']:.2f}",
                    f"{r['p50_us'] / 1e3:.2f}",
                    f"{r['p99_us'] / 1e3:.2f}",
                    f"{r['cpu_us_per_call']:.0f}",
                ]
            )
    c.table(
        f"ask throughput with conversation memory, {n} sessions ({duration:g}s x {reps} runs, median)",
        ["backend", "memory", "msgs/s", "vs off", "p50 ms", "p99 ms", "CPU us/msg"],
        rows,
    )
    worst = min(per["sqlite commit"]["ratio"] for per in results.values())
    print(
        f"\ntarget sqlite (commit) >= 0.8x memory off: worst {worst:.2f}x -> {'met' if worst >= 0.8 else 'NOT met'}"
    )
    c.write_json(args.json, "memory", results, sessions=n, duration=duration, reps=reps)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
