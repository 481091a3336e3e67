"""Cluster mode: what the lease costs per message, and throughput of 1, 2 and 4 workers with and without it.

    python benchmarks/bench_cluster.py [--quick] [--json OUT] [--sessions N] [--duration S] [--workers 1,2,4]

Needs ``redis-server`` (started here on a free loopback port, persistence off) and coredis.
An instant in-process provider answers; every turn is stored (in-process memory without
cluster mode, the Redis store with it).

1. Added latency per message, one caller on one session asking back to back, in one process:
   - off: no cluster mode (the baseline);
   - lease kept: cluster mode with the default linger (the lease is taken once, then each
     message costs the fenced memory write: one Lua script round trip);
   - lease per message: ``linger: 0`` (each message also takes and gives back its lease:
     the worst case, a session whose messages come further apart than the linger).
2. Scaling: W worker processes at once, each with its own runtime and ``--sessions``
   callers on sessions of its own (what hashing on the session header gives a load
   balancer), measured in the same wall-clock window; the total rate and the worst p99.
   With and without cluster mode. The machine's cores bound the scaling (Redis and the
   workers share them).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import _common as c

import valis_actors as va

MESSAGE = "How do I prepare for a performance review?"
LATENCY_VARIANTS = ("off", "lease kept", "lease per message")


@va.register_provider("bench_instant")
class InstantProvider(va.BaseProvider):
    RESPONSE = va.ProviderResponse("An instant answer.", "instant", va.Usage(1, 3))

    async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
        return self.RESPONSE


def config(variant: str, url: str) -> va.Config:
    data: dict[str, Any] = {
        "providers": [{"type": "bench_instant", "name": "p1"}],
        "memory": {"backend": "memory"},
    }
    if variant != "off":
        data["cluster"] = {"redis_url": url, "linger": 0.0 if variant == "lease per message" else 2.0}
    return va.Config.from_dict(data)


async def run(variant: str, url: str, sessions: list[str], duration: float) -> dict[str, Any]:
    cfg = config(variant, url)
    if variant == "off":
        async with va.open_runtime(cfg) as runtime:
            return await c.drive(len(sessions), lambda i: runtime.ask(sessions[i], "jane", MESSAGE), duration)
    from valis_actors.cluster import open_cluster_runtime

    async with open_cluster_runtime(cfg) as runtime:
        return await c.drive(len(sessions), lambda i: runtime.ask(sessions[i], "jane", MESSAGE), duration)


async def client_rtt(url: str, count: int) -> float:
    """Median microseconds of one PING through coredis (the client's cost on top of the socket's)."""
    from valis_actors.cluster import ClusterSettings, open_redis

    times = []
    async with open_redis(ClusterSettings(url)) as connection:
        for _ in range(count):
            t0 = time.perf_counter()
            await connection.call("ping", lambda client: client.ping())
            times.append(time.perf_counter() - t0)
    return c.median(times) * 1e6


def socket_rtt(url: str, count: int) -> float:
    """Median microseconds of one PING over a plain blocking socket (the loopback's own cost)."""
    host, port = url.removeprefix("redis://").split("/")[0].split(":")
    times = []
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            t0 = time.perf_counter()
            sock.sendall(b"PING\r\n")
            sock.recv(16)
            times.append(time.perf_counter() - t0)
    return c.median(times) * 1e6


async def latency_child(url: str, duration: float, reps: int) -> dict[str, Any]:
    runs: dict[str, list[Any]] = {v: [] for v in LATENCY_VARIANTS}
    for rep, variant in c.alternating(reps, LATENCY_VARIANTS):
        c.settle()
        runs[variant].append(await run(variant, url, [f"latency-{variant}-{rep}"], duration))
    out: dict[str, Any] = {v: c.summarize(r) for v, r in runs.items()}
    out["coredis_ping_us"] = await client_rtt(url, 50 if os.environ.get("VALIS_BENCH_QUICK") else 1000)
    return out


async def worker_child(variant: str, url: str, index: int, n: int, duration: float, start_at: float) -> Any:
    import anyio

    await anyio.sleep(max(0.0, start_at - time.time()))  # every worker measures the same window
    return await run(variant, url, [f"w{index}-s{i}" for i in range(n)], duration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench_cluster: redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(500):  # bounded: 5 s
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.01)
    process.kill()
    raise SystemExit("bench_cluster: redis-server did not start")


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, help="callers (one session each) per worker (default 64; --quick 4)")
    p.add_argument("--duration", type=float, help="seconds measured per run (default 3; --quick 0.2)")
    p.add_argument("--reps", type=int, help="latency runs per variant (default 3; --quick 1)")
    p.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    p.add_argument("--child", nargs="+", help=argparse_hidden())
    args = p.parse_args()
    n = args.sessions or (4 if args.quick else 64)
    duration = args.duration or (0.2 if args.quick else 3.0)
    reps = args.reps or (1 if args.quick else 3)
    counts = [int(w) for w in args.workers.split(",")] if not args.quick else [1, 2]

    if args.child:
        import anyio

        kind, backend, url, *rest = args.child
        if kind == "latency":
            result = anyio.run(latency_child, url, duration, reps, backend=backend)
        else:
            variant, index, start_at = rest
            result = anyio.run(
                worker_child, variant.replace("_", " "), url, int(index), n, duration, float(start_at),
                backend=backend,
            )
        print(json.dumps(result))
        return 0

    folder = tempfile.mkdtemp(prefix="valis-bench-cluster-")
    redis, url = start_redis(folder)
    common = [__file__, "--sessions", str(n), "--duration", str(duration), "--reps", str(reps)]
    try:
        latency = c.per_backend(lambda backend: [*common, "--child", "latency", backend, url], quick=args.quick)
        rows = []
        for backend, per in latency.items():
            base = per["off"]
            for variant in LATENCY_VARIANTS:
                r = per[variant]
                r["added_p50_us"] = r["p50_us"] - base["p50_us"]
                rows.append([backend, variant, f"{r['rate']:,.0f}", f"{r['p50_us']:.0f}", f"{r['p99_us']:.0f}",
                             f"{r['added_p50_us']:+.0f}"])
        c.table(
            f"one session asking back to back ({duration:g}s x {reps} runs, median)",
            ["backend", "variant", "msgs/s", "p50 us", "p99 us", "added p50 us"],
            rows,
        )
        rtt = socket_rtt(url, 50 if args.quick else 1000)
        c.table(
            "one Redis PING, median us",
            ["path", "us"],
            [["plain socket", f"{rtt:.0f}"],
             *[[f"coredis ({backend})", f"{per['coredis_ping_us']:.0f}"] for backend, per in latency.items()]],
        )
        scaling: dict[str, Any] = {}
        rows = []
        for workers in counts:
            for variant in ("off", "cluster"):
                c.progress(f"{workers} worker(s), {variant}:")
                start_at = time.time() + 3.0 + workers  # after every child has imported
                results = c.run_children(
                    [[*common, "--child", "worker", "asyncio", url, variant, str(i), str(start_at)]
                     for i in range(workers)],
                    env=c.child_env(),
                )
                total = sum(r["rate"] for r in results)
                worst_p99 = max(r["p99_us"] for r in results)
                scaling[f"{workers}/{variant}"] = {"rate": total, "p99_us": worst_p99, "workers": results}
                rows.append([workers, variant, f"{total:,.0f}", f"{worst_p99 / 1e3:.2f}"])
        c.table(
            f"W worker processes, {n} sessions each, asyncio ({duration:g}s, same window)",
            ["workers", "mode", "msgs/s (total)", "worst p99 ms"],
            rows,
        )
    finally:
        redis.kill()
        redis.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    added = ", ".join(f"{b} {per['lease kept']['added_p50_us']:+.0f} us" for b, per in latency.items())
    print(f"\ntarget: cluster mode adds < 1 ms per message at p50 (lease kept): {added}")
    c.write_json(args.json, "bench_cluster", {"latency": latency, "socket_ping_us": rtt, "scaling": scaling})
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
