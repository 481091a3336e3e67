"""Over HTTP with the official SDKs: runtime -> SDK -> loopback fake server, vs the bare SDK call.

    python benchmarks/bench_http.py [--quick] [--json OUT] [--duration S] [--reps N]
        [--concurrency 1,64] [--litellm-python PATH]

The fake LLM server (``python -m valis_actors.testing.fakeserver``) runs in its own
process and answers at once. For each backend (a fresh subprocess each), API
(openai, anthropic) and concurrency C (C callers back to back; the runtime gets one
session per caller):

- bare: the SDK call alone, with the client built exactly as the provider builds it
  (``providers._http.build_http_client`` + ``AsyncOpenAI``/``AsyncAnthropic`` with
  ``max_retries=0``), sending the same messages (the persona's system prompt and the
  user message) and reading the same fields of the answer;
- runtime: ``Runtime.ask`` with that one provider (memory off, defaults otherwise);
  every reply is checked to come from the provider, not the persona fallback.

The providers read the answer's JSON themselves rather than build the SDK's response
models (``providers/_http.py``), which the bare call, written as a user would write
it, does build: so the overhead here is the runtime's own cost minus that saving.
``bench_instructions.py --legs http-bare,http-raw,http-runtime`` counts the three
apart, the runtime's own cost being runtime minus ``http-raw`` (the bare SDK call
reading the JSON the same way).

Reported: throughput, latency p50/p99, this process's CPU per request, and
overhead = 1 - runtime/bare throughput. Targets (issue 16): <= 5 % at concurrency 64,
and a p99 within 1.2x the bare SDK's, both backends. The two legs run in alternation
(bare, runtime, runtime, bare, ...); overhead and p99 ratio are the median of the
per-round ratios with a bootstrap 90 % interval, and each target's verdict is "met"
only when the whole interval is within it ("within noise" when it straddles it): on a
shared 2-vCPU machine one run's CPU per request drifts by 15-30 %, more than the
target itself, so a single pair of medians cannot tell.

LiteLLM (when ``import litellm`` works here, or with ``--litellm-python`` naming an
interpreter that has it; LiteLLM needs openai<3 while this project's SDK is newer,
so it usually lives in its own environment): its ``Router`` with a primary and a
fallback deployment (``num_retries=0``) against the same server, on asyncio, with
the bare SDK of that environment for reference; and the fallback path, with the
primary answering 500 (a second fake server started with ``--default 500``). The
runtime's fallback path is measured beside it: two openai providers, the first on
the 500 server, ``retry_schedule: []`` (like ``num_retries=0``), with the default
breaker and with the breaker kept closed (every message pays the failing primary).

The official SDK on the fallback path, what a program without the runtime or LiteLLM
would write (asyncio, openai): the primary call, and on its error the fallback's, with
the SDK's own retries (``max_retries=2``, its default: it backs off 0.5-8 s between
them) and without them (``max_retries=0``). Healthy, the SDK's retries never fire, so
the healthy "bare" leg stands for both.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any

import _common as c

APIS = ("openai", "anthropic")
MESSAGE = "How do I prepare for a performance review?"
KEYS = {"OPENAI_API_KEY": "sk-bench-not-a-real-key", "ANTHROPIC_API_KEY": "sk-ant-bench-not-a-real-key"}


# --- the runtime / bare child (this project's environment) -------------------------------


def provider_entry(api: str, url: str, name: str | None = None) -> dict[str, Any]:
    if api == "openai":
        return {"type": "openai", "name": name or api, "base_url": url + "/v1", "model": "fake-model"}
    return {"type": "anthropic", "name": name or api, "base_url": url, "model": "fake-model"}


async def bare_client(api: str, url: str, *, raw: bool = False) -> tuple[Any, Any, Any]:
    """(sdk client, http client, call(i)) built the way the provider builds them.

    ``raw``: the call reads the answer's JSON itself (``with_raw_response``), as the
    providers do, instead of the SDK's response models (bench_instructions.py's
    ``http-raw`` leg: the runtime's own cost over the same SDK use).
    """
    import valis_actors as va
    from valis_actors.providers._http import DEFAULT_SDK_TIMEOUT, build_http_client

    persona = va.PersonaStore.load_dir(None).get("jane")
    system = va.render_system_prompt(persona)
    if api == "openai":
        import openai

        http = build_http_client(openai, max_connections=1000, timeout=DEFAULT_SDK_TIMEOUT)
        client = openai.AsyncOpenAI(
            api_key=KEYS["OPENAI_API_KEY"],
            base_url=url + "/v1",
            max_retries=0,
            timeout=DEFAULT_SDK_TIMEOUT,
            http_client=http,
        )
        messages = [{"role": "system", "content": system}, {"role": "user", "content": MESSAGE}]

        async def call(i: int) -> Any:
            completion = await client.chat.completions.create(model="fake-model", messages=messages)
            choice = completion.choices[0]
            return choice.message.content, choice.finish_reason, completion.usage, completion.model

        async def call_raw(i: int) -> Any:
            response = await client.chat.completions.with_raw_response.create(model="fake-model", messages=messages)
            body = response.http_response.json()
            choice = body["choices"][0]
            return choice["message"]["content"], choice["finish_reason"], body["usage"], body["model"]
    else:
        import anthropic

        http = build_http_client(anthropic, max_connections=1000, timeout=DEFAULT_SDK_TIMEOUT)
        client = anthropic.AsyncAnthropic(
            api_key=KEYS["ANTHROPIC_API_KEY"],
            base_url=url,
            max_retries=0,
            timeout=DEFAULT_SDK_TIMEOUT,
            http_client=http,
        )
        messages = [{"role": "user", "content": MESSAGE}]

        async def call(i: int) -> Any:
            message = await client.messages.create(
                model="fake-model", max_tokens=1024, messages=messages, system=system
            )
            text = "".join(b.text for b in message.content if getattr(b, "type", None) == "text")
            return text, message.stop_reason, message.usage, message.model

        async def call_raw(i: int) -> Any:
            response = await client.messages.with_raw_response.create(
                model="fake-model", max_tokens=1024, messages=messages, system=system
            )
            body = response.http_response.json()
            text = "".join(b["text"] for b in body["content"] if b.get("type") == "text")
            return text, body["stop_reason"], body["usage"], body["model"]

    return client, http, call_raw if raw else call


async def measure_bare(api: str, url: str, n: int, duration: float) -> dict[str, Any]:
    import anyio

    client, http, call = await bare_client(api, url)
    try:
        return await c.drive(n, call, duration, gc_meter=True)
    finally:
        with anyio.CancelScope(shield=True):
            await client.close()
            await http.aclose()


async def measure_sdk_fallback(url500: str, url: str, n: int, duration: float, retries: int) -> dict[str, Any]:
    """The openai SDK on the primary (the 500 server), with ``retries``; on its error, the fallback."""
    import anyio
    import openai

    import valis_actors as va
    from valis_actors.providers._http import DEFAULT_SDK_TIMEOUT, build_http_client

    system = va.render_system_prompt(va.PersonaStore.load_dir(None).get("jane"))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": MESSAGE}]
    http = build_http_client(openai, max_connections=1000, timeout=DEFAULT_SDK_TIMEOUT)
    primary, fallback = (
        openai.AsyncOpenAI(
            api_key=KEYS["OPENAI_API_KEY"], base_url=base + "/v1", max_retries=r, timeout=DEFAULT_SDK_TIMEOUT,
            http_client=http,
        )
        for base, r in ((url500, retries), (url, 0))
    )

    async def call(i: int) -> Any:
        try:
            completion = await primary.chat.completions.create(model="fake-model", messages=messages)
        except openai.APIError:
            completion = await fallback.chat.completions.create(model="fake-model", messages=messages)
        return completion.choices[0].message.content

    try:
        return await c.drive(n, call, duration)
    finally:
        with anyio.CancelScope(shield=True):
            await primary.close()
            await fallback.close()
            await http.aclose()


SDK_FALLBACKS = (
    ("openai SDK, own retries (max_retries=2), then fallback", 2),
    ("openai SDK, max_retries=0, then fallback", 0),
)


async def measure_runtime(
    providers: list[dict[str, Any]],
    n: int,
    duration: float,
    extra: dict[str, Any] | None = None,
    expect: str | None = None,
) -> dict[str, Any]:
    import valis_actors as va

    config = va.Config.from_dict({"providers": providers, "memory": {"enabled": False}, **(extra or {})})
    sessions = [f"session-{i}" for i in range(n)]
    expect = expect or providers[0]["name"]
    async with va.open_runtime(config) as runtime:

        async def call(i: int) -> va.Reply:
            reply = await runtime.ask(sessions[i], "jane", MESSAGE)
            if reply.provider != expect:
                raise SystemExit(f"reply came from {reply.provider!r}, not {expect!r}: {reply.attempts}")
            return reply

        return await c.drive(n, call, duration, gc_meter=True)


async def child_main(
    url: str, url500: str | None, conc: list[int], duration: float, reps: int, gc_freeze: bool
) -> dict[str, Any]:
    if gc_freeze:
        # Diagnostic variant: move everything alive now (the SDKs' modules and pydantic
        # schemas, ~200 000 objects) out of the collector's reach, for both legs alike.
        import gc

        import anthropic  # noqa: F401
        import openai  # noqa: F401

        gc.collect()
        gc.freeze()
    out: dict[str, Any] = {}
    for api in APIS:
        for n in conc:
            runs: dict[str, list[Any]] = {"bare": [], "runtime": []}
            for _, variant in c.alternating(reps, ("bare", "runtime")):
                c.settle()
                if variant == "bare":
                    runs[variant].append(await measure_bare(api, url, n, duration))
                else:
                    runs[variant].append(await measure_runtime([provider_entry(api, url)], n, duration))
            out[f"{api}/{n}"] = {v: c.summarize(r) for v, r in runs.items()}
            c.progress(
                f"  {api} at concurrency {n}: bare {out[f'{api}/{n}']['bare']['rate']:.0f}/s, "
                f"runtime {out[f'{api}/{n}']['runtime']['rate']:.0f}/s"
            )
    if url500 is not None:  # the runtime's fallback path, for the LiteLLM comparison
        n = max(conc)
        pair = [provider_entry("openai", url500, "primary"), provider_entry("openai", url, "fallback")]
        for label, extra in (
            ("runtime fallback path, default breaker", {"retry_schedule": []}),
            (
                "runtime fallback path, breaker kept closed",
                {"retry_schedule": [], "circuit_breaker_threshold": 10**9},
            ),
        ):
            runs_fb = [
                await measure_runtime(pair, n, duration, extra, expect="fallback") for _ in range(reps)
            ]
            out[f"{label}/{n}"] = c.summarize(runs_fb)
        for label, retries in SDK_FALLBACKS:
            runs_fb = [await measure_sdk_fallback(url500, url, n, duration, retries) for _ in range(reps)]
            out[f"{label}/{n}"] = c.summarize(runs_fb)
    return out


# --- the LiteLLM child (an environment with litellm) -------------------------------------


LITELLM_CHILD = r"""
import json, os, sys, time
sys.path.insert(0, os.environ["VALIS_BENCH_DIR"])
import _common as c
import anyio, litellm, openai
from litellm import Router

litellm.suppress_debug_info = True
litellm.telemetry = False
url, url500, conc, duration, reps, system, message = json.loads(sys.argv[1])
messages = [{"role": "system", "content": system}, {"role": "user", "content": message}]

def router(primary):
    deployments = [
        {"model_name": "primary", "litellm_params": {"model": "openai/fake-model", "api_base": primary + "/v1",
                                                     "api_key": "sk-bench"}},
        {"model_name": "fallback", "litellm_params": {"model": "openai/fake-model", "api_base": url + "/v1",
                                                      "api_key": "sk-bench"}},
    ]
    return Router(model_list=deployments, fallbacks=[{"primary": ["fallback"]}], num_retries=0)

async def main():
    out = {}
    for n in conc:
        runs = {"bare SDK (litellm env)": [], "LiteLLM Router": []}
        for _, variant in c.alternating(reps, tuple(runs)):
            c.settle()
            if variant == "LiteLLM Router":
                r = router(url)
                async def call(i):
                    resp = await r.acompletion(model="primary", messages=messages)
                    return resp.choices[0].message.content
                runs[variant].append(await c.drive(n, call, duration))
            else:
                client = openai.AsyncOpenAI(api_key="sk-bench", base_url=url + "/v1", max_retries=0)
                async def call(i):
                    completion = await client.chat.completions.create(model="fake-model", messages=messages)
                    return completion.choices[0].message.content
                runs[variant].append(await c.drive(n, call, duration))
                await client.close()
        for variant, r in runs.items():
            out[f"{variant}/{n}"] = c.summarize(r)
    n = max(conc)
    fb = []
    for _ in range(reps):
        r = router(url500)
        async def call(i):
            resp = await r.acompletion(model="primary", messages=messages)
            return resp.choices[0].message.content
        fb.append(await c.drive(n, call, duration))
    out[f"LiteLLM Router fallback path/{n}"] = c.summarize(fb)
    out["versions"] = {"litellm": getattr(litellm, "__version__", None) or _version("litellm"),
                       "openai": openai.__version__}
    print(json.dumps(out))

def _version(name):
    from importlib.metadata import version
    return version(name)

anyio.run(main)
"""


def run_litellm(python: str, url: str, url500: str, conc: list[int], duration: float, reps: int) -> Any:
    import subprocess

    import valis_actors as va

    persona = va.PersonaStore.load_dir(None).get("jane")
    payload = json.dumps([url, url500, conc, duration, reps, va.render_system_prompt(persona), MESSAGE])
    env = c.child_env(LITELLM_LOCAL_MODEL_COST_MAP="True", VALIS_BENCH_DIR=str(c.ROOT / "benchmarks"))
    proc = subprocess.run(
        [python, "-c", LITELLM_CHILD, payload],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"the LiteLLM leg failed (exit {proc.returncode})")
    return json.loads([line for line in proc.stdout.splitlines() if line.strip()][-1])


# --- the parent ----------------------------------------------------------------------------


def _percent_interval(rate: dict[str, Any]) -> str:
    """The overhead (1 - runtime/bare throughput) of a :func:`_common.paired` rate ratio, in percent."""
    return (
        f"{(1 - rate['median']) * 100:+.1f}% [{(1 - rate['high']) * 100:+.1f}, {(1 - rate['low']) * 100:+.1f}]"
    )


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, help="seconds measured per run (default 3; --quick 0.1)")
    p.add_argument("--reps", type=int, help="runs per variant (default 3; --quick 1)")
    p.add_argument("--concurrency", help="comma-separated (default 1,64; --quick 1,8)")
    p.add_argument(
        "--litellm-python",
        default=os.environ.get("VALIS_BENCH_LITELLM_PYTHON"),
        help="an interpreter with litellm installed (env VALIS_BENCH_LITELLM_PYTHON)",
    )
    p.add_argument(
        "--gc-freeze",
        action="store_true",
        help="diagnostic: gc.freeze() in the client process after importing the SDKs (both legs)",
    )
    p.add_argument("--child", nargs=3, metavar=("BACKEND", "URL", "URL500"), help=argparse_hidden())
    args = p.parse_args()
    duration = args.duration or (0.1 if args.quick else 3.0)
    reps = args.reps or (1 if args.quick else 3)
    conc = [int(x) for x in (args.concurrency or ("1,8" if args.quick else "1,64")).split(",")]

    if args.child:
        import anyio

        backend, url, url500 = args.child
        result = anyio.run(
            child_main,
            url,
            None if url500 == "-" else url500,
            conc,
            duration,
            reps,
            args.gc_freeze,
            backend=backend,
        )
        print(json.dumps(result))
        return 0

    litellm_python = sys.executable if importlib.util.find_spec("litellm") else args.litellm_python
    common = ["--duration", str(duration), "--reps", str(reps), "--concurrency", ",".join(map(str, conc))]
    if args.gc_freeze:
        common.append("--gc-freeze")
    results: dict[str, Any] = {}
    env = c.child_env(**KEYS)
    with c.fake_servers([], ["--default", "500"]) as (url, url500):
        results.update(
            c.per_backend(
                lambda backend: [
                    __file__,
                    *common,
                    "--child",
                    backend,
                    url,
                    url500 if backend == "asyncio" else "-",
                ],
                quick=args.quick,
                env=env,
            )
        )
        if litellm_python:
            results["litellm"] = run_litellm(litellm_python, url, url500, conc, duration, reps)

    rows = []
    for backend in c.BACKENDS:
        for api in APIS:
            for n in conc:
                r = results[backend][f"{api}/{n}"]
                bare, rt = r["bare"], r["runtime"]
                # Run i of each leg is from the same alternation round: compare them pair by pair.
                r["rate_ratio"] = c.paired([x["rate"] for x in bare["runs"]], [x["rate"] for x in rt["runs"]])
                r["p99_ratio"] = c.paired([x["p99_us"] for x in bare["runs"]], [x["p99_us"] for x in rt["runs"]])
                rate, tail = r["rate_ratio"], r["p99_ratio"]
                rows.append(
                    [
                        backend,
                        api,
                        n,
                        f"{bare['rate']:,.0f}",
                        f"{rt['rate']:,.0f}",
                        _percent_interval(rate),
                        f"{bare['p50_us'] / 1e3:.2f} / {bare['p99_us'] / 1e3:.2f}",
                        f"{rt['p50_us'] / 1e3:.2f} / {rt['p99_us'] / 1e3:.2f}",
                        f"{tail['median']:.2f}x [{tail['low']:.2f}, {tail['high']:.2f}]",
                        f"{bare['cpu_us_per_call']:.0f}",
                        f"{rt['cpu_us_per_call']:.0f}",
                        f"{rt['cpu_us_per_call'] - bare['cpu_us_per_call']:+.0f}",
                        f"{_collections(bare)} vs {_collections(rt)}",
                    ]
                )
    c.table(
        f"runtime -> SDK -> loopback fake server vs the bare SDK call ({duration:g}s x {reps} runs, alternating; "
        "overhead and p99 ratio: median of the pairs [90 % interval]"
        f"{', gc.freeze() after imports' if args.gc_freeze else ''})",
        [
            "backend",
            "api",
            "conc",
            "bare req/s",
            "runtime req/s",
            "overhead",
            "bare p50/p99 ms",
            "runtime p50/p99 ms",
            "p99 vs bare",
            "bare CPU us/req",
            "runtime CPU us/req",
            "added CPU us",
            "young / full GCs per 1 000, bare vs runtime",
        ],
        rows,
    )
    top = max(conc)
    for b in c.BACKENDS:
        for a in APIS:
            r = results[b][f"{a}/{top}"]
            rate, tail = r["rate_ratio"], r["p99_ratio"]
            print(
                f"{b} {a} at {top}: target overhead <= 5 %: {c.verdict(1 - rate['high'], 1 - rate['low'], 0.05, rate['pairs'])}; "
                f"target p99 <= 1.2x: {c.verdict(tail['low'], tail['high'], 1.2, tail['pairs'])}"
            )

    ours = results["asyncio"]
    rows = []
    labels = ("runtime fallback path, default breaker", "runtime fallback path, breaker kept closed")
    for label in (*labels, *(label for label, _ in SDK_FALLBACKS)):
        r = ours[f"{label}/{top}"]
        rows.append(
            [
                label,
                f"{r['rate']:,.0f}",
                f"{r['p50_us'] / 1e3:.2f} / {r['p99_us'] / 1e3:.2f}",
                f"{r['cpu_us_per_call']:.0f}",
                f"{ours[f'{labels[0]}/{top}']['rate'] / r['rate']:.2f}" if r["rate"] else "-",
            ]
        )
    c.table(
        f"the primary failing (500), openai, asyncio, concurrency {top}: the runtime vs the official SDK",
        ["client", "req/s", "p50/p99 ms", "CPU us/req", "runtime (default breaker) / this"],
        rows,
    )

    if "litellm" in results:
        ll = results["litellm"]
        ours = results["asyncio"]
        rows = []
        for n in conc:
            rt = ours[f"openai/{n}"]["runtime"]
            for label in ("bare SDK (litellm env)", "LiteLLM Router"):
                r = ll[f"{label}/{n}"]
                rows.append(
                    [
                        n,
                        label,
                        f"{r['rate']:,.0f}",
                        f"{r['p50_us'] / 1e3:.2f} / {r['p99_us'] / 1e3:.2f}",
                        f"{r['cpu_us_per_call']:.0f}",
                        f"{rt['rate'] / r['rate']:.2f}",
                    ]
                )
            rows.append(
                [
                    n,
                    "valis runtime (openai)",
                    f"{rt['rate']:,.0f}",
                    f"{rt['p50_us'] / 1e3:.2f} / {rt['p99_us'] / 1e3:.2f}",
                    f"{rt['cpu_us_per_call']:.0f}",
                    "1.00",
                ]
            )
        fb_ll = ll[f"LiteLLM Router fallback path/{top}"]
        rows.append(
            [
                top,
                "LiteLLM Router fallback path",
                f"{fb_ll['rate']:,.0f}",
                f"{fb_ll['p50_us'] / 1e3:.2f} / {fb_ll['p99_us'] / 1e3:.2f}",
                f"{fb_ll['cpu_us_per_call']:.0f}",
                "-",
            ]
        )
        for label in ("runtime fallback path, default breaker", "runtime fallback path, breaker kept closed"):
            r = ours[f"{label}/{top}"]
            rows.append(
                [
                    top,
                    label,
                    f"{r['rate']:,.0f}",
                    f"{r['p50_us'] / 1e3:.2f} / {r['p99_us'] / 1e3:.2f}",
                    f"{r['cpu_us_per_call']:.0f}",
                    f"{r['rate'] / fb_ll['rate']:.2f} vs Router fallback",
                ]
            )
        c.table(
            f"LiteLLM {ll['versions']['litellm']} (openai {ll['versions']['openai']}) vs the runtime, asyncio, "
            "same fake server",
            ["conc", "client", "req/s", "p50/p99 ms", "CPU us/req", "runtime / this"],
            rows,
        )
        x = ours[f"openai/{top}"]["runtime"]["rate"] / ll[f"LiteLLM Router/{top}"]["rate"]
        y = ours[f"runtime fallback path, breaker kept closed/{top}"]["rate"] / fb_ll["rate"]
        print(
            f"\nissue 6 target vs LiteLLM at {top}: >= 5x Router throughput: {x:.2f}x -> "
            f"{'met' if x >= 5 else 'NOT met'}; >= 10x on the fallback path (breaker kept closed): "
            f"{y:.2f}x -> {'met' if y >= 10 else 'NOT met'}"
        )
    else:
        print("\nLiteLLM: not importable here and no --litellm-python given: its comparison is left out")
    c.write_json(
        args.json, "http", results, duration=duration, reps=reps, concurrency=conc, gc_freeze=args.gc_freeze
    )
    return 0


def _collections(leg: dict[str, Any]) -> str:
    """Young (generation 0) and full (generation 2) collections per 1 000 calls, as GcMeter counted them."""
    if "gc_gen0_per_1000_calls" not in leg:
        return "-"
    return f"{leg['gc_gen0_per_1000_calls']:.1f} / {leg['gc_gen2_per_1000_calls']:.2f}"


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
