"""Helpers shared by the benchmark scripts: arguments, tables, JSON, statistics, subprocesses.

Every benchmark compares the runtime against a bare baseline measured in the same
run (the machines are shared and noisy), so ratios are the figures that count;
absolute numbers are printed beside them for context only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# `python benchmarks/NAME.py` from a checkout works without installing the package.
try:
    import valis_actors
except ImportError:
    sys.path.insert(0, str(ROOT))
try:
    import valis_actors

    # Children import the same valis_actors as this process.
    PACKAGE_ROOT = Path(valis_actors.__file__).resolve().parent.parent
except ImportError:  # an interpreter without the project's dependencies (the LiteLLM environment)
    PACKAGE_ROOT = ROOT

BACKENDS = ("asyncio", "trio")


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes: ``--quick`` and ``--json OUT``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks the script works (CI), not a measurement"
    )
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON to this file")
    if "--quick" in sys.argv:
        os.environ["VALIS_BENCH_QUICK"] = "1"  # inherited by the children: see settle()
    return p


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: this one, importing the same valis_actors as this one."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PACKAGE_ROOT) + (os.pathsep + path if path else "")
    env.update(extra)
    return env


def run_child(args: Sequence[str], *, timeout: float = 1800, env: dict[str, str] | None = None) -> Any:
    """Run ``python ARGS...`` whose last stdout line is JSON; return that JSON."""
    proc = subprocess.run(  # the child's stderr (progress, errors) goes straight to ours
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        env=env or child_env(),
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {' '.join(args)} failed with exit status {proc.returncode}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def run_children(
    commands: Sequence[Sequence[str]], *, timeout: float = 600, env: dict[str, str] | None = None
) -> list[Any]:
    """Like :func:`run_child` for several children at once (for smoke runs, not measurements)."""
    procs = [
        subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or child_env(),
        )
        for args in commands
    ]
    out = []
    for args, proc in zip(commands, procs):
        stdout, stderr = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            sys.stderr.write(stderr)
            raise SystemExit(f"child {' '.join(args)} failed with exit status {proc.returncode}")
        out.append(json.loads([line for line in stdout.splitlines() if line.strip()][-1]))
    return out


def per_backend(
    command: Callable[[str], Sequence[str]], *, quick: bool, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python *command(backend)`` for each backend: one after the other, or at once with ``quick``."""
    if quick:  # a smoke run measures nothing: save the time
        return dict(zip(BACKENDS, run_children([command(b) for b in BACKENDS], env=env)))
    out = {}
    for backend in BACKENDS:
        progress(f"{backend}:")
        out[backend] = run_child(command(backend), env=env)
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest-rank; NaN if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def paired(base: Sequence[float], other: Sequence[float], *, resamples: int = 2000) -> dict[str, Any]:
    """``other / base`` for runs measured in alternation, pair by pair: median and a 90 % interval.

    Run ``i`` of each variant come from the same round of :func:`alternating`, so a drift
    of the machine hits both halves of a pair alike and mostly cancels in their ratio; the
    median of the paired ratios is steadier than the ratio of two medians. The interval is
    a bootstrap of that median (a fixed seed: the same runs give the same interval), so a
    verdict can say "within noise" instead of reading a target off one noisy figure.
    """
    ratios = [b / a for a, b in zip(base, other) if a and not math.isnan(a) and not math.isnan(b)]
    if not ratios:
        return {"median": float("nan"), "low": float("nan"), "high": float("nan"), "pairs": 0}
    rng = random.Random(16)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples))
    return {
        "median": statistics.median(ratios),
        "low": medians[int(0.05 * resamples)],
        "high": medians[int(0.95 * resamples) - 1],
        "pairs": len(ratios),
        "ratios": ratios,
    }


def verdict(low: float, high: float, limit: float, pairs: int) -> str:
    """Whether an interval ``[low, high]`` (from :func:`paired`) of a figure that must stay <= ``limit`` meets it."""
    if pairs < 3:
        return "too few runs to tell (--reps 3 or more)"
    if high <= limit:
        return "met"
    if low > limit:
        return "NOT met"
    return "within noise of the target"


def fmt(value: Any, spec: str = ".3g") -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return format(value, spec)
    if value is None:
        return "-"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table (also valid Markdown), returned and printed."""
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    text = "\n".join([f"\n### {title}\n", line, sep, *body])
    print(text, flush=True)
    return text


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
    }


def write_json(path: str | None, name: str, results: Any, **extra: Any) -> None:
    if not path:
        return
    data = {"benchmark": name, "machine": machine(), **extra, "results": results}
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/status (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def settle() -> None:
    """Collect garbage so one measurement does not pay for the previous one's (skipped by --quick runs)."""
    if os.environ.get("VALIS_BENCH_QUICK"):
        return
    gc.collect()
    gc.collect()


def alternating(reps: int, variants: Sequence[str]) -> Iterator[tuple[int, str]]:
    """(rep, variant) pairs, alternating the order (A B C, C B A, ...).

    Alternating spreads slow drifts of a shared machine over all variants instead of
    charging them to whichever runs last.
    """
    for rep in range(reps):
        for variant in variants if rep % 2 == 0 else list(reversed(variants)):
            yield rep, variant


class GcMeter:
    """What the cyclic garbage collector saw over a window: collections per generation, objects.

    ``young_objects`` is the growth of generation 0's count summed over the window: every
    GC-tracked object allocated and not freed (by reference counting) before the next young
    collection adds one. It is what makes young collections run, so it is the allocation
    figure that costs CPU; objects allocated and freed at once (most temporaries) do not
    count. ``collected`` is cyclic garbage: objects only the collector could free.
    """

    def __init__(self) -> None:
        self.young_objects = 0
        self._stats0: list[dict[str, int]] = []
        self._count0 = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":  # generation 0's count is reset by every collection
            self.young_objects += gc.get_count()[0]

    def start(self) -> None:
        self._stats0 = gc.get_stats()
        self._count0 = gc.get_count()[0]
        self.young_objects = 0
        gc.callbacks.append(self._callback)

    def stop(self, calls: int) -> dict[str, float]:
        gc.callbacks.remove(self._callback)
        self.young_objects += gc.get_count()[0] - self._count0
        stats = gc.get_stats()
        per = max(calls, 1)
        return {
            "gc_young_objects_per_call": self.young_objects / per,
            "gc_collected_per_call": sum(b["collected"] - a["collected"] for a, b in zip(self._stats0, stats)) / per,
            **{
                f"gc_gen{g}_per_1000_calls": (stats[g]["collections"] - self._stats0[g]["collections"]) * 1000 / per
                for g in range(3)
            },
        }


async def drive(
    n: int, call: Callable[[int], Awaitable[Any]], duration: float, *, gc_meter: bool = False
) -> dict[str, Any]:
    """N caller tasks calling ``call(i)`` back to back, measured in steady state for ``duration`` s.

    Each caller makes a warm-up call (activation, connections) and all wait for each
    other; then they all start, and the window opens once n more calls have ended (a
    full round: the synchronized start is over). Returns the rate (calls/s ending in
    the window), latency p50/p99 (us) of those calls, and this process's CPU time per
    call (us) over the window; with ``gc_meter``, also what :class:`GcMeter` saw
    (its callback costs a little CPU per collection).
    """
    import anyio

    latencies: list[float] = []
    ready = 0
    ramp = 0
    all_ready = anyio.Event()
    ramped = anyio.Event()
    go = anyio.Event()
    measuring = False
    stop = False
    perf = time.perf_counter

    async def caller(i: int) -> None:
        nonlocal ready, ramp
        await call(i)
        ready += 1
        if ready == n:
            all_ready.set()
        await go.wait()
        append = latencies.append
        while True:
            t0 = perf()
            await call(i)
            t1 = perf()
            if stop:
                return
            if measuring:
                append(t1 - t0)
            else:
                ramp += 1
                if ramp == n:
                    ramped.set()

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(caller, i)
        await all_ready.wait()
        settle()
        go.set()
        await ramped.wait()
        meter = GcMeter() if gc_meter else None
        if meter:
            meter.start()
        cpu0, t0 = time.process_time(), perf()
        measuring = True
        await anyio.sleep(duration)
        stop = True
        elapsed = perf() - t0
        cpu = time.process_time() - cpu0
        # Calls that end after `stop` are not counted: close the meter on what was counted so far.
        gc_figures = meter.stop(len(latencies)) if meter else {}
    count = len(latencies)
    return {
        **gc_figures,
        "rate": count / elapsed,
        "count": count,
        "p50_us": percentile(latencies, 50) * 1e6,
        "p99_us": percentile(latencies, 99) * 1e6,
        "cpu_us_per_call": cpu / count * 1e6 if count else float("nan"),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median rate and CPU of several runs; latencies of the median-rate run."""
    middle = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    return {
        "rate": median(r["rate"] for r in runs),
        "p50_us": middle["p50_us"],
        "p99_us": middle["p99_us"],
        "cpu_us_per_call": median(r["cpu_us_per_call"] for r in runs),
        **{key: median(r[key] for r in runs) for key in runs[0] if key.startswith("gc_")},
        "runs": runs,
    }


@contextlib.contextmanager
def fake_servers(*servers: Sequence[str], backend: str = "asyncio") -> Iterator[list[str]]:
    """Run ``python -m valis_actors.testing.fakeserver ARGS`` per entry, each in its own process.

    Yields their URLs (``http://127.0.0.1:PORT``), in order; stops them on exit.
    """
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "valis_actors.testing.fakeserver",
                "--port",
                "0",
                "--backend",
                backend,
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for args in servers
    ]
    try:
        urls = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("listening on "):
                proc.kill()
                raise SystemExit(
                    f"fake server did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
                )
            urls.append(line.split()[-1])
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def progress(text: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(text, file=sys.stderr, flush=True)


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
