"""``valis serve`` in cluster mode: real Hypercorn on 127.0.0.1:0, real redis-server, asyncio and trio.

Two servers in one test process share one Redis and stand for two workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

import valis_actors as va
from tests.server_support import chat_body, make_config, serve
from tests.support import eventually
from tests.test_cluster_redis import (  # noqa: F401 - the shared fixtures
    RedisServer,
    anyio_backend_fixture,
    collect_coredis_garbage,
    redis_server_fixture,
)
from valis_actors.server._errors import from_valis_error
from valis_actors.testing import Step

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")]

SESSION = {"x-session-id": "s1"}


def cluster_config(server: RedisServer, **cluster: Any) -> va.Config:
    return make_config(
        {"name": "scripted", "type": "scripted"},
        cluster={"redis_url": server.url, "lease_ttl": 2.0, "linger": 0.05, **cluster},
    )


async def test_readyz_and_metrics_show_the_cluster(redis_server: RedisServer) -> None:
    # The lease lingers long enough to be seen held by the next request on a loaded machine.
    async with serve(cluster_config(redis_server, command_timeout=0.2, linger=30)) as served:
        assert served.service.cluster is not None
        reply = await served.http.post("/v1/chat/completions", json=chat_body("hi"), headers=SESSION)
        assert reply.status_code == 200
        ready = await served.http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["cluster"] == {"redis": "up", "leases_held": 1, "circuits": "shared"}
        metrics = (await served.http.get("/metrics")).text
        assert "valis_cluster_redis_up 1" in metrics
        assert "valis_cluster_lease_grants_total 1" in metrics
        assert "valis_cluster_stale_epoch_rejections_total 0" in metrics
        redis_server.stop()
        down = await served.http.get("/readyz")
        assert down.status_code == 503 and down.headers["retry-after"]
        assert down.json()["status"] == "redis_unavailable" and down.json()["cluster"]["redis"] == "down"
        refused = await served.http.post("/v1/chat/completions", json=chat_body("new"),
                                         headers={"x-session-id": "s-new"})
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert refused.json()["error"]["code"] == "cluster_unavailable"
        assert "valis_cluster_redis_up 0" in (await served.http.get("/metrics")).text
        redis_server.start()


async def test_a_session_held_by_another_worker_is_a_503_with_retry_after(redis_server: RedisServer) -> None:
    redis_server.command("SET", "valis:lease:{s1}", "another-worker", "PX", "4000")
    config = make_config({"name": "scripted", "type": "scripted"}, response_deadline=0.5,
                         cluster={"redis_url": redis_server.url, "lease_ttl": 4.0})
    async with serve(config) as served:
        reply = await served.http.post("/v1/chat/completions", json=chat_body("hi"), headers=SESSION)
        assert reply.status_code == 503
        assert reply.json()["error"]["code"] == "session_busy_elsewhere"
        assert 1 <= int(reply.headers["retry-after"]) <= 4
        assert reply.headers["x-should-retry"] == "true"
        assert served.scripted().calls == []


async def test_a_retried_request_is_answered_once_across_workers(redis_server: RedisServer) -> None:
    config = cluster_config(redis_server)
    async with serve(config) as first, serve(config) as second:
        first.scripted().script(Step.answer("the one answer", delay=0.2))
        headers = {**SESSION, "idempotency-key": "turn-1"}

        async def post(served: Any, out: list[Any]) -> None:
            out.append(await served.http.post("/v1/chat/completions", json=chat_body("hi"), headers=headers))

        replies: list[Any] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(post, first, replies)
            await eventually(lambda: first.scripted().in_flight)  # until the first worker is answering
            tg.start_soon(post, second, replies)  # the SDK's retry, landed on the other worker
        assert [r.status_code for r in replies] == [200, 200]
        assert {r.json()["choices"][0]["message"]["content"] for r in replies} == {"the one answer"}
        assert len(first.scripted().calls) + len(second.scripted().calls) == 1
        stored = await first.service.cluster.cluster.memory.recent("s1", None, 10)  # type: ignore[union-attr]
        assert [t.user for t in stored] == ["hi"]  # stored once


def test_cluster_errors_map_to_retryable_503s() -> None:
    from valis_actors import cluster

    timeout = from_valis_error(cluster.LeaseTimeoutError("held", session_id="s", retry_after=2.4))
    assert (timeout.status, timeout.code, timeout.retry, timeout.retry_after) == (503, "session_busy_elsewhere",
                                                                                   True, 2.4)
    stale = from_valis_error(cluster.StaleEpochError({"s": (1, 2)}))
    assert (stale.status, stale.code, stale.retry) == (503, "stale_owner", True)
    down = from_valis_error(cluster.ClusterUnavailableError("down"))
    assert (down.status, down.retry_after) == (503, 5.0)
    assert from_valis_error(va.MemoryStoreError("disk full")).status == 500


def test_workers_above_one_need_cluster_mode(tmp_path: Path) -> None:
    from valis_actors.server._workers import check_workers

    check_workers(1, va.Config(), environ={})
    check_workers(4, va.Config(), environ={"VALIS_REDIS_URL": "redis://127.0.0.1:1/0"})
    with pytest.raises(va.ConfigError, match="needs cluster mode"):
        check_workers(2, va.Config(), environ={})
    with pytest.raises(va.ConfigError, match="between 1 and"):
        check_workers(0, va.Config(), environ={})
    config = tmp_path / "config.json"
    config.write_text('{"memory": {"backend": "memory"}}')
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "valis_actors.cli", "serve", "--workers", "2", "--port", "0",
                           "--config", str(config)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "needs cluster mode" in done.stderr


def test_a_server_without_cluster_mode_never_imports_the_cluster_package() -> None:
    code = (
        "import sys, anyio\n"
        "from valis_actors.server import create_app\n"
        "from valis_actors.server._errors import from_valis_error\n"
        "import valis_actors as va\n"
        "create_app(va.Config.from_dict({'memory': {'backend': 'memory'}}), settings=None)\n"
        "from_valis_error(va.MemoryStoreError('x'))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('valis_actors.cluster', 'coredis'))))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"




async def test_a_streamed_answer_in_cluster_mode_is_delivered_and_stored(redis_server: RedisServer) -> None:
    async with serve(cluster_config(redis_server)) as served:
        async with served.http.stream(
            "POST", "/v1/chat/completions", json=chat_body("tell me", stream=True), headers=SESSION
        ) as response:
            assert response.status_code == 200
            events = [line[5:].strip() async for line in response.aiter_lines() if line.startswith("data:")]
        assert events[-1] == "[DONE]"
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
        assert text == "scripted: tell me"
        stored = await served.service.cluster.cluster.memory.recent("s1", None, 10)  # type: ignore[union-attr]
        assert [(t.user, t.assistant) for t in stored] == [("tell me", "scripted: tell me")]
