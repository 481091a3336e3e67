"""``valis serve`` over loopback HTTP, the openai SDK as the client, vs a bare Starlette+Hypercorn endpoint.

    python benchmarks/bench_server.py [--quick] [--json OUT] [--duration S] [--reps N]
        [--concurrency 1,64] [--litellm-python PATH]

Each server runs in its own process, on each backend (Hypercorn's asyncio and trio
workers); this process is the client: ``AsyncOpenAI`` (``max_retries=0``) on asyncio,
C callers back to back, each caller its own session (``X-Session-Id``) and every
message different (no dedupe replay). Variants, alternated between runs:

- bare: Starlette + Hypercorn, one route that reads the JSON body and returns a
  fixed chat.completion body of the same shape (the floor);
- valis: ``valis_actors.server.create_app`` with an instant in-process provider,
  memory off, defaults otherwise (metrics on; OpenTelemetry API without an SDK),
  served by ``run_server`` as a library user would: the collector left alone;
- valis serve: the same, with the collector tuned once the app is up, as ``valis serve``
  does (``run_server(tune_gc=True)``: ``gc.freeze()`` and a higher young threshold).

Reported: req/s, latency p50/p99, the server process's CPU per request (from
/proc), and valis/bare throughput. Target: >= 0.5x the bare endpoint at 64.

LiteLLM proxy (``--litellm-python`` naming an interpreter with ``litellm[proxy]``; it
needs openai<3, so its own environment): ``litellm --config`` in front of the fake
LLM server (``valis_actors.testing._fakeserver``), against ``valis serve`` with an
openai provider in front of the same fake server (tuned as ``valis serve`` is), asyncio only. Target: >= 5x its
req/s at 64 with a p99 at least 5x lower. Skipped (and said so) without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common as c

MESSAGE = "How do I prepare for a performance review?"
BODY = {
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "jane",
    "system_fingerprint": "valis:instant/instant",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "An instant answer.", "refusal": None},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11},
}


# --- server children -------------------------------------------------------------------------


def bare_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = json.dumps(BODY).encode()

    async def completions(request: Request) -> Response:
        json.loads(await request.body())
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def valis_app(upstream: str | None) -> Any:
    import valis_actors as va
    from valis_actors.server import ServerSettings, create_app

    @va.register_provider("bench_instant")
    class Instant(va.BaseProvider):
        async def get_response(self, request: va.ProviderRequest) -> va.ProviderResponse:
            return va.ProviderResponse("An instant answer.", "instant", va.Usage(8, 3))

    provider: dict[str, Any] = {"name": "instant", "type": "bench_instant"}
    if upstream is not None:
        provider = {"name": "openai", "type": "openai", "base_url": upstream + "/v1", "model": "fake-model"}
    config = va.Config.from_dict({"providers": [provider], "memory": {"enabled": False}})
    return create_app(config, settings=ServerSettings())


def serve_child(kind: str, backend: str, upstream: str | None) -> None:
    import anyio

    from valis_actors.server import run_server

    app = bare_app() if kind == "bare" else valis_app(upstream)  # valis, valis-serve
    if kind == "bare":  # run_server reads the settings the valis app carries
        from valis_actors.server import ServerSettings

        app.state.valis = None
        app.state.valis_settings = ServerSettings()

    def announce(url: str) -> None:
        print(f"listening on {url}", flush=True)

    async def main() -> None:
        await run_server(app, port=0, announce=announce, tune_gc=kind == "valis-serve")

    anyio.run(main, backend=backend)


@contextmanager
def server(kind: str, backend: str, upstream: str | None = None) -> Iterator[tuple[str, int]]:
    """(URL, pid) of a server child; stopped (SIGTERM: the drain) on exit."""
    args = [sys.executable, __file__, "--serve", kind, backend, upstream or "-"]
    env = c.child_env(OPENAI_API_KEY="sk-bench-not-a-real-key")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise SystemExit(f"{kind} server did not start: {line!r}")
        yield line.split()[-1], proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the client -----------------------------------------------------------------------------


async def measure(url: str, pid: int, n: int, duration: float, model: str = "jane") -> dict[str, Any]:
    import openai

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    counter = 0

    async def call(i: int) -> Any:
        nonlocal counter
        counter += 1
        result = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"{MESSAGE} #{counter}"}],
            extra_headers={"X-Session-Id": f"bench-{i}"},
        )
        if not result.choices[0].message.content:
            raise SystemExit("empty answer")
        return result

    cpu0 = cpu_seconds(pid)
    out = await c.drive(n, call, duration)
    # The server's CPU over the whole run (warm-up included), per call made in it.
    out["server_cpu_us_per_call"] = (cpu_seconds(pid) - cpu0) / max(1, counter) * 1e6
    await client.close()
    return out


def run_variants(backend: str, variants: dict[str, tuple[str, str | None]], conc: list[int], duration: float,
                 reps: int) -> dict[str, Any]:
    import anyio

    results: dict[str, Any] = {}
    for n in conc:
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for _, variant in c.alternating(reps, list(variants)):
            kind, upstream = variants[variant]
            with server(kind, backend, upstream) as (url, pid):
                runs[variant].append(anyio.run(measure, url, pid, n, duration))
        for variant, got in runs.items():
            summary = c.summarize(got)
            summary["server_cpu_us_per_call"] = c.median(r["server_cpu_us_per_call"] for r in got)
            results[f"{variant}@{n}"] = summary
        c.progress(f"  {backend} c={n}: " + ", ".join(
            f"{v} {results[f'{v}@{n}']['rate']:.0f}/s" for v in variants))
    return results


# --- LiteLLM --------------------------------------------------------------------------------


@contextmanager
def litellm_proxy(python: str, upstream: str) -> Iterator[tuple[str, int]]:
    port = c.closed_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(
            "model_list:\n  - model_name: jane\n    litellm_params:\n      model: openai/fake-model\n"
            f"      api_base: {upstream}/v1\n      api_key: sk-bench-not-a-real-key\n"
            "litellm_settings:\n  num_retries: 0\n"
        )
    # No master key (local only, as valis serve without keys); no cost map download.
    env = c.child_env(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY="true")
    script = str(Path(python).parent / "litellm")
    proc = subprocess.Popen([python, script, "--config", f.name, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        for _ in range(600):  # bounded: up to 60 s for the proxy to start
            try:
                if httpx.get(url + "/health/liveliness", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the LiteLLM proxy did not start")
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_litellm(python: str, conc: list[int], duration: float, reps: int) -> dict[str, Any]:
    import anyio

    results: dict[str, Any] = {}
    with c.fake_servers([]) as (upstream,):
        for n in conc:
            runs: dict[str, list[dict[str, Any]]] = {"valis-openai": [], "litellm": []}
            for _, variant in c.alternating(reps, list(runs)):
                context = litellm_proxy(python, upstream) if variant == "litellm" else server(
                    "valis-serve", "asyncio", upstream)
                with context as (url, pid):
                    runs[variant].append(anyio.run(measure, url, pid, n, duration))
            for variant, got in runs.items():
                summary = c.summarize(got)
                summary["server_cpu_us_per_call"] = c.median(r["server_cpu_us_per_call"] for r in got)
                results[f"{variant}@{n}"] = summary
    return results


# --- the parent -----------------------------------------------------------------------------


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, help="seconds measured per run (default 3; --quick 0.2)")
    p.add_argument("--reps", type=int, help="runs per variant (default 3; --quick 1)")
    p.add_argument("--concurrency", help="comma-separated (default 1,64; --quick 1,8)")
    p.add_argument("--litellm-python", default=os.environ.get("VALIS_BENCH_LITELLM_PYTHON"),
                   help="an interpreter with litellm[proxy] installed (env VALIS_BENCH_LITELLM_PYTHON)")
    p.add_argument("--serve", nargs=3, metavar=("KIND", "BACKEND", "UPSTREAM"), help="(internal) a server child")
    args = p.parse_args()
    if args.serve:
        kind, backend, upstream = args.serve
        serve_child(kind, backend, None if upstream == "-" else upstream)
        return 0
    duration = args.duration or (0.2 if args.quick else 3.0)
    reps = args.reps or (1 if args.quick else 3)
    conc = [int(x) for x in (args.concurrency or ("1,8" if args.quick else "1,64")).split(",")]
    variants = {"bare": ("bare", None), "valis": ("valis", None), "valis-serve": ("valis-serve", None)}
    results: dict[str, Any] = {}
    for backend in c.BACKENDS:
        c.progress(f"{backend}:")
        results[backend] = run_variants(backend, variants, conc, duration, reps)
    rows = []
    for backend, got in results.items():
        for n in conc:
            bare = got[f"bare@{n}"]
            for name, r in (
                ("bare Starlette+Hypercorn", bare),
                ("valis, GC untouched (run_server)", got[f"valis@{n}"]),
                ("valis serve (GC tuned)", got[f"valis-serve@{n}"]),
            ):
                rows.append([backend, n, name, c.fmt(r["rate"], ".0f"), c.fmt(r["p50_us"] / 1000, ".2f"),
                             c.fmt(r["p99_us"] / 1000, ".2f"), c.fmt(r["server_cpu_us_per_call"], ".0f"),
                             c.fmt(r["rate"] / bare["rate"], ".2f") + "x"])
    c.table(
        f"valis serve vs a bare endpoint, openai SDK client ({duration:g}s x {reps} runs; target >= 0.5x at 64)",
        ["backend", "C", "server", "req/s", "p50 ms", "p99 ms", "server CPU us/req", "vs bare"], rows,
    )
    if args.litellm_python:
        c.progress("LiteLLM proxy:")
        results["litellm"] = run_litellm(args.litellm_python, conc, duration, reps)
        rows = []
        for n in conc:
            valis, lite = results["litellm"][f"valis-openai@{n}"], results["litellm"][f"litellm@{n}"]
            for name, r in (("valis serve (openai provider)", valis), ("LiteLLM proxy", lite)):
                rows.append([n, name, c.fmt(r["rate"], ".0f"), c.fmt(r["p99_us"] / 1000, ".2f"),
                             c.fmt(r["server_cpu_us_per_call"], ".0f")])
            rows.append([n, "valis / LiteLLM", c.fmt(valis["rate"] / lite["rate"], ".1f") + "x req/s",
                         c.fmt(lite["p99_us"] / valis["p99_us"], ".1f") + "x lower p99", ""])
        c.table("Against the LiteLLM proxy, same fake upstream, asyncio (target >= 5x req/s, 5x lower p99)",
                ["C", "server", "req/s", "p99 ms", "server CPU us/req"], rows)
    else:
        print("\nLiteLLM proxy: skipped (no --litellm-python; it needs litellm[proxy] in its own environment).")
    c.write_json(args.json, "bench_server", results, duration=duration, reps=reps, concurrency=conc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
