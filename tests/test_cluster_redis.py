"""Cluster mode's Redis connection, against a real redis-server; and the fixture the cluster tests share.

Real time: these tests talk to a real server over loopback sockets, where a virtual
clock would jump while the kernel moves bytes.
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

pytestmark = [
    pytest.mark.anyio,
    # coredis 6.9 leaves a connection's memory streams unclosed when connecting fails
    # (they are created in __init__ and closed only by a connection that started);
    # collect_coredis_garbage below collects them inside the test that made them.
    pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning"),
]

coredis = pytest.importorskip("coredis")

from valis_actors import ValisError, cluster
from valis_actors.cluster import (
    ClusterSettings,
    ClusterUnavailableError,
    RedisConnection,
    open_redis,
)


@pytest.fixture(name="anyio_backend", params=["asyncio", "trio"])
def anyio_backend_fixture(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real redis-server on a free loopback port, persistence off, in a temp dir."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def settings(self, **overrides: float) -> ClusterSettings:
        return ClusterSettings(self.url, **overrides)  # type: ignore[arg-type]

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        args += ["--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):  # bounded: 5 s at most
            try:
                if self.command("PING") == "PONG":
                    return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.01)
        log = (
            (self.workdir / "redis.log").read_text(errors="replace")
            if (self.workdir / "redis.log").exists()
            else ""
        )
        self.stop()
        pytest.fail(f"redis-server did not start on port {self.port}: {log[-2000:]}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        """Kill and start again on the same port: every key is lost (persistence is off)."""
        self.stop()
        self.start()

    def command(self, *args: str) -> object:
        """One command over a fresh blocking socket (test side only), RESP2 reply parsed."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
            sock.sendall(payload.encode())
            reader = sock.makefile("rb")
            return _read_reply(reader)


def _read_reply(reader: object) -> object:
    line = reader.readline()  # type: ignore[attr-defined]
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        if rest == "-1":
            return None
        data = reader.read(int(rest) + 2)  # type: ignore[attr-defined]
        return data[:-2].decode()
    if kind == b"*":
        return [_read_reply(reader) for _ in range(int(rest))]
    raise RuntimeError(f"unexpected reply {line!r}")


@pytest.fixture(name="redis_server")
def redis_server_fixture(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server per test; missing binary: a skip, or a failure under CI=true."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def collect_coredis_garbage() -> Iterator[None]:
    """Collect the streams coredis leaks on a failed connect here, not in some later test."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(name="redis")
async def redis_fixture(redis_server: RedisServer) -> AsyncIterator[RedisConnection]:
    """A connection of this process to the test's Redis (short command timeout)."""
    async with open_redis(redis_server.settings(command_timeout=0.5)) as connection:
        yield connection


# -- the connection owner -------------------------------------------------------------------


async def test_open_redis_unreachable_raises_cluster_unavailable() -> None:
    settings = ClusterSettings(f"redis://127.0.0.1:{_free_port()}/0", connect_timeout=0.5)
    with pytest.raises(ClusterUnavailableError, match="cannot reach Redis") as info:
        async with open_redis(settings):
            pytest.fail("the body must not run")
    assert isinstance(info.value, ValisError)
    assert isinstance(info.value.__cause__, coredis.exceptions.ConnectionError)


async def test_open_redis_body_error_comes_out_unwrapped(redis_server: RedisServer) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with open_redis(redis_server.settings()):
            raise KeyError("mine")


async def test_redis_restart_fails_commands_then_recovers(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.settings(command_timeout=0.5)) as connection:
        await connection.call("set", lambda c: c.set("k", "v"))
        redis_server.stop()
        with pytest.raises(ClusterUnavailableError, match="Redis is unreachable"):
            await connection.call("get", lambda c: c.get("k"))
        assert not connection.statistics().available
        assert connection.statistics().failures == 1
        redis_server.start()
        for _ in range(50):  # bounded: the pool may hand out a dead connection once
            try:
                assert await connection.call("get", lambda c: c.get("k")) is None  # state lost
                break
            except ClusterUnavailableError:
                await anyio.sleep(0.02)
        assert connection.statistics().available


async def test_paused_redis_counts_as_unavailable_within_command_timeout(redis_server: RedisServer) -> None:
    async with open_redis(redis_server.settings(command_timeout=0.2)) as connection:
        redis_server.command("CLIENT", "PAUSE", "2000", "ALL")
        try:
            with pytest.raises(ClusterUnavailableError, match="TimeoutError"):
                await connection.call("get", lambda c: c.get("k"))
        finally:
            redis_server.command("CLIENT", "UNPAUSE")


def test_cluster_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VALIS_REDIS_URL", raising=False)
    assert ClusterSettings.from_env() is None
    monkeypatch.setenv("VALIS_REDIS_URL", "redis://h:1/2")
    assert ClusterSettings.from_env() == ClusterSettings("redis://h:1/2")


def test_cluster_settings_reject_non_positive_timeouts() -> None:
    with pytest.raises(ValueError, match=r"cluster.command_timeout must be > 0 \(got 0\)"):
        ClusterSettings("redis://h", command_timeout=0)


def test_cluster_all_is_sorted_complete_and_claims_its_module() -> None:
    public = {n for n in dir(cluster) if not n.startswith("_") and n != "annotations"}
    assert cluster.__all__ == sorted(cluster.__all__)
    assert set(cluster.__all__) == public, public ^ set(cluster.__all__)
    for name in cluster.__all__:
        member = getattr(cluster, name)
        assert member.__doc__, name
        assert member.__module__ == "valis_actors.cluster", name


def test_import_valis_actors_does_not_import_coredis() -> None:
    code = "import sys, valis_actors; print(sorted(m for m in sys.modules if m.startswith(('coredis', 'valis_actors.cluster'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_open_cluster_wires_the_parts_to_one_connection(redis_server: RedisServer) -> None:
    from valis_actors import Turn

    async with cluster.open_cluster(redis_server.settings(), lease_ttl=2, linger=0.1) as c:
        lease = await c.leases.acquire("s", anyio.current_time() + 1)
        await c.memory.append([("s", Turn("u", "a", "jane"))], 10, epochs={"s": lease.epoch})
        assert [t.user for t in await c.memory.recent("s", "jane", 5)] == ["u"]
        assert (await c.idempotency.claim("r")).owner
        breaker = c.shared_breaker(threshold=1, cooldown=1)
        assert (await breaker.report("p", False)).state.value == "open"
        assert c.connection.statistics().available
