"""The ``valis`` command line, in-process and through its installed entry point."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_cards_build import png, text_chunk, v2
from valis_actors.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    data: dict[str, Any] = {
        "personas_dir": str(ROOT / "personas"),
        "providers": [{"type": "scripted", "name": "down", "default": {"kind": "unavailable"}}],
        "memory": {"path": str(tmp_path / "memory.sqlite3")},
        "retry_schedule": [],
    }
    path.write_text(json.dumps(data))
    return path


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def test_ask_prints_the_answer_then_who_answered(config_file: Path) -> None:
    code, out = run("ask", "jane", "I have a conflict with my manager", "--config", str(config_file))
    assert code == 0
    answer, info = out.strip().split("\n")
    assert "conflict with my manager" in answer
    assert info.startswith("-- jane via persona_fallback (persona-fallback) in ")
    assert "down: down: scripted unavailable" in info


def test_ask_json_gives_the_whole_reply(config_file: Path) -> None:
    code, out = run("ask", "sam", "Where do I start?", "--config", str(config_file), "--json", "--session", "x")
    assert code == 0
    reply = json.loads(out)
    assert reply["persona_id"] == "guide_sam"
    assert reply["session_id"] == "x"
    assert reply["fallback_used"] is True
    assert reply["attempts"][0]["outcome"] == "unavailable"


def test_history_and_forget(config_file: Path) -> None:
    run("ask", "jane", "first question", "--config", str(config_file), "--session", "h")
    run("ask", "jane", "second question", "--config", str(config_file), "--session", "h")
    code, out = run("history", "h", "--config", str(config_file))
    assert code == 0
    assert out.count("you: ") == 2 and "you: first question" in out
    _, out = run("forget", "h", "--config", str(config_file))
    assert out.strip() == "forgot 2 turns of session 'h'"
    code, out = run("history", "h", "--config", str(config_file))
    assert out.strip() == "no turns stored for session 'h'"


def test_personas_lists_ids_and_aliases(config_file: Path) -> None:
    code, out = run("personas", "--config", str(config_file))
    assert code == 0
    assert "jane" in out and "guide_sam" in out and "aliases: sam" in out


def test_config_check_prints_effective_config(config_file: Path) -> None:
    code, out = run("config", "check", str(config_file))
    assert code == 0
    assert json.loads(out)["providers"][-1]["type"] == "persona_fallback"


def test_config_check_reports_errors_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"retry_schedule": [1, -2]}')
    code, _ = run("config", "check", str(bad))
    err = capsys.readouterr().err
    assert code == 2
    assert "retry_schedule[1] must be >= 0 (got -2.0) @ $.retry_schedule[1]" in err
    bad.write_text('{"max_concurent_requests": 3}')
    code, _ = run("config", "check", str(bad))
    err = capsys.readouterr().err
    assert code == 2
    assert "did you mean 'max_concurrent_requests'?" in err
    assert "Traceback" not in err


def test_config_schema_is_json_schema() -> None:
    code, out = run("config", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["type"] == "object"
    assert schema["properties"]["retry_schedule"]["type"] == "array"
    assert "session" in schema["properties"]


def test_bad_input_is_one_line_and_exit_2(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run("ask", "../x", "hi", "--config", str(config_file))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("valis: invalid persona id '../x'") and err.count("\n") == 1


def test_entry_point_runs_on_trio_too(config_file: Path) -> None:
    env = {**os.environ, "VALIS_CONFIG": str(config_file)}
    result = subprocess.run(
        [sys.executable, "-m", "valis_actors.cli", "--backend", "trio", "ask", "emma", "I keep procrastinating"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "-- coach_emma via persona_fallback" in result.stdout


def test_backend_trio_without_trio_is_one_clear_line_and_exit_2() -> None:
    code = (
        "import sys; sys.modules['trio'] = None\n"
        "from valis_actors.cli import main\n"
        "sys.exit(main(['--backend', 'trio', 'ask', 'jane', 'hi']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == "valis: --backend trio needs trio: pip install 'valis_actors[trio]'"


def test_ask_matches_ids_in_any_case(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("ask", "Jane", "hello", "--config", str(config_file), "--session", "case")
    assert code == 0 and "-- jane via" in out
    assert "warning" not in capsys.readouterr().err


def test_ask_with_an_unknown_id_warns_and_names_the_known_ones(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run("ask", "nobody", "hello", "--config", str(config_file), "--session", "unknown")
    err = capsys.readouterr().err
    assert code == 0 and "-- nobody via persona_fallback" in out
    assert err == (
        "valis: warning: unknown persona 'nobody'; answering as the neutral persona. "
        "Known: advisor_alex, coach_emma, guide_sam, jane\n"
    )


@pytest.fixture
def cards_config(tmp_path: Path) -> Path:
    (tmp_path / "personas").mkdir()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mira.png").write_bytes(png(text_chunk("chara", v2())))
    (tmp_path / "in" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "personas_dir": "personas", "user_name": "Ann", "providers": [], "memory": {"enabled": False},
    }))
    return path


def test_personas_import_show_export_a_card(cards_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = cards_config.parent
    code, out = run("personas", "import", str(folder / "in" / "mira.png"), str(folder / "in" / "bad.png"),
                    "--config", str(cards_config))
    err = capsys.readouterr().err
    assert code == 2  # one file was refused
    assert out.startswith("imported mira.png as mira-") and err.startswith("not imported: bad.png: ")
    [copied] = (folder / "personas").iterdir()
    assert copied.read_bytes() == (folder / "in" / "mira.png").read_bytes()
    code, out = run("personas", "--config", str(cards_config))
    assert code == 0 and "Mira (aliases: mira) [card]" in out
    code, out = run("personas", "show", "Mira", "--config", str(cards_config))
    assert code == 0
    assert out.startswith("Write Mira's next reply in a fictional chat between Mira and Ann")
    assert "[the conversation so far goes here]" in out
    code, out = run("personas", "export", "mira", "--format", "json", "--config", str(cards_config))
    assert code == 0 and json.loads(out) == v2()
    target = folder / "out.png"
    code, out = run("personas", "export", "mira", "--format", "png", "-o", str(target), "--config", str(cards_config))
    assert code == 0 and target.read_bytes().startswith(b"\x89PNG")


def test_personas_show_and_export_refuse_clearly(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("personas", "show", "sam", "--config", str(config_file))
    assert code == 0 and out.startswith("You are Sam")
    code, _ = run("personas", "show", "nobody", "--config", str(config_file))
    assert code == 2 and "unknown persona 'nobody'; known: advisor_alex" in capsys.readouterr().err
    code, _ = run("personas", "export", "jane", "--config", str(config_file))
    err = capsys.readouterr().err
    assert code == 2 and err == "valis: 'jane' is a VALIS persona file, not a character card; only cards export\n"


def test_ask_without_a_session_is_a_one_off_that_stores_nothing(config_file: Path) -> None:
    code, _ = run("ask", "jane", "a one-off question", "--config", str(config_file))
    assert code == 0
    code, out = run("ask", "jane", "another one", "--config", str(config_file), "--json")
    assert json.loads(out)["session_id"].startswith("cli-")
    for session in ("cli", json.loads(out)["session_id"]):
        _, history = run("history", session, "--config", str(config_file))
        assert history.strip() == f"no turns stored for session {session!r}"


def test_an_unknown_persona_under_unknown_persona_error_exits_2_like_every_input_error(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**data, "unknown_persona": "error"}))
    code, _ = run("ask", "nobody", "hello", "--config", str(config_file))
    assert code == 2
    assert "nobody" in capsys.readouterr().err
