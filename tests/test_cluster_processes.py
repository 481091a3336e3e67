"""Leases across real processes: three workers contend for one session through one redis-server."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cluster_redis import (  # noqa: F401 - the shared fixtures
    RedisServer,
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
