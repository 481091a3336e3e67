"""Circuit state per provider shared through Redis, read through a local cache.

    {prefix}breaker:{p}:open     exists while the circuit is open (PX = cooldown)
    {prefix}breaker:{p}:tripped  exists from opening until a probe succeeds (half-open after open expires)
    {prefix}breaker:{p}:fails    failures counted toward the threshold (expires after the failure window)
    {prefix}breaker:{p}:probe    the single half-open probe permit (SET NX PX)

The breaker actor stays the one owner of circuit state in its process; it reports
outcomes here and reads the shared state (at most every ``refresh_interval`` from
Redis). When Redis is unreachable every call answers from a local circuit instead,
flagged ``source="local"``: providers stay usable (fail open).
"""

from __future__ import annotations

import secrets

import anyio
import attrs

from .. import CircuitState
from . import _scripts
from ._connection import RedisConnection, session_tag
from ._errors import ClusterUnavailableError

__all__ = ["ProbeVerdict", "SharedBreaker", "SharedCircuit"]


@attrs.frozen
class SharedCircuit:
    """A provider's circuit as last seen.

    Attributes:
        state: closed, open (``open_for`` seconds left) or half_open (a probe may run).
        open_for: Seconds until an open circuit lets a probe through (0 unless open).
        failures: Failures counted toward the threshold.
        probe_in_flight: A half-open probe permit is taken.
        source: ``"redis"`` (shared) or ``"local"`` (Redis unreachable: this process only).
        read_at: ``anyio.current_time()`` of the read.
    """

    state: CircuitState
    open_for: float
    failures: int
    probe_in_flight: bool
    source: str
    read_at: float


@attrs.frozen
class ProbeVerdict:
    """The answer to :meth:`SharedBreaker.try_acquire_probe`.

    Attributes:
        granted: The caller may run its attempt.
        probe: The attempt is the circuit's probe: report it with ``probe=True``
            (or give the permit back with :meth:`SharedBreaker.release_probe`).
        source: ``"redis"`` or ``"local"``.
        token: Identifies the permit in Redis (probe only).
    """

    granted: bool
    probe: bool
    source: str
    token: str | None = None


@attrs.define
class _LocalCircuit:
    failures: int = 0
    open_until: float = 0.0
    tripped: bool = False
    probe: bool = False


class SharedBreaker:
    """Circuit state for every process of the cluster.

    Args:
        connection: From :func:`open_redis`.
        threshold: Failures (counted across all processes) that open a closed circuit.
        cooldown: Seconds a circuit stays open before one probe is let through.
        failure_window: Seconds after the first counted failure at which the count starts over.
        probe_ttl: Seconds a probe permit lives if its holder never reports (crashed).
        refresh_interval: At most one Redis read per provider per this many seconds.
    """

    def __init__(
        self,
        connection: RedisConnection,
        *,
        threshold: int,
        cooldown: float,
        failure_window: float = 60.0,
        probe_ttl: float = 30.0,
        refresh_interval: float = 1.0,
    ) -> None:
        self.connection = connection
        self.threshold = threshold
        self.cooldown = cooldown
        self._cooldown_ms = max(1, round(cooldown * 1000))
        self._window_ms = max(1, round(failure_window * 1000))
        self._probe_ms = max(1, round(probe_ttl * 1000))
        self.refresh_interval = refresh_interval
        self._cache: dict[str, SharedCircuit] = {}
        self._local: dict[str, _LocalCircuit] = {}
        self.fallbacks = 0  # calls answered from local state since the start

    def _keys(self, provider: str) -> list[str]:
        tag = session_tag(provider)
        return [self.connection.key("breaker", tag, part) for part in ("open", "tripped", "fails", "probe")]

    def cached(self, provider: str) -> SharedCircuit | None:
        """The last state read or reported, without a round trip (None before the first)."""
        return self._cache.get(provider)

    async def read(self, provider: str) -> SharedCircuit:
        """The provider's circuit: from the cache if younger than ``refresh_interval``, else from Redis."""
        cached = self._cache.get(provider)
        now = anyio.current_time()
        if cached is not None and now - cached.read_at < self.refresh_interval:
            return cached
        try:
            open_ms, tripped, failures, probe_ms = await self.connection.script(
                f"read the circuit of {provider!r}", _scripts.BREAKER_READ, self._keys(provider), []
            )
        except ClusterUnavailableError:
            return self._local_view(provider)
        state = (
            CircuitState.OPEN if open_ms > 0 else CircuitState.HALF_OPEN if tripped else CircuitState.CLOSED
        )
        circuit = SharedCircuit(
            state, max(0, open_ms) / 1000 if open_ms > 0 else 0.0, int(failures), probe_ms > 0, "redis", now
        )
        self._cache[provider] = circuit
        return circuit

    async def report(self, provider: str, success: bool, *, probe: bool = False) -> SharedCircuit:
        """Count an attempt's outcome (a probe's outcome closes or reopens the circuit).

        A plain success while the circuit is closed with no failures costs no round trip.
        Returns the state after the report.
        """
        cached = self._cache.get(provider)
        if (
            success
            and not probe
            and cached is not None
            and cached.state is CircuitState.CLOSED
            and cached.failures == 0
        ):
            return cached
        now = anyio.current_time()
        keys = self._keys(provider)
        try:
            if success:
                await self.connection.script(
                    f"report to the circuit of {provider!r}",
                    _scripts.BREAKER_SUCCESS,
                    keys,
                    ["1" if probe else "0"],
                )
                if not probe:
                    # A late success leaves an open circuit open: read what it is now.
                    self._cache.pop(provider, None)
                    return await self.read(provider)
                circuit = SharedCircuit(CircuitState.CLOSED, 0.0, 0, False, "redis", now)
            else:
                opened, open_ms, failures = await self.connection.script(
                    f"report to the circuit of {provider!r}",
                    _scripts.BREAKER_FAILURE,
                    keys,
                    [self.threshold, self._cooldown_ms, self._window_ms, "1" if probe else "0"],
                )
                if open_ms > 0:
                    circuit = SharedCircuit(
                        CircuitState.OPEN, open_ms / 1000, int(failures), False, "redis", now
                    )
                elif opened == 0 and open_ms == -2 and failures == 0:
                    circuit = SharedCircuit(CircuitState.HALF_OPEN, 0.0, 0, False, "redis", now)
                else:
                    circuit = SharedCircuit(CircuitState.CLOSED, 0.0, int(failures), False, "redis", now)
        except ClusterUnavailableError:
            return self._local_report(provider, success, probe)
        self._cache[provider] = circuit
        return circuit

    async def try_acquire_probe(self, provider: str) -> ProbeVerdict:
        """Ask for the half-open probe permit: granted to exactly one caller in the cluster per cooldown."""
        token = secrets.token_hex(8)
        try:
            verdict, _open_ms = await self.connection.script(
                f"take the probe permit of {provider!r}",
                _scripts.PROBE,
                [k for i, k in enumerate(self._keys(provider)) if i != 2],
                [token, self._probe_ms],
            )
        except ClusterUnavailableError:
            local = self._local_circuit(provider)
            now = anyio.current_time()
            self.fallbacks += 1
            if not local.tripped:
                return ProbeVerdict(True, False, "local")
            if now < local.open_until or local.probe:
                return ProbeVerdict(False, False, "local")
            local.probe = True
            return ProbeVerdict(True, True, "local")
        self._cache.pop(provider, None)  # the state moved on: read it afresh next time
        return ProbeVerdict(verdict != 0, verdict == 1, "redis", token if verdict == 1 else None)

    async def release_probe(self, provider: str, verdict: ProbeVerdict) -> None:
        """Give back a probe permit whose attempt ended without a verdict (cancelled, cut by a deadline)."""
        if not verdict.probe:
            return
        if verdict.source == "local" or verdict.token is None:
            self._local_circuit(provider).probe = False
            return
        try:
            await self.connection.script(
                f"give back the probe permit of {provider!r}",
                _scripts.COMPARE_AND_DELETE,
                [self._keys(provider)[3]],
                [verdict.token],
            )
        except ClusterUnavailableError:
            pass  # the permit expires after probe_ttl

    # -- local fallback (Redis unreachable) -------------------------------------------

    def _local_circuit(self, provider: str) -> _LocalCircuit:
        return self._local.setdefault(provider, _LocalCircuit())

    def _local_view(self, provider: str) -> SharedCircuit:
        self.fallbacks += 1
        local = self._local_circuit(provider)
        now = anyio.current_time()
        if now < local.open_until:
            state, open_for = CircuitState.OPEN, local.open_until - now
        else:
            state, open_for = (CircuitState.HALF_OPEN if local.tripped else CircuitState.CLOSED), 0.0
        return SharedCircuit(state, open_for, local.failures, local.probe, "local", now)

    def _local_report(self, provider: str, success: bool, probe: bool) -> SharedCircuit:
        local = self._local_circuit(provider)
        now = anyio.current_time()
        if probe:
            local.probe = False
        if success:
            local.failures = 0
            if probe:
                local.tripped = False
                local.open_until = 0.0
        elif probe or (not local.tripped and local.failures + 1 >= self.threshold):
            local.failures, local.tripped, local.open_until = 0, True, now + self.cooldown
        elif not local.tripped:
            local.failures += 1
        return self._local_view(provider)
