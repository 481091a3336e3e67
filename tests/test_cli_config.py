"""``valis config check`` reports every problem at once, personas included; exit codes are listed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import ROOT, run
from valis_actors.cli._main import EXIT_CODES


def test_config_check_reports_every_problem_in_one_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"retry_schedule": [1, -2], "session": {"idle_timout": 5}}))
    code, out = run("config", "check", str(bad))
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert err == (
        f"valis: {bad}: 2 problems\n"
        "  - retry_schedule[1] must be >= 0 (got -2.0) @ $.retry_schedule[1]\n"
        "  - unknown key 'idle_timout'; did you mean 'idle_timeout'? @ $.session\n"
    )


def test_config_check_lists_problems_of_every_section_and_provider_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({
        "max_concurrent_requests": 0,
        "unknown_persona": "eror",
        "memory": {"backend": "redis", "max_turns": -1},
        "providers": [{"type": "openai", "temperature": 3, "max_tokens": 0}, {"type": "opnai"}],
    }))
    code, _ = run("config", "check", str(bad))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"valis: {bad}: 7 problems\n")
    for line in (
        "max_concurrent_requests must be >= 1 (got 0) @ $.max_concurrent_requests",
        "unknown_persona must be one of 'neutral', 'error' (got 'eror'); did you mean 'error'? @ $.unknown_persona",
        "memory.backend must be one of 'sqlite', 'memory' (got 'redis') @ $.memory.backend",
        "memory.max_turns must be >= 0 (got -1) @ $.memory.max_turns",
        "temperature must be between 0 and 2 (got 3.0) @ $.providers[0].temperature",
        "max_tokens must be >= 1 (got 0) @ $.providers[0].max_tokens",
        "providers[1].type is an unknown provider type 'opnai'; did you mean 'openai'?",
    ):
        assert line in err


def test_config_check_refuses_a_personas_dir_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"personas_dir": "missing"}))
    code, out = run("config", "check", str(path))
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert f"personas_dir '{tmp_path / 'missing'}' is not a directory; create it or fix personas_dir" in err


def test_config_check_reports_every_bad_persona_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    shutil.copy(ROOT / "personas" / "jane.json", folder)
    (folder / "broken.json").write_text("{ not json")
    (folder / "typo.json").write_text(json.dumps({"id": "typo", "name": 5}))
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"personas_dir": "personas"}))
    code, out = run("config", "check", str(path))
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert err.startswith(f"valis: {path}: 2 persona files in {folder} cannot be used\n")
    assert "  - broken.json: invalid JSON at line 1, column 3" in err
    assert "  - typo.json: " in err and "$.name" in err
    (folder / "broken.json").unlink()
    (folder / "typo.json").unlink()
    code, out = run("config", "check", str(path))
    assert code == 0 and json.loads(out)["personas_dir"] == str(folder)


def test_help_lists_the_exit_codes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "valis_actors.cli", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert EXIT_CODES in result.stdout
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in EXIT_CODES


def test_every_input_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"providers": [], "memory": {"backend": "memory"}}))
    cases = [
        ("ask", "jane", "", "--config", str(path)),  # empty message
        ("ask", "../x", "hi", "--config", str(path)),  # malformed persona id
        ("ask", "jane", "hi", "--session", "s" * 300, "--config", str(path)),  # session id too long
        ("ask", "jane", "hi", "--config", str(tmp_path / "none.json")),  # no such config file
        ("personas", "export", "jane", "-o", str(tmp_path / "no" / "dir" / "x.json"), "--config", str(path)),
        ("config", "check", str(tmp_path / "none.json")),
    ]
    for argv in cases:
        code, _ = run(*argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert err.startswith("valis: ") and "Traceback" not in err
