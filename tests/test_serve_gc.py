"""``valis serve`` tunes the garbage collector once the app is up; the library never touches it.

Each case runs a real Hypercorn on 127.0.0.1:0 in a child process: ``gc.freeze()`` is
process-wide, so it must not happen inside the test process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from valis_actors.server._serve import GC_THRESHOLDS

CHILD = """
import gc, json, sys
import anyio, httpx
import valis_actors as va
from valis_actors.server import ServerSettings, create_app, run_server

backend, tune = sys.argv[1], sys.argv[2] == "tune"
config = va.Config.from_dict({"providers": [{"name": "scripted", "type": "scripted"}], "memory": {"enabled": False}})
app = create_app(config, settings=ServerSettings())
before = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold(), "enabled": gc.isenabled()}

async def main():
    async with anyio.create_task_group() as tg:
        handle = await tg.start(lambda task_status: run_server(
            app, port=0, handle_signals=False, tune_gc=tune, task_status=task_status))
        async with httpx.AsyncClient(base_url=handle.url, timeout=10) as http:
            status = (await http.get("/healthz")).status_code  # answered once the lifespan is up
        after = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold(), "enabled": gc.isenabled()}
        handle.drain()
    print(json.dumps({"status": status, "before": before, "after": after}))

anyio.run(main, backend=backend)
"""


def _run(backend: str, mode: str) -> dict[str, dict[str, object]]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, backend, mode], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, dict[str, object]] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    return result


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_serve_freezes_the_startup_objects_and_raises_the_young_threshold(backend: str) -> None:
    result = _run(backend, "tune")
    assert result["before"]["frozen"] == 0
    assert isinstance(result["after"]["frozen"], int) and result["after"]["frozen"] > 10_000
    assert result["after"]["threshold"] == list(GC_THRESHOLDS)
    assert result["after"]["enabled"] is True  # tuned, never disabled


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_server_by_default_leaves_the_collector_as_it_found_it(backend: str) -> None:
    result = _run(backend, "default")
    assert result["after"] == result["before"]
    assert result["after"]["frozen"] == 0
