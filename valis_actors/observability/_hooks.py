"""Combining event hooks: the runtime takes one; metrics, tracing and tests each want theirs."""

from __future__ import annotations

import logging
from collections.abc import Callable

import valis_actors as va

__all__ = ["combine_hooks"]

logger = logging.getLogger("valis_actors.observability")

Hook = Callable[[va.RuntimeEvent], None]


def combine_hooks(*hooks: Hook | None) -> Hook:
    """One hook that calls each of ``hooks`` in order (``None`` entries are skipped).

    A hook that raises is logged (once per hook) and does not stop the others nor
    reach the runtime: an observer's bug must not fail a message.
    """
    chosen = tuple(h for h in hooks if h is not None)
    failed: set[int] = set()

    def combined(event: va.RuntimeEvent) -> None:
        for index, hook in enumerate(chosen):
            try:
                hook(event)
            except Exception:
                if index not in failed:
                    failed.add(index)
                    logger.exception("event hook %r raised; its later errors are not logged", hook)

    return combined
