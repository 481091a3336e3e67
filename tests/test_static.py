"""The house style's static checks run with the tests: mypy (strict) and ruff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, check=False)


def test_mypy_strict_on_the_package() -> None:
    result = run("mypy", "valis_actors")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    folders = [name for name in ("valis_actors", "tests", "examples", "benchmarks") if (ROOT / name).is_dir()]
    result = run("ruff", "check", *folders)
    assert result.returncode == 0, result.stdout + result.stderr
