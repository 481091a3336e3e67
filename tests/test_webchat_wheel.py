"""The web chat page ships in the wheel: its files are package data, read through importlib.resources."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ("index.html", "app.js", "style.css")


def test_webchat_files_ship_in_the_wheel_and_load_from_it(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert {f"valis_actors/server/static/{name}" for name in FILES} <= set(archive.namelist())
        archive.extractall(tmp_path / "site")
    # The server reads them the same way, from wherever the package is installed.
    code = ("from valis_actors.server._webchat import _read; "
            "print(*(len(_read(n)) for n in ('index.html', 'app.js', 'style.css')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")},
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    sizes = [int(n) for n in result.stdout.split()]
    assert sizes == [len((ROOT / "valis_actors" / "server" / "static" / n).read_bytes()) for n in FILES]
