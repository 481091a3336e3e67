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


def test_readme_tour_runs_from_any_folder(tmp_path: Path) -> None:
    # The tour's first block finds no config.json in an empty folder: it runs on the defaults.
    tour = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)[0]
    assert "va.load_config()" in tour
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    for key in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "VALIS_CONFIG"):
        env.pop(key, None)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", tour], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "persona_fallback" in result.stdout
