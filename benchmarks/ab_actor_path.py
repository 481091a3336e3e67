"""Before/after on a noisy machine: two checkouts' actor paths, interleaved, CPU per message.

    python benchmarks/ab_actor_path.py BEFORE_CHECKOUT AFTER_CHECKOUT [--backend asyncio]
        [--sessions 100] [--rounds 6]

Runs ``bench_actor_path.py --child BACKEND --sessions N --duration 1 --reps 1`` of each
checkout in turn (A B, B A, ...), each importing its own ``valis_actors``, and prints the
median CPU per message of each variant. Shared machines drift by more than the changes being
measured; interleaving short runs spreads the drift over both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--backend", default="asyncio", choices=("asyncio", "trio"))
    p.add_argument("--sessions", default="100")
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    trees = {"before": os.path.abspath(args.before), "after": os.path.abspath(args.after)}
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for r in range(args.rounds):
        for name in trees if r % 2 == 0 else list(reversed(trees)):
            root = trees[name]
            proc = subprocess.run(
                [sys.executable, os.path.join(root, "benchmarks", "bench_actor_path.py"), "--child", args.backend,
                 "--sessions", args.sessions, "--duration", "1", "--reps", "1"],
                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root}, check=True,
            )
            result = json.loads(proc.stdout.strip().splitlines()[-1])[args.sessions]
            for variant, runs in result.items():
                cpu[name].setdefault(variant, []).append(runs[0]["cpu_us_per_call"])
    print(f"\n### CPU us per message, {args.backend}, {args.sessions} sessions, median of {args.rounds}\n")
    print("| checkout | " + " | ".join(cpu["before"]) + " | runtime / baseline |")
    print("|---" * (len(cpu["before"]) + 2) + "|")
    for name, per in cpu.items():
        med = {v: statistics.median(x) for v, x in per.items()}
        cells = " | ".join(f"{m:.1f}" for m in med.values())
        print(f"| {name} ({trees[name]}) | {cells} | {med['runtime'] / med['baseline']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
