"""Import time: ``import valis_actors`` in a fresh interpreter vs the SDKs users would import anyway.

    python benchmarks/bench_import.py [--quick] [--json OUT] [--runs N] [--litellm-python PATH]

Each module is imported in a fresh ``python -X importtime -c "import MODULE"``, ``--runs``
times (default 9; ``--quick`` 1, no warm-up), alternating modules; the median is reported, two ways:

- importtime: the cumulative microseconds ``-X importtime`` gives the module's own
  top-level import (interpreter start-up excluded);
- wall: the wall time of the whole ``python -c "import MODULE"`` minus that of
  ``python -c "pass"`` measured in the same rounds (the interpreter start-up).

The baseline is what a user of an LLM app pays anyway: ``import openai``,
``import anthropic`` (and ``import litellm`` when importable here, or from the
interpreter given with ``--litellm-python``). Also measured: what a program pays once it
touches the runtime's names (``from valis_actors import open_runtime, load_config``: the
package imports them on first use), summed over every top-level import entry from the first
``valis_actors`` one on. Also checked: no provider SDK is imported by ``import valis_actors``.
Target: ``import valis_actors`` <= 60 ms over a bare interpreter (issue 16; was 100 ms).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import _common as c

SDKS = ("openai", "anthropic", "httpx", "httpx2", "aiohttp", "litellm")


RUNTIME_NAMES = "from valis_actors import open_runtime, load_config"
TARGET_MS = 60


def time_import(python: str, module: str, env: dict[str, str]) -> tuple[float, float]:
    """(importtime cumulative s, wall s) of one fresh ``import module`` (or of a ``from`` statement)."""
    code = module if module.startswith("from ") else f"import {module}" if module else "pass"
    t0 = time.perf_counter()
    proc = subprocess.run(  # cwd: not the checkout, so PYTHONPATH decides which valis_actors is imported
        [python, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd="/",
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{python} -c {code!r} failed:\n{proc.stderr[-2000:]}")
    cumulative = 0.0
    if module.startswith("from "):  # every top-level entry from the package's own on (lazy names)
        counting = False
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
            if m and not m.group(2).startswith(" "):
                counting = counting or m.group(2).startswith("valis_actors")
                cumulative += int(m.group(1)) / 1e6 if counting else 0.0
    elif module:
        pattern = re.compile(r"import time:\s+\d+ \|\s+(\d+) \|\s?(\s*)" + re.escape(module) + r"$")
        for line in proc.stderr.splitlines():
            m = pattern.match(line)
            if m and not m.group(2):  # the top-level entry (no indentation)
                cumulative = int(m.group(1)) / 1e6
    return cumulative, wall


def main() -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, help="fresh interpreters per module (default 9; --quick 1)")
    p.add_argument(
        "--litellm-python",
        default=os.environ.get("VALIS_BENCH_LITELLM_PYTHON"),
        help="an interpreter that has litellm, when this one does not (env VALIS_BENCH_LITELLM_PYTHON)",
    )
    args = p.parse_args()
    runs = args.runs or (1 if args.quick else 9)
    env = c.child_env(LITELLM_LOCAL_MODEL_COST_MAP="True")

    subjects: list[tuple[str, str, str]] = [  # (label, python, module)
        ("python -c pass", sys.executable, ""),
        ("valis_actors", sys.executable, "valis_actors"),
        ("valis_actors: open_runtime, load_config", sys.executable, RUNTIME_NAMES),
        ("openai", sys.executable, "openai"),
        ("anthropic", sys.executable, "anthropic"),
    ]
    litellm_python = None
    if importlib.util.find_spec("litellm") is not None:
        litellm_python = sys.executable
    elif args.litellm_python:
        litellm_python = args.litellm_python
    if litellm_python:
        subjects.append(("python -c pass (litellm env)", litellm_python, ""))
        subjects.append(("litellm", litellm_python, "litellm"))
    else:
        print("litellm is not importable (install it, or pass --litellm-python): its row is left out")

    if not args.quick:
        for label, python, module in subjects:  # warm the OS file cache; not measured
            time_import(python, module, env)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in subjects}
    for rep in range(runs):
        order = subjects if rep % 2 == 0 else list(reversed(subjects))
        for label, python, module in order:
            samples[label].append(time_import(python, module, env))

    results: dict[str, Any] = {}
    for label, python, module in subjects:
        base = "python -c pass (litellm env)" if python != sys.executable else "python -c pass"
        start_up = c.median(w for _, w in samples[base])
        results[label] = {
            "importtime_ms": c.median(t for t, _ in samples[label]) * 1e3,
            "wall_ms": c.median(w for _, w in samples[label]) * 1e3,
            "wall_minus_startup_ms": (c.median(w for _, w in samples[label]) - start_up) * 1e3,
        }

    leaked = subprocess.run(
        [sys.executable, "-c", f"import sys, valis_actors; print([m for m in {SDKS!r} if m in sys.modules])"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd="/",
    ).stdout.strip()

    ours = results["valis_actors"]["importtime_ms"]
    rows = []
    for label, r in results.items():
        if label.startswith("python -c pass"):
            rows.append([label, "-", f"{r['wall_ms']:.0f}", "-", "-"])
            continue
        rows.append(
            [
                label,
                f"{r['importtime_ms']:.0f}",
                f"{r['wall_ms']:.0f}",
                f"{r['wall_minus_startup_ms']:.0f}",
                f"{ours / r['importtime_ms']:.2f}",
            ]
        )
    c.table(
        f"import time, fresh interpreter, median of {runs}",
        ["module", "importtime ms", "wall ms", "wall - startup ms", "valis_actors / this"],
        rows,
    )
    print(f"\nSDK modules loaded by `import valis_actors`: {leaked}")
    print(
        f"target import valis_actors <= {TARGET_MS} ms: {ours:.0f} ms (importtime) -> "
        f"{'met' if ours <= TARGET_MS else 'NOT met'}"
    )
    c.write_json(
        args.json, "import", results, runs=runs, sdk_modules_loaded=json.loads(leaked.replace("'", '"'))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
