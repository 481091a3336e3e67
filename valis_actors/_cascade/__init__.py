"""How one message is answered: the cascade, what each outcome means, the breaker, delivery.

``_outcomes`` is the one table from provider error to outcome, retry, failover and
breaker verdict; ``_cascade`` runs providers in order under the deadline; ``_breaker``
is the actor that owns every circuit; ``_delivery`` moves streamed chunks to the caller.
"""

from ._breaker import BreakerActor as BreakerActor
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import BreakerSync as BreakerSync
from ._breaker import CircuitState as CircuitState
from ._breaker import SharedState as SharedState
from ._cascade import FALLBACK_RESERVE as FALLBACK_RESERVE
from ._cascade import Cascade as Cascade
from ._cascade import CascadeResult as CascadeResult
from ._cascade import scope_cutoff as scope_cutoff
from ._delivery import Delivery as Delivery

__all__ = [
    "FALLBACK_RESERVE",
    "BreakerActor",
    "BreakerStatistics",
    "BreakerSync",
    "Cascade",
    "CascadeResult",
    "CircuitState",
    "Delivery",
    "SharedState",
    "scope_cutoff",
]
