"""Conversation memory: the memory actor that owns the store, and the stores.

``_actor`` is the one task that talks to the store (batched commits, trims);
``_store`` defines the store interface and the process-local store; ``_sqlite`` is
the durable default (imported only when it is used: sqlite3 stays out of start-up).
"""

from ._actor import Memory as Memory
from ._actor import open_memory as open_memory
from ._store import ConversationStore as ConversationStore
from ._store import SessionSummary as SessionSummary

__all__ = ["ConversationStore", "Memory", "SessionSummary", "open_memory"]
