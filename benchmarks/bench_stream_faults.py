"""Time to a complete streamed answer under each stream fault, through the official SDKs.

    python benchmarks/bench_stream_faults.py [--quick] [--json OUT] [--runs N]

Two providers on one loopback fake server (``valis_actors.testing.fakeserver``): ``openai``
(a compatible server: it continues a prefill) first, ``anthropic`` second, then the persona
fallback. ``stream_idle_timeout`` and ``first_token_timeout`` 1 s, ``retry_schedule`` [0.5].
Each fault is scripted on the first request of a stream; the table gives how the stream
ended (continued, answered by the next provider, or incomplete), which providers wrote the
answer, and the median wall time to the complete answer against a healthy stream in the
same run.

Targets (issue "Streams that never lie"): every fault ends in one complete answer whose
chunks equal ``reply.text``; a stall costs about one idle timeout, a silent provider one
first-token timeout (not three), every other fault about one round trip.

Each backend runs in a fresh subprocess.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import _common as c

KEY = "sk-bench-not-a-real-key"
TEXT = "Once upon a time there was a runtime that never lied about the answers it streamed to you."


def faults() -> dict[str, Any]:
    from valis_actors.testing.fakeserver import Fault

    return {
        "healthy": None,
        "cut after 3 chunks": Fault.cut(after_chunks=3),
        "stall after 3 chunks": Fault.stall(after_chunks=3),
        "malformed chunk after 3": Fault.malformed(after_chunks=3),
        "error event after 3": Fault.stream_error_event(after_chunks=3),
        "no terminator": Fault.no_terminator(),
        "silent (no response)": Fault.no_response(),
    }


async def one(runtime: Any, session: str) -> tuple[str, Any, float]:
    start = time.perf_counter()
    async with runtime.stream(session, "jane", "tell me a story") as chunks:
        received = [text async for text in chunks]
    return "".join(received), chunks.reply, time.perf_counter() - start


async def measure(runs: int) -> dict[str, Any]:
    import valis_actors as va
    from valis_actors.testing.fakeserver import Fault, open_fake_llm_server

    results: dict[str, Any] = {}
    async with open_fake_llm_server(text=TEXT, chunks=8) as server:
        config = va.Config.from_dict(
            {
                "providers": [
                    {"name": "openai", "type": "openai", "base_url": server.openai_base_url, "model": "m"},
                    {"name": "anthropic", "type": "anthropic", "base_url": server.anthropic_base_url, "model": "m"},
                ],
                "retry_schedule": [0.5],
                "stream_idle_timeout": 1.0,
                "first_token_timeout": 1.0,
                "circuit_breaker_threshold": 10**9,  # every run pays for the fault
                "memory": {"backend": "memory"},
            }
        )
        async with va.open_runtime(config) as runtime:
            cases = {**faults(), "cut, continuation refused": "refused"}
            for name, fault in cases.items():
                times: list[float] = []
                ends: set[str] = set()
                writers: set[str] = set()
                for i in range(runs):
                    if fault == "refused":
                        server.script("openai", Fault.cut(after_chunks=3))
                        server.script("anthropic", Fault.reject_prefill())
                    elif fault is not None:
                        server.script("openai", fault)
                    try:
                        joined, reply, took = await one(runtime, f"{name}-{i}")
                    except va.IncompleteAnswerError:
                        ends.add("incomplete")
                        continue
                    assert joined == reply.text, "a clean stream must have shown reply.text"
                    ends.add("complete" if reply.text == TEXT else "other text")
                    writers.add(" + ".join(f"{s.provider} {s.characters}" for s in reply.segments))
                    times.append(took)
                    server.clear_script()
                results[name] = {
                    "ends": sorted(ends),
                    "writers": sorted(writers),
                    "median_s": statistics.median(times) if times else float("nan"),
                }
    return results


def main() -> None:
    p = c.parser(__doc__ or "")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--child", metavar="BACKEND", help=argparse_hidden())
    args = p.parse_args()
    runs = 1 if args.quick else args.runs
    if args.child:
        import os

        os.environ.setdefault("OPENAI_API_KEY", KEY)
        os.environ.setdefault("ANTHROPIC_API_KEY", KEY)
        import anyio

        print(json.dumps(anyio.run(measure, runs, backend=args.child)))
        return
    command = [sys.argv[0], "--runs", str(runs)]
    results = c.per_backend(lambda backend: [*command, "--child", backend], quick=args.quick)
    for backend, cases in results.items():
        healthy = cases["healthy"]["median_s"]
        rows = [
            [name, ", ".join(case["ends"]), "; ".join(case["writers"]), case["median_s"], case["median_s"] - healthy]
            for name, case in cases.items()
        ]
        c.table(
            f"Stream faults, {backend} (median of {runs}; target: every fault complete)",
            ["fault", "ended", "who wrote it (characters)", "time s", "over healthy s"],
            rows,
        )
    c.write_json(args.json, "bench_stream_faults", results)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
