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
)


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
        timeout=110,
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
