"""Actor path: ``Runtime.ask`` with an instant in-process provider vs a bare anyio request/reply loop.

    python benchmarks/bench_actor_path.py [--quick] [--json OUT] [--provider instant|scripted]
        [--sessions 1,100,10000] [--duration 2] [--reps 3] [--allocs] [--profile asyncio|trio]

For each session count N: N caller tasks, one per session, each asking back to back.

- runtime: ``open_runtime`` with one provider that answers at once (``instant``: a
  ``BaseProvider`` returning a prebuilt response; ``--provider scripted`` uses the
  testing kit's ``ScriptedProvider``), memory disabled, every other setting default.
  Measured with the event hook off (the default) and with a no-op hook.
- baseline: the same shape without the runtime: N server tasks, each owning a bounded
  memory object stream (the mailbox, same size as the runtime's); a caller puts
  ``(request, reply slot, anyio.Event)`` into its server's stream with ``send_nowait``,
  the server answers with a prebuilt reply and sets the event. It uses the fastest
  bare forms (``send_nowait``/``receive_nowait`` before the awaiting calls), so it
  never pays a checkpoint the runtime skips: the ratio is not flattered.

Each backend runs in a fresh subprocess; inside it the variants alternate, each
measured ``--reps`` times for ``--duration`` seconds after a warm-up message per
session (activation is not in the window); the median rate is reported. Target:
runtime / baseline >= 0.5 on both backends.

``--allocs`` also prints what each message costs the garbage collector, over the same
window (``_common.GcMeter``): GC-tracked objects per message that reach the young
generation (allocated and not freed by reference counting before the next young
collection: what makes the collector run), cyclic garbage per message, and young /
middle / full collections per 1 000 messages.

``--profile BACKEND`` instead runs the runtime variant at 100 sessions under
cProfile (and pyinstrument if installed) and prints the top functions.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import _common as c
import anyio

import valis_actors as va

MAILBOX_SIZE = va.SessionSettings().mailbox_size
MESSAGE = "How do I prepare for a performance review?"


@va.register_provider("bench_instant")
class InstantProvider(va.BaseProvider):
    """Answers at once with a prebuilt response: the runtime's own cost is all that is left."""

    RESPONSE = va.ProviderResponse("An instant answer.", "instant", va.Usage(1, 3))

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        return self.RESPONSE


def runtime_config(provider: str) -> va.Config:
    return va.Config.from_dict(
        {
            "providers": [{"type": "bench_instant" if provider == "instant" else "scripted", "name": "p1"}],
            "memory": {"enabled": False},
        }
    )


class _Request:
    __slots__ = ("done", "message", "reply")

    def __init__(self, message: str) -> None:
        self.message = message
        self.reply: str | None = None
        self.done = anyio.Event()


async def measure_baseline(n: int, duration: float, *, gc_meter: bool = False) -> dict[str, Any]:
    """The bare request/reply loop: N servers with a bounded stream each, N callers."""
    answer = "An instant answer."
    streams = [anyio.create_memory_object_stream[_Request](MAILBOX_SIZE) for _ in range(n)]

    async def server(receive: Any) -> None:
        with receive:
            while True:
                try:
                    request = receive.receive_nowait()
                except anyio.WouldBlock:
                    try:
                        request = await receive.receive()
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return
                request.reply = answer
                request.done.set()

    sends = [s for s, _ in streams]

    async def call(i: int) -> str | None:
        request = _Request(MESSAGE)
        send = sends[i]
        try:
            send.send_nowait(request)
        except anyio.WouldBlock:
            await send.send(request)
        await request.done.wait()
        return request.reply

    async with anyio.create_task_group() as tg:
        for _, receive in streams:
            tg.start_soon(server, receive)
        result = await c.drive(n, call, duration, gc_meter=gc_meter)
        for send in sends:
            send.close()
    return result


async def measure_runtime(
    n: int, duration: float, *, hook: bool, provider: str, gc_meter: bool = False
) -> dict[str, Any]:
    events = [0]

    def count_event(event: va.RuntimeEvent) -> None:
        events[0] += 1

    config = runtime_config(provider)
    sessions = [f"session-{i}" for i in range(n)]
    async with va.open_runtime(config, event_hook=count_event if hook else None) as runtime:
        ask = runtime.ask

        async def call(i: int) -> va.Reply:
            return await ask(sessions[i], "jane", MESSAGE)

        result = await c.drive(n, call, duration, gc_meter=gc_meter)
    result["events"] = events[0]
    return result


VARIANTS = ("baseline", "runtime", "runtime+hook")


async def child_main(
    backend: str, sizes: list[int], duration: float, reps: int, provider: str, allocs: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        runs: dict[str, list[Any]] = {v: [] for v in VARIANTS}
        for _, variant in c.alternating(reps, VARIANTS):
            c.settle()
            if variant == "baseline":
                r = await measure_baseline(n, duration, gc_meter=allocs)
            else:
                r = await measure_runtime(
                    n, duration, hook=variant == "runtime+hook", provider=provider, gc_meter=allocs
                )
            runs[variant].append(r)
        out[str(n)] = runs
    return out


def profile(backend: str, n: int, duration: float, provider: str) -> None:
    import cProfile
    import pstats

    async def work() -> None:
        await measure_runtime(n, duration, hook=False, provider=provider)

    prof = cProfile.Profile()
    prof.enable()
    anyio.run(work, backend=backend)
    prof.disable()
    stats = pstats.Stats(prof)
    print(f"\n### cProfile, runtime, {n} sessions, {backend} (sorted by own time)\n")
    stats.sort_stats("tottime").print_stats(30)
    print(f"\n### cProfile, runtime, {n} sessions, {backend} (sorted by cumulative time)\n")
    stats.sort_stats("cumulative").print_stats(40)
    try:
        import pyinstrument
    except ImportError:
        print("(pyinstrument not installed: only cProfile)")
        return
    profiler = pyinstrument.Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    anyio.run(work, backend=backend)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--provider", choices=("instant", "scripted"), default="instant")
    p.add_argument("--sessions", help="comma-separated session counts (default 1,100,10000)")
    p.add_argument("--duration", type=float, help="seconds measured per run (default 2)")
    p.add_argument("--reps", type=int, help="runs per variant (default 3)")
    p.add_argument(
        "--allocs", action="store_true", help="also print GC-tracked objects and collections per message"
    )
    p.add_argument("--profile", choices=c.BACKENDS, help="profile the runtime variant instead")
    p.add_argument("--child", choices=c.BACKENDS, help=argparse_hidden())
    args = p.parse_args()
    if args.sessions:
        sizes = [int(s) for s in args.sessions.split(",")]
    else:
        sizes = [1, 10, 100] if args.quick else [1, 100, 10_000]
    duration = args.duration or (0.1 if args.quick else 2.0)
    reps = args.reps or (1 if args.quick else 3)

    if args.profile:
        profile(args.profile, sizes[1] if len(sizes) > 1 else sizes[0], duration * 2, args.provider)
        return 0
    if args.child:
        result = anyio.run(
            child_main, args.child, sizes, duration, reps, args.provider, args.allocs, backend=args.child
        )
        print(json.dumps(result))
        return 0

    raw = c.per_backend(
        lambda backend: [
            __file__,
            "--child",
            backend,
            "--sessions",
            ",".join(map(str, sizes)),
            "--duration",
            str(duration),
            "--reps",
            str(reps),
            "--provider",
            args.provider,
            *(["--allocs"] if args.allocs else []),
        ],
        quick=args.quick,
    )
    results = {
        backend: {n: {v: c.summarize(runs) for v, runs in per.items()} for n, per in by_n.items()}
        for backend, by_n in raw.items()
    }

    rows = []
    for backend, per_n in results.items():
        for n, per in per_n.items():
            base = per["baseline"]
            for variant in VARIANTS:
                r = per[variant]
                ratio = r["rate"] / base["rate"]
                r["ratio"] = ratio
                rows.append(
                    [
                        backend,
                        n,
                        variant,
                        f"{r['rate']:,.0f}",
                        f"{ratio:.2f}",
                        f"{r['p50_us']:.0f}",
                        f"{r['p99_us']:.0f}",
                        f"{r['cpu_us_per_call']:.1f}",
                    ]
                )
    c.table(
        f"ask through the actor path vs bare memory-stream request/reply ({args.provider} provider, "
        f"{duration:g}s x {reps} runs, median)",
        ["backend", "sessions", "variant", "msgs/s", "ratio", "p50 us", "p99 us", "CPU us/msg"],
        rows,
    )
    if args.allocs:
        alloc_rows = []
        for backend, per_n in results.items():
            for n, per in per_n.items():
                base = per["baseline"]
                for variant in VARIANTS:
                    r = per[variant]
                    alloc_rows.append(
                        [
                            backend,
                            n,
                            variant,
                            f"{r['gc_young_objects_per_call']:.2f}",
                            f"{r['gc_young_objects_per_call'] / base['gc_young_objects_per_call']:.1f}x"
                            if base["gc_young_objects_per_call"] >= 0.05
                            else "-",
                            f"{r['gc_collected_per_call']:.2f}",
                            f"{r['gc_gen0_per_1000_calls']:.1f}",
                            f"{r['gc_gen1_per_1000_calls']:.2f}",
                            f"{r['gc_gen2_per_1000_calls']:.3f}",
                        ]
                    )
        c.table(
            "what a message costs the garbage collector (same runs, median)",
            [
                "backend", "sessions", "variant", "young objs/msg", "vs baseline", "cyclic garbage/msg",
                "gen0 per 1k msgs", "gen1 per 1k", "gen2 per 1k",
            ],
            alloc_rows,
        )
    worst = min(per["runtime"]["ratio"] for per_n in results.values() for per in per_n.values())
    print(
        f"\ntarget: runtime/baseline >= 0.5 on both backends (hook off): worst {worst:.2f} -> "
        f"{'met' if worst >= 0.5 else 'NOT met'}"
    )
    c.write_json(args.json, "actor_path", results, provider=args.provider, duration=duration, reps=reps)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
