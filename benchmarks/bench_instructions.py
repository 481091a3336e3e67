"""Instructions per message, counted (not timed): a before/after that the machine's noise cannot blur.

    python benchmarks/bench_instructions.py [--backend asyncio --backend trio]
        [--tree BEFORE_CHECKOUT --tree AFTER_CHECKOUT] [--legs provider,scoped,cascade,runtime]
        [--messages 6400] [--json OUT] [--quick]
    python benchmarks/bench_instructions.py --legs http-bare,http-raw,http-runtime [--api anthropic,openai]
        [--messages 3200]

On a shared 2-vCPU machine the CPU time of the same code drifts by 15-30 % from one run
to the next, more than most changes to the hot path. The number of machine instructions
it executes does not drift: each leg runs under valgrind's cachegrind (``--cache-sim=no``)
twice, with ``--messages / 10`` and ``--messages`` messages from 64 callers, and the
difference of the two totals over the difference of the counts is the instructions per
message, start-up and imports cancelled out. The provider is in memory and suspends once
per answer, like a network call, so every layer's own work is what is counted:

- ``provider``: ``provider.get_response(request)`` called directly (the baseline);
- ``scoped``: the same inside one cancel scope with a deadline (what each attempt needs);
- ``cascade``: ``Cascade.answer`` (breaker gate, limiter, the attempt's scope, the result);
- ``runtime``: ``Runtime.ask`` (validation, the session actor, the reply).

Over loopback HTTP, with the real SDKs (the fake server runs in its own process, not
under valgrind), per ``--api``: the same two legs as ``bench_http.py``, counted:

- ``http-bare``: the bare SDK call, the client built as the provider builds it;
- ``http-raw``: the same call reading the answer's JSON itself, as the providers do,
  instead of the SDK's response models;
- ``http-runtime``: ``Runtime.ask`` with that one provider (memory off).

Over ``http-bare`` is what ``bench_http.py`` times (its <= 5 % target); over
``http-raw`` is the runtime's own cost. ``--quick`` counts the ``runtime`` and
``http-runtime`` legs (anthropic) once each, to check the script works.

Instructions are not time: a cache miss costs far more than an instruction, and the same
code runs slower between real SDK calls than in a hot loop (docs/performance.md). Use this
to compare two versions of the hot path, and ``bench_http.py`` for what a user sees.
Needs ``valgrind`` (``apt-get install valgrind``); each run takes 10-30 s under it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from typing import Any

import _common as c
from bench_http import KEYS

LEGS = ("provider", "scoped", "cascade", "runtime")
HTTP_LEGS = ("http-bare", "http-raw", "http-runtime")
APIS = ("anthropic", "openai")
CALLERS = 64


def http_child(backend: str, leg: str, api: str, url: str, messages: int) -> None:
    """``messages`` requests over HTTP from 64 callers, after one warm-up round (run under valgrind)."""
    import anyio
    import bench_http

    async def main() -> None:
        if leg != "http-runtime":
            _, _, call = await bench_http.bare_client(api, url, raw=leg == "http-raw")
            await run(call)
        else:
            import valis_actors as va

            config = va.Config.from_dict(
                {"providers": [bench_http.provider_entry(api, url)], "memory": {"enabled": False}}
            )
            async with va.open_runtime(config) as runtime:

                async def ask(i: int) -> object:
                    reply = await runtime.ask(f"session-{i}", "jane", bench_http.MESSAGE)
                    if reply.provider != api:
                        raise SystemExit(f"reply came from {reply.provider!r}: {reply.attempts}")
                    return reply

                await run(ask)
        os._exit(0)  # the counted work is done: no teardown in the count

    async def run(call: Any) -> None:
        async def caller(i: int, n: int) -> None:
            for _ in range(n):
                await call(i)

        for n in (1, messages // CALLERS):  # a warm-up round: connections, first-use imports
            async with anyio.create_task_group() as tg:
                for i in range(CALLERS):
                    tg.start_soon(caller, i, n)

    anyio.run(main, backend=backend)


def child(backend: str, leg: str, messages: int) -> None:
    """Answer ``messages`` messages through ``leg`` from 64 callers (run under valgrind)."""
    import anyio
    import anyio.lowlevel

    import valis_actors as va
    from valis_actors._clock import backend_clock
    from valis_actors._messages import ProviderRequest, ProviderResponse, Usage

    try:
        from valis_actors._actors._signal import scope_class
    except ImportError:  # an older checkout: anyio's class for the backend
        def scope_class() -> Any:
            return type(anyio.CancelScope())

    @va.register_provider("bench_suspend_once")
    class SuspendOnce(va.BaseProvider):
        """Answers at once after one checkpoint, as a network call suspends its task."""

        suspends = True

        async def get_response(self, request: ProviderRequest) -> ProviderResponse:
            await anyio.lowlevel.checkpoint()
            return ProviderResponse("ok", "in-memory", Usage(1, 1))

    async def main() -> None:
        config = va.Config.from_dict(
            {"providers": [{"type": "bench_suspend_once", "name": "mem"}], "memory": {"enabled": False}}
        )
        async with va.open_runtime(config) as runtime:
            provider = runtime.provider("mem")
            persona = runtime.personas.get("jane")
            system = va.render_system_prompt(persona)
            request = ProviderRequest(session_id="s", persona=persona, message="hi", system_prompt=system)
            cascade = runtime._context.cascade
            new_scope = scope_class()
            now = backend_clock()  # the runtime's own clock: no backend look-up per call

            async def one(i: int) -> object:
                if leg == "provider":
                    return await provider.get_response(request)
                if leg == "scoped":
                    with new_scope(deadline=now() + 60):
                        return await provider.get_response(request)
                if leg == "cascade":
                    timed = ProviderRequest("s", persona, "hi", system, (), now() + 60)
                    return await cascade.answer(timed)
                return await runtime.ask(f"session-{i}", "jane", "hi")

            async def caller(i: int, n: int) -> None:
                for _ in range(n):
                    await one(i)

            async with anyio.create_task_group() as tg:
                for i in range(CALLERS):
                    tg.start_soon(caller, i, messages // CALLERS)

    anyio.run(main, backend=backend)


def count(tree: str, backend: str, leg: str, messages: int, http: tuple[str, str] | None = None) -> int:
    """Instructions a child process executes in all (valgrind's ``I refs``); ``http``: (api, url)."""
    env = {**os.environ, "PYTHONPATH": tree}
    if http is not None:
        env.update(c.child_env(**KEYS))
        env["PYTHONPATH"] = os.pathsep.join([tree, os.path.dirname(os.path.abspath(__file__))])
    where = ["--http-child", http[0], http[1]] if http is not None else ["--child"]
    proc = subprocess.run(
        [
            "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            sys.executable, os.path.abspath(__file__), *where, backend, leg, str(messages),
        ],
        capture_output=True, text=True, env=env, check=False,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"the {leg} leg failed under valgrind ({tree}):\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_message(tree: str, backend: str, leg: str, messages: int, http: tuple[str, str] | None = None) -> float:
    small = max(CALLERS, messages // 10 // CALLERS * CALLERS)
    large = messages // CALLERS * CALLERS
    return (count(tree, backend, leg, large, http) - count(tree, backend, leg, small, http)) / (large - small)


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--child", nargs=3, metavar=("BACKEND", "LEG", "MESSAGES"), help=argparse.SUPPRESS)
    p.add_argument("--backend", action="append", choices=("asyncio", "trio"))
    p.add_argument("--tree", action="append", help="a checkout whose valis_actors to count (repeat to compare)")
    p.add_argument("--legs", default=",".join(LEGS))
    p.add_argument("--messages", type=int, default=6400)
    p.add_argument("--api", default=",".join(APIS), help="the SDKs of the http legs (anthropic,openai)")
    p.add_argument("--http-child", nargs=5, metavar=("API", "URL", "BACKEND", "LEG", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        backend, leg, messages = args.child
        child(backend, leg, int(messages))
        return 0
    if args.http_child:
        api, url, backend, leg, messages = args.http_child
        http_child(backend, leg, api, url, int(messages))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: install it (apt-get install valgrind) to count instructions")
    backends = args.backend or ["asyncio"]
    trees = [os.path.abspath(t) for t in args.tree or [str(c.ROOT)]]
    legs = [leg for leg in args.legs.split(",") if leg]
    apis = [api for api in args.api.split(",") if api]
    unknown = set(legs) - set(LEGS) - set(HTTP_LEGS) or set(apis) - set(APIS)
    if unknown:
        raise SystemExit(
            f"unknown {sorted(unknown)}; legs: {', '.join(LEGS + HTTP_LEGS)}; apis: {', '.join(APIS)}"
        )
    messages = args.messages
    if args.quick:
        legs, apis, messages = ["runtime", "http-runtime"], ["anthropic"], 320  # ~10-30 s a run
    http_legs = [leg for leg in legs if leg in HTTP_LEGS]
    legs = [leg for leg in legs if leg in LEGS]
    results: dict[str, Any] = {}
    for backend in backends:
        if legs:
            count_in_memory(backend, trees, legs, messages, results)
        if http_legs:
            with c.fake_servers([]) as (url,):
                count_http(backend, trees, http_legs, apis, url, messages, results)
    c.write_json(args.json, "instructions", results, messages=messages, callers=CALLERS, legs=legs + http_legs)
    return 0


def count_in_memory(backend: str, trees: list[str], legs: list[str], messages: int, results: dict[str, Any]) -> None:
    rows = []
    for tree in trees:
        counted = {leg: per_message(tree, backend, leg, messages) for leg in legs}
        results.setdefault(backend, {}).setdefault(tree, {}).update(counted)
        added = counted["runtime"] - counted["provider"] if {"runtime", "provider"} <= counted.keys() else None
        rows.append([tree, *(f"{counted[leg]:,.0f}" for leg in legs), "-" if added is None else f"{added:,.0f}"])
    c.table(
        f"Instructions per message, {backend}, {CALLERS} callers ({messages} messages)",
        ["checkout", *legs, "runtime added over the provider"],
        rows,
    )
    first, last = results[backend][trees[0]], results[backend][trees[-1]]
    if len(trees) > 1 and "runtime" in legs:
        change = last["runtime"] / first["runtime"] - 1
        print(f"target (issue 16: fewer calls on the common message), {backend}: runtime leg "
              f"{first['runtime']:,.0f} -> {last['runtime']:,.0f} instructions per message ({change:+.1%})")
    else:
        print(f"target (issue 16: fewer calls on the common message), {backend}: "
              + ", ".join(f"{leg} {last[leg]:,.0f}" for leg in legs) + " instructions per message "
              "(compare checkouts with --tree BEFORE --tree AFTER)")


def count_http(
    backend: str, trees: list[str], legs: list[str], apis: list[str], url: str, messages: int, results: dict[str, Any]
) -> None:
    rows = []
    for tree in trees:
        for api in apis:
            counted = {leg: per_message(tree, backend, leg, messages, (api, url)) for leg in legs}
            results.setdefault(backend, {}).setdefault(tree, {}).update(
                {f"{leg}/{api}": n for leg, n in counted.items()}
            )
            bare, raw, through = (counted.get(leg) for leg in HTTP_LEGS)
            rows.append([
                tree,
                api,
                *(f"{counted[leg]:,.0f}" for leg in legs),
                "-" if bare is None or through is None else f"{through - bare:+,.0f} ({through / bare - 1:+.1%})",
                "-" if raw is None or through is None else f"{through - raw:+,.0f} ({through / raw - 1:+.1%})",
            ])
    c.table(
        f"Instructions per request over loopback HTTP, {backend}, {CALLERS} callers ({messages} requests)",
        ["checkout", "api", *legs, "runtime over the bare SDK", "runtime over the SDK read raw (its own cost)"],
        rows,
    )
    if {"http-bare", "http-runtime"} <= set(legs):
        for tree in trees:
            for api in apis:
                got = results[backend][tree]
                bare, through = got[f"http-bare/{api}"], got[f"http-runtime/{api}"]
                print(f"target (issue 16: <= 5 % over the bare SDK), {backend} {api}, in instructions: "
                      f"the runtime {through / bare - 1:+.1%} ({tree})")


if __name__ == "__main__":
    sys.exit(main())
