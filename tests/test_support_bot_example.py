"""examples/support_bot: its demo runs on both backends, and it type-checks with mypy --strict.

Its property test (examples/support_bot/test_support_bot.py) is collected from ``examples/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "examples" / "support_bot"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_support_bot_demo_hands_off_and_answers(backend: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BOT / "app.py"), backend],
        capture_output=True, text=True, env=ENV, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "< 200 {'text': 'llm: My laptop will not boot', 'provider': 'llm', 'handed_off': False}" in lines
    assert any("'provider': 'handoff', 'handed_off': True" in line for line in lines)
    assert "< 400 EmptyMessageError" in lines


def test_the_support_bot_and_its_tests_pass_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(BOT)],
        capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 3 source files" in result.stdout
