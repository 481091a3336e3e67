"""``valis chat`` through a real subprocess: streaming, Ctrl-C cancels an answer, Ctrl-D leaves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start_chat(tmp_path: Path, backend: str) -> subprocess.Popen[str]:
    config = {
        "personas_dir": str(ROOT / "personas"),
        "providers": [
            {
                "type": "scripted",
                "name": "llm",
                "chunks": 5,
                "script": [{"kind": "answer", "chunk_delay": 3.0}],
            }
        ],
        "memory": {"backend": "memory"},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "valis_actors.cli", "--backend", backend, "chat", "jane", "--config", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=0,
    )


def read_until(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> str:
    assert proc.stdout is not None
    seen = ""
    end = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < end, f"timed out waiting for {marker!r}; got {seen!r}"
        char = proc.stdout.read(1)
        assert char, f"output ended before {marker!r}; got {seen!r}"
        seen += char
    return seen


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_chat_streams_cancels_on_ctrl_c_and_leaves_on_ctrl_d(tmp_path: Path, backend: str) -> None:
    proc = start_chat(tmp_path, backend)
    assert proc.stdin is not None
    try:
        read_until(proc, "you> ")
        proc.stdin.write("first question, answered slowly\n")
        read_until(proc, "Jane> llm")  # the first chunk arrived; the rest comes every 3 s
        proc.send_signal(signal.SIGINT)
        read_until(proc, "[answer cancelled]")
        read_until(proc, "you> ")
        proc.stdin.write("second question\n")
        text = read_until(proc, "you> ")
        assert "llm: second question" in text
        assert "-- jane via llm (scripted-model) in" in text
        proc.stdin.close()  # Ctrl-D
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
