"""``valis chat`` through a real subprocess (and a real pty): streaming, sessions, Ctrl-C, Ctrl-D."""

from __future__ import annotations

import json
import os
import re
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


def chat_command(config: Path, backend: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "valis_actors.cli", "--backend", backend, "chat", "jane", "--config", str(config),
            *extra]


def write_config(tmp_path: Path, memory: dict[str, str]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "personas_dir": str(ROOT / "personas"),
        "providers": [{"type": "scripted", "name": "llm"}],
        "memory": memory,
    }))
    return path


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_chat_ctrl_c_at_the_prompt_clears_the_line_and_a_second_one_leaves(tmp_path: Path, backend: str) -> None:
    # A real terminal: the line discipline turns ^C into SIGINT and drops the half-typed line.
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        chat_command(write_config(tmp_path, {"backend": "memory"}), backend),
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),  # noqa: PLW1509 - the pty becomes the controlling tty
    )
    os.close(slave)
    seen = ""

    def until(marker: str) -> str:
        nonlocal seen
        end = time.monotonic() + 30
        while marker not in seen:
            assert time.monotonic() < end, f"timed out waiting for {marker!r}; got {seen!r}"
            try:
                seen += os.read(master, 1024).decode(errors="replace")
            except OSError:  # EIO: the child closed the terminal
                raise AssertionError(f"output ended before {marker!r}; got {seen!r}") from None
        before, _, seen = seen.partition(marker)
        return before

    try:
        until("you> ")
        os.write(master, b"half a line")
        until("half a line")  # echoed: the terminal holds it
        os.write(master, b"\x03")
        until("(Ctrl-C cleared the line; press it again or Ctrl-D to leave)")
        until("you> ")
        os.write(master, b"hello\n")
        answer = until("you> ")
        assert "llm: hello" in answer and "half a line" not in answer
        os.write(master, b"\x03")
        until("press it again or Ctrl-D to leave")
        until("you> ")
        os.write(master, b"\x03")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_chat_starts_a_new_session_unless_told_to_resume_one(tmp_path: Path, backend: str) -> None:
    config = write_config(tmp_path, {"path": str(tmp_path / "m.db")})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def chat(*extra: str, text: str) -> str:
        result = subprocess.run(chat_command(config, backend, *extra), input=text, capture_output=True, text=True,
                                env=env, timeout=60, check=True)
        return result.stdout

    first = chat(text="first words\n")
    session = re.search(r"\(session '(chat-[0-9a-f]{12})', new; resume it with --session \1\)", first)
    assert session is not None, first
    other = chat(text="unrelated\n")
    assert session.group(1) not in other and "new; resume it" in other
    resumed = chat("--session", session.group(1), text="and more\n")
    assert f"(session '{session.group(1)}', resumed)" in resumed
    listing = subprocess.run(
        [sys.executable, "-m", "valis_actors.cli", "history", "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    ).stdout.splitlines()
    assert listing[0].split() == ["SESSION", "TURNS", "LAST", "ACTIVITY", "PERSONAS"]
    rows = {line.split()[0]: line.split() for line in listing[1:]}
    assert len(rows) == 2 and rows[session.group(1)][1] == "2" and rows[session.group(1)][-1] == "jane"


def test_chat_survives_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"backend": "memory"})
    result = subprocess.run(chat_command(config, "asyncio"), input=b"caf\xff\n", capture_output=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}, check=False)
    assert result.returncode == 0, result.stderr
    assert "llm: caf\ufffd" in result.stdout.decode()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_chat_shows_a_restarted_answer_when_no_provider_can_continue_a_cut_one(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "personas_dir": str(ROOT / "personas"),
        "providers": [{
            "type": "scripted", "name": "llm", "chunks": 4,
            "script": [{"kind": "cut", "text": "a story cut short", "after_chunks": 2}],
            "default": {"kind": "answer", "text": "a story told whole"},
        }],
        "retry_schedule": [0.1],
        "memory": {"backend": "memory"},
    }))
    proc = subprocess.run(
        chat_command(path, backend), input="tell me a story\n", capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[the answer was cut and starts again:" in proc.stdout
    assert proc.stdout.split("starts again:")[1].split("\n", 2)[1].startswith("Jane> a story told whole")
