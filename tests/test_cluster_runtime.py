"""Cluster mode through the real runtime: several runtimes in one process share one real redis-server.

Each runtime stands for a worker process (its own leases, breaker actor, memory actor);
they share nothing but Redis. Real time (loopback sockets), short TTLs, bounded loops;
assertions are about order, counts and what was stored, never about how fast.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

import valis_actors as va
from tests.support import eventually, make_config, scripted
from tests.test_cluster_redis import (  # noqa: F401 - the shared fixtures
    RedisServer,
    anyio_backend_fixture,
    collect_coredis_garbage,
    redis_server_fixture,
)
from valis_actors.cluster import (
    ClusterConfig,
    ClusterMode,
    LeaseLostError,
    LeaseTimeoutError,
    StaleEpochError,
    open_cluster_runtime,
)
from valis_actors.testing import ScriptedProvider, Step

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")]


def cluster_section(server: RedisServer, **overrides: Any) -> dict[str, Any]:
    return {"redis_url": server.url, "lease_ttl": 2.0, "linger": 0.05, **overrides}


@asynccontextmanager
async def workers(
    config: va.Config, count: int
) -> AsyncIterator[list[tuple[va.Runtime, ClusterMode]]]:
    """``count`` cluster-mode runtimes on one config, each with its own Redis connection."""
    async with AsyncExitStack() as stack:
        opened = []
        for _ in range(count):
            mode = await stack.enter_async_context(ClusterMode.open(config))
            runtime = await stack.enter_async_context(va.open_runtime(config, **mode.runtime_options()))
            opened.append((runtime, mode))
        yield opened


def journal(runtime: va.Runtime) -> ScriptedProvider:
    p = runtime.provider("p1")
    assert isinstance(p, ScriptedProvider)
    return p


async def test_cluster_mode_answers_and_stores_with_the_lease_epoch(redis_server: RedisServer) -> None:
    config = make_config(scripted("p1"), cluster=cluster_section(redis_server))
    async with ClusterMode.open(config) as mode:
        async with va.open_runtime(config, **mode.runtime_options()) as runtime:
            first = await runtime.ask("s1", "jane", "hello")
            second = await runtime.ask("s1", "jane", "again")
            assert (first.text, second.text) == ("p1: hello", "p1: again")
            lease = mode.cluster.leases.get("s1")
            assert lease is not None and lease.held  # kept for the linger, then released
            stored = await mode.cluster.memory.recent("s1", None, 10)
            assert [t.user for t in stored] == ["hello", "again"]
            # The second message saw the first as history (the cache follows the store).
            assert journal(runtime).calls[1].history[0].user == "hello"
        stats = mode.statistics()
        assert stats.leases.granted == 1 and stats.stale_epoch_rejections == 0 and stats.redis.available
    assert redis_server.command("EXISTS", "valis:lease:{s1}") == 0  # released when the runtime closed


async def test_two_workers_never_overlap_on_a_session_and_store_send_order(redis_server: RedisServer) -> None:
    config = make_config(
        scripted("p1", default=Step.answer(delay=0.005)), cluster=cluster_section(redis_server)
    )
    rng = random.Random(13)
    sessions = [f"s{n}" for n in range(3)]
    sent: dict[tuple[str, int], list[str]] = {}
    async with workers(config, 2) as pair:

        async def client(session: str, client_id: int, plan: list[int]) -> None:
            mine = sent.setdefault((session, client_id), [])
            for n, worker in enumerate(plan):
                message = f"{session}/{client_id}/{n}"
                reply = await pair[worker][0].ask(session, "jane", message)
                assert reply.text == f"p1: {message}"  # answered once, with its own answer
                mine.append(message)

        async with anyio.create_task_group() as tg:
            for session in sessions:
                for client_id in range(2):  # two concurrent clients per session, random workers
                    tg.start_soon(client, session, client_id, [rng.randrange(2) for _ in range(6)])
        calls = [(c, index) for index, (runtime, _) in enumerate(pair) for c in journal(runtime).calls]
        assert {index for _, index in calls} == {0, 1}, "both workers answered"
        for session in sessions:
            intervals = sorted((c.started, c.ended or c.started) for c, _ in calls if c.session_id == session)
            assert len(intervals) == 12
            for (_, end), (start, _) in itertools.pairwise(intervals):
                assert end <= start, f"two workers answered {session!r} at once"
            stored = [t.user for t in await pair[0][1].cluster.memory.recent(session, None, 100)]
            assert sorted(stored) == sorted(sent[(session, 0)] + sent[(session, 1)])  # each once
            for client_id in range(2):
                assert [m for m in stored if m.startswith(f"{session}/{client_id}/")] == sent[(session, client_id)]
            # Each answer was given the stored history up to it, whichever worker answered.
            by_message = {c.message: c for c, _ in calls if c.session_id == session}
            for index, message in enumerate(stored):
                assert [t.user for t in by_message[message].history] == stored[:index][-20:]
        granted = sum(mode.statistics().leases.granted for _, mode in pair)
        assert granted >= len(sessions)


async def test_a_stale_owners_write_is_rejected_and_never_returned(redis_server: RedisServer) -> None:
    # The old owner's renewal is due only after its slow answer: its write carries the
    # old epoch, which the store rejects once a newer owner took the session.
    config = make_config(
        scripted("p1"), cluster=cluster_section(redis_server, lease_ttl=3.0)
    )
    async with workers(config, 2) as [(old, old_mode), (new, new_mode)]:
        journal(old).script(Step.answer("stale answer", delay=0.4))
        async with anyio.create_task_group() as tg:
            outcome: list[BaseException | va.Reply] = []

            async def ask_old() -> None:
                try:
                    outcome.append(await old.ask("s1", "jane", "first"))
                except va.ValisError as exc:
                    outcome.append(exc)

            tg.start_soon(ask_old)
            await eventually(lambda: journal(old).in_flight)  # bounded: until the old owner's provider call runs
            assert redis_server.command("DEL", "valis:lease:{s1}") == 1  # the lease is stolen
            reply = await new.ask("s1", "jane", "second")
        assert reply.text == "p1: second"
        [error] = outcome
        assert isinstance(error, StaleEpochError)
        assert "discarded" in str(error)
        stored = [t.user for t in await new_mode.cluster.memory.recent("s1", None, 10)]
        assert stored == ["second"]  # the stale answer was never stored
        assert old_mode.statistics().stale_epoch_rejections == 1


async def test_a_paused_redis_fences_the_owner_before_its_lease_expires(redis_server: RedisServer) -> None:
    config = make_config(
        scripted("p1", Step.answer("too late", delay=3.0)),
        cluster=cluster_section(redis_server, lease_ttl=0.6, command_timeout=0.2),
    )
    async with ClusterMode.open(config) as mode:
        async with va.open_runtime(config, **mode.runtime_options()) as runtime:
            async with anyio.create_task_group() as tg:
                errors: list[BaseException] = []

                async def ask() -> None:
                    try:
                        await runtime.ask("s1", "jane", "hello")
                    except va.ValisError as exc:
                        errors.append(exc)

                tg.start_soon(ask)
                await eventually(lambda: journal(runtime).in_flight)
                redis_server.command("CLIENT", "PAUSE", "1500", "ALL")  # renewals get no answer
            [error] = errors
            assert isinstance(error, LeaseLostError)
            [call] = journal(runtime).calls
            assert call.outcome == "cancelled"  # the provider call was stopped, not awaited
            await anyio.sleep(1.6)  # the pause ends (bounded)
            assert await mode.cluster.memory.recent("s1", None, 10) == []
        assert mode.statistics().fenced_stops == 1 and mode.statistics().leases.lost == 1


async def test_a_session_held_elsewhere_times_out_with_retry_after(redis_server: RedisServer) -> None:
    config = make_config(scripted("p1"), cluster=cluster_section(redis_server, lease_ttl=5.0))
    redis_server.command("SET", "valis:lease:{s1}", "someone-else", "PX", "5000")
    async with open_cluster_runtime(config) as runtime:
        with pytest.raises(LeaseTimeoutError) as caught:
            await runtime.ask("s1", "jane", "hello", deadline=0.3)
        assert 0 < caught.value.retry_after <= 5.0
        assert journal(runtime).calls == []  # never answered without the lease
        other = await runtime.ask("s2", "jane", "hello")
        assert other.text == "p1: hello"


async def test_redis_down_refuses_new_sessions_but_keeps_circuits_local(redis_server: RedisServer) -> None:
    config = make_config(
        scripted("p1", default=Step.transient()),
        retry_schedule=[],
        circuit_breaker_threshold=2,
        cluster=cluster_section(redis_server, command_timeout=0.2),
    )
    async with ClusterMode.open(config) as mode, va.open_runtime(config, **mode.runtime_options()) as runtime:
        redis_server.stop()
        with pytest.raises(va.ValisError) as caught:
            await runtime.ask("s1", "jane", "hello")
        assert type(caught.value).__name__ == "ClusterUnavailableError"
        assert not mode.available and not await mode.check()
        assert journal(runtime).calls == []
        redis_server.start()
        for _ in range(200):  # bounded: until a command gets through again
            if await mode.check():
                break
            await anyio.sleep(0.01)
        reply = await runtime.ask("s1", "jane", "hello")
        assert reply.fallback_used and mode.available


async def test_shared_breaker_opens_for_every_worker_after_about_threshold_failures(
    redis_server: RedisServer,
) -> None:
    threshold, count = 3, 3
    config = make_config(
        scripted("p1", default=Step.transient()),
        retry_schedule=[],
        circuit_breaker_threshold=threshold,
        circuit_breaker_timeout=30,
        cluster=cluster_section(redis_server, breaker_refresh=0.2),
    )
    async with workers(config, count) as group:

        async def settled(runtime: va.Runtime, failures_before: int) -> None:
            for _ in range(400):  # bounded: until the breaker actor took in the report
                snap = runtime.statistics().breakers["p1"]
                if snap.consecutive_failures != failures_before or snap.state is not va.CircuitState.CLOSED:
                    return
                await anyio.sleep(0.005)

        n = 0
        for _ in range(threshold):  # round-robin, one message at a time
            for runtime, _ in group:
                before = runtime.statistics().breakers["p1"].consecutive_failures
                reply = await runtime.ask(f"s{n}", "jane", "hi")
                n += 1
                assert reply.fallback_used
                if journal(runtime).calls and journal(runtime).calls[-1].message == "hi":
                    await settled(runtime, before)
        total = sum(len(journal(r).calls) for r, _ in group)
        assert threshold <= total <= threshold + count - 1 < count * threshold
        await anyio.sleep(0.3)  # one refresh interval: every worker has read the open circuit
        for runtime, _ in group:
            assert runtime.statistics().breakers["p1"].state is va.CircuitState.OPEN
            await runtime.ask(f"s{n}", "jane", "hi")
            n += 1
        assert sum(len(journal(r).calls) for r, _ in group) == total  # no attempt while open


async def test_shared_breaker_lets_exactly_one_probe_through_per_cooldown(redis_server: RedisServer) -> None:
    config = make_config(
        scripted("p1", default=Step.transient(delay=0.05)),
        retry_schedule=[],
        circuit_breaker_threshold=1,
        circuit_breaker_timeout=0.3,
        cluster=cluster_section(redis_server, breaker_refresh=0.1),
    )
    async with workers(config, 3) as group:
        await group[0][0].ask("s-open", "jane", "hi")  # opens the circuit for everyone
        assert sum(len(journal(r).calls) for r, _ in group) == 1
        await anyio.sleep(0.45)  # past the cooldown: half-open (bounded)
        async with anyio.create_task_group() as tg:
            for index, (runtime, _) in enumerate(group):
                for k in range(2):
                    tg.start_soon(runtime.ask, f"s{index}-{k}", "jane", "probe?")
        probes = [c for r, _ in group for c in journal(r).calls if c.message == "probe?"]
        assert len(probes) == 1  # one probe in the cluster, the others skipped the provider


def test_cluster_config_from_dict_and_env() -> None:
    assert ClusterConfig.from_dict({}, environ={}) is None
    from_env = ClusterConfig.from_dict({}, environ={"VALIS_REDIS_URL": "redis://127.0.0.1:7/0"})
    assert from_env is not None and from_env.redis_url == "redis://127.0.0.1:7/0"
    given = ClusterConfig.from_dict({"redis_url": "redis://h:1/0", "lease_ttl": 4, "memory": "sqlite"}, environ={})
    assert given is not None and given.lease_ttl == 4 and given.settings.redis_url == "redis://h:1/0"
    with pytest.raises(va.ConfigError, match=r"lease_tll.*@ \$\.cluster"):
        ClusterConfig.from_dict({"redis_url": "redis://h:1/0", "lease_tll": 4}, environ={})
    with pytest.raises(va.ConfigError, match="memory"):
        ClusterConfig.from_dict({"redis_url": "redis://h:1/0", "memory": "postgres"}, environ={})
    with pytest.raises(va.ConfigError, match="redis_url is missing"):
        ClusterConfig.from_dict({"lease_ttl": 3}, environ={})
    with pytest.raises(va.ConfigError, match="cluster mode is not configured"):
        anyio.run(_open_unconfigured)


async def _open_unconfigured() -> None:
    async with ClusterMode.open(va.Config(), None):
        pass  # pragma: no cover - refused before


def test_config_keeps_the_cluster_section_and_masks_the_redis_password() -> None:
    config = va.Config.from_dict({"cluster": {"redis_url": "redis://:hunter2@10.0.0.1:6379/0", "lease_ttl": 3}})
    assert config.cluster["lease_ttl"] == 3
    shown = config.to_json()["cluster"]
    assert shown == {"redis_url": "redis://***@10.0.0.1:6379/0", "lease_ttl": 3}
    assert "hunter2" not in repr(ClusterConfig.from_config(config, environ={}))
    # 1e999 in the file parses as inf: refused at load, so config check can always print it back.
    with pytest.raises(va.ConfigError, match=r"cluster.lease_ttl must be a finite number"):
        va.Config.from_dict({"cluster": {"lease_ttl": float("inf")}})


async def test_fenced_sqlite_backend_rejects_a_stale_owner(redis_server: RedisServer, tmp_path: Path) -> None:
    config = make_config(
        scripted("p1"),
        memory={"backend": "sqlite", "path": str(tmp_path / "memory.db")},
        cluster=cluster_section(redis_server, lease_ttl=3.0, memory="sqlite"),
    )
    async with workers(config, 2) as [(old, old_mode), (new, _)]:
        journal(old).script(Step.answer("stale answer", delay=0.4))
        outcome: list[BaseException | va.Reply] = []

        async def ask_old() -> None:
            try:
                outcome.append(await old.ask("s1", "jane", "first"))
            except va.ValisError as exc:
                outcome.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask_old)
            await eventually(lambda: journal(old).in_flight)
            redis_server.command("DEL", "valis:lease:{s1}")
            assert (await new.ask("s1", "jane", "second")).text == "p1: second"
        [error] = outcome
        assert isinstance(error, StaleEpochError)
        assert old_mode.statistics().stale_epoch_rejections == 1
        history = await new.ask("s1", "jane", "third")
        assert history.text == "p1: third"
        assert [t.user for t in journal(new).calls[-1].history] == ["second"]


class CuttableProxy:
    """A loopback TCP proxy to Redis whose connections the test can cut (a network partition)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cut_off = False
        self._streams: set[anyio.abc.SocketStream] = set()
        self.listen_port = 0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.listen_port = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started()
        await listener.serve(self._handle)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            if self.cut_off:
                return
            async with await anyio.connect_tcp("127.0.0.1", self.port) as upstream:
                self._streams |= {client, upstream}

                async def pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
                    try:
                        async for chunk in source:
                            await sink.send(chunk)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        pass
                    tg.cancel_scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(pump, client, upstream)
                    tg.start_soon(pump, upstream, client)
                self._streams -= {client, upstream}

    async def cut(self) -> None:
        self.cut_off = True
        for stream in list(self._streams):
            await stream.aclose()

    def restore(self) -> None:
        self.cut_off = False


async def test_a_cut_connection_to_redis_fences_the_owner_and_refuses_new_sessions(
    redis_server: RedisServer,
) -> None:
    proxy = CuttableProxy(redis_server.port)
    async with anyio.create_task_group() as proxies:
        await proxies.start(proxy.serve)
        url = f"redis://127.0.0.1:{proxy.listen_port}/0"
        config = make_config(
            scripted("p1"),
            cluster={"redis_url": url, "lease_ttl": 0.6, "linger": 0.05, "command_timeout": 0.2,
                     "connect_timeout": 0.2},
        )
        async with ClusterMode.open(config) as mode, va.open_runtime(config, **mode.runtime_options()) as runtime:
            journal(runtime).script(Step.answer("cut off", delay=3.0))
            errors: list[BaseException] = []

            async def ask() -> None:
                try:
                    await runtime.ask("s1", "jane", "hello")
                except va.ValisError as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                await eventually(lambda: journal(runtime).in_flight)
                await proxy.cut()
            [error] = errors
            assert isinstance(error, LeaseLostError)  # stopped before its lease could expire
            assert journal(runtime).calls[0].outcome == "cancelled"
            with pytest.raises(va.ValisError) as refused:
                await runtime.ask("s2", "jane", "hello")
            assert type(refused.value).__name__ == "ClusterUnavailableError"
            proxy.restore()
            for _ in range(300):  # bounded: until a connection gets through again
                if await mode.check():
                    break
                await anyio.sleep(0.01)
            assert (await runtime.ask("s3", "jane", "hello")).text == "p1: hello"
            assert await mode.cluster.memory.recent("s1", None, 10) == []
        proxies.cancel_scope.cancel()


async def test_a_redis_restart_lets_the_new_owner_win_and_rejects_the_old(redis_server: RedisServer) -> None:
    config = make_config(scripted("p1"), cluster=cluster_section(redis_server, lease_ttl=3.0, linger=5.0))
    async with workers(config, 2) as [(old, old_mode), (new, new_mode)]:
        await old.ask("s1", "jane", "before")  # the old owner keeps its lease (long linger)
        old_epoch = old_mode.cluster.leases.get("s1").epoch  # type: ignore[union-attr]
        redis_server.restart()  # every key is lost: the lease, the epoch, the turns
        for _ in range(300):
            if await new_mode.check() and await old_mode.check():
                break
            await anyio.sleep(0.01)
        assert (await new.ask("s1", "jane", "after")).text == "p1: after"
        new_epoch = new_mode.cluster.leases.get("s1").epoch  # type: ignore[union-attr]
        assert new_epoch > old_epoch  # epochs restart above the old ones (Redis's clock)
        with pytest.raises(va.ValisError) as caught:
            # Within its lease's validity locally its write is rejected; once its renewal found
            # the key gone it waits for the new owner instead. Either way nothing is stored.
            await old.ask("s1", "jane", "stale", deadline=1.0)
        assert isinstance(caught.value, StaleEpochError | LeaseLostError | LeaseTimeoutError)
        assert [t.user for t in await new_mode.cluster.memory.recent("s1", None, 10)] == ["after"]
