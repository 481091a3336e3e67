"""The actors: the runtime that owns them, the session actor, and what passes between them.

``_runtime`` is ``open_runtime`` and the front door (``ask``, ``stream``); ``_session``
is the per-session actor; ``_envelope`` is one message and its reply slot;
``_context`` is the narrow context a session actor is handed (and the lifecycle hook
points); ``_stream`` is what ``Runtime.stream`` yields.
"""

from ._runtime import Runtime as Runtime
from ._runtime import RuntimeStatistics as RuntimeStatistics
from ._runtime import open_runtime as open_runtime
from ._stream import ReplyStream as ReplyStream

__all__ = ["ReplyStream", "Runtime", "RuntimeStatistics", "open_runtime"]
