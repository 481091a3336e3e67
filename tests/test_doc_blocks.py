"""Every ```python block in README.md and docs/ runs (```py marks a fragment that is not run).

Blocks run in a fresh interpreter from the repository root, with the home and data folders in a
temporary directory, so the memory store never touches the real home.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    pytest.param(block, id=f"{path.name}:{number}")
    for path in FILES
    for number, block in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.DOTALL), 1)
]


@pytest.mark.parametrize("code", BLOCKS)
def test_code_block_runs(code: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "VALIS_CONFIG"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


def test_there_are_blocks_to_run() -> None:
    assert len(BLOCKS) >= 3
