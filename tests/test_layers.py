"""The architecture holds: the import-linter contracts in pyproject.toml (layers, no core -> kit)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_layers_have_no_cycles_and_no_upward_imports() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint], check=False, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_session_actor_never_reaches_into_the_runtime() -> None:
    source = (ROOT / "valis_actors" / "_actors" / "_session.py").read_text()
    assert "runtime._" not in source
    assert "_runtime" not in source
