"""Cluster mode across real processes: leases contended by plain workers, then `valis serve` workers
behind the test acting as the load balancer, with SIGKILL and SIGSTOP mid-turn, and their shared
breaker against a dead provider (a fake LLM server in the test process).

Real time (processes, sockets), bounded waits; the journal's times come from
CLOCK_MONOTONIC, one clock for every process of the host.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.test_cluster_redis import (  # noqa: F401 - the shared fixtures
    RedisServer,
    anyio_backend_fixture,
    collect_coredis_garbage,
    redis_server_fixture,
)

WORKER = r"""
import os, sys, time
import anyio
from valis_actors import Turn
from valis_actors.cluster import open_cluster, ClusterSettings

url, journal, backend, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def log(line):
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)

async def main():
    async with open_cluster(ClusterSettings(url), lease_ttl=5, linger=0) as c:
        for n in range(rounds):
            lease = await c.leases.acquire("hot", anyio.current_time() + 30)
            start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the host
            await anyio.sleep(0.003)
            await c.memory.append([("hot", Turn(f"{os.getpid()}-{n}", "a", "jane"))], 1000,
                                  epochs={"hot": lease.epoch})
            end = time.monotonic()
            log(f"{os.getpid()} {lease.epoch} {start!r} {end!r}")
            await c.leases.release("hot")

anyio.run(main, backend=backend)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_lease_one_owner_at_a_time_across_processes(
    redis_server: RedisServer, tmp_path: Path, backend: str
) -> None:
    journal = tmp_path / "journal"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_server.url, str(journal), backend, "8"],
            env=env,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
    rows = [line.split() for line in journal.read_text().splitlines()]
    assert len(rows) == 24 and len({pid for pid, *_ in rows}) == 3
    intervals = sorted((float(start), float(end), int(epoch)) for _, epoch, start, end in rows)
    for (_, end, epoch), (next_start, _, next_epoch) in itertools.pairwise(intervals):
        assert end <= next_start, "two processes held the session at once"
        assert epoch < next_epoch, "epochs must grow with each grant"
    stored = redis_server.command("LRANGE", "valis:turns:{hot}:jane", "0", "-1")
    assert isinstance(stored, list) and len(stored) == 24  # every holder's write was accepted


# --- `valis serve` workers, the test as the load balancer ---------------------------------

SERVE_WORKER = r"""
import os, sys, time
import anyio
import valis_actors as va

JOURNAL = os.environ["VALIS_TEST_JOURNAL"]

def log(*fields):
    fd = os.open(JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (" ".join(map(str, fields)) + "\n").encode())
    finally:
        os.close(fd)

@va.register_provider("journal")
class Journal(va.BaseProvider):
    # Journals (start|end, pid, session, message, CLOCK_MONOTONIC): one clock for every process.
    async def get_response(self, request):
        log("start", os.getpid(), request.session_id, request.message, repr(time.monotonic()))
        await anyio.sleep(1.0 if request.message.startswith("slow") else 0.005)
        log("end", os.getpid(), request.session_id, request.message, repr(time.monotonic()))
        return va.ProviderResponse(f"{os.getpid()}: {request.message}", "journal")

from valis_actors.cli import main
sys.exit(main(sys.argv[1:]))
"""

PERSONAS = str(Path(__file__).resolve().parent.parent / "personas")


class Workers:
    """``valis serve`` processes, each on its own 127.0.0.1:0, sharing one config and one Redis."""

    def __init__(self, tmp_path: Path, redis: RedisServer, backend: str, **cluster: object) -> None:
        self.tmp_path = tmp_path
        self.journal = tmp_path / "journal"
        self.config = tmp_path / "config.json"
        self.config.write_text(json.dumps({
            "providers": [{"name": "journal", "type": "journal"}],
            "personas_dir": PERSONAS,
            "retry_schedule": [],
            "response_deadline": 10,
            "provider_timeout": 5,
            "cluster": {"redis_url": redis.url, "lease_ttl": 1.0, "linger": 0.05, **cluster},
        }))
        self.backend = backend
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []

    def start(self, count: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
               "VALIS_TEST_JOURNAL": str(self.journal)}
        env.pop("VALIS_REDIS_URL", None)
        logs = []
        for n in range(count):
            log = self.tmp_path / f"worker{n}.log"
            logs.append(log)
            with log.open("wb") as out:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-c", SERVE_WORKER, "serve", "--port", "0", "--backend", self.backend,
                     "--config", str(self.config)], env=env, stdout=subprocess.DEVNULL, stderr=out))
        for process, log in zip(self.processes, logs, strict=True):
            for _ in range(3000):  # bounded: 30 s for the worker to import and listen
                found = re.search(r"valis serve: (http://127\.0\.0\.1:\d+)/v1", log.read_text(errors="replace"))
                if found:
                    self.urls.append(found.group(1))
                    break
                assert process.poll() is None, log.read_text(errors="replace")
                time.sleep(0.01)
            else:
                pytest.fail(f"a worker did not start: {log.read_text(errors='replace')}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def rows(self) -> list[list[str]]:
        return [line.split() for line in self.journal.read_text().splitlines()] if self.journal.exists() else []

    def intervals(self, session: str, killed: dict[int, float] | None = None) -> list[tuple[float, float, str]]:
        """(start, end, message) of every provider call of ``session``; a killed worker's call ends at its kill."""
        starts: dict[tuple[str, str], float] = {}
        out = []
        for kind, pid, sid, message, at in self.rows():
            if sid != session:
                continue
            if kind == "start":
                starts[(pid, message)] = float(at)
            else:
                out.append((starts.pop((pid, message)), float(at), message))
        for (pid, message), start in starts.items():  # never ended: killed (or stopped) mid-call
            out.append((start, (killed or {}).get(int(pid), float("inf")), message))
        return sorted(out)

    async def started(self, message: str) -> int:
        """Wait until some worker's provider started ``message``; its pid."""
        for _ in range(2000):  # bounded: 10 s
            for kind, pid, _, logged, _ in self.rows():
                if kind == "start" and logged == message:
                    return int(pid)
            await anyio.sleep(0.005)
        raise AssertionError(f"no worker started {message!r}")


@pytest.fixture
def workers(tmp_path: Path, redis_server: RedisServer, anyio_backend: str) -> Iterator[Workers]:
    group = Workers(tmp_path, redis_server, anyio_backend)
    try:
        yield group
    finally:
        group.stop()


def assert_no_overlap(intervals: list[tuple[float, float, str]]) -> None:
    for (_, end, first), (start, _, second) in itertools.pairwise(intervals):
        assert end <= start, f"{first!r} and {second!r} ran at once in two workers"


def stored(redis: RedisServer, session: str) -> list[str]:
    raw = redis.command("LRANGE", f"valis:turns:{{{session}}}:jane", "0", "-1")
    assert isinstance(raw, list)
    return [json.loads(item)[0] for item in raw]


def chat(message: str) -> dict[str, object]:
    return {"model": "jane", "messages": [{"role": "user", "content": message}]}


@pytest.mark.anyio
async def test_workers_answer_each_session_in_order_once(workers: Workers, redis_server: RedisServer) -> None:
    workers.start(3)
    rng = random.Random(7)
    sent: dict[str, list[str]] = {}
    async with httpx.AsyncClient(timeout=30) as http:

        async def client(session: str) -> None:
            for n in range(5):
                message = f"{session}-{n}"
                url = rng.choice(workers.urls)  # the load balancer: any worker, any time
                reply = await http.post(f"{url}/v1/chat/completions", json=chat(message),
                                        headers={"x-session-id": session})
                assert reply.status_code == 200, reply.text
                assert reply.json()["choices"][0]["message"]["content"].endswith(f": {message}")
                sent.setdefault(session, []).append(message)

        async with anyio.create_task_group() as tg:
            for session in ("a", "b", "c"):
                tg.start_soon(client, session)
    pids = {int(pid) for _, pid, *_ in workers.rows()}
    assert len(pids) >= 2, "the load balancer spread the sessions"
    for session, messages in sent.items():
        intervals = workers.intervals(session)
        assert [m for *_, m in intervals] == messages  # each answered once, in send order
        assert_no_overlap(intervals)
        assert stored(redis_server, session) == messages


@pytest.mark.anyio
async def test_a_worker_killed_mid_turn_gives_the_session_up_within_the_ttl(
    workers: Workers, redis_server: RedisServer
) -> None:
    workers.start(2)
    async with httpx.AsyncClient(timeout=30) as http:
        first = http.post(f"{workers.urls[0]}/v1/chat/completions", json=chat("slow-killed"),
                          headers={"x-session-id": "k"})
        async with anyio.create_task_group() as tg:
            outcome: list[object] = []

            async def send_first() -> None:
                try:
                    outcome.append(await first)
                except httpx.HTTPError as exc:
                    outcome.append(exc)

            tg.start_soon(send_first)
            pid = await workers.started("slow-killed")
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
        assert isinstance(outcome[0], httpx.HTTPError)  # the killed turn got no answer
        reply = await http.post(f"{workers.urls[1]}/v1/chat/completions", json=chat("after"),
                                headers={"x-session-id": "k"})
        assert reply.status_code == 200, reply.text
    intervals = workers.intervals("k", killed={pid: killed_at})
    assert [m for *_, m in intervals] == ["slow-killed", "after"]
    assert_no_overlap(intervals)
    assert intervals[1][0] >= killed_at  # the next owner started only once the killed one was gone
    assert stored(redis_server, "k") == ["after"]  # the killed turn was never stored


@pytest.mark.anyio
async def test_a_worker_paused_past_the_ttl_never_answers_or_stores_its_stale_turn(
    workers: Workers, redis_server: RedisServer
) -> None:
    workers.start(2)
    async with httpx.AsyncClient(timeout=30) as http:
        outcome: list[httpx.Response] = []

        async def send_first() -> None:
            outcome.append(await http.post(f"{workers.urls[0]}/v1/chat/completions", json=chat("slow-paused"),
                                           headers={"x-session-id": "p"}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_first)
            pid = await workers.started("slow-paused")
            os.kill(pid, signal.SIGSTOP)  # a GC pause longer than the lease ttl
            try:
                reply = await http.post(f"{workers.urls[1]}/v1/chat/completions", json=chat("meanwhile"),
                                        headers={"x-session-id": "p"})
            finally:
                os.kill(pid, signal.SIGCONT)
        assert reply.status_code == 200, reply.text
        [stale] = outcome
        assert stale.status_code == 503, stale.text  # its answer is discarded, never returned
        assert stale.json()["error"]["code"] in ("lease_lost", "stale_owner")
        assert stale.headers["x-should-retry"] == "true"
    assert stored(redis_server, "p") == ["meanwhile"]


def test_serve_workers_share_one_port_and_stop_on_sigterm(tmp_path: Path, redis_server: RedisServer) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "providers": [{"name": "scripted", "type": "scripted"}],
        "personas_dir": PERSONAS,
        "cluster": {"redis_url": redis_server.url, "lease_ttl": 2.0, "linger": 0.05},
    }))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("VALIS_REDIS_URL", None)
    log = tmp_path / "parent.log"
    with log.open("wb") as out:
        parent = subprocess.Popen([sys.executable, "-m", "valis_actors.cli", "serve", "--workers", "2",
                                   "--port", "0", "--config", str(config)], env=env, stdout=out, stderr=out)
    try:
        for _ in range(3000):  # bounded: 30 s
            found = re.search(r"2 workers on (http://127\.0\.0\.1:\d+)/v1 \(pids (\d+), (\d+)\)", log.read_text())
            if found:
                break
            assert parent.poll() is None, log.read_text()
            time.sleep(0.01)
        else:
            pytest.fail(log.read_text())
        url, pids = found.group(1), {int(found.group(2)), int(found.group(3))}
        with httpx.Client(timeout=30) as http:
            for _ in range(3000):  # bounded: until both workers' runtimes are up
                try:
                    if http.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.01)
            for n in range(6):
                reply = http.post(f"{url}/v1/chat/completions", json=chat(f"m{n}"), headers={"x-session-id": "w"})
                assert reply.status_code == 200, reply.text
        assert stored(redis_server, "w") == [f"m{n}" for n in range(6)]
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        for pid in pids:  # every worker drained and exited
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)


@pytest.mark.anyio
async def test_workers_share_one_breaker_against_a_dead_provider(
    workers: Workers, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from valis_actors.testing.fakeserver import Fault, open_fake_llm_server

    threshold, cooldown, count = 3, 2.0, 4
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy")  # the workers inherit it
    tripped_key = "valis:breaker:{openai}:tripped"  # from opening until a probe succeeds
    async with open_fake_llm_server(default=Fault.status(503)) as server:  # dead: every request fails
        workers.config.write_text(json.dumps({
            "providers": [{"name": "openai", "type": "openai", "base_url": server.openai_base_url}],
            "personas_dir": PERSONAS,
            "retry_schedule": [],
            "circuit_breaker_threshold": threshold,
            "circuit_breaker_timeout": cooldown,
            "response_deadline": 10,
            "provider_timeout": 5,
            "cluster": {"redis_url": redis_server.url, "lease_ttl": 1.0, "linger": 0.05},
        }))
        workers.start(count)
        async with httpx.AsyncClient(timeout=30) as http:

            async def circuit(url: str) -> str | None:
                reply = await http.get(f"{url}/readyz")
                return reply.json()["circuits"]["openai"] if reply.status_code == 200 else None

            for url in workers.urls:  # bounded: 30 s each, until every worker's runtime is up
                for _ in range(3000):
                    if await circuit(url) == "closed":
                        break
                    await anyio.sleep(0.01)
                else:
                    pytest.fail(f"{url}: the runtime never became ready")
            sent = itertools.count()

            async def send(url: str) -> None:
                session = f"b{next(sent)}"  # one session per message: no lease waits
                reply = await http.post(f"{url}/v1/chat/completions", json=chat("hi"),
                                        headers={"x-session-id": session})
                assert reply.status_code == 200, reply.text
                assert reply.headers["x-valis-fallback"] == "true"  # the persona fallback answered

            for _ in range(4):  # round-robin, one message at a time: 16 messages
                for url in workers.urls:
                    await send(url)
            elapsed = anyio.current_time() - server.requests[0].started_at  # the server's clock is ours
            failures = len(server.requests)
            # Each worker that had not yet seen the open circuit sends at most one more attempt (its
            # report answers "open"); a phase longer than the cooldown may add one probe per cooldown.
            slack = count - 1 + int(elapsed // cooldown)
            assert threshold <= failures <= threshold + slack < count * threshold, (failures, elapsed)
            for _ in range(2):  # two cooldowns: one half-open probe in the cluster for each
                for url in workers.urls:  # bounded: 10 s each, until every worker's circuit is half-open
                    for _ in range(1000):
                        if await circuit(url) == "half_open":
                            break
                        await anyio.sleep(0.01)
                    else:
                        pytest.fail(f"{url}: the circuit never became half-open")
                before = len(server.requests)
                started = anyio.current_time()
                async with anyio.create_task_group() as tg:  # 2 messages per worker at once: they race
                    for url in workers.urls * 2:
                        tg.start_soon(send, url)
                elapsed = anyio.current_time() - started
                probes = len(server.requests) - before
                assert 1 <= probes <= 1 + int(elapsed // cooldown), (probes, elapsed)  # one per cooldown
                assert redis_server.command("EXISTS", tripped_key) == 1  # the probe failed: not closed
