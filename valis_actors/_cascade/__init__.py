"""How one message is answered: the cascade, what each outcome means, the breaker, delivery.

``_outcomes`` is the one table from provider error to outcome, retry, failover and
breaker verdict; ``_cascade`` runs providers in order under the deadline; ``_breaker``
is the actor that owns every circuit; ``_delivery`` moves streamed chunks to the caller;
``_scope`` is a message's cancel handle.
"""

from ._breaker import BreakerActor as BreakerActor
from ._breaker import BreakerStatistics as BreakerStatistics
from ._breaker import BreakerSync as BreakerSync
from ._breaker import CircuitState as CircuitState
from ._breaker import SharedState as SharedState
from ._cascade import FALLBACK_RESERVE as FALLBACK_RESERVE
from ._cascade import Cascade as Cascade
from ._cascade import CascadeResult as CascadeResult
from ._cascade import first_reply as first_reply
from ._delivery import Delivery as Delivery
from ._scope import MessageScope as MessageScope

__all__ = [
    "FALLBACK_RESERVE",
    "BreakerActor",
    "BreakerStatistics",
    "BreakerSync",
    "Cascade",
    "CascadeResult",
    "CircuitState",
    "Delivery",
    "MessageScope",
    "SharedState",
    "first_reply",
]
