"""``valis ask PERSONA -`` reads the message from stdin; ``valis history`` lists the stored sessions."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import ROOT, run


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "personas_dir": str(ROOT / "personas"),
        "providers": [{"type": "scripted", "name": "llm"}],
        "memory": {"path": str(tmp_path / "memory.sqlite3")},
        "max_message_chars": 40,
    }))
    return path


def test_ask_dash_reads_a_long_message_from_a_pipe(config_file: Path) -> None:
    message = "line one\nline two, " + "x" * 20  # 39 characters: within max_message_chars=40
    result = subprocess.run(
        [sys.executable, "-m", "valis_actors.cli", "ask", "jane", "-", "--config", str(config_file), "--json"],
        input=message + "\n", capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == f"llm: {message}"


@pytest.mark.parametrize(("text", "accepted"), [("x" * 40, True), ("x" * 40 + "\n", True), ("x" * 41, False),
                                                ("x" * 40 + "\ny", False), ("x" * 10_000, False)])
def test_ask_dash_is_bounded_by_max_message_chars(
    config_file: Path, text: str, accepted: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = io.StringIO(text)
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out = run("ask", "jane", "-", "--config", str(config_file))
    err = capsys.readouterr().err
    if accepted:
        assert code == 0 and out.startswith("llm: " + "x" * 40 + "\n")
    else:
        assert code == 2 and out == ""
        assert err == ("valis: the message on stdin is over max_message_chars=40 characters; "
                       "shorten it or raise max_message_chars in config.json\n")
        assert stdin.tell() <= 42  # reading stopped just past the limit


def test_ask_dash_with_empty_stdin_is_an_input_error(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    code, _ = run("ask", "jane", "-", "--config", str(config_file))
    assert code == 2 and capsys.readouterr().err.startswith("valis: message is empty")


def test_history_without_a_session_lists_the_stored_sessions(config_file: Path) -> None:
    code, out = run("history", "--config", str(config_file))
    assert code == 0 and out == "no sessions stored yet\n"
    run("ask", "jane", "one", "--session", "work", "--config", str(config_file))
    run("ask", "sam", "two", "--session", "trip", "--config", str(config_file))
    run("ask", "jane", "three", "--session", "trip", "--config", str(config_file))
    run("ask", "jane", "a one-off, not stored", "--config", str(config_file))
    code, out = run("history", "--config", str(config_file))
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["SESSION", "TURNS", "LAST", "ACTIVITY", "PERSONAS"]
    assert [row.split()[:2] for row in rows] == [["trip", "2"], ["work", "1"]]  # the latest first
    assert rows[0].endswith("guide_sam, jane")
    _, shown = run("history", "trip", "--config", str(config_file))
    assert shown.splitlines()[0] == "you: two"


def test_openai_and_anthropic_base_url_variables_point_the_sdks_elsewhere(tmp_path: Path) -> None:
    # What the README says where the keys are: with no base_url in the entry, the SDKs read these.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    server = subprocess.Popen(
        [sys.executable, "-m", "valis_actors.testing.fakeserver", "--port", "0", "--text", "from the fake server"],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip().removeprefix("listening on ")
        assert url.startswith("http://127.0.0.1:")
        for kind, variables in (
            ("openai", {"OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": "sk-test"}),
            ("anthropic", {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-ant-test"}),
        ):
            config = tmp_path / f"{kind}.json"
            config.write_text(json.dumps({"providers": [{"type": kind}], "retry_schedule": []}))
            result = subprocess.run(
                [sys.executable, "-m", "valis_actors.cli", "ask", "jane", "hi", "--config", str(config), "--json"],
                capture_output=True, text=True, timeout=60, check=False, env={**env, **variables},
            )
            assert result.returncode == 0, result.stderr
            reply = json.loads(result.stdout)
            assert (reply["provider"], reply["text"]) == (kind, "from the fake server"), reply
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stdout is not None
        server.stdout.close()
