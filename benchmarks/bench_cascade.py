"""Cascade latency: 3 providers, the first one down, over loopback HTTP; and hedging on vs off.

    python benchmarks/bench_cascade.py [--quick] [--json OUT] [--duration S] [--callers N] [--delay S]

Three ``openai`` providers (the official SDK) on fake servers in their own processes
(``python -m valis_actors.testing.fakeserver --delay 0.05``: each answer takes 50 ms),
then the persona fallback. The runtime's default config except ``retry_schedule: [0.05]``
(short for the benchmark) and memory off. ``--callers`` sessions (default 16) ask back
to back for ``--duration`` seconds per case; time-to-response p50/p99 per case:

- healthy: the first provider answers (the baseline);
- refused: the first provider's port is closed (connection refused) — breaker kept
  closed (``circuit_breaker_threshold`` 10^9) so every message pays for the dead provider;
- 503: the first provider's server answers 503 to everything — breaker kept closed;
- circuit open: the first provider refuses connections and its circuit is open
  (default threshold; tripped by the warm-up messages, checked before measuring).

Targets: p99 < 1.5 s in every case; circuit open adds < 5 ms (p50) over healthy.

Hedging: a slow first provider (server ``--delay 0.5``; 0.2 with ``--quick``), the second normal; without
hedging vs ``hedge_after: 0.1``.

Each backend runs in a fresh subprocess.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import _common as c

MESSAGE = "Where do I start in a new city?"
KEY = {"OPENAI_API_KEY": "sk-bench-not-a-real-key"}
CASES = ("healthy", "refused", "503", "circuit open")
HEDGE_CASES = ("slow first, no hedging", "slow first, hedge_after 0.1")


def entry(name: str, url: str) -> dict[str, Any]:
    return {"type": "openai", "name": name, "base_url": url + "/v1", "model": "fake-model"}


async def measure(
    providers: list[dict[str, Any]],
    extra: dict[str, Any],
    n: int,
    duration: float,
    expect_open: str | None = None,
) -> dict[str, Any]:
    import valis_actors as va

    config = va.Config.from_dict(
        {"providers": providers, "memory": {"enabled": False}, "retry_schedule": [0.05], **extra}
    )
    sessions = [f"session-{i}" for i in range(n)]
    answered: dict[str, int] = {}
    async with va.open_runtime(config) as runtime:

        async def call(i: int) -> None:
            reply = await runtime.ask(sessions[i], "sam", MESSAGE)
            if reply.fallback_used:
                raise SystemExit(f"the persona fallback answered: {reply.attempts}")
            answered[reply.provider] = answered.get(reply.provider, 0) + 1

        warm = await c.drive(n, call, 0.0)  # the warm-up (trips the circuit in that case)
        if expect_open is not None:
            state = runtime.statistics().breakers[expect_open].state
            if state is not va.CircuitState.OPEN:
                raise SystemExit(f"circuit of {expect_open!r} is {state}, not open, after the warm-up")
        answered.clear()
        del warm
        result = await c.drive(n, call, duration)
    result["answered_by"] = answered
    return result


async def child_main(urls: dict[str, str], n: int, duration: float) -> dict[str, Any]:
    refused = f"http://127.0.0.1:{c.closed_port()}"
    rest = [entry("p2", urls["ok2"]), entry("p3", urls["ok3"])]
    closed = {"circuit_breaker_threshold": 10**9}
    plans: dict[str, tuple[list[dict[str, Any]], dict[str, Any], str | None]] = {
        "healthy": ([entry("p1", urls["ok1"]), *rest], {}, None),
        "refused": ([entry("p1", refused), *rest], closed, None),
        "503": ([entry("p1", urls["503"]), *rest], closed, None),
        "circuit open": ([entry("p1", refused), *rest], {}, "p1"),
        "slow first, no hedging": ([entry("p1", urls["slow"]), *rest], {}, None),
        "slow first, hedge_after 0.1": ([entry("p1", urls["slow"]), *rest], {"hedge_after": 0.1}, None),
    }
    out = {}
    for name, (providers, extra, expect_open) in plans.items():
        c.settle()
        out[name] = await measure(providers, extra, n, duration, expect_open)
        c.progress(
            f"  {name}: p50 {out[name]['p50_us'] / 1e3:.1f} ms, p99 {out[name]['p99_us'] / 1e3:.1f} ms"
        )
    return out


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, help="seconds measured per case (default 5; --quick 0.2)")
    p.add_argument("--callers", type=int, help="concurrent sessions (default 16; --quick 2)")
    p.add_argument(
        "--delay", type=float, default=0.05, help="the healthy servers' answer delay (default 0.05)"
    )
    p.add_argument("--child", nargs=2, metavar=("BACKEND", "URLS"), help=argparse_hidden())
    args = p.parse_args()
    duration = args.duration or (0.2 if args.quick else 5.0)
    n = args.callers or (2 if args.quick else 16)

    if args.child:
        import anyio

        backend, urls = args.child
        print(json.dumps(anyio.run(child_main, json.loads(urls), n, duration, backend=backend)))
        return 0

    delay = str(args.delay)
    slow = "0.2" if args.quick else "0.5"
    with c.fake_servers(
        ["--delay", delay],
        ["--delay", delay],
        ["--delay", delay],
        ["--delay", delay, "--default", "503"],
        ["--delay", slow],
    ) as (ok1, ok2, ok3, s503, slow_url):
        urls = {"ok1": ok1, "ok2": ok2, "ok3": ok3, "503": s503, "slow": slow_url}
        results = c.per_backend(
            lambda backend: [
                __file__,
                "--duration",
                str(duration),
                "--callers",
                str(n),
                "--child",
                backend,
                json.dumps(urls),
            ],
            quick=args.quick,
            env=c.child_env(**KEY),
        )

    rows = []
    for backend, per in results.items():
        base = per["healthy"]
        for case in (*CASES, *HEDGE_CASES):
            r = per[case]
            rows.append(
                [
                    backend,
                    case,
                    f"{r['p50_us'] / 1e3:.1f}",
                    f"{r['p99_us'] / 1e3:.1f}",
                    f"{(r['p50_us'] - base['p50_us']) / 1e3:+.1f}",
                    f"{(r['p99_us'] - base['p99_us']) / 1e3:+.1f}",
                    f"{r['rate']:.0f}",
                    ", ".join(f"{k}:{v}" for k, v in sorted(r["answered_by"].items())),
                ]
            )
    c.table(
        f"time to response, 3 openai providers on fake servers ({args.delay * 1e3:g} ms answers), "
        f"{n} sessions, retry_schedule [0.05]",
        [
            "backend",
            "case",
            "p50 ms",
            "p99 ms",
            "p50 vs healthy ms",
            "p99 vs healthy ms",
            "msgs/s",
            "answered by",
        ],
        rows,
    )
    worst_p99 = max(per[case]["p99_us"] for per in results.values() for case in CASES) / 1e6
    added = max((per["circuit open"]["p50_us"] - per["healthy"]["p50_us"]) / 1e3 for per in results.values())
    print(
        f"\ntarget p99 < 1.5 s with the first provider down: worst {worst_p99:.3f} s -> "
        f"{'met' if worst_p99 < 1.5 else 'NOT met'}"
    )
    print(
        f"target < 5 ms added with the circuit open (p50 vs healthy): worst {added:+.1f} ms -> "
        f"{'met' if added < 5 else 'NOT met'}"
    )
    c.write_json(args.json, "cascade", results, callers=n, duration=duration, delay=args.delay)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
