"""Cluster mode: several processes share session leases, epochs, circuits and retries through Redis.

Imported only when cluster mode is configured (``import valis_actors`` never imports
it, nor coredis). See docs/cluster.md for the model and what each fault does.

The modules here import from the core only its public names (``from .. import Turn``),
so that the core's private layout can change under them.
"""

from __future__ import annotations

from ._breaker import ProbeVerdict as ProbeVerdict
from ._breaker import SharedBreaker as SharedBreaker
from ._breaker import SharedCircuit as SharedCircuit
from ._cluster import Cluster as Cluster
from ._cluster import open_cluster as open_cluster
from ._config import ClusterConfig as ClusterConfig
from ._connection import ClusterSettings as ClusterSettings
from ._connection import ConnectionStatistics as ConnectionStatistics
from ._connection import RedisConnection as RedisConnection
from ._connection import open_redis as open_redis
from ._errors import ClusterError as ClusterError
from ._errors import ClusterUnavailableError as ClusterUnavailableError
from ._errors import LeaseLostError as LeaseLostError
from ._errors import LeaseTimeoutError as LeaseTimeoutError
from ._errors import RequestPendingError as RequestPendingError
from ._errors import StaleEpochError as StaleEpochError
from ._idempotency import IdempotencyClaim as IdempotencyClaim
from ._idempotency import IdempotencyRecords as IdempotencyRecords
from ._lease import Lease as Lease
from ._lease import LeaseStatistics as LeaseStatistics
from ._lease import SessionLeases as SessionLeases
from ._lifecycle import ClusterLifecycle as ClusterLifecycle
from ._mode import BreakerSyncAdapter as BreakerSyncAdapter
from ._mode import ClusterMode as ClusterMode
from ._mode import ClusterStatistics as ClusterStatistics
from ._mode import open_cluster_runtime as open_cluster_runtime
from ._sqlite_fence import FencedSqliteStore as FencedSqliteStore
from ._store import RedisConversationStore as RedisConversationStore

__all__ = [
    "BreakerSyncAdapter",
    "Cluster",
    "ClusterConfig",
    "ClusterError",
    "ClusterLifecycle",
    "ClusterMode",
    "ClusterSettings",
    "ClusterStatistics",
    "ClusterUnavailableError",
    "ConnectionStatistics",
    "FencedSqliteStore",
    "IdempotencyClaim",
    "IdempotencyRecords",
    "Lease",
    "LeaseLostError",
    "LeaseStatistics",
    "LeaseTimeoutError",
    "ProbeVerdict",
    "RedisConnection",
    "RedisConversationStore",
    "RequestPendingError",
    "SessionLeases",
    "SharedBreaker",
    "SharedCircuit",
    "StaleEpochError",
    "open_cluster",
    "open_cluster_runtime",
    "open_redis",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(__name__ + "."):
        _obj.__module__ = __name__
del _name, _obj
