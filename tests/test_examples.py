"""The examples run as a user would run them (each prints and checks its own results)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "argv",
    [["asyncio_app.py"], ["trio_app.py"], ["provider_demo.py"], ["provider_demo.py", "trio"]],
    ids=lambda argv: "-".join(argv),
)
def test_example_runs(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / argv[0]), *argv[1:]],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
