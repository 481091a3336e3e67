"""Sessions at scale: memory per live idle session, and memory given back by passivation.

    python benchmarks/bench_sessions.py [--quick] [--json OUT] [--sessions N] [--idle-timeout S]

N sessions (default 100 000; ``--quick`` 500) are activated with one message each
(instant in-process provider, memory disabled) and left idle. Measured in fresh
subprocesses, one per (backend, subject, method), because a process's RSS does not
shrink reliably after a measurement and tracemalloc's own bookkeeping inflates RSS:

- tracemalloc: Python allocations traced from before the first session to all N idle;
- RSS: VmRSS from /proc/self/status, the same two points (includes allocator overhead).

Subjects: the runtime's session actors, and a bare baseline: one task per session
owning a bounded memory object stream (the mailbox), waiting on it with no timer —
the least a task-per-session actor with a mailbox costs on anyio (the runtime's
passivation is one periodic sweep, so the baseline gets no per-actor timer either).

The runtime's idle actors then *park* (their task ends after about a second idle;
the actor and its mailbox stay): measured again once no actor task is left waiting.
When creating the sessions takes longer than that second (100 000 do), the first
measurement already finds the earlier ones parked; run ``--sessions 2000`` to see
the cost of sessions whose task still waits.
Then (runtime only) the sessions are left to passivate (``session.idle_timeout``),
``live_sessions == 0`` is awaited, garbage is collected and memory is measured again.
Targets: <= 6 KB per idle session; 100 000 sessions under 1 GB; memory given back.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time
import tracemalloc
from typing import Any

import _common as c
import anyio
import anyio.lowlevel

import valis_actors as va

MESSAGE = "Hello"
CREATORS = 500  # tasks activating sessions concurrently


@va.register_provider("bench_instant")
class InstantProvider(va.BaseProvider):
    RESPONSE = va.ProviderResponse("An instant answer.", "instant", va.Usage(1, 3))

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        return self.RESPONSE


def measure(method: str) -> int:
    c.settle()
    if method == "tracemalloc":
        return tracemalloc.get_traced_memory()[0]
    return c.rss_bytes()


def malloc_trim() -> bool:
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


async def settle_tasks() -> None:
    """Let every actor finish the step after its reply (back to waiting on its mailbox)."""
    for _ in range(3):
        await anyio.lowlevel.checkpoint()


async def in_parallel(n: int, work: Any) -> None:
    """Run ``work(i)`` for i in range(n), CREATORS at a time."""
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            await work(i)

    async with anyio.create_task_group() as tg:
        for _ in range(min(CREATORS, n)):
            tg.start_soon(worker)


async def child_runtime(n: int, method: str, idle_timeout: float) -> dict[str, Any]:
    config = va.Config.from_dict(
        {
            "providers": [{"type": "bench_instant", "name": "p1"}],
            "memory": {"enabled": False},
            "session": {"idle_timeout": idle_timeout},
        }
    )
    if method == "tracemalloc":
        tracemalloc.start()
    async with va.open_runtime(config) as runtime:
        ids = [f"session-{i:06d}" for i in range(n)]  # the ids are the caller's: made before "before"
        # First-use costs (lazy imports, caches) out of the way; this one session stays in "before".
        await runtime.ask("warm-up", "jane", MESSAGE)
        before = measure(method)
        t0 = time.perf_counter()

        async def activate(i: int) -> None:
            await runtime.ask(ids[i], "jane", MESSAGE)

        await in_parallel(n, activate)
        created_s = time.perf_counter() - t0
        await settle_tasks()
        live = runtime.statistics().live_sessions
        after = measure(method)
        print(
            f"{n} sessions created in {created_s:.1f}s; measured at {time.perf_counter() - t0:.1f}s "
            f"(idle_timeout {idle_timeout:g}s)",
            file=sys.stderr,
            flush=True,
        )
        if live < n:
            raise SystemExit(
                f"only {live} of {n + 1} sessions were live when measured ({created_s:.1f}s to create them): "
                "raise --idle-timeout"
            )
        # Idle actors park (their task ends) after about a second: wait for all of them.
        t1 = time.perf_counter()
        while runtime.statistics().waiting_sessions and time.perf_counter() - t1 < 60:
            await anyio.sleep(0.2)
        parked = measure(method)
        parked_live = runtime.statistics().live_sessions
        t1 = time.perf_counter()
        while runtime.statistics().live_sessions:
            await anyio.sleep(0.2)
        passivate_s = time.perf_counter() - t1
        passivated = measure(method)
        trimmed = passivated
        if method == "rss" and malloc_trim():
            trimmed = measure(method)
    return {
        "before": before,
        "after": after,
        "parked": parked,
        "parked_live": parked_live,
        "passivated": passivated,
        "trimmed": trimmed,
        "created_s": created_s,
        "passivate_wait_s": passivate_s,
    }


async def child_bare(n: int, method: str, idle_timeout: float) -> dict[str, Any]:
    class Request:
        __slots__ = ("done", "reply")

        def __init__(self) -> None:
            self.done = anyio.Event()
            self.reply: str | None = None

    actors: dict[str, Any] = {}

    async def actor(receive: Any) -> None:
        with receive:
            async for request in receive:
                request.reply = "An instant answer."
                request.done.set()

    if method == "tracemalloc":
        tracemalloc.start()
    async with anyio.create_task_group() as tg:
        ids = [f"session-{i:06d}" for i in range(n)]
        before = measure(method)
        t0 = time.perf_counter()

        async def activate(i: int) -> None:
            send, receive = anyio.create_memory_object_stream[Any](va.SessionSettings().mailbox_size)
            actors[ids[i]] = send
            tg.start_soon(actor, receive)
            request = Request()
            send.send_nowait(request)
            await request.done.wait()

        await in_parallel(n, activate)
        created_s = time.perf_counter() - t0
        await settle_tasks()
        after = measure(method)
        for send in actors.values():
            send.close()
    return {"before": before, "after": after, "created_s": created_s}


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, help="live sessions (default 100000; --quick 500)")
    p.add_argument(
        "--idle-timeout",
        type=float,
        help="session.idle_timeout, longer than creating the sessions takes (default: 4x what "
        "the bare baseline took to create its sessions; --quick 2)",
    )
    p.add_argument("--child", nargs=3, metavar=("BACKEND", "SUBJECT", "METHOD"), help=argparse_hidden())
    args = p.parse_args()
    n = args.sessions or (500 if args.quick else 100_000)
    # quick: long enough to create 500 sessions on a loaded machine; full runs size it below
    idle = args.idle_timeout or 10.0

    if args.child:
        backend, subject, method = args.child
        func = child_runtime if subject == "runtime" else child_bare
        print(json.dumps(anyio.run(func, n, method, idle, backend=backend)))
        return 0

    jobs = [(b, s, m) for b in c.BACKENDS for s in ("bare", "runtime") for m in ("tracemalloc", "rss")]

    def command(backend: str, subject: str, method: str, idle_timeout: float) -> list[str]:
        return [
            __file__,
            "--sessions",
            str(n),
            "--idle-timeout",
            str(idle_timeout),
            "--child",
            backend,
            subject,
            method,
        ]

    if args.quick:
        # Not a measurement: all children at once, so the smoke run stays short.
        raw = c.run_children([command(*job, idle) for job in jobs])
    else:
        # The runtime's sessions must all still be live when measured, and the wait for
        # passivation is the idle timeout: unless given, it is sized from the time the bare
        # children took to create theirs (the runtime takes about twice as long).
        raw = []
        bare_time: dict[tuple[str, str], float] = {}
        for backend, subject, method in jobs:
            timeout = args.idle_timeout or max(30.0, 4 * bare_time.get((backend, method), 30.0) + 15)
            r = c.run_child(command(backend, subject, method, timeout))
            r["idle_timeout"] = timeout
            if subject == "bare":
                bare_time[backend, method] = r["created_s"]
            raw.append(r)
    results: dict[str, Any] = {}
    for (backend, subject, method), r in zip(jobs, raw):
        r["per_session"] = (r["after"] - r["before"]) / n
        if "parked" in r:
            r["parked_per_session"] = (r["parked"] - r["before"]) / n
        if "passivated" in r:
            r["retained_per_session"] = (r["passivated"] - r["before"]) / n
            r["trimmed_per_session"] = (r["trimmed"] - r["before"]) / n
        results[f"{backend}/{subject}/{method}"] = r

    rows = []
    for backend in c.BACKENDS:
        for method in ("tracemalloc", "rss"):
            bare = results[f"{backend}/bare/{method}"]
            rt = results[f"{backend}/runtime/{method}"]
            rows.append(
                [
                    backend,
                    method,
                    f"{bare['per_session']:,.0f}",
                    f"{rt['per_session']:,.0f}",
                    f"{rt['per_session'] / bare['per_session']:.2f}",
                    f"{rt['parked_per_session']:,.0f}",
                    f"{rt['parked_per_session'] / bare['per_session']:.2f}",
                    f"{max(rt['after'], rt['parked']) / 2**20:,.1f}",
                    f"{rt['retained_per_session']:,.0f}",
                    f"{rt['trimmed_per_session']:,.0f}" if method == "rss" else "-",
                    f"{rt['created_s']:.1f}",
                ]
            )
    c.table(
        f"{n:,} live idle sessions: bytes per session, runtime vs bare (one task + stream per session)",
        [
            "backend",
            "method",
            "bare B/sess",
            "runtime just idle B/sess",
            "ratio",
            "runtime parked B/sess",
            "ratio",
            "runtime process MiB",
            "after passivation B/sess",
            "after malloc_trim B/sess",
            "create s",
        ],
        rows,
    )
    runtime = [results[f"{b}/runtime/{m}"] for b in c.BACKENDS for m in ("tracemalloc", "rss")]
    worst_idle = max(r["per_session"] for r in runtime)
    worst_parked = max(r["parked_per_session"] for r in runtime)
    rss = {b: results[f"{b}/runtime/rss"] for b in c.BACKENDS}
    # The process at 100 000 sessions: measured when n is 100 000, else projected linearly.
    total = max(
        r["before"] + (max(r["after"], r["parked"]) - r["before"]) * 100_000 / n for r in rss.values()
    )
    retained = max(results[f"{b}/runtime/tracemalloc"]["retained_per_session"] for b in c.BACKENDS)
    for label, worst in (("just idle (task waiting)", worst_idle), ("parked (idle > 1 s)", worst_parked)):
        print(
            f"target <= 6 KB (6144 B) per idle session, {label}: worst {worst:,.0f} B -> "
            f"{'met' if worst <= 6144 else 'NOT met'}"
        )
    print(
        f"target 100 000 sessions under 1 GB: process RSS {total / 2**20:,.0f} MiB"
        f"{'' if n == 100_000 else f' (projected from {n} sessions)'} -> {'met' if total < 2**30 else 'NOT met'}"
    )
    print(
        f"target memory given back after passivation (traced objects): {retained:,.0f} B/session retained -> "
        f"{'met' if retained < 0.05 * worst_idle else 'NOT met'}"
    )
    c.write_json(args.json, "sessions", results, sessions=n)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
