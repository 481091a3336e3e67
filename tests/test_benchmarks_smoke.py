"""The benchmark scripts keep working: each runs with ``--quick`` and prints its table.

No timing is asserted: ``--quick`` sizes measure nothing; docs/performance.md holds
the real figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = (
    "bench_actor_path",
    "bench_sessions",
    "bench_http",
    "bench_import",
    "bench_cascade",
    "bench_memory",
    "bench_server",
    "bench_stream_faults",
    "gc_task_hop",
    "bench_cluster",  # starts its own redis-server (installed by .ci/run)
    "bench_instructions",  # runs under valgrind (installed by .ci/run)
)


# Runs under valgrind, whose start-up with the SDKs' imports takes 10-30 s a run on a loaded machine.
SLOW = {"bench_instructions": 300}


def _run(script: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("VALIS_BENCH_LITELLM_PYTHON", None)  # LiteLLM has its own test below
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / f"{script}.py"),
            "--quick",
            "--json",
            str(tmp_path / "out.json"),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=SLOW.get(script, 110),
        check=False,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_quick_run_prints_its_table_and_json(script: str, tmp_path: Path) -> None:
    proc = _run(script, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "\n### " in proc.stdout and "|---" in proc.stdout, proc.stdout
    assert "target" in proc.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["results"] and data["machine"]["python"]


def _litellm_python() -> str | None:
    if importlib.util.find_spec("litellm") is not None:
        return sys.executable
    return os.environ.get("VALIS_BENCH_LITELLM_PYTHON")


def test_benchmark_http_quick_run_compares_with_litellm(tmp_path: Path) -> None:
    python = _litellm_python()
    if python is None:
        pytest.skip(
            "litellm is not installed (optional; or set VALIS_BENCH_LITELLM_PYTHON to an interpreter with it)"
        )
    proc = _run("bench_http", "--litellm-python", python, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LiteLLM Router fallback path" in proc.stdout, proc.stdout


def _bench_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_paired_ratios_give_a_repeatable_interval_and_an_honest_verdict() -> None:
    c = _bench_common()
    paired, verdict = c.paired, c.verdict
    base = [100.0, 120.0, 90.0, 110.0, 100.0, 95.0]
    steady = paired(base, [x * 1.02 for x in base])  # a 2 % change, whatever the drift between rounds
    assert steady["pairs"] == 6
    assert steady["low"] == pytest.approx(1.02) and steady["high"] == pytest.approx(1.02)
    assert verdict(steady["low"], steady["high"], 1.05, steady["pairs"]) == "met"
    noisy = paired(base, [x * f for x, f in zip(base, (0.9, 1.2, 1.0, 1.15, 0.95, 1.1))])
    assert noisy["low"] < 1.05 < noisy["high"]
    assert noisy == paired(base, [x * f for x, f in zip(base, (0.9, 1.2, 1.0, 1.15, 0.95, 1.1))])  # fixed seed
    assert verdict(noisy["low"], noisy["high"], 1.05, noisy["pairs"]) == "within noise of the target"
    assert verdict(1.1, 1.3, 1.05, 6) == "NOT met"
    assert verdict(1.0, 1.0, 1.05, 2).startswith("too few runs")
    assert paired([0.0, float("nan")], [1.0, 1.0])["pairs"] == 0  # runs that measured nothing are left out
